"""project.py: a digit's w found by optimisation, written without overwriting, usable as a mix's
source in generate.py; bad input refused in one line."""
import numpy as np
import pytest
from PIL import Image

import evaluate
import generate
import project
import stylegan
import utils
from checkpoints import load_generator
from conftest import SAMPLE
from mnist_ds import read_mnist_npz


@pytest.fixture(scope="module")
def generator():
    return load_generator()  # the shipped one


def test_a_generated_digit_is_found_again(generator):
    """A digit the generator drew from one w is within its reach: the distance falls to a small
    fraction of its start, and the image found is the digit."""
    n_style, latent = generator.input[0].shape[1:]
    z = stylegan.repeat_z(np.random.default_rng(3).standard_normal((1, latent), "float32"),
                          n_style)
    projector = project.Projector(generator, steps=100)
    target = stylegan.generate(generator, z, np.repeat(projector.noise, 1, axis=0))
    w, losses = projector(target)
    assert w.shape == (1, n_style, 128) and np.allclose(w[:, 0], w[:, -1])  # one w, every slot
    assert losses[-1] < 0.1 * losses[0] and losses[-1] < 0.02


def test_real_digits_keep_their_class_and_their_stroke_width(generator):
    (_, _), (x_test, y_test) = read_mnist_npz(SAMPLE)
    targets = utils.to_unit_range(x_test[:12])
    w, _ = project.Projector(generator)(targets)
    projections = project.Projector(generator).images(w)
    classifier = evaluate.feature_model(evaluate.get_classifier(
        utils.EVAL_CLASSIFIER, read_mnist_npz(SAMPLE))[0])
    classes = classifier.predict(projections, verbose=0)[1].argmax(1)
    assert np.mean(classes == y_test[:12]) >= 11 / 12
    widths = [evaluate.hand(images)[0] for images in (targets, projections)]
    assert evaluate.pearson(*widths) > 0.8


def test_the_cli_writes_w_and_picture_and_never_over_them(tmp_path, capsys):
    flags = ["--mnist-test", "3", "--data", str(SAMPLE), "--steps", "20", "--outdir",
             str(tmp_path)]
    assert project.main(flags) == 0 and project.main(flags) == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["project-mnist-test3-2.npy", "project-mnist-test3-2.png",
                     "project-mnist-test3.npy", "project-mnist-test3.png"]
    assert np.load(tmp_path / "project-mnist-test3.npy").shape == (4, 128)
    assert "Projected in" in capsys.readouterr().out


def test_a_dark_on_light_drawing_is_read_as_light_strokes(tmp_path):
    paper = np.full((140, 140), 255, np.uint8)
    paper[20:120, 60:75] = 0  # a dark upright stroke: a 1 drawn on paper
    Image.fromarray(paper).save(tmp_path / "one.png")
    digit = project.read_digit(tmp_path / "one.png")
    assert digit.shape == (28, 28) and digit.min() >= -1 and digit.max() <= 1
    assert digit[14, 13] > 0.9 and digit[2, 2] < -0.9  # the stroke light, the ground dark


def test_a_projected_w_is_a_column_of_generate_mix(generator, tmp_path):
    projector = project.Projector(generator, steps=20)
    (_, _), (x_test, _) = read_mnist_npz(SAMPLE)
    w, _ = projector(utils.to_unit_range(x_test[:1]))
    np.save(tmp_path / "mine.npy", w[0])
    assert generate.main(["--outdir", str(tmp_path), "mix", "--rows", "1-2", "--cols", "3",
                          "--col-w", str(tmp_path / "mine.npy")]) == 0
    assert (tmp_path / "mix-rows1-2-cols3-colwmine-grid.png").is_file()


def test_pair_and_w_sources_are_not_given_together(tmp_path, capsys):
    np.save(tmp_path / "w.npy", np.zeros((4, 128), np.float32))
    assert generate.main(["--outdir", str(tmp_path), "mix", "--pair", "1", "2", "--col-w",
                          str(tmp_path / "w.npy")]) == 2
    assert "give one or the other" in capsys.readouterr().err


@pytest.mark.parametrize("make, message", [
    (lambda p: np.save(p, np.zeros((3, 128), np.float32)), "this generator takes (4, 128)"),
    (lambda p: np.save(p, np.full((4, 128), np.nan, np.float32)), "finite float32 numbers"),
    (lambda p: np.save(p, np.full((4, 128), 1e300)), "finite float32 numbers"),  # inf in float32
    (lambda p: np.savez(open(p, "wb"), w=np.zeros((4, 128))), "an .npz archive"),
    (lambda p: np.save(p, np.array([{"a": 1}], dtype=object)), "not a .npy array"),
    (lambda p: p.write_text("not numpy"), "not a .npy array"),
])
def test_a_bad_w_file_is_refused_in_one_line(make, message, tmp_path, capsys):
    make(tmp_path / "w.npy")
    assert generate.main(["--outdir", str(tmp_path / "out"), "mix", "--col-w",
                          str(tmp_path / "w.npy")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.parametrize("flags, message", [
    (["--mnist-test", "500"], "the test set has digits 0 to 499"),
    (["--mnist-test", "1", "--steps", "0"], "--steps must be in"),
    (["--image", "README.md"], "not an image"),
    (["--image", "missing.png"], "give an image file"),
    (["--image", "BLANK"], "no digit in it"),
    (["--mnist-test", "1", "--outdir", "README.md"], "cannot write there"),
    (["--image", "BLANK", "--data", "x.npz"], "--data is read for --mnist-test only"),
    (["--mnist-test", "1", "--outdir", "RUN/figures"], "training run"),
])
def test_bad_input_gives_one_line_before_any_work(flags, message, run_folder, capsys,
                                                  monkeypatch):
    monkeypatch.chdir(utils.MODELS.parent)
    blank = run_folder.parent / "blank.png"
    Image.new("L", (28, 28), 255).save(blank)
    flags = [flag.replace("RUN", str(run_folder)).replace("BLANK", str(blank)) for flag in flags]
    if "--mnist-test" in flags:
        flags += ["--data", str(SAMPLE)]
    assert project.main(flags) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err
