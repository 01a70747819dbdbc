"""Explore a trained generator: the tutorial's pictures of what each part of StyleGAN does.

    python generate.py mix --rows 1-3 --cols 4-6
    python generate.py --checkpoint visual/stylegan/checkpoints/ckpt-0010.json truncation

The generator is the shipped models/generator.keras unless --checkpoint or --model names another.
Every file goes into --outdir (default out/, made if missing), named after the subcommand and the
settings that change it, e.g. out/mix-rows1-3-cols4-6-grid.png. --out NAME names it instead (a
path with a folder in it, such as ./mix.png, is taken as given); the folders of samples' --png DIR
and --mixed DIR are taken as given. Nothing is written over: where the name is taken, the next
free one (...-2.png, ...-3.png) is used, and the "Wrote" line says so.

Seeds are whole numbers and inclusive ranges, as in NVlabs' scripts: 1,2,3 or 0-35 or 0-3,7,10-12.
A seed s always means the z drawn by numpy.random.default_rng(s), on every style layer.

Subcommands (each writes one file, the same for the same settings):
  mix          a grid: row seeds give the chosen style layers (--layers grid|coarse|middle|fine|A:B,
               or --crossover K for layers < K), column seeds the rest (the paper's Figure 3);
               --pair A B: source A, the mix, source B side by side
  truncation   seeds x psi: w = w_avg + psi (w - w_avg)
  noise        one z under several noise images, the per-pixel std over many (paper, Fig. 4),
               and the image with the noise turned off in one layer at a time
  levels       a base seed with one style layer's w taken from another seed, layer by layer
  interpolate  a GIF walking between seeds, linear in z (left) and linear in w (right)
  samples      N images as .npy (float32 [N, H, W, C] in [-1, 1]), or with --png DIR as
               DIR/000000.png, ... (for Inception-FID tools); --mixed DIR writes
               coarse.npy, fine.npy, mixed.npy for N (z1, z2) pairs at the grid's crossover
"""

import utils  # noqa: E402

utils.quiet_tensorflow_start()  # before Keras loads it: TensorFlow's start-up chatter kept back

import argparse  # noqa: E402
import hashlib  # noqa: E402
import itertools  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import stat  # noqa: E402
import sys  # noqa: E402
import textwrap  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

import stylegan  # noqa: E402
from checkpoints import (CHECKPOINT_DIR, LOCK_NAME, add_generator_source,  # noqa: E402
                         list_checkpoints, load_generator, numbered, write_atomically,
                         write_new)
from stylegan import COARSE_SIZE, crossover_at  # noqa: E402
from utils import (OUT_DIR, ArgumentParser, UserError, can_create_in,  # noqa: E402
                   check_fits_in_memory, file_mode, inspected, squeeze_channel,
                   to_uint8)


class Explorer:
    """A generator with the pieces the figures need: z of a seed, w, synthesis from w."""

    def __init__(self, generator, noise_seed=0):
        self.generator = generator
        self.mapping = generator.get_layer("map")
        self.synthesis = generator.get_layer("synthesis")
        self.n_style, self.latent_dim = generator.input[0].shape[1:]
        self.size = self.synthesis.input[1].shape[1]  # 28 for MNIST
        self.noise = self.draw_noise(1, np.random.default_rng(noise_seed))

    def draw_noise(self, n, rng):
        return rng.standard_normal((n, self.size, self.size), "float32")

    def z(self, seeds):
        return np.stack([np.random.default_rng(s).standard_normal(self.latent_dim, "float32")
                         for s in seeds])

    def w(self, z):
        """w [n, n_style, w_dim] of z [n, latent] (the same z on every layer)."""
        return np.asarray(self.mapping(stylegan.repeat_z(z, self.n_style)))

    def from_w(self, w, noise=None):
        noise = np.repeat(self.noise, len(w), axis=0) if noise is None else noise
        return np.asarray(self.synthesis([w, noise]))

    def layer_set(self, spec):
        """grid (the training grid's split: every style block's slot), coarse / middle / fine
        (the style layers in thirds, low resolution first) or A:B."""
        thirds = dict(zip(THIRDS, np.array_split(np.arange(self.n_style), 3)))
        parsed = parse_layers(spec)
        if parsed == "grid":
            layers = np.arange(crossover_at(self.generator, COARSE_SIZE))
        elif parsed in thirds:
            layers = thirds[parsed]
        else:
            start, stop = parsed
            if not 0 <= start < stop <= self.n_style:
                raise UserError(f"--layers {spec}: the generator has style layers 0.."
                                f"{self.n_style - 1}, so A:B needs 0 <= A < B <= "
                                f"{self.n_style}")
            layers = np.arange(start, stop)
        if len(layers) == 0:
            raise UserError(f"--layers {spec}: no style layer of {self.n_style} is {spec}")
        return layers

    def checked_w(self, arrays, paths, flag):
        """The w arrays of --row-w / --col-w (project.py's .npy files), each [n_style, w_dim]
        of this generator."""
        shape = (self.n_style, self.mapping.size)
        for array, path in zip(arrays, paths or ()):
            if array.shape != shape:
                raise UserError(f"{flag} {path}: a w of shape {array.shape}; this generator "
                                f"takes {shape} (project.py with this generator makes one)")
        return [array[None] for array in arrays]

    def crossover_layers(self, k):
        if not 1 <= k < self.n_style:
            raise UserError(f"--crossover {k} is outside [1, {self.n_style}): the rows give "
                            f"layers 0..k-1 and the columns the rest, so both need one")
        return np.arange(k)

    def mix(self, w_rows, w_cols, layers):
        """w_cols with the given style slots replaced by w_rows' (pairwise)."""
        from_rows = np.isin(np.arange(self.n_style), layers)
        return np.asarray(stylegan.mix_styles(w_rows, w_cols, from_rows))

    def mix_grid(self, w_rows, w_cols, layers):
        """The w of every row's mix with every column, row by row: [rows * cols, n_style, w]."""
        return self.mix(np.repeat(w_rows, len(w_cols), 0), np.tile(w_cols, (len(w_rows), 1, 1)),
                        layers)


# ---------------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------------
def save_figure(cells, path, title, row_labels=(), col_labels=(), xlabel="", ylabel="",
                titles=None):
    """cells [rows, cols, h, w] (values in [-1, 1], NaN for an empty cell) as a labelled grid;
    col_labels title the top row, or titles[r][c] every cell."""
    from matplotlib.figure import Figure  # a figure of its own: no pyplot, no backend to set

    rows, cols = cells.shape[:2]
    fig = Figure(figsize=(1.1 * cols + 1, 1.35 * rows + 1.2))
    axes = fig.subplots(rows, cols, squeeze=False)
    for r in range(rows):
        for c in range(cols):
            ax = axes[r, c]
            if np.isnan(cells[r, c]).all():
                ax.axis("off")
                continue
            if cells.ndim == 5:  # colour: [-1, 1] -> [0, 1]
                ax.imshow((np.clip(cells[r, c], -1, 1) + 1) / 2)
            else:
                ax.imshow(cells[r, c], cmap="gray", vmin=-1, vmax=1)
            ax.set_xticks([]), ax.set_yticks([])
            if titles:
                ax.set_title(titles[r][c], fontsize=7)
            elif r == 0 and c < len(col_labels):
                ax.set_title(col_labels[c], fontsize=8)
            if c == 0 and r < len(row_labels):
                ax.set_ylabel(row_labels[r], fontsize=8)
    width_inches = fig.get_size_inches()[0]
    fig.suptitle(textwrap.fill(title, int(12 * width_inches)), fontsize=10)  # ~12 chars an inch
    fig.supxlabel(xlabel, fontsize=9)
    fig.supylabel(ylabel, fontsize=9)
    fig.tight_layout()
    return write_new(path, lambda tmp: fig.savefig(tmp, dpi=100))


def cmd_mix(ex, args):
    layers = (ex.crossover_layers(args.crossover) if args.crossover is not None
              else ex.layer_set(args.layers))
    which = (f"style layer {layers[0]}" if len(layers) == 1
             else f"style layers {layers[0]}..{layers[-1]}")
    if args.pair:
        a, b = args.pair
        w_a, w_b = ex.w(ex.z([a])), ex.w(ex.z([b]))
        row = np.concatenate([ex.from_w(w_a), ex.from_w(ex.mix(w_a, w_b, layers)),
                              ex.from_w(w_b)])
        return save_figure(squeeze_channel(row)[None], args.target,
                           f"Style mixing: {which} from seed {a}, the rest from seed {b}",
                           col_labels=[f"source A (seed {a})", "mix", f"source B (seed {b})"])
    rows, cols = args.rows, args.cols
    w_rows = np.concatenate([ex.w(ex.z(rows)),
                             *ex.checked_w(args.row_w_arrays, args.row_w, "--row-w")])
    w_cols = np.concatenate([ex.w(ex.z(cols)),
                             *ex.checked_w(args.col_w_arrays, args.col_w, "--col-w")])
    rows = [*(f"seed {s}" for s in rows), *(Path(f).stem for f in args.row_w or ())]
    cols = [*(f"seed {s}" for s in cols), *(Path(f).stem for f in args.col_w or ())]
    mixes = ex.from_w(ex.mix_grid(w_rows, w_cols, layers))
    col_sources = squeeze_channel(ex.from_w(w_cols))
    image_shape = col_sources.shape[1:]
    cells = np.full((len(rows) + 1, len(cols) + 1, *image_shape), -1.0, np.float32)
    cells[0, 1:] = col_sources
    cells[1:, 0] = squeeze_channel(ex.from_w(w_rows))
    cells[1:, 1:] = squeeze_channel(mixes).reshape(len(rows), len(cols), *image_shape)
    title = f"Style mixing: {which} from the row source, the rest from the column source"
    return save_figure(cells, args.target, title, row_labels=["", *rows], col_labels=["", *cols],
                       xlabel="column source", ylabel="row source")


def cmd_truncation(ex, args):
    seeds, psis = args.seeds, args.psis
    w = ex.w(ex.z(seeds))
    cells = np.stack([squeeze_channel(ex.from_w(np.asarray(ex.mapping.truncate(w, psi))))
                      for psi in psis], axis=1)
    return save_figure(cells, args.target, "Truncation: w = w_avg + psi (w - w_avg)",
                       row_labels=[f"seed {s}" for s in seeds],
                       col_labels=[f"psi = {p:g}" for p in psis], xlabel="psi",
                       ylabel="seed")


def cmd_noise(ex, args):
    w = ex.w(ex.z([args.seed]))
    rng = np.random.default_rng(args.noise_seed)
    many = squeeze_channel(ex.from_w(np.repeat(w, args.draws, 0), ex.draw_noise(args.draws, rng)))
    std = many.std(axis=0)
    std_map = 2 * std / max(std.max(), 1e-8) - 1  # scaled to the image range
    top = [*many[: args.show], std_map]
    off = [squeeze_channel(ex.from_w(w))[0]]
    labels = ["all noise on"]
    for name, layer in noise_layers(ex.synthesis):
        saved = layer.noise_scale.numpy()
        layer.noise_scale.assign(np.zeros_like(saved))
        off.append(squeeze_channel(ex.from_w(w))[0])
        layer.noise_scale.assign(saved)
        labels.append(f"off in {name}")
    width = max(len(top), len(off))
    cells = np.full((2, width, *many.shape[1:]), np.nan, np.float32)
    cells[0, : len(top)] = top
    cells[1, : len(off)] = off
    top_titles = [*(f"noise {i + 1}" for i in range(args.show)),
                  f"std, max {std.max():.2f}"]
    title = (f"Noise inputs (B), seed {args.seed}\ntop: noise draws and the pixel std over "
             f"{args.draws} (white = most change); bottom: noise off in one layer")
    return save_figure(cells, args.target, title,
                       titles=[padded(top_titles, width), padded(labels, width)],
                       row_labels=["noise draws", "noise off"])


def padded(names, width):
    return [*names, *[""] * (width - len(names))]


def noise_layers(synthesis):
    """(name, AddNoise layer) from the constant to the last style block."""
    found = [("const", synthesis.get_layer("const_noise"))]
    for layer in synthesis.layers:
        if isinstance(layer, stylegan.Style):
            found.append((layer.name, layer.add_noise))
    return found


def cmd_levels(ex, args):
    others = args.others
    w_base = ex.w(ex.z([args.seed]))
    w_others = ex.w(ex.z(others))
    rows = []
    for w_other in w_others:
        row = [ex.from_w(w_base)[0]]
        for layer in range(ex.n_style):
            row.append(ex.from_w(ex.mix(w_other[None], w_base, [layer]))[0])
        row.append(ex.from_w(w_other[None])[0])
        rows.append(squeeze_channel(np.stack(row)))
    return save_figure(np.stack(rows), args.target,
                       f"What each style layer controls: seed {args.seed} with one layer's w "
                       f"from another seed",
                       row_labels=[f"other: seed {s}" for s in others],
                       col_labels=[f"base {args.seed}", *(f"layer {i} swapped"
                                                          for i in range(ex.n_style)), "other"])


def cmd_interpolate(ex, args):
    seeds = args.seeds
    z = ex.z(seeds)
    w = ex.w(z)
    t = np.linspace(0, 1, args.steps, endpoint=False, dtype=np.float32)[:, None]
    frames = []
    for a, b in zip(range(len(seeds)), [*range(1, len(seeds)), 0]):
        z_walk = (1 - t) * z[a] + t * z[b]
        w_walk = (1 - t)[..., None] * w[a] + t[..., None] * w[b]
        left, right = to_uint8(ex.from_w(ex.w(z_walk))), to_uint8(ex.from_w(w_walk))
        frames += [_labelled_frame(z_image, w_image, f"{seeds[a]}->{seeds[b]}")
                   for z_image, w_image in zip(left, right)]
    return write_new(args.target, lambda tmp: frames[0].save(
        tmp, save_all=True, append_images=frames[1:], duration=80, loop=0))


def _labelled_frame(left, right, caption, zoom=4):
    gap = np.full((left.shape[0], 2, *left.shape[2:]), 128, np.uint8)
    pair = np.concatenate([left, gap, right], axis=1)
    image = Image.fromarray(pair)
    image = image.resize((image.width * zoom, image.height * zoom), Image.NEAREST)
    frame = Image.new(image.mode, (image.width, image.height + 28), "white")
    frame.paste(image, (0, 28))
    draw = ImageDraw.Draw(frame)
    draw.text((4, 2), "linear in z", fill="black")
    draw.text((image.width // 2 + 4, 2), "linear in w", fill="black")
    draw.text((4, 14), f"seeds {caption}", fill="grey")
    return frame


def cmd_samples(ex, args):
    rng = np.random.default_rng(args.seed)
    if args.mixed:
        return save_mixed_samples(ex, args, rng)
    z = stylegan.repeat_z(rng.standard_normal((args.n, ex.latent_dim), "float32"), ex.n_style)
    noise = ex.draw_noise(args.n, rng)
    images = stylegan.generate(ex.generator, z, noise, args.psi)
    return save_pngs(images, args.target) if args.png else save_npy(args.target, images)


MIXED_NAMES = ("coarse", "fine", "mixed")  # samples --mixed: one .npy file each


def save_mixed_samples(ex, args, rng):
    """coarse.npy, fine.npy and mixed.npy, aligned pair by pair, into a folder that holds none
    of them yet (the three belong together, so a taken folder gives way to FOLDER-2 whole)."""
    folder = next_free(args.target, taken=holds_mixed_samples)
    folder.mkdir(parents=True, exist_ok=True)
    z1, z2 = (rng.standard_normal((args.n, ex.latent_dim), "float32") for _ in range(2))
    noise = ex.draw_noise(args.n, rng)
    k = crossover_at(ex.generator, args.coarse_size)
    for name, z in zip(MIXED_NAMES, (stylegan.repeat_z(z1, ex.n_style),
                                     stylegan.repeat_z(z2, ex.n_style),
                                     stylegan.mix_styles(
                                         z1, z2, stylegan.slots_before(k, ex.n_style)))):
        images = stylegan.generate(ex.generator, z, noise, args.psi)
        write_atomically(folder / f"{name}.npy", lambda tmp: np.save(tmp, images))
    return folder


def holds_mixed_samples(folder):
    """Whether --mixed cannot write into `folder`: a file of that name, or a folder with one
    of the three .npy files in it already."""
    if not os.path.lexists(folder):
        return False
    return not folder.is_dir() or any(os.path.lexists(folder / f"{name}.npy")
                                      for name in MIXED_NAMES)


def save_pngs(images, folder):
    """One PNG per image, 000000.png on (what Inception-FID tools such as pytorch-fid read),
    into a folder check_args found new or empty."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(to_uint8(images)):
        write_atomically(folder / f"{i:06d}.png", Image.fromarray(image).save)
    return folder


def save_npy(path, array):
    return write_new(path, lambda tmp: np.save(tmp, array))


def next_free(path, taken=os.path.lexists):
    """`path` if it is not taken, else the first free one of path-2, path-3, ... (for the
    folder of samples --mixed; files are placed by checkpoints.write_new)."""
    path = Path(path)
    return next(numbered(path, n) for n in itertools.count(1) if not taken(numbered(path, n)))


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------
SEEDS_HELP = "e.g. 1,2,3 or 0-35 or 0-3,7 (ranges inclusive)"


def parse_args(argv=None):
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_generator_source(p)
    p.add_argument("--noise-seed", type=int, default=0, help="seed of the fixed noise image")
    p.add_argument("--outdir", metavar="DIR", default=OUT_DIR,
                   help=f"the folder the outputs go into, made if missing (default {OUT_DIR}/); "
                        f"may follow the subcommand too")
    sub = p.add_subparsers(dest="command", required=True)

    mix = sub.add_parser("mix", help="style-mixing grid or pair")
    mix.add_argument("--rows", default="1-5", help=f"row seeds, giving their layers; {SEEDS_HELP}")
    mix.add_argument("--cols", default="6-10", help="column seeds, giving the rest")
    mix.add_argument("--layers", default="grid",
                     help="the style layers the rows give: grid (the default: the training "
                          "grid's split, every style block's), coarse, middle, fine (the layers "
                          "in thirds) or A:B")
    mix.add_argument("--crossover", type=int, help="rows give layers < K (instead of --layers)")
    mix.add_argument("--row-w", action="append", metavar="NPY",
                     help="one more row source: a w that project.py wrote (repeatable)")
    mix.add_argument("--col-w", action="append", metavar="NPY",
                     help="one more column source: a w that project.py wrote (repeatable)")
    mix.add_argument("--pair", type=int, nargs=2, metavar=("A", "B"),
                     help="seed A's layers into seed B, shown side by side")
    add_output_flags(mix, "mix-rows1-5-cols6-10-grid.png")

    trunc = sub.add_parser("truncation", help="seeds x truncation psi")
    trunc.add_argument("--seeds", default="1-5", help=SEEDS_HELP)
    trunc.add_argument("--psis", default="1,0.7,0.5,0,-0.5,-1")
    add_output_flags(trunc, "truncation-seeds1-5-psi1,0.7,0.5,0,-0.5,-1.png")

    noise = sub.add_parser("noise", help="the effect of the noise inputs")
    noise.add_argument("--seed", type=int, default=1)
    noise.add_argument("--draws", type=int, default=100, help="noise draws for the std map")
    noise.add_argument("--show", type=int, default=5, help="noise draws shown")
    add_output_flags(noise, "noise-seed1-draws100-show5.png")

    levels = sub.add_parser("levels", help="swap one style layer's w at a time")
    levels.add_argument("--seed", type=int, default=1)
    levels.add_argument("--others", default="2-4", help=SEEDS_HELP)
    add_output_flags(levels, "levels-seed1-others2-4.png")

    walk = sub.add_parser("interpolate", help="GIF of a walk between seeds, in z and in w")
    walk.add_argument("--seeds", default="1-4", help=SEEDS_HELP)
    walk.add_argument("--steps", type=int, default=24, help="frames between two seeds")
    add_output_flags(walk, "interpolate-seeds1-4-steps24.gif")

    samples = sub.add_parser("samples", help="N generated images as .npy, or PNG files (--png)")
    samples.add_argument("--n", type=int, default=1000)
    samples.add_argument("--psi", type=float, default=1.0)
    samples.add_argument("--seed", type=int, default=0)
    samples.add_argument("--mixed", metavar="DIR",
                         help="write coarse.npy, fine.npy, mixed.npy into DIR instead (DIR-2 "
                              "where DIR holds them already)")
    samples.add_argument("--coarse-size", type=int, default=COARSE_SIZE,
                         help="--mixed: style layers up to this size (px) come from the coarse "
                              f"source (default {COARSE_SIZE}; the tutorial's grid: 7)")
    samples.add_argument("--png", metavar="DIR", help="write the images as DIR/000000.png, ... "
                         "instead (a new or empty folder)")
    add_output_flags(samples, "samples-n1000-seed0-psi1.npy")
    return p.parse_args(argv)


def add_output_flags(parser, example):
    """A subcommand's --out, and --outdir once more, so that it may follow the subcommand."""
    parser.add_argument("--out", metavar="NAME",
                        help=f"the output's name (default: named after the settings, e.g. "
                             f"{example}); a bare name goes into --outdir, a path with a folder "
                             f"is taken as given; a taken name gives way to NAME-2, ...")
    # SUPPRESS: when not given here, the value before the subcommand (or its default) stays
    parser.add_argument("--outdir", metavar="DIR", default=argparse.SUPPRESS,
                        help="as --outdir before the subcommand")


COMMANDS = {"mix": cmd_mix, "truncation": cmd_truncation, "noise": cmd_noise,
            "levels": cmd_levels, "interpolate": cmd_interpolate, "samples": cmd_samples}


# ---------------------------------------------------------------------------------------------
# Seeds, numbers and layers as the flags give them
# ---------------------------------------------------------------------------------------------
SEED_PIECE = re.compile(r"(\d+)(?:-(\d+))?", re.ASCII)  # 7, or 0-35 (inclusive)


def parse_seeds(text, flag):
    """The seeds of `flag` as Python ranges, one per comma-separated piece (0-3,7: range(0, 4),
    range(7, 8)). They are counted before they are expanded, so that 0-999999999999 is refused
    by its size at once instead of filling the memory with a list."""
    ranges = [seed_range(piece.strip(), text, flag) for piece in text.split(",")
              if piece.strip()]
    if not ranges:
        raise UserError(f"{flag} {text!r}: give at least one seed, {SEEDS_HELP}")
    return ranges


def seed_range(piece, text, flag):
    match = SEED_PIECE.fullmatch(piece)
    if not match:
        why = ("seeds are 0 or more" if piece.startswith("-") else
               "give comma-separated whole numbers or ranges A-B")
        raise UserError(f"{flag} {text!r}: {why}, {SEEDS_HELP}")
    try:
        first, last = int(match[1]), int(match[2] or match[1])
    except ValueError:  # more digits than Python turns into a number
        raise UserError(f"{flag}: {piece[:20]}... is too long a seed") from None
    if last < first:
        raise UserError(f"{flag} {text!r}: the range {piece} runs backwards; write "
                        f"{last}-{first}")
    return range(first, last + 1)


def seed_count(ranges):
    return sum(r.stop - r.start for r in ranges)  # len() of a range stops at sys.maxsize


def expanded(ranges):
    return [seed for r in ranges for seed in r]


def parse_floats(text, flag):
    try:
        values = [float(s) for s in text.split(",") if s.strip()]
    except ValueError:
        values = []
    if not values or not np.isfinite(values).all():
        raise UserError(f"{flag} {text!r}: give comma-separated finite numbers, e.g. 1,0.7,0")
    return values


THIRDS = ("coarse", "middle", "fine")  # --layers: the style layers in thirds


def parse_layers(spec):
    """--layers: grid, one of THIRDS, or (A, B) for a range A:B of style layers (checked
    against the generator's style layers once it is loaded)."""
    if spec == "grid" or spec in THIRDS:
        return spec
    try:
        start, stop = (int(part) for part in spec.split(":"))
    except ValueError:
        raise UserError(f"--layers {spec!r}: give grid, coarse, middle, fine or a range A:B of "
                        f"style layers") from None
    return start, stop


# ---------------------------------------------------------------------------------------------
# Output names: the settings that change the output, written as the flags take them
# ---------------------------------------------------------------------------------------------
def default_name(args):
    """The output's file name when --out gives none: the subcommand and the settings that
    change what it shows, e.g. mix-rows1-5-cols6-10-grid.png."""
    parts = [args.command, *NAMED_SETTINGS[args.command](args)]
    if args.noise_seed and args.command != "samples":  # samples draw their noise from --seed
        parts.append(f"noise{args.noise_seed}")
    return short_stem("-".join(parts)) + DEFAULT_SUFFIXES.get(args.command, ".png")


def mix_settings(args):
    split = (f"crossover{args.crossover}" if args.crossover is not None
             else layers_label(args.layers))
    if args.pair:
        return [f"pair{args.pair[0]}-{args.pair[1]}", split]
    files = [f"{side}w{','.join(Path(f).stem for f in getattr(args, f'{side}_w'))}"
             for side in ("row", "col") if getattr(args, f"{side}_w")]
    return [f"rows{seeds_label(args.rows)}", f"cols{seeds_label(args.cols)}", *files, split]


NAMED_SETTINGS = {
    "mix": mix_settings,
    "truncation": lambda args: [f"seeds{seeds_label(args.seeds)}",
                                "psi" + ",".join(map(number_label, args.psis))],
    "noise": lambda args: [f"seed{args.seed}", f"draws{args.draws}", f"show{args.show}"],
    "levels": lambda args: [f"seed{args.seed}", f"others{seeds_label(args.others)}"],
    "interpolate": lambda args: [f"seeds{seeds_label(args.seeds)}", f"steps{args.steps}"],
    "samples": lambda args: [f"n{args.n}", f"seed{args.seed}", f"psi{number_label(args.psi)}"],
}
DEFAULT_SUFFIXES = {"interpolate": ".gif", "samples": ".npy"}  # the others: .png figures


def seeds_label(seeds):
    """[1, 2, 3, 4, 5, 9] -> "1-5,9": the seeds as the flags take them, runs as ranges."""
    runs = []
    for seed in seeds:
        if runs and seed == runs[-1][1] + 1:
            runs[-1][1] = seed
        else:
            runs.append([seed, seed])
    return ",".join(str(first) if first == last else f"{first}-{last}" for first, last in runs)


def layers_label(spec):
    layers = parse_layers(spec)
    return layers if isinstance(layers, str) else f"layers{layers[0]}to{layers[1]}"  # not ":"


def number_label(x):
    """1.0 -> "1", 0.7 -> "0.7": as short as it stays exact (6 digits would make 0.7000001
    and 0.7 one name)."""
    short = f"{x:g}"
    return short if float(short) == x else repr(x)


MAX_STEM = 100  # characters: readable, and far from the 255 bytes a file name may have


def short_stem(stem):
    """A stem too long (a hundred seeds) cut, "-etc-" and a digest of the whole in place of
    the rest: different settings still give different names."""
    if len(stem) <= MAX_STEM:
        return stem
    tail = "-etc-" + hashlib.sha256(stem.encode()).hexdigest()[:8]
    return stem[:MAX_STEM - len(tail)] + tail


def placed(name, outdir):
    """Where an output named on the command line goes: a bare name (no folder in it) into
    --outdir; a path with a folder (./mix.png, figures/mix.png, /tmp/x) as given."""
    bare = name.rstrip(os.sep)
    if bare in ("", ".", "..") or os.sep in bare:
        return Path(name)
    return Path(outdir) / bare


# ---------------------------------------------------------------------------------------------
# Checks, all before the generator is loaded
# ---------------------------------------------------------------------------------------------
OUT_SUFFIXES = {"interpolate": (".gif",), "samples": (".npy",)}  # the others: figures
FIGURE_SUFFIXES = (".png", ".jpg", ".pdf", ".svg")
BYTES_PER_IMAGE = 256 * 256 * 3 * 4  # float32 at the largest size train.py makes
MAX_CELLS = 400  # images in one figure (20 x 20): more would take minutes and show nothing
MAX_FRAMES = 5000  # frames of the interpolation GIF
SEED_FLAGS = {"mix": ("rows", "cols"), "truncation": ("seeds",), "levels": ("others",),
              "interpolate": ("seeds",)}


def check_args(args):
    """Every number, seed list and the output path, before the generator is loaded. The seed
    flags become lists of seeds, and args.target the path to write; returns its folder."""
    check_numbers(args)
    read_lists(args)
    check_figure_size(args)
    for name in seed_flags(args):
        setattr(args, name, expanded(getattr(args, name)))  # counted: now small enough
    return check_output(args)


def check_numbers(args):
    for name in ("draws", "show", "steps", "n"):
        if getattr(args, name, 1) < 1:
            raise UserError(f"--{name} must be at least 1, got {getattr(args, name)}")
    for name in ("noise_seed", "seed"):
        if getattr(args, name, 0) < 0:
            raise UserError(f"--{name.replace('_', '-')} must be 0 or more, "
                            f"got {getattr(args, name)}")
    for seed in getattr(args, "pair", None) or ():
        if seed < 0:
            raise UserError(f"--pair: seeds are 0 or more, got {seed}")
    if not np.isfinite(getattr(args, "psi", 0.0)):
        raise UserError(f"--psi must be a finite number, got {args.psi}")
    if args.command in ("samples", "noise"):
        count = args.draws if args.command == "noise" else args.n * (3 if args.mixed else 1)
        check_fits_in_memory(count * BYTES_PER_IMAGE, f"{count:,} images", "--n or --draws")


def seed_flags(args):
    """The seed flags the subcommand reads: mix --pair reads neither --rows nor --cols."""
    if args.command == "mix" and args.pair:
        return ()
    return SEED_FLAGS.get(args.command, ())


def read_lists(args):
    """The seed flags as ranges (parse_seeds), --psis as numbers, --layers checked: each text
    read once."""
    for name in seed_flags(args):
        setattr(args, name, parse_seeds(getattr(args, name), f"--{name}"))
    if args.command == "truncation":
        args.psis = parse_floats(args.psis, "--psis")
    if args.command == "mix" and args.crossover is None:
        parse_layers(args.layers)
    if args.command == "mix":
        if args.pair and (args.row_w or args.col_w):
            raise UserError("--pair takes two seeds; --row-w and --col-w add rows and columns "
                            "to the grid: give one or the other")
        args.row_w_arrays = [read_w(path, f"--row-w {path}") for path in args.row_w or ()]
        args.col_w_arrays = [read_w(path, f"--col-w {path}") for path in args.col_w or ()]


MAX_W_BYTES = 1_000_000  # a w of project.py: a few kilobytes


def read_w(path, flag):
    """A w that project.py wrote: a .npy of finite numbers, [n_style, w_dim], read without
    pickles; its shape is checked against the generator once it is loaded."""
    mode = file_mode(Path(path), flag.split(" ")[0], UserError)
    if mode is None or not stat.S_ISREG(mode) or os.path.getsize(path) > MAX_W_BYTES:
        raise UserError(f"{flag}: give a .npy file that project.py wrote")
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError):
        raise UserError(f"{flag}: not a .npy array of numbers") from None
    if not isinstance(array, np.ndarray):  # an .npz archive
        raise UserError(f"{flag}: an .npz archive; give the .npy that project.py wrote")
    with np.errstate(over="ignore"):
        w = array.astype(np.float32) if array.dtype.kind == "f" else array
    if w.ndim != 2 or w.dtype.kind != "f" or not np.isfinite(w).all():
        raise UserError(f"{flag}: a w is a [style slots, w size] array of finite float32 "
                        f"numbers, this is {array.dtype} {array.shape}")
    return w


def check_figure_size(args):
    """How many images a figure or GIF would hold, against MAX_CELLS and MAX_FRAMES, counted
    on the seed ranges before any is expanded."""
    cells = {"mix": lambda: 3 if args.pair else
             (seed_count(args.rows) + len(args.row_w or ())) *
             (seed_count(args.cols) + len(args.col_w or ())),
             "truncation": lambda: seed_count(args.seeds) * len(args.psis),
             "noise": lambda: args.show,
             "levels": lambda: seed_count(args.others) * 10}  # up to 8 style slots
    if args.command in cells and cells[args.command]() > MAX_CELLS:
        raise UserError(f"{args.command}: {cells[args.command]():,} images in one figure, more "
                        f"than {MAX_CELLS}: give fewer seeds or draws to show")
    if args.command == "interpolate":
        if seed_count(args.seeds) < 2:
            raise UserError("--seeds needs at least two seeds to walk between")
        if seed_count(args.seeds) * args.steps > MAX_FRAMES:
            raise UserError(f"interpolate: --seeds x --steps makes more than {MAX_FRAMES} "
                            f"frames: give fewer")


def output_of(args):
    """(the flag that names the output, its path, whether it is a folder), once the output
    flags given together are checked."""
    png, mixed = getattr(args, "png", None), getattr(args, "mixed", None)
    for name, value in (("outdir", args.outdir), ("png", png), ("mixed", mixed)):
        if value == "":
            raise UserError(f"--{name}: give a folder")
    if args.command == "samples":
        if args.out and (png or mixed):
            raise UserError(f"--out and --{'png' if png else 'mixed'}: give one of them "
                            f"(--out: one .npy file)")
        if mixed and png:
            raise UserError("--png and --mixed: give one of them (--mixed writes three .npy "
                            "files)")
    if png:  # the folders of --png and --mixed are taken as given, as the FID tools take them
        return "--png", Path(png), True
    if mixed:
        return "--mixed", Path(mixed), True
    if args.out:
        return "--out", placed(args.out, args.outdir), False
    return "--outdir", Path(args.outdir) / default_name(args), False


def check_output(args):
    """The output path: its suffix, a folder this user can make or write, no training run's
    folder; args.target is set to it, and its folder returned."""
    flag, out, into_folder = output_of(args)
    folder = out if into_folder else out.parent
    named = folder if flag == "--outdir" else out  # what the message shows: what the flag gave
    suffixes = OUT_SUFFIXES.get(args.command, FIGURE_SUFFIXES)
    if flag == "--out" and out.suffix.lower() not in suffixes:
        raise UserError(f"--out {out}: {args.command} writes {' or '.join(suffixes)} files")
    if flag == "--png" and (out.is_file() or out.is_dir() and any(out.iterdir())):
        raise UserError(f"--png {out}: not a new or empty folder; give another, so that no "
                        f"images are mixed with or written over others")
    if not can_create_in(folder):
        raise UserError(f"{flag} {named}: cannot write there; give a writable path")
    if flag == "--out" and out.is_dir():
        raise UserError(f"--out {out} is a folder: give a file name")
    run = run_folder_of(folder)
    if run:
        raise UserError(f"{flag} {named}: {run} is a training run's folder, whose files are the "
                        f"run's own; write the figure elsewhere")
    args.target = out
    return folder


def check_outdir(outdir):
    """--outdir of project.py and explore.py: a folder this user can write, or make, outside
    every training run (whose folder holds the run's own files)."""
    outdir = Path(outdir)
    if outdir.exists() and not outdir.is_dir() or not can_create_in(outdir):
        raise UserError(f"--outdir {outdir}: cannot write there; give a writable folder")
    if run_folder_of(outdir):
        raise UserError(f"--outdir {outdir} is inside a training run's folder: give another")
    return outdir


def run_folder_of(folder):
    """The training run's folder that holds `folder`, or None: `folder` itself if it holds a
    run's lock file or checkpoints/ folder, or any folder above it with checkpoints in its
    checkpoints/."""
    folder = folder.resolve()  # a link into a run is the run
    try:
        if (folder / LOCK_NAME).is_file() or (folder / CHECKPOINT_DIR).is_dir():
            return folder
    except OSError:
        pass
    for place in (folder, *folder.parents):
        try:
            if list_checkpoints(place / CHECKPOINT_DIR, with_weights=False):
                return place
        except OSError:  # a place this user cannot look into holds no run of theirs
            continue
    return None


def wrote_line(written, target):
    if Path(written) == Path(target):
        return f"Wrote {written}"
    return f"Wrote {written} ({target} was taken; nothing is written over)"


def main(argv=None):
    args = parse_args(argv)
    try:
        folder = inspected(check_args, args)
        explorer = Explorer(load_generator(args.checkpoint, args.model), args.noise_seed)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        folder.mkdir(parents=True, exist_ok=True)
        result = COMMANDS[args.command](explorer, args)
    except UserError as error:  # a layer range or crossover out of this generator's range
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"error: cannot write {error.filename or args.target} ({error.strerror})",
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # the output is written atomically: nothing half-written stays
        return 130
    print(wrote_line(result, args.target))
    return 0


if __name__ == "__main__":
    sys.exit(main())
