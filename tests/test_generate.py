"""generate.py: every subcommand on a tiny generator, determinism, one-line errors, seed
ranges, the output folder and names (never one written over); the SavedModel export."""
import json
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

import generate
import checkpoints
import stylegan
import utils


@pytest.fixture
def model_file(tiny_model, tmp_path):
    tiny_model.mapping.w_avg.assign(np.full(16, 0.5, "float32"))
    path = tmp_path / "generator.keras"
    tiny_model.g.save(path)
    return path


def run(model_file, *args):
    return generate.main(["--model", str(model_file), *map(str, args)])


@pytest.mark.parametrize("command", [
    ["mix", "--rows", "1,2", "--cols", "3,4,5"],
    ["mix", "--pair", "1", "2", "--layers", "fine"],
    ["mix", "--crossover", "2"],
    ["truncation", "--seeds", "1,2", "--psis", "1,0,-1"],
    ["noise", "--draws", "8", "--show", "3"],
    ["levels", "--seed", "1", "--others", "2"],
])
def test_each_figure_is_written(model_file, tmp_path, command):
    out = tmp_path / "figure.png"
    assert run(model_file, *command, "--out", out) == 0
    assert Image.open(out).size[0] > 200


def test_the_interpolation_gif_walks_all_seeds_and_back(model_file, tmp_path):
    out = tmp_path / "walk.gif"
    assert run(model_file, "interpolate", "--seeds", "1,2,3", "--steps", 4, "--out", out) == 0
    assert Image.open(out).n_frames == 3 * 4  # 1->2, 2->3, 3->1


def test_samples_are_deterministic_tanh_images(model_file, tmp_path):
    a, b, c = tmp_path / "a.npy", tmp_path / "b.npy", tmp_path / "c.npy"
    assert run(model_file, "samples", "--n", 6, "--seed", 3, "--out", a) == 0
    assert run(model_file, "samples", "--n", 6, "--seed", 3, "--out", b) == 0
    assert run(model_file, "samples", "--n", 6, "--seed", 4, "--out", c) == 0
    samples = np.load(a)
    assert samples.shape == (6, 28, 28, 1) and samples.dtype == np.float32
    assert np.abs(samples).max() <= 1
    np.testing.assert_array_equal(samples, np.load(b))
    assert not np.array_equal(samples, np.load(c))


def test_png_samples_are_the_npy_samples_one_file_each_into_a_new_folder(model_file, tmp_path,
                                                                         capsys):
    assert run(model_file, "samples", "--n", 3, "--seed", 3, "--out", tmp_path / "s.npy") == 0
    assert run(model_file, "samples", "--n", 3, "--seed", 3, "--png", tmp_path / "png") == 0
    files = sorted((tmp_path / "png").iterdir())
    assert [f.name for f in files] == ["000000.png", "000001.png", "000002.png"]
    pngs = np.stack([np.asarray(Image.open(f)) for f in files])
    np.testing.assert_array_equal(pngs, utils.to_uint8(np.load(tmp_path / "s.npy")))
    capsys.readouterr()
    assert run(model_file, "samples", "--n", 3, "--png", tmp_path / "png") == 2  # not again
    assert "not a new or empty folder" in capsys.readouterr().err
    assert sorted((tmp_path / "png").iterdir()) == files


def test_mixed_samples_are_aligned_coarse_fine_and_mix(model_file, tmp_path):
    assert run(model_file, "samples", "--n", 5, "--mixed", tmp_path / "mixed") == 0
    arrays = {name: np.load(tmp_path / "mixed" / f"{name}.npy")
              for name in ("coarse", "fine", "mixed")}
    assert all(a.shape == (5, 28, 28, 1) for a in arrays.values())
    assert not np.array_equal(arrays["mixed"], arrays["coarse"])


def test_levels_swap_exactly_one_layer(model_file):
    ex = generate.Explorer(checkpoints.load_generator(model=model_file))
    w_base, w_other = ex.w(ex.z([1])), ex.w(ex.z([2]))
    swapped = ex.mix(w_other, w_base, [1])
    np.testing.assert_array_equal(swapped[:, [0, 2]], w_base[:, [0, 2]])
    np.testing.assert_array_equal(swapped[:, 1], w_other[:, 1])
    assert [list(ex.layer_set(n)) for n in ("coarse", "middle", "fine", "1:3")] == \
        [[0], [1], [2], [1, 2]]


@pytest.mark.parametrize("args, message", [
    (["mix", "--crossover", "3"], "--crossover 3 is outside [1, 3)"),
    (["mix", "--layers", "2:9"], "style layers 0..2"),
    (["mix", "--layers", "top"], "give grid, coarse, middle, fine or a range"),
    (["mix", "--rows", "a,b"], "comma-separated whole numbers"),
    (["mix", "--rows", "1-2-3"], "comma-separated whole numbers or ranges A-B"),
    (["mix", "--cols", "5-3"], "the range 5-3 runs backwards; write 3-5"),
    (["truncation", "--seeds", "-1"], "seeds are 0 or more"),
    (["levels", "--others", ","], "give at least one seed"),
    (["interpolate", "--seeds", "4-4"], "at least two seeds"),
    (["--outdir", "", "mix"], "--outdir: give a folder"),
    (["interpolate", "--seeds", "1"], "at least two seeds"),
    (["samples", "--png", ""], "--png: give a folder"),
    (["samples", "--png", "pngs", "--out", "s.npy"], "--out and --png: give one of them"),
])
def test_bad_arguments_give_one_line(model_file, capsys, args, message):
    assert run(model_file, *args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def parse(seeds):
    return generate.expanded(generate.parse_seeds(seeds, "--seeds"))


def test_seed_lists_take_ranges_as_nvlabs_scripts_do():
    assert parse("0-3,7") == [0, 1, 2, 3, 7]
    assert parse(" 2, 0-1 ,") == [2, 0, 1]  # in the order given, spaces and a last comma left
    assert parse("5-5") == [5]
    assert generate.seeds_label(parse("1,2,3,4,5,9,11-12")) == "1-5,9,11-12"


@pytest.mark.parametrize("flags", [  # first those a list could not even hold: they fail fast
    ["mix", "--rows", "1", "--cols", f"0-{10 ** 30}"],
    ["truncation", "--seeds", f"0-{10 ** 30}", "--psis", "1"],
    ["mix", "--rows", "0-999999999999"],
    ["levels", "--others", "1,0-999999999999"],
    ["interpolate", "--seeds", "0-999999999999", "--steps", "1"],
])
def test_a_giant_range_is_refused_by_its_size_at_once(tmp_path, capsys, flags):
    start = time.perf_counter()
    # no model there: the count must be refused before the generator is looked for
    assert generate.main(["--model", str(tmp_path / "none.keras"), "--outdir", str(tmp_path),
                          *flags]) == 2
    assert time.perf_counter() - start < 1  # counted, never expanded into a list
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert "images in one figure" in err or "frames" in err
    assert list(tmp_path.iterdir()) == []


def default_target(tmp_path, *argv):
    """The path generate.py would write for these flags, found without a generator."""
    args = generate.parse_args(["--outdir", str(tmp_path), *argv])
    generate.check_args(args)
    return args.target


def test_default_names_tell_the_subcommand_seeds_and_settings(tmp_path):
    names = {tuple(argv): default_target(tmp_path, *argv).name for argv in [
        ["mix"], ["mix", "--rows", "1,2,3,4,5", "--cols", "6-10"], ["mix", "--layers", "fine"],
        ["mix", "--crossover", "2"], ["mix", "--rows", "1-4"], ["mix", "--layers", "1:3"],
        ["mix", "--pair", "3", "7", "--crossover", "2"], ["mix", "--pair", "7", "3"],
        ["--noise-seed", "1", "mix"], ["truncation", "--psis", "1,0.7,0"],
        ["truncation", "--psis", "1,0.7000001,0"], ["noise"], ["noise", "--draws", "50"],
        ["levels"], ["interpolate"], ["interpolate", "--steps", "8"], ["samples"],
        ["samples", "--psi", "0.7"], ["samples", "--n", "10"],
        ["truncation", "--psis", "1", "--seeds", ",".join(str(2 * i) for i in range(100))],
        ["truncation", "--psis", "1", "--seeds", ",".join(str(2 * i) for i in range(101))]]}
    assert names[("mix",)] == "mix-rows1-5-cols6-10-grid.png"
    assert names[("mix", "--rows", "1,2,3,4,5", "--cols", "6-10")] == names[("mix",)]  # same
    assert names[("mix", "--pair", "3", "7", "--crossover", "2")] == "mix-pair3-7-crossover2.png"
    assert names[("truncation", "--psis", "1,0.7,0")] == "truncation-seeds1-5-psi1,0.7,0.png"
    assert names[("interpolate",)] == "interpolate-seeds1-4-steps24.gif"
    assert names[("samples",)] == "samples-n1000-seed0-psi1.npy"
    assert names[("--noise-seed", "1", "mix")] == "mix-rows1-5-cols6-10-grid-noise1.png"
    different = set(names.values())
    assert len(different) == len(names) - 1  # only the one pair of equal settings
    assert all(len(name) <= 110 and "/" not in name and ":" not in name for name in different)


def test_outdir_is_made_and_every_output_goes_there(model_file, tmp_path, capsys):
    figures = tmp_path / "new" / "figures"
    assert generate.main(["--model", str(model_file), "--outdir", str(figures), "mix",
                          "--rows", "1-2", "--cols", "3"]) == 0
    assert (figures / "mix-rows1-2-cols3-grid.png").is_file()
    # after the subcommand too; a bare --out goes into it, a path with a folder as given
    assert run(model_file, "levels", "--others", "2", "--outdir", figures, "--out", "l.png") == 0
    assert run(model_file, "noise", "--draws", "2", "--outdir", figures,
               "--out", tmp_path / "n.png") == 0
    assert sorted(path.name for path in figures.iterdir()) == [
        "l.png", "mix-rows1-2-cols3-grid.png"]
    assert (tmp_path / "n.png").is_file()
    assert f"Wrote {figures / 'mix-rows1-2-cols3-grid.png'}\n" in capsys.readouterr().out


def test_a_file_already_there_is_never_written_over(model_file, tmp_path, capsys):
    name = "truncation-seeds1-psi1.png"
    (tmp_path / name).write_bytes(b"mine")
    for _ in range(2):
        assert run(model_file, "truncation", "--seeds", "1", "--psis", "1",
                   "--outdir", tmp_path) == 0
    assert (tmp_path / name).read_bytes() == b"mine"
    for number in (2, 3):
        assert Image.open(tmp_path / f"truncation-seeds1-psi1-{number}.png").size[0] > 100
    out = capsys.readouterr().out
    assert f"Wrote {tmp_path / 'truncation-seeds1-psi1-3.png'} ({tmp_path / name} was taken" \
        in out
    # an explicit --out, a .npy and --mixed's folder alike
    for _ in range(2):
        assert run(model_file, "samples", "--n", 2, "--out", tmp_path / "s.npy") == 0
        assert run(model_file, "samples", "--n", 2, "--mixed", tmp_path / "m") == 0
    assert np.load(tmp_path / "s-2.npy").shape == (2, 28, 28, 1)
    assert sorted(path.name for path in (tmp_path / "m-2").iterdir()) == [
        "coarse.npy", "fine.npy", "mixed.npy"]


def test_a_missing_checkpoint_or_one_of_another_configuration_is_refused(tiny_model, tmp_path,
                                                                         capsys):
    assert generate.main(["--checkpoint", str(tmp_path / "none.json"), "mix"]) == 2
    assert "is not a checkpoint's .json file" in capsys.readouterr().err
    meta = checkpoints.save_checkpoint(tiny_model, tmp_path, 1, [{"epoch": 1}])
    saved = json.loads(meta.read_text())
    saved["config"]["latent_dim"] = 100  # a hand-edited json: its weights are of latent 8
    saved["sha256"] = checkpoints.digest(saved, checkpoints.weights_of(meta))  # and its digest forged
    meta.write_text(json.dumps(saved))
    assert generate.main(["--checkpoint", str(meta), "mix"]) == 2
    err = capsys.readouterr().err
    assert "does not fit this model" in err and err.count("\n") == 1


def test_a_training_runs_folder_is_never_written_into(model_file, tmp_path, capsys):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "1.png").write_bytes(b"the run's grid")
    assert generate.main(["--model", str(model_file), "mix", "--out", str(run / "1.png")]) == 2
    assert "is a training run's folder" in capsys.readouterr().err
    assert (run / "1.png").read_bytes() == b"the run's grid"
    # nor any folder inside a run that holds checkpoints: its checkpoints/ folder above all
    (run / "checkpoints" / "ckpt-0001.json").write_text("{}")
    for inside in (run / "checkpoints" / "mix.png", run / "figures" / "mix.png"):
        assert generate.main(["--model", str(model_file), "mix", "--out", str(inside)]) == 2
        assert f"{run} is a training run's folder" in capsys.readouterr().err
        assert not inside.exists()


LOAD_SAVED_MODEL = """
import sys
import numpy as np
import tensorflow as tf
folder, inputs, out = sys.argv[1:]
model = tf.saved_model.load(folder)
z, noise = np.load(inputs)["z"], np.load(inputs)["noise"]
psi = tf.constant(0.7)
images = model.serve(z=tf.constant(z), noise=tf.constant(noise), psi=psi)["images"]
seeded = [model.serve_seed(z=tf.constant(z), seed=tf.constant(s, tf.int64), psi=psi)["images"]
          for s in (1, 1, 2)]
assert not any(name in sys.modules for name in ("stylegan", "utils", "config"))
np.savez(out, images=images, seeded=np.stack(seeded))
"""


@pytest.mark.slow
def test_the_saved_model_runs_without_the_project_and_gives_the_keras_generator_s_images(
        tiny_model, tmp_path):
    generator = tiny_model.g
    generator.get_layer("map").w_avg.assign(np.full(16, 0.5, "float32"))  # truncation shows
    checkpoints.export_saved_model(generator, tmp_path / "saved")
    rng = np.random.default_rng(0)
    z = rng.standard_normal((4, generator.input[0].shape[2]), "float32")
    noise = rng.standard_normal((4, 28, 28), "float32")
    np.savez(tmp_path / "inputs.npz", z=z, noise=noise)
    run = subprocess.run([sys.executable, "-c", LOAD_SAVED_MODEL, str(tmp_path / "saved"),
                          str(tmp_path / "inputs.npz"), str(tmp_path / "out.npz")],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    out = np.load(tmp_path / "out.npz")
    keras_images = stylegan.generate(generator, stylegan.repeat_z(z, tiny_model.n_style), noise,
                                     truncation_psi=0.7)
    np.testing.assert_allclose(out["images"], keras_images, atol=1e-5)
    seeded = out["seeded"]
    np.testing.assert_array_equal(seeded[0], seeded[1])  # a seed is its noise
    assert not np.allclose(seeded[0], seeded[2]) and np.abs(seeded).max() <= 1
