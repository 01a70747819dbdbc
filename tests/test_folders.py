"""Folders of colour images at 32x32: the pipeline, both losses, MirroredStrategy, colour grids."""
import subprocess
import sys

import keras
import numpy as np
import pytest
from PIL import Image

import folder_ds
import losses
import paper_layers
import stylegan
import train as train_cli
import visual
from config import Config
from conftest import ROOT, run_on_two_logical_cpus

SMALL = dict(image_size=32, latent_dim=8, w_dim=16, filters=8)


def small_gan(**settings):
    """A compiled StyleGAN for 32x32 colour images."""
    keras.utils.set_random_seed(0)
    return stylegan.make_gan(Config(**SMALL, **settings))


@pytest.fixture
def image_folder(tmp_path):
    """24 PNG and JPEG images 48 wide, 32 high, in two subfolders, plus a corrupt file."""
    rng = np.random.default_rng(0)
    for i in range(24):
        pixels = np.zeros((32, 48, 3), np.uint8)
        pixels[:, :8] = pixels[:, 40:] = (255, 0, 0)  # red edges: cut by the centre crop
        pixels[:, 8:40] = rng.integers(0, 60, 3) + (0, 0, 190)  # a blue square in the middle
        sub = tmp_path / "faces" / ("a" if i % 2 else "b")
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(sub / f"{i}.{'png' if i % 3 else 'jpg'}", quality=95)
    (tmp_path / "faces" / "broken.png").write_bytes(b"not an image at all")
    # Pillow opens a TIFF whatever its name; TensorFlow, which trains on it, does not
    Image.fromarray(pixels).save(tmp_path / "faces" / "tiff-inside.png", format="TIFF")
    (tmp_path / "faces" / "notes.txt").write_text("not an image either")
    return tmp_path / "faces"


def test_the_folder_is_read_recursively_and_the_corrupt_file_skipped(image_folder):
    readable, unreadable = folder_ds.find_images(image_folder)
    assert len(readable) == 24
    assert [p.name for p in unreadable] == ["broken.png", "tiff-inside.png"]


def test_images_are_centre_cropped_resized_and_scaled(image_folder):
    paths = folder_ds.load_folder(image_folder, verbose=False)
    dataset, steps = folder_ds.make_folder_dataset(paths, 32, batch_size=8, seed=0)
    batches = list(dataset)
    assert steps == 3
    assert len(batches) == 3 and all(b.shape == (8, 32, 32, 3) for b in batches)
    images = np.concatenate(batches)
    assert images.min() >= -1 and images.max() <= 1
    # no red edge left (it would be +1): the crop kept the blue middle square (JPEG blurs its rim)
    assert np.all(images[..., 0] < 0) and np.all(images[..., 2] > 0)


def test_an_empty_or_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(folder_ds.DataError, match="is not a folder"):
        folder_ds.find_images(tmp_path / "missing")
    with pytest.raises(folder_ds.DataError, match="holds no readable"):
        folder_ds.find_images(tmp_path)


def test_the_generator_grows_one_style_block_per_doubling():
    assert paper_layers.architecture(28) == {"n_style": 3, "filters": [64] * 3,
                                         "upsample": [False, True, True],
                                         "const_channels": 128}
    arch = paper_layers.architecture(64, filters=32)  # doubling at each halving, up to 256
    assert arch == {"n_style": 5, "filters": [256, 256, 128, 64, 32],
                    "upsample": [False, True, True, True, True], "const_channels": 256}
    assert paper_layers.architecture(64, filters=32, styled_to_image=True)["n_style"] == 6
    model = small_gan()
    assert model.n_style == 4  # 4, 8, 16, 32
    assert model.g.output.shape == (None, 32, 32, 3)
    assert model.d(np.zeros((2, 32, 32, 3), "float32")).shape == (2, 1)
    with pytest.raises(ValueError, match="image size 48 is not supported"):
        paper_layers.architecture(48)


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["nonsaturating", "wgan-gp"])
def test_one_training_step_for_each_loss(image_folder, loss):
    model = small_gan(loss=loss, step="same_fakes", shared_optimizer=False)
    g_before, d_before = model.g.get_weights(), model.d.get_weights()
    dataset, _ = folder_ds.make_folder_dataset(folder_ds.load_folder(image_folder), 32, 8)
    history = model.fit(dataset, epochs=1, steps_per_epoch=1, verbose=0, shuffle=False)
    assert np.isfinite(history.history["d_loss"][0]) and np.isfinite(history.history["g_loss"][0])
    assert model.d_optimizer.iterations.numpy() == model.g_optimizer.iterations.numpy() == 1
    assert any(not np.allclose(a, b) for a, b in zip(g_before, model.g.get_weights()))
    assert any(not np.allclose(a, b) for a, b in zip(d_before, model.d.get_weights()))


def test_the_gradient_penalty_measures_the_critic_gradient_norm():
    model = small_gan(loss="wgan-gp")
    critic = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten(),
                               keras.layers.Dense(1)])
    kernel = np.full((32 * 32 * 3, 1), 3.0 / np.sqrt(32 * 32 * 3), "float32")  # norm 3
    critic.set_weights([kernel, np.zeros(1, "float32")])
    model.d = critic
    real, fake = np.zeros((4, 32, 32, 3), "float32"), np.ones((4, 32, 32, 3), "float32")
    assert float(losses.gradient_penalty(model, real, fake)) == pytest.approx((3 - 1) ** 2,
                                                                              rel=1e-4)


def test_the_mixing_grid_is_in_colour():
    model = small_gan()
    z1, z2, noise = visual.grid_inputs(8, n=2, seed=0, image_size=32)
    grid = visual.mixing_grid(model.g, z1, z2, noise, stylegan.crossover_at(model.g))
    side = 3 * 32 + visual.GAP + 3 * visual.GAP  # 3 cells, a gap, a wider gap after the header
    assert grid.shape == (side, side, 3)
    assert np.all(grid[32: 32 + 3 * visual.GAP] == visual.GAP_GREY)


@pytest.mark.slow
def test_train_py_on_a_folder_writes_colour_grids(image_folder, tmp_path, capsys):
    out = tmp_path / "run"
    assert train_cli.main(["--dataset", str(image_folder), "--image-size", "32", "--filters",
                           "8", "--latent-dim", "8", "--batch-size",
                           "8", "--epochs", "1", "--loss", "wgan-gp", "--out", str(out)]) == 0
    assert "Skipped 2 unreadable image file(s)" in capsys.readouterr().out
    assert Image.open(out / "1.png").mode == "RGB"
    assert (out / "generating.gif").is_file() and (out / "generator.keras").is_file()


@pytest.mark.slow
def test_mirrored_strategy_on_two_logical_cpus(image_folder, tmp_path):
    run = run_on_two_logical_cpus(
        "import train\nsys.exit(train.main(sys.argv[2:]))\n", "--dataset", image_folder,
        "--image-size", "32", "--filters", "8", "--latent-dim", "8",
        "--batch-size", "8", "--epochs", "1", "--strategy", "mirrored", "--out",
        tmp_path / "run")
    assert run.returncode == 0, run.stderr[-3000:]
    assert "2 replicas" in run.stdout
    assert (tmp_path / "run" / "checkpoints" / "ckpt-0001.json").is_file()


@pytest.mark.parametrize("command, out", [
    (["mix", "--rows", "1,2", "--cols", "3"], "f.png"), (["noise", "--draws", "4"], "f.png"),
    (["interpolate", "--seeds", "1,2", "--steps", "2"], "f.gif"), (["samples", "--n", "3"], "f.npy"),
])
def test_generate_py_works_on_a_colour_generator(tmp_path, command, out):
    import generate

    path = tmp_path / "generator.keras"
    small_gan().g.save(path)
    assert generate.main(["--model", str(path), *command, "--out", str(tmp_path / out)]) == 0
    if out.endswith(".npy"):
        assert np.load(tmp_path / out).shape == (3, 32, 32, 3)
    else:
        assert Image.open(tmp_path / out).mode in ("RGB", "RGBA", "P")


@pytest.mark.slow
def test_each_replica_draws_its_own_share_of_z(tmp_path):
    script = (
        "import stylegan, config\n"
        "strategy = tf.distribute.MirroredStrategy(['/cpu:0', '/cpu:1'])\n"
        "with strategy.scope():\n"
        "    model = stylegan.make_gan(config.Config(latent_dim=8, w_dim=16, filters=8))\n"
        "draw = tf.function(lambda: strategy.run(lambda: model.draw_inputs(4)[0]))\n"
        "a, b = [np.asarray(t) for t in draw().values]\n"
        "print('same' if np.allclose(a, b) else 'different', a.shape)\n")
    run = run_on_two_logical_cpus(script)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.split("\n")[-2] == "different (4, 3, 8)"


PIPELINE_PEAK_RSS = """
import resource, sys
sys.path.insert(0, sys.argv[1])
import folder_ds
paths = folder_ds.load_folder(sys.argv[2])
dataset, steps = folder_ds.make_folder_dataset(paths, 128, 16, epochs=1)
for batch in dataset:  # one whole epoch: every image decoded once
    pass
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


@pytest.mark.slow
def test_the_folder_pipeline_s_memory_does_not_grow_with_the_folder(tmp_path):
    rng = np.random.default_rng(0)
    peaks = {}
    for n in (96, 576):  # 128x128 float32: a cached pipeline would hold 96 MiB more
        folder = tmp_path / str(n)
        folder.mkdir()
        for i in range(n):
            pixels = rng.integers(0, 256, (160, 160, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / f"{i}.png")
        run = subprocess.run([sys.executable, "-c", PIPELINE_PEAK_RSS, str(ROOT), str(folder)],
                             capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr
        peaks[n] = float(run.stdout.split()[-1])
    assert peaks[576] - peaks[96] < 32, peaks  # MiB
