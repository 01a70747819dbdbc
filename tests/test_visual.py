"""visual: the mixing grid's cells, the GIF's frame order, the loss plot."""
import numpy as np
import pytest
from PIL import Image

import callbacks
import stylegan
import visual
from conftest import mix, tiny_gan


@pytest.mark.parametrize("coarse_size, k", [(14, 2), (7, 1)])  # rows: 7x7, 14x14 | 7x7
def test_the_grid_has_sources_on_the_edges_and_mixes_inside(tmp_path, coarse_size, k):
    tiny_model = tiny_gan(grid_coarse_size=coarse_size, seed=5, grid_noise="fixed")
    grid = callbacks.MixingGrid(tmp_path, tiny_model.config, n=3, zoom=1)
    grid = np.asarray(Image.open(grid.save(tiny_model, 4)))
    assert (tmp_path / "4.png").is_file()
    cell = 28 + visual.GAP
    assert grid.shape == (4 * cell - visual.GAP,) * 2

    def at(row, col):
        return grid[row * cell: row * cell + 28, col * cell: col * cell + 28]

    z1, z2, noise = visual.grid_inputs(8, n=3, seed=5)
    noise = np.repeat(noise, 3, axis=0)
    alone = lambda z: visual.to_uint8(
        stylegan.generate(tiny_model.g, stylegan.repeat_z(z, 3), noise))
    mixes = lambda j: visual.to_uint8(mix(tiny_model, z1, z2[[j] * 3], k, noise))
    assert np.all(at(0, 0) == visual.GAP_GREY)
    for j in range(3):
        np.testing.assert_allclose(at(0, j + 1), 255 - alone(z2)[j], atol=1)  # inverted
        np.testing.assert_allclose(at(j + 1, 0), 255 - alone(z1)[j], atol=1)
        for i in range(3):
            np.testing.assert_allclose(at(i + 1, j + 1), mixes(j)[i], atol=1)


def test_the_grid_is_the_same_for_the_same_seed_and_weights(tiny_model):
    z1, z2, noise = visual.grid_inputs(8, n=2, seed=3)
    again = visual.grid_inputs(8, n=2, seed=3)
    for a, b in zip((z1, z2, noise), again):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(visual.mixing_grid(tiny_model.g, z1, z2, noise, 1),
                                  visual.mixing_grid(tiny_model.g, *again, 1))


def test_the_crossover_splits_coarse_from_fine_by_layer_size(tiny_model):
    assert stylegan.style_sizes(tiny_model.g) == [7, 14, 28]
    assert stylegan.crossover_at(tiny_model.g, 7) == 1  # the tutorial's grid: 7x7 | 14, 28
    assert stylegan.crossover_at(tiny_model.g, 14) == 2  # 7, 14 | 28
    assert stylegan.crossover_at(tiny_model.g) == 2  # the default (28): one layer left
    assert stylegan.crossover_at(tiny_model.g, 3) == 1  # and one for the rows
    styled = tiny_gan(styled_to_image=True)
    assert stylegan.style_sizes(styled.g) == [7, 14, 28, 28]
    assert stylegan.crossover_at(styled.g, 14) == 2  # 7, 14 | 28, to_image
    assert stylegan.crossover_at(styled.g) == 3  # 7, 14, 28 | to_image


def test_the_gif_plays_the_grids_in_epoch_order(tmp_path):
    for epoch in (10, 2, 1):
        Image.fromarray(np.full((8, 8), epoch * 20, np.uint8)).save(tmp_path / f"{epoch}.png")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "losses.png")
    gif = Image.open(visual.make_gif(tmp_path))
    shades = []
    for frame in range(gif.n_frames):
        gif.seek(frame)
        shades.append(int(np.asarray(gif.convert("L"))[0, 0]))
    assert shades == [20, 40, 200]


def test_the_loss_plot_is_drawn_from_the_history(tmp_path):
    csv_path = tmp_path / "history.csv"
    csv_path.write_text("epoch,d_loss,g_loss\n1,0.7,0.9\n2,0.6,1.1\n")
    path = visual.plot_losses(csv_path, tmp_path / "losses.png")
    assert Image.open(path).size[0] > 100
