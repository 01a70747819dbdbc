"""Explore a trained generator: the tutorial's pictures of what each part of StyleGAN does.

    python generate.py --model visual/stylegan/generator.keras mix --rows 1,2,3 --cols 4,5,6
    python generate.py --checkpoint visual/stylegan/checkpoints/ckpt-0010.json truncation

Subcommands (each writes one file, --out, and is the same for the same seeds):
  mix          a grid: row seeds give the chosen style layers (--layers coarse|middle|fine|A:B,
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

A seed s always means the z drawn by numpy.random.default_rng(s), on every style layer.
"""

import utils  # noqa: E402

utils.quiet_tensorflow_start()  # before Keras loads it: TensorFlow's start-up chatter kept back

import sys  # noqa: E402
import textwrap  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

import stylegan  # noqa: E402
from checkpoints import (CHECKPOINT_DIR, LOCK_NAME, add_generator_source,  # noqa: E402
                         list_checkpoints, load_generator, write_atomically)
from stylegan import COARSE_SIZE, crossover_at  # noqa: E402
from utils import (ArgumentParser, UserError, can_create_in, check_fits_in_memory,  # noqa: E402
                   inspected, squeeze_channel, to_uint8)


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
        """coarse / middle / fine (the style layers in thirds, low resolution first) or A:B."""
        thirds = dict(zip(("coarse", "middle", "fine"),
                          np.array_split(np.arange(self.n_style), 3)))
        if spec in thirds:
            layers = thirds[spec]
        else:
            try:
                start, stop = (int(part) for part in spec.split(":"))
            except ValueError:
                raise UserError(f"--layers {spec!r}: give coarse, middle, fine or a range A:B "
                                f"of style layers") from None
            if not 0 <= start < stop <= self.n_style:
                raise UserError(f"--layers {spec}: the generator has style layers 0.."
                                f"{self.n_style - 1}, so A:B needs 0 <= A < B <= "
                                f"{self.n_style}")
            layers = np.arange(start, stop)
        if len(layers) == 0:
            raise UserError(f"--layers {spec}: no style layer of {self.n_style} is {spec}")
        return layers

    def crossover_layers(self, k):
        if not 1 <= k < self.n_style:
            raise UserError(f"--crossover {k} is outside [1, {self.n_style}): the rows give "
                            f"layers 0..k-1 and the columns the rest, so both need one")
        return np.arange(k)

    def mix(self, w_rows, w_cols, layers):
        """w_cols with the given style slots replaced by w_rows' (pairwise)."""
        from_rows = np.isin(np.arange(self.n_style), layers)
        return np.asarray(stylegan.mix_styles(w_rows, w_cols, from_rows))


# ---------------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------------
def save_figure(cells, path, title, row_labels=(), col_labels=(), xlabel="", ylabel="",
                titles=None):
    """cells [rows, cols, h, w] (values in [-1, 1], NaN for an empty cell) as a labelled grid;
    col_labels title the top row, or titles[r][c] every cell."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, cols = cells.shape[:2]
    fig, axes = plt.subplots(rows, cols, figsize=(1.1 * cols + 1, 1.35 * rows + 1.2),
                             squeeze=False)
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
    write_atomically(path, lambda tmp: fig.savefig(tmp, dpi=100))
    plt.close(fig)
    return path


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
        return save_figure(squeeze_channel(row)[None], args.out,
                           f"Style mixing: {which} from seed {a}, the rest from seed {b}",
                           col_labels=[f"source A (seed {a})", "mix", f"source B (seed {b})"])
    rows, cols = parse_seeds(args.rows, "--rows"), parse_seeds(args.cols, "--cols")
    w_rows, w_cols = ex.w(ex.z(rows)), ex.w(ex.z(cols))
    mixes = ex.from_w(ex.mix(np.repeat(w_rows, len(cols), 0), np.tile(w_cols, (len(rows), 1, 1)),
                             layers))
    col_sources = squeeze_channel(ex.from_w(w_cols))
    image_shape = col_sources.shape[1:]
    cells = np.full((len(rows) + 1, len(cols) + 1, *image_shape), -1.0, np.float32)
    cells[0, 1:] = col_sources
    cells[1:, 0] = squeeze_channel(ex.from_w(w_rows))
    cells[1:, 1:] = squeeze_channel(mixes).reshape(len(rows), len(cols), *image_shape)
    return save_figure(cells, args.out, f"Style mixing: {which} from the row seed, the rest "
                                        f"from the column seed",
                       row_labels=["", *(f"seed {s}" for s in rows)],
                       col_labels=["", *(f"seed {s}" for s in cols)],
                       xlabel="column source", ylabel="row source")


def cmd_truncation(ex, args):
    seeds, psis = parse_seeds(args.seeds, "--seeds"), parse_floats(args.psis, "--psis")
    w = ex.w(ex.z(seeds))
    truncated = lambda psi: np.asarray(ex.mapping.truncate(w, psi))
    cells = np.stack([squeeze_channel(ex.from_w(truncated(psi))) for psi in psis],
                     axis=1)
    return save_figure(cells, args.out, "Truncation: w = w_avg + psi (w - w_avg)",
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
    pad = lambda names: [*names, *[""] * (width - len(names))]
    return save_figure(cells, args.out, f"Noise inputs (B), seed {args.seed}\ntop: noise draws"
                                        f" and the pixel std over {args.draws} (white = most "
                                        f"change); bottom: noise off in one layer",
                       titles=[pad(top_titles), pad(labels)],
                       row_labels=["noise draws", "noise off"])


def noise_layers(synthesis):
    """(name, AddNoise layer) from the constant to the last style block."""
    found = [("const", synthesis.get_layer("const_noise"))]
    for layer in synthesis.layers:
        if isinstance(layer, stylegan.Style):
            found.append((layer.name, layer.add_noise))
    return found


def cmd_levels(ex, args):
    others = parse_seeds(args.others, "--others")
    w_base = ex.w(ex.z([args.seed]))
    w_others = ex.w(ex.z(others))
    rows = []
    for w_other in w_others:
        row = [ex.from_w(w_base)[0]]
        for layer in range(ex.n_style):
            row.append(ex.from_w(ex.mix(w_other[None], w_base, [layer]))[0])
        row.append(ex.from_w(w_other[None])[0])
        rows.append(squeeze_channel(np.stack(row)))
    return save_figure(np.stack(rows), args.out,
                       f"What each style layer controls: seed {args.seed} with one layer's w "
                       f"from another seed",
                       row_labels=[f"other: seed {s}" for s in others],
                       col_labels=[f"base {args.seed}", *(f"layer {i} swapped"
                                                          for i in range(ex.n_style)), "other"])


def cmd_interpolate(ex, args):
    seeds = parse_seeds(args.seeds, "--seeds")
    if len(seeds) < 2:
        raise UserError("--seeds needs at least two seeds to walk between")
    z = ex.z(seeds)
    w = ex.w(z)
    t = np.linspace(0, 1, args.steps, endpoint=False, dtype=np.float32)[:, None]
    frames = []
    for a, b in zip(range(len(seeds)), [*range(1, len(seeds)), 0]):
        z_walk = (1 - t) * z[a] + t * z[b]
        w_walk = (1 - t)[..., None] * w[a] + t[..., None] * w[b]
        left, right = to_uint8(ex.from_w(ex.w(z_walk))), to_uint8(ex.from_w(w_walk))
        frames += [_labelled_frame(l, r, f"{seeds[a]}->{seeds[b]}") for l, r in zip(left, right)]
    return write_atomically(args.out, lambda tmp: frames[0].save(
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
        out = Path(args.mixed)
        z1, z2 = (rng.standard_normal((args.n, ex.latent_dim), "float32") for _ in range(2))
        noise = ex.draw_noise(args.n, rng)
        k = crossover_at(ex.generator, args.coarse_size)
        for name, z in (("coarse", stylegan.repeat_z(z1, ex.n_style)),
                        ("fine", stylegan.repeat_z(z2, ex.n_style)),
                        ("mixed", stylegan.mix_styles(
                            z1, z2, stylegan.slots_before(k, ex.n_style)))):
            save_npy(out / f"{name}.npy", stylegan.generate(ex.generator, z, noise, args.psi))
        return out
    z = stylegan.repeat_z(rng.standard_normal((args.n, ex.latent_dim), "float32"), ex.n_style)
    noise = ex.draw_noise(args.n, rng)
    images = stylegan.generate(ex.generator, z, noise, args.psi)
    return save_pngs(images, args.png) if args.png else save_npy(args.out, images)


def save_pngs(images, folder):
    """One PNG per image, 000000.png on (what Inception-FID tools such as pytorch-fid read)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(to_uint8(images)):
        write_atomically(folder / f"{i:06d}.png", Image.fromarray(image).save)
    return folder


def save_npy(path, array):
    return write_atomically(path, lambda tmp: np.save(tmp, array))


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------
def parse_seeds(text, flag):
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise UserError(f"{flag} {text!r}: give comma-separated whole numbers, e.g. 1,2,3") \
            from None
    if not seeds or min(seeds) < 0:
        raise UserError(f"{flag} {text!r}: give at least one seed, each 0 or more")
    return seeds


def parse_floats(text, flag):
    try:
        values = [float(s) for s in text.split(",") if s.strip()]
    except ValueError:
        values = []
    if not values or not np.isfinite(values).all():
        raise UserError(f"{flag} {text!r}: give comma-separated finite numbers, e.g. 1,0.7,0")
    return values


def parse_args(argv=None):
    p = ArgumentParser(description=__doc__.split("\n")[0])
    add_generator_source(p)
    p.add_argument("--noise-seed", type=int, default=0, help="seed of the fixed noise image")
    sub = p.add_subparsers(dest="command", required=True)

    mix = sub.add_parser("mix", help="style-mixing grid or pair")
    mix.add_argument("--rows", default="1,2,3,4,5", help="row seeds (give their layers)")
    mix.add_argument("--cols", default="6,7,8,9,10", help="column seeds (give the rest)")
    mix.add_argument("--layers", default="coarse", help="coarse, middle, fine or A:B")
    mix.add_argument("--crossover", type=int, help="rows give layers < K (instead of --layers)")
    mix.add_argument("--pair", type=int, nargs=2, metavar=("A", "B"),
                     help="seed A's layers into seed B, shown side by side")
    mix.add_argument("--out", default="mix.png")

    trunc = sub.add_parser("truncation", help="seeds x truncation psi")
    trunc.add_argument("--seeds", default="1,2,3,4,5")
    trunc.add_argument("--psis", default="1,0.7,0.5,0,-0.5,-1")
    trunc.add_argument("--out", default="truncation.png")

    noise = sub.add_parser("noise", help="the effect of the noise inputs")
    noise.add_argument("--seed", type=int, default=1)
    noise.add_argument("--draws", type=int, default=100, help="noise draws for the std map")
    noise.add_argument("--show", type=int, default=5, help="noise draws shown")
    noise.add_argument("--out", default="noise.png")

    levels = sub.add_parser("levels", help="swap one style layer's w at a time")
    levels.add_argument("--seed", type=int, default=1)
    levels.add_argument("--others", default="2,3,4")
    levels.add_argument("--out", default="levels.png")

    walk = sub.add_parser("interpolate", help="GIF of a walk between seeds, in z and in w")
    walk.add_argument("--seeds", default="1,2,3,4")
    walk.add_argument("--steps", type=int, default=24, help="frames between two seeds")
    walk.add_argument("--out", default="interpolate.gif")

    samples = sub.add_parser("samples", help="N generated images as .npy, or PNG files (--png)")
    samples.add_argument("--n", type=int, default=1000)
    samples.add_argument("--psi", type=float, default=1.0)
    samples.add_argument("--seed", type=int, default=0)
    samples.add_argument("--mixed", metavar="DIR", help="write coarse/fine/mixed.npy here")
    samples.add_argument("--coarse-size", type=int, default=COARSE_SIZE,
                         help="--mixed: style layers up to this size (px) come from the coarse "
                              f"source (default {COARSE_SIZE}; the tutorial's grid: 7)")
    samples.add_argument("--out", help="the .npy file (default samples.npy)")
    samples.add_argument("--png", metavar="DIR", help="write the images as DIR/000000.png, ... "
                         "instead (a new or empty folder)")
    return p.parse_args(argv)


COMMANDS = {"mix": cmd_mix, "truncation": cmd_truncation, "noise": cmd_noise,
            "levels": cmd_levels, "interpolate": cmd_interpolate, "samples": cmd_samples}


OUT_SUFFIXES = {"interpolate": (".gif",), "samples": (".npy",)}  # the others: figures
FIGURE_SUFFIXES = (".png", ".jpg", ".pdf", ".svg")
BYTES_PER_IMAGE = 256 * 256 * 3 * 4  # float32 at the largest size train.py makes


def output_of(args):
    """(the flag that names the output, its path, whether it is a folder), once the output
    flags given together are checked."""
    png, mixed = getattr(args, "png", None), getattr(args, "mixed", None)
    for name, value in (("png", png), ("mixed", mixed)):
        if value == "":
            raise UserError(f"--{name}: give a folder")
    if args.command == "samples":
        if args.out and (png or mixed):
            raise UserError(f"--out and --{'png' if png else 'mixed'}: give one of them "
                            f"(--out: one .npy file)")
        if mixed and png:
            raise UserError("--png and --mixed: give one of them (--mixed writes three .npy "
                            "files)")
        args.out = args.out or "samples.npy"
    if png:
        return "--png", Path(png), True
    if mixed:
        return "--mixed", Path(mixed), True
    return "--out", Path(args.out), False


MAX_CELLS = 400  # images in one figure (20 x 20): more would take minutes and show nothing
MAX_FRAMES = 5000  # frames of the interpolation GIF


def check_figure_size(args):
    """How many images a figure or GIF would hold, against MAX_CELLS and MAX_FRAMES."""
    count = lambda text, flag: len(parse_seeds(text, flag))
    cells = {"mix": lambda: 3 if args.pair else
             count(args.rows, "--rows") * count(args.cols, "--cols"),
             "truncation": lambda: count(args.seeds, "--seeds") * len(parse_floats(args.psis,
                                                                                  "--psis")),
             "noise": lambda: args.show,
             "levels": lambda: count(args.others, "--others") * 10}  # up to 8 style slots
    if args.command in cells and cells[args.command]() > MAX_CELLS:
        raise UserError(f"{args.command}: {cells[args.command]():,} images in one figure, more "
                        f"than {MAX_CELLS}: give fewer seeds or draws to show")
    if args.command == "interpolate" and count(args.seeds, "--seeds") * args.steps > MAX_FRAMES:
        raise UserError(f"interpolate: --seeds x --steps makes more than {MAX_FRAMES} frames: "
                        f"give fewer")


def check_args(args):
    """Every number and the output path, before the generator is loaded."""
    for name in ("draws", "show", "steps", "n"):
        if getattr(args, name, 1) < 1:
            raise UserError(f"--{name} must be at least 1, got {getattr(args, name)}")
    for name in ("noise_seed", "seed"):
        if getattr(args, name, 0) < 0:
            raise UserError(f"--{name.replace('_', '-')} must be 0 or more, "
                            f"got {getattr(args, name)}")
    if not np.isfinite(getattr(args, "psi", 0.0)):
        raise UserError(f"--psi must be a finite number, got {args.psi}")
    if args.command in ("samples", "noise"):
        count = args.draws if args.command == "noise" else args.n * (3 if args.mixed else 1)
        check_fits_in_memory(count * BYTES_PER_IMAGE, f"{count:,} images", "--n or --draws")
    check_figure_size(args)
    for seed in args.pair or () if args.command == "mix" else ():
        if seed < 0:
            raise UserError(f"--pair: seeds are 0 or more, got {seed}")
    flag, out, into_folder = output_of(args)
    suffixes = OUT_SUFFIXES.get(args.command, FIGURE_SUFFIXES)
    if not into_folder and out.suffix.lower() not in suffixes:
        raise UserError(f"--out {out}: {args.command} writes {' or '.join(suffixes)} files")
    if flag == "--png" and (out.is_file() or out.is_dir() and any(out.iterdir())):
        raise UserError(f"--png {out}: not a new or empty folder; give another, so that no "
                        f"images are mixed with or written over others")
    folder = out if into_folder else out.parent
    if not can_create_in(folder):
        raise UserError(f"{flag} {out}: cannot write there; give a writable path")
    if not into_folder and out.is_dir():
        raise UserError(f"--out {out} is a folder: give a file name")
    run = run_folder_of(folder)
    if run:
        raise UserError(f"{flag} {out}: {run} is a training run's folder, whose files are the "
                        f"run's own; write the figure elsewhere")
    return folder


def run_folder_of(folder):
    """The training run's folder that holds `folder`, or None: `folder` itself if it holds a
    run's lock file or checkpoints/ folder, or any folder above it with checkpoints in its
    checkpoints/."""
    folder = folder.absolute()
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
    except UserError as error:  # a seed list, layer range or crossover out of range
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"error: cannot write {error.filename or args.out} ({error.strerror})",
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # the output is written atomically: nothing half-written stays
        return 130
    print(f"Wrote {result}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
