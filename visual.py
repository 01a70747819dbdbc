"""Pictures: the style-mixing grid saved at each epoch end, the GIF of those grids, the loss plot.

The grid is the tutorial's figure (训练出来的效果如下): the header row shows the column sources
(z2), the header column the row sources (z1), drawn inverted (dark digit on white; colour images
as they are, behind a wider gap) so they stand apart from the mixes; cell (i, j) takes z1_i on the
coarse style layers and z2_j on the fine ones. Seeds and noise are fixed, so the grids of
successive epochs show the same mixes.
"""
import csv
import re
from pathlib import Path

import numpy as np
from PIL import Image

import stylegan
from checkpoints import write_atomically
from utils import to_uint8

GIF_NAME = "generating.gif"
GAP = 2  # pixels between cells
GAP_GREY = 128


def grid_inputs(latent_dim, n=12, seed=0, image_size=28, zero_noise=False):
    """The grid's fixed draws: row sources z1 [n, latent], column sources z2, one noise image
    (all zeros with zero_noise, as the tutorial's grid)."""
    rng = np.random.default_rng(seed)
    z1 = rng.standard_normal((n, latent_dim), dtype=np.float32)
    z2 = rng.standard_normal((n, latent_dim), dtype=np.float32)
    noise = rng.standard_normal((1, image_size, image_size), dtype=np.float32)
    return z1, z2, np.zeros_like(noise) if zero_noise else noise


def mixing_grid(generator, z1, z2, noise, crossover):
    """The grid for z1 (rows) and z2 (columns), the rows giving the style slots before
    `crossover` (stylegan.crossover_at), as one uint8 image of (n+1) x (n+1) cells, GAP pixels
    apart (3 * GAP after the header for colour images): see the module docstring."""
    n_style = generator.input[0].shape[1]
    n = len(z1)
    rows = np.repeat(z1, n, axis=0)  # cell (i, j) at index i * n + j
    cols = np.tile(z2, (n, 1))
    z = stylegan.mix_styles(rows, cols, stylegan.slots_before(crossover, n_style))
    mixes = _generate(generator, z, noise)
    sources = _generate(generator, stylegan.repeat_z(np.concatenate([z1, z2]), n_style), noise)
    grey = sources.ndim == 3
    if grey:
        sources = 255 - sources  # inverted
    header_gap = GAP if grey else 3 * GAP
    cell = mixes.shape[1] + GAP
    side = (n + 1) * cell - GAP + header_gap - GAP
    canvas = np.full((side, side, *mixes.shape[3:]), GAP_GREY, np.uint8)
    at = lambda k: 0 if k == 0 else k * cell + header_gap - GAP  # pixel offset of cell k
    for k in range(n):
        _paste(canvas, sources[n + k], at(0), at(k + 1))  # column sources: z2
        _paste(canvas, sources[k], at(k + 1), at(0))  # row sources: z1
        for j in range(n):
            _paste(canvas, mixes[k * n + j], at(k + 1), at(j + 1))
    return canvas


def _generate(generator, z, noise):
    noise = np.repeat(noise, len(z), axis=0)
    images = stylegan.generate(generator, z, noise)
    return to_uint8(images)


def _paste(canvas, image, top, left):
    canvas[top: top + image.shape[0], left: left + image.shape[1]] = image


def save_png(array, path, zoom=1):
    image = Image.fromarray(array)
    if zoom != 1:
        image = image.resize((image.width * zoom, image.height * zoom), Image.NEAREST)
    return write_atomically(path, image.save)


def epoch_grids(out_dir):
    """The `<epoch>.png` grids in out_dir, in epoch order (2.png before 10.png)."""
    grids = [p for p in Path(out_dir).glob("*.png") if re.fullmatch(r"\d+", p.stem)]
    return sorted(grids, key=lambda p: int(p.stem))


def make_gif(out_dir, frame_ms=400):
    """`generating.gif` from the epoch grids, in epoch order; None when there are no grids."""
    grids = epoch_grids(out_dir)
    if not grids:
        return None
    frames = [Image.open(p) for p in grids]
    return write_atomically(Path(out_dir) / GIF_NAME, lambda tmp: frames[0].save(
        tmp, save_all=True, append_images=frames[1:], duration=frame_ms, loop=0))


def plot_losses(history_csv, path):
    """Discriminator and generator loss per epoch, from train.py's history.csv."""
    from matplotlib.figure import Figure  # a figure of its own: no pyplot, no backend to set

    with open(history_csv) as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return None
    epochs = [int(r["epoch"]) for r in rows]
    fig = Figure(figsize=(5, 3.2))
    ax = fig.subplots()
    for key in ("d_loss", "g_loss"):
        ax.plot(epochs, [float(r[key]) for r in rows], marker="o", label=key)
    ax.set(xlabel="epoch", ylabel="mean loss over the epoch", title="StyleGAN training losses")
    ax.legend()
    fig.tight_layout()
    write_atomically(path, fig.savefig)
    return path
