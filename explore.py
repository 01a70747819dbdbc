"""Mix styles by hand: a page in the browser on a trained generator, offline.

    python explore.py                                   # the shipped generator
    python explore.py --model visual/stylegan/generator.keras --port 7861

Pick a row source and a column source (a seed, a random draw, or a click on the grid), move the
split across the style slots (7x7, 14x14, 28x28, to_image) or tick single slots (the `levels`
figure, live), change the truncation psi and the noise; the page shows both sources, their mix,
the whole mixing grid for these settings, and what `evaluate.py` measured for this model. "Save"
writes the view as a PNG named after its seeds and settings into --outdir (default out/), never
over another file and never into a training run's folder. Everything is drawn by generate.py's
Explorer, so a view is the same image as generate.py makes for the same settings.

Needs the explorer's extra (Gradio): pip install -r requirements-explorer.txt
"""

import utils  # noqa: E402

utils.quiet_tensorflow_start()  # before Keras loads it: TensorFlow's start-up chatter kept back

import contextlib  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

import generate  # noqa: E402
import stylegan  # noqa: E402
from checkpoints import load_generator, write_new  # noqa: E402
from utils import (OUT_DIR, SHIPPED_GENERATOR, ArgumentParser, UserError, first_line,  # noqa: E402
                   to_uint8)

ZOOM = 8  # a 28-pixel digit is shown 224 pixels wide
GRID_ROWS, GRID_COLS = list(range(1, 6)), list(range(6, 11))  # generate.py mix's seeds
MAX_SEED = 2 ** 63 - 1  # numpy's default_rng takes any whole number from 0; a page field stops here
NOISE_MODES = ("fixed", "fresh", "off")  # one noise image for every view, a new draw each, zeros


# ---------------------------------------------------------------------------------------------
# What the page shows, without the page: the sources, their mix and the grid for one view
# ---------------------------------------------------------------------------------------------
class Mixer:
    """A generator and the pictures of one view: row source, column source, their mix (the
    row's z on `row_slots`, the column's on the rest), after truncation psi, under a noise
    mode, with the noise turned off in the layers named in `quiet`."""

    def __init__(self, generator, noise_seed=0):
        self.ex = generate.Explorer(generator, noise_seed)
        self.slots = slot_names(generator)
        # the noise inputs by where they act: the constant, then each style block's size
        self.noise_layers = dict(zip(["const", *self.slots],
                                     (layer for _, layer in
                                      generate.noise_layers(self.ex.synthesis))))

    def w(self, seeds, psi):
        w = self.ex.w(self.ex.z(seeds))
        return w if psi == 1 else np.asarray(self.ex.mapping.truncate(w, psi))

    def noise(self, mode, n):
        if mode == "fixed":
            return np.repeat(self.ex.noise, n, axis=0)
        if mode == "off":
            return np.zeros((n, self.ex.size, self.ex.size), np.float32)
        return self.ex.draw_noise(n, np.random.default_rng())

    def draw(self, w, mode, quiet):
        with noise_off([self.noise_layers[name] for name in quiet]):
            return to_uint8(self.ex.from_w(w, self.noise(mode, len(w))))

    def view(self, row, col, row_slots, psi=1.0, mode="fixed", quiet=()):
        """(row source, mix, column source) as uint8 images ([28, 28] for MNIST)."""
        w_row, w_col = self.w([row], psi), self.w([col], psi)
        both = np.concatenate([w_row, self.ex.mix(w_row, w_col, row_slots), w_col])
        return tuple(self.draw(both, mode, quiet))

    def grid(self, row_slots, psi=1.0, mode="fixed", quiet=(), rows=GRID_ROWS, cols=GRID_COLS):
        """generate.py mix's grid, unlabelled: the column sources along the top, the row sources
        down the left, each mix where they cross; uint8 [(rows + 1) * 28, (cols + 1) * 28]."""
        w_rows, w_cols = self.w(rows, psi), self.w(cols, psi)
        mixes = self.ex.mix(np.repeat(w_rows, len(cols), 0), np.tile(w_cols, (len(rows), 1, 1)),
                            row_slots)
        top, left = self.draw(w_cols, mode, quiet), self.draw(w_rows, mode, quiet)
        cells = np.zeros((len(rows) + 1, len(cols) + 1, *top.shape[1:]), np.uint8)
        cells[0, 1:], cells[1:, 0] = top, left
        cells[1:, 1:] = self.draw(mixes, mode, quiet).reshape(len(rows), len(cols),
                                                              *top.shape[1:])
        return np.concatenate([np.concatenate(list(row), axis=1) for row in cells], axis=0)


def slot_names(generator):
    """The style slots by what they style: 7x7, 14x14, 28x28, and to_image for the last slot
    of a generator with a style on its output layer."""
    sizes = stylegan.style_sizes(generator)
    names = [f"{size}x{size}" for size in sizes]
    if any(layer.name == "to_image_mod" for layer in generator.get_layer("synthesis").layers):
        names[-1] = "to_image"
    return names


@contextlib.contextmanager
def noise_off(layers):
    """The noise turned off in these AddNoise layers for the duration (their scales zeroed,
    then put back): what generate.py's noise figure does layer by layer."""
    saved = [layer.noise_scale.numpy() for layer in layers]
    try:
        for layer in layers:
            layer.noise_scale.assign(np.zeros_like(layer.noise_scale))
        yield
    finally:
        for layer, scale in zip(layers, saved):
            layer.noise_scale.assign(scale)


def enlarged(image, zoom=ZOOM):
    """An image zoom times larger, each pixel a zoom x zoom square (no smoothing)."""
    return image.repeat(zoom, axis=0).repeat(zoom, axis=1)


def check_seed(value, name):
    """A seed as the page gives it (a float or None) -> int, or UserError saying what to give."""
    if value is None or not np.isfinite(value) or value != int(value) or \
            not 0 <= value <= MAX_SEED:
        raise UserError(f"{name}: give a whole number from 0 to {MAX_SEED:,}, got {value}")
    return int(value)


# ---------------------------------------------------------------------------------------------
# What evaluate.py measured for the model
# ---------------------------------------------------------------------------------------------
def eval_json_of(model_path):
    """Where evaluate.py keeps its numbers for a generator.keras: beside it (models/ for the
    shipped one)."""
    model = Path(model_path)
    return model.with_name(model.stem + ".eval.json")


def measured_facts(model_path, row_slots, n_style):
    """Markdown: the model's FID and, for the split shown, the share of mixes that keep the
    row's class and the stroke width's r with each source; what evaluate.py measured."""
    path = eval_json_of(model_path)
    try:
        result = json.loads(path.read_text())
    except (OSError, ValueError):
        return (f"No measurements for this model: `python evaluate.py --model {model_path}` "
                f"writes them to `{path}`.")
    lines = [f"**Measured by evaluate.py** ({result['mixing']['pairs']:,} pairs, "
             f"`{path.name}`): FID {result['fid']:.2f}."]
    k = len(row_slots)
    if list(row_slots) == list(range(k)) and 0 < k < n_style:
        at = {m["crossover"]: m for m in result.get("mixing_by_crossover", [])}.get(k)
        if at and at["follows_coarse"] is not None:
            lines.append(f"At this split (rows give the first {k} slots): the mix is the row's "
                         f"digit in {100 * at['follows_coarse']:.0f}% of pairs, the column's in "
                         f"{100 * at['follows_fine']:.0f}%; its stroke width follows the column "
                         f"at r {at['width_r_fine']:.2f}, the row at r "
                         f"{at['width_r_coarse']:.2f}.")
    else:
        lines.append("(Figures per split are measured for splits that give the rows the first "
                     "slots.)")
    return "\n\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Saving a view
# ---------------------------------------------------------------------------------------------
def view_name(row, col, slots, row_slots, psi, mode, quiet):
    """explore-row3-col8-rows7x7,14x14,28x28-psi1-noisefixed.png: the settings of the view."""
    from_row = ",".join(slots[i] for i in row_slots) or "none"
    parts = [f"explore-row{row}", f"col{col}", f"rows{from_row}",
             f"psi{generate.number_label(psi)}", f"noise{mode}"]
    if quiet:
        parts.append("quiet" + ",".join(quiet))
    return generate.short_stem("-".join(parts)) + ".png"


def save_view(images, outdir, name):
    """The row source, the mix and the column source side by side, enlarged, as a PNG in
    `outdir` (made if missing; never a training run's folder), under the next free name."""
    outdir = Path(outdir)
    run = generate.run_folder_of(outdir)
    if run:
        raise UserError(f"{outdir} is inside the training run {run}: the run's files are its "
                        f"own; start explore.py with another --outdir")
    outdir.mkdir(parents=True, exist_ok=True)
    strip = enlarged(np.concatenate(images, axis=1))
    return write_new(outdir / name, Image.fromarray(strip).save)


# ---------------------------------------------------------------------------------------------
# The page
# ---------------------------------------------------------------------------------------------
class Models:
    """The generators the page has loaded, by path (loaded once: a Keras model is not copied
    into each browser session's state)."""

    def __init__(self):
        self.loaded = {}

    def get(self, path):
        path = str(path)
        if path not in self.loaded:
            self.loaded[path] = Mixer(load_generator(model=path))
        return self.loaded[path]


def build_page(models, model_path, outdir):
    import gradio as gr

    mixer = models.get(model_path)
    n_style = len(mixer.slots)
    split = n_style - 1  # the grid's split in the default recipe: the rows give every block

    def render(path, row, col, row_slot_names, psi, mode, quiet):
        try:
            mixer = models.get(path)
            row, col = check_seed(row, "row seed"), check_seed(col, "column seed")
            row_slots = [mixer.slots.index(name) for name in row_slot_names]
            images = mixer.view(row, col, row_slots, psi, mode, quiet)
            grid = mixer.grid(row_slots, psi, mode, quiet)
        except (UserError, ValueError) as error:
            return [gr.skip()] * 6 + [f"**{error}**"]
        gives = (f"Row (seed {row}) gives: {', '.join(row_slot_names) or 'nothing'}. "
                 f"Column (seed {col}) gives: "
                 f"{', '.join(s for s in mixer.slots if s not in row_slot_names) or 'nothing'}.")
        return [*(enlarged(image) for image in images), enlarged(grid, ZOOM // 2), gives,
                measured_facts(path, row_slots, n_style), ""]

    def save(path, row, col, row_slot_names, psi, mode, quiet):
        try:
            mixer = models.get(path)
            row, col = check_seed(row, "row seed"), check_seed(col, "column seed")
            row_slots = [mixer.slots.index(name) for name in row_slot_names]
            images = mixer.view(row, col, row_slots, psi, mode, quiet)
            name = view_name(row, col, mixer.slots, row_slots, psi, mode, quiet)
            return f"Saved `{save_view(images, outdir, name)}`."
        except (UserError, OSError) as error:
            return f"**{error}**"

    def pick_from_grid(row, col, event: gr.SelectData):
        """A click on the grid: the clicked mix's row and column seeds become the sources."""
        x, y = event.index
        cell = mixer.ex.size * ZOOM // 2
        r, c = y // cell - 1, x // cell - 1
        return (GRID_ROWS[r] if 0 <= r < len(GRID_ROWS) else row,
                GRID_COLS[c] if 0 <= c < len(GRID_COLS) else col)

    def load(path):
        try:
            loaded = models.get(path)
        except UserError as error:
            return gr.skip(), gr.skip(), f"**{error}**"
        if loaded.slots != mixer.slots:
            return gr.skip(), gr.skip(), (f"**{path} has style slots {loaded.slots}; this page "
                                          f"was built for {mixer.slots}: start explore.py "
                                          f"--model {path}**")
        return path, gr.skip(), f"Loaded `{path}`."

    with gr.Blocks(title="StyleGAN style mixing") as page:
        gr.Markdown("# Style mixing by hand\nThe row source gives the style slots ticked below "
                    "(the coarse styles: the digit); the column source gives the rest (the "
                    "fine styles: the hand).")
        model = gr.State(str(model_path))
        with gr.Row():
            row = gr.Number(3, label="row source: seed", precision=None, elem_id="row-seed")
            row_dice = gr.Button("random row", elem_id="row-random")
            col = gr.Number(8, label="column source: seed", precision=None, elem_id="col-seed")
            col_dice = gr.Button("random column", elem_id="col-random")
        with gr.Row():
            row_image = gr.Image(label="row source", format="png", elem_id="row-image",
                                 interactive=False)
            mix_image = gr.Image(label="mix", format="png", elem_id="mix-image",
                                 interactive=False)
            col_image = gr.Image(label="column source", format="png", elem_id="col-image",
                                 interactive=False)
        gives = gr.Markdown(elem_id="gives")
        status = gr.Markdown(elem_id="status")
        with gr.Row():
            crossover = gr.Slider(0, n_style, split, step=1, elem_id="split",
                                  label="split: the rows give the slots before it")
            row_slots = gr.CheckboxGroup(mixer.slots, value=mixer.slots[:split],
                                         label="slots from the row source", elem_id="row-slots")
        with gr.Row():
            psi = gr.Slider(-1, 1.5, 1, step=0.05, label="truncation psi (1: off)",
                            elem_id="psi")
            mode = gr.Radio(list(NOISE_MODES), value="fixed", label="noise", elem_id="noise")
            quiet = gr.CheckboxGroup(list(mixer.noise_layers), value=[], elem_id="quiet",
                                     label="noise off in")
        facts = gr.Markdown(elem_id="facts")
        with gr.Row():
            grid = gr.Image(label=f"the grid for these settings: row seeds {GRID_ROWS[0]}-"
                                  f"{GRID_ROWS[-1]}, column seeds {GRID_COLS[0]}-"
                                  f"{GRID_COLS[-1]} (click a mix to take its sources)",
                            format="png", elem_id="grid", interactive=False)
        with gr.Row():
            save_button = gr.Button("Save this view", elem_id="save")
            model_box = gr.Textbox(shown_path(model_path), label="generator file",
                                   elem_id="model")
            load_button = gr.Button("Load", elem_id="load")

        settings = [model, row, col, row_slots, psi, mode, quiet]
        outputs = [row_image, mix_image, col_image, grid, gives, facts, status]
        for control in (row, col, row_slots, psi, mode, quiet, model):
            control.change(render, settings, outputs)
        crossover.change(lambda k: mixer.slots[:int(k)], crossover, row_slots)
        random_seed = lambda: int(np.random.default_rng().integers(0, 2 ** 31))
        row_dice.click(random_seed, None, row)
        col_dice.click(random_seed, None, col)
        grid.select(pick_from_grid, [row, col], [row, col])
        save_button.click(save, settings, status)
        load_button.click(load, model_box, [model, model_box, status])
        page.load(render, settings, outputs)
    return page


def shown_path(path):
    """A path as a person typed it: relative to the working folder where it lies inside it."""
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


def parse_args(argv=None):
    p = ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default=SHIPPED_GENERATOR,
                   help="a generator.keras (default: the shipped models/generator.keras)")
    p.add_argument("--port", type=int, default=7860, help="the page's port on this machine")
    p.add_argument("--host", default="127.0.0.1",
                   help="the address to listen on (0.0.0.0: every machine that reaches this one)")
    p.add_argument("--outdir", default=OUT_DIR, help="where Save writes (default out/)")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # offline: no calls home
    try:
        if not 1 <= args.port <= 65535:
            raise UserError(f"--port {args.port}: give a port from 1 to 65535")
        if importlib.util.find_spec("gradio") is None:
            raise UserError("the explorer needs Gradio: pip install -r requirements-explorer.txt")
        if generate.run_folder_of(Path(args.outdir)):
            raise UserError(f"--outdir {args.outdir} is inside a training run's folder: give "
                            f"another")
        models = Models()
        page = build_page(models, args.model, args.outdir)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"The explorer is at http://{args.host}:{args.port} (Ctrl-C stops it).", flush=True)
    try:
        page.launch(server_name=args.host, server_port=args.port, quiet=True)
    except OSError as error:  # the port taken, or an address this machine does not have
        print(f"error: cannot listen on {args.host}:{args.port} ({first_line(error)}): give "
              f"another --port or --host", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
