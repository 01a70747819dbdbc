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
import threading  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

import generate  # noqa: E402
import project  # noqa: E402
import stylegan  # noqa: E402
from checkpoints import load_generator, write_new  # noqa: E402
from utils import (OUT_DIR, SHIPPED_GENERATOR, ArgumentParser, UserError,  # noqa: E402
                   first_line, inspected, to_uint8)

ZOOM = 8  # a 28-pixel digit is shown 224 pixels wide
GRID_ROWS, GRID_COLS = list(range(1, 6)), list(range(6, 11))  # generate.py mix's seeds
MAX_SEED = 2 ** 53 - 1  # the largest whole number a page's number field (JavaScript) holds exactly
PSI_RANGE = (-1.0, 1.5)
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
        self.lock = threading.Lock()  # noise_off changes the shared layers: one drawing at a time
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
        with self.lock, noise_off([self.noise_layers[name] for name in quiet]):
            return to_uint8(self.ex.from_w(w, self.noise(mode, len(w))))

    def w_of(self, source, psi):
        """w [1, n_style, w_dim] of a source: a seed, or a w that project.py found (an array)."""
        if isinstance(source, (int, np.integer)):
            return self.w([source], psi)
        w = np.asarray(source, np.float32)[None]
        return w if psi == 1 else np.asarray(self.ex.mapping.truncate(w, psi))

    def view(self, row, col, row_slots, psi=1.0, mode="fixed", quiet=()):
        """(row source, mix, column source) as uint8 images ([28, 28] for MNIST); each source
        a seed or a w."""
        w_row, w_col = self.w_of(row, psi), self.w_of(col, psi)
        both = np.concatenate([w_row, self.ex.mix(w_row, w_col, row_slots), w_col])
        return tuple(self.draw(both, mode, quiet))

    def grid(self, row_slots, psi=1.0, mode="fixed", quiet=(), rows=GRID_ROWS, cols=GRID_COLS):
        """generate.py mix's grid, unlabelled: the column sources along the top, the row sources
        down the left, each mix where they cross; uint8 [(rows + 1) * 28, (cols + 1) * 28]."""
        w_rows, w_cols = self.w(rows, psi), self.w(cols, psi)
        mixes = self.ex.mix_grid(w_rows, w_cols, row_slots)
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


def check_psi(value):
    if value is None or not np.isfinite(value) or not PSI_RANGE[0] <= value <= PSI_RANGE[1]:
        raise UserError(f"truncation psi: give a number from {PSI_RANGE[0]:g} to "
                        f"{PSI_RANGE[1]:g}, got {value}")
    return float(value)


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
    if not path.is_file():
        return (f"No measurements for this model: `python evaluate.py --model {model_path}` "
                f"writes them to `{path}`.")
    try:
        result = json.loads(path.read_text())
        lines = [f"**Measured by evaluate.py** (`{path.name}`, at psi {result['truncation_psi']:g}"
                 f"): FID {result['fid']:.2f}."]
        k = len(row_slots)
        at = {m["crossover"]: m for m in result["mixing_by_crossover"]}.get(k)
        if k in (0, n_style):
            lines.append("At this split one source gives every slot: no mix.")
        elif list(row_slots) != list(range(k)) or not at or at["follows_coarse"] is None:
            lines.append("Figures per split are measured for splits that give the rows the "
                         "first slots.")
        else:
            lines.append(f"At this split (rows give the first {k} slots), over "
                         f"{at['pairs_of_two_classes']:,} pairs of two different digits: the "
                         f"mix is the row's digit in {100 * at['follows_coarse']:.0f}%, the "
                         f"column's in {100 * at['follows_fine']:.0f}%; over all "
                         f"{at['pairs']:,} pairs its stroke width follows the column at r "
                         f"{at['width_r_fine']:.2f}, the row at r {at['width_r_coarse']:.2f}.")
    except (OSError, ValueError, KeyError, TypeError) as error:
        return f"Cannot read `{path}` ({type(error).__name__}: {error}): run evaluate.py again."
    return "\n\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Saving a view
# ---------------------------------------------------------------------------------------------
def view_name(row, col, slots, row_slots, psi, mode, quiet):
    """explore-row3-col8-rows7x7,14x14,28x28-psi1-noisefixed.png: the settings of the view (a
    drawing's projection as a source is named `drawn`)."""
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
    into each visitor's page state)."""

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

    def sources(row, col, drawn_row, drawn_col):
        """The row and column sources (a seed, or a drawing's w) and how to name them."""
        row = drawn_row if drawn_row is not None else check_seed(row, "row seed")
        col = drawn_col if drawn_col is not None else check_seed(col, "column seed")
        name = lambda source: "drawn" if isinstance(source, list) else source
        return row, col, name(row), name(col)

    def render(path, row, col, row_slot_names, psi, mode, quiet, drawn_row, drawn_col):
        try:
            mixer = models.get(path)
            row, col, row_name, col_name = sources(row, col, drawn_row, drawn_col)
            psi = check_psi(psi)
            row_slots = [i for i, name in enumerate(mixer.slots) if name in row_slot_names]
            images = mixer.view(row, col, row_slots, psi, mode, quiet)
            grid = mixer.grid(row_slots, psi, mode, quiet)
        except (UserError, ValueError) as error:
            return [gr.skip()] * 7 + [f"**{error}**"]
        said = lambda name: "your drawing" if name == "drawn" else f"seed {name}"
        gives = (f"Row ({said(row_name)}) gives: "
                 f"{', '.join(mixer.slots[i] for i in row_slots) or 'nothing'}. "
                 f"Column ({said(col_name)}) gives: "
                 f"{', '.join(s for s in mixer.slots if s not in row_slot_names) or 'nothing'}.")
        name = view_name(row_name, col_name, mixer.slots, row_slots, psi, mode, quiet)
        return [*(enlarged(image) for image in images), enlarged(grid, ZOOM // 2), gives,
                measured_facts(path, row_slots, n_style), (images, name), ""]

    def save(shown):
        """The view on the page (also its fresh noise), as drawn for it."""
        if not shown:
            return "**Nothing to save yet.**"
        images, name = shown
        try:
            return f"Saved `{save_view(images, outdir, name)}`."
        except (UserError, OSError) as error:
            return f"**Cannot save into {outdir}: {getattr(error, 'strerror', None) or error}**"

    def pick_from_grid(row, col, event: gr.SelectData):
        """A click on the grid: the clicked mix's row and column seeds become the sources."""
        x, y = event.index
        cell = mixer.ex.size * ZOOM // 2
        r, c = y // cell - 1, x // cell - 1
        return (GRID_ROWS[r] if 0 <= r < len(GRID_ROWS) else row,
                GRID_COLS[c] if 0 <= c < len(GRID_COLS) else col)

    def project_drawing(path, sketch):
        """The w of the digit drawn on the canvas (project.py's projection), as a list."""
        composite = (sketch or {}).get("composite")
        if composite is None:
            return gr.skip(), "**Draw a digit on the canvas first.**"
        digit = project.digit_of(composite, mixer.ex.size)
        if (digit > 0).sum() < 5:
            return gr.skip(), "**Draw a digit on the canvas first.**"
        drawing_mixer = models.get(path)
        with drawing_mixer.lock:  # the noise layers must be whole while it projects
            w, losses = project.Projector(drawing_mixer.ex.generator)(digit[None])
        return w[0].tolist(), f"Projected your drawing (pixels' squared error {losses[-1]:.4f})."

    def load(path):
        try:
            if not path.strip():
                raise UserError("give the path of a generator.keras")
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
        with gr.Row():
            sketch = gr.Sketchpad(label="draw a digit (a source, once projected)", type="pil",
                                  elem_id="sketch", canvas_size=(280, 280),
                                  brush=gr.Brush(default_size=18, colors=["#000000"],
                                                 color_mode="fixed"))
            with gr.Column():
                use_row = gr.Button("Use my drawing as the row", elem_id="use-row")
                use_col = gr.Button("Use my drawing as the column", elem_id="use-col")
                back = gr.Button("Back to the seeds", elem_id="back")
                drawing_status = gr.Markdown(elem_id="drawing-status")
        drawn_row, drawn_col = gr.State(None), gr.State(None)  # a projected w, as a list
        gives = gr.Markdown(elem_id="gives")
        status = gr.Markdown(elem_id="status")
        with gr.Row():
            crossover = gr.Slider(0, n_style, split, step=1, elem_id="split",
                                  label="split: the rows give the slots before it")
            row_slots = gr.CheckboxGroup(mixer.slots, value=mixer.slots[:split],
                                         label="slots from the row source", elem_id="row-slots")
        with gr.Row():
            psi = gr.Slider(*PSI_RANGE, 1, step=0.05, label="truncation psi (1: off)",
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

        settings = [model, row, col, row_slots, psi, mode, quiet, drawn_row, drawn_col]
        shown = gr.State(None)  # (the three images on the page, their file name): what Save writes
        outputs = [row_image, mix_image, col_image, grid, gives, facts, shown, status]
        for control in (row_slots, psi, mode, quiet, model):
            control.change(render, settings, outputs)
        for seed, drawn in ((row, drawn_row), (col, drawn_col)):  # a seed replaces a drawing
            seed.change(lambda: None, None, drawn).then(render, settings, outputs)
        for button, drawn in ((use_row, drawn_row), (use_col, drawn_col)):
            button.click(project_drawing, [model, sketch], [drawn, drawing_status]).then(
                render, settings, outputs)
        back.click(lambda: (None, None), None, [drawn_row, drawn_col]).then(
            render, settings, outputs)
        crossover.change(lambda k: mixer.slots[:int(np.clip(k or 0, 0, n_style))], crossover,
                         row_slots)
        random_seed = lambda: int(np.random.default_rng().integers(0, 2 ** 31))
        row_dice.click(random_seed, None, row)
        col_dice.click(random_seed, None, col)
        grid.select(pick_from_grid, [row, col], [row, col])
        save_button.click(save, shown, status)
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
        page = inspected(make_page, args)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        page.launch(server_name=args.host, server_port=args.port, quiet=True,
                    prevent_thread_lock=True)
    except OSError:  # the port taken, or an address this machine does not have
        print(f"error: cannot listen on {args.host}:{args.port}: give another --port or "
              f"--host", file=sys.stderr)
        return 2
    print(f"The explorer is at http://{args.host}:{args.port} (Ctrl-C stops it).", flush=True)
    page.block_thread()
    return 0


def make_page(args):
    """Every flag checked, then the page built on the loaded generator."""
    if not 1 <= args.port <= 65535:
        raise UserError(f"--port {args.port}: give a port from 1 to 65535")
    if not args.model:
        raise UserError("--model: give the path of a generator.keras")
    outdir = generate.check_outdir(args.outdir)
    if importlib.util.find_spec("gradio") is None:
        raise UserError("the explorer needs Gradio: pip install -r requirements-explorer.txt")
    try:
        importlib.import_module("gradio")  # a broken install fails here, not half-way through
    except Exception as error:  # an install that imports badly raises many kinds
        raise UserError(f"Gradio does not import ({first_line(error)}): pip install -r "
                        f"requirements-explorer.txt again") from None
    return build_page(Models(), args.model, outdir)


if __name__ == "__main__":
    sys.exit(main())
