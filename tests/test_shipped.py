"""The trained models in models/: intact, checked as they load, used by default, and the
generator really mixing (rows keep their digit, columns give the stroke width)."""
import hashlib
import json

import numpy as np
import pytest

import evaluate
import generate
import utils
from checkpoints import load_generator
from conftest import ROOT, SAMPLE
from mnist_ds import read_mnist_npz

MODELS = ROOT / "models"


@pytest.mark.parametrize("name", sorted(utils.SHIPPED_SHA256))
def test_the_shipped_files_are_the_ones_their_table_names(name):
    digest = hashlib.sha256((MODELS / name).read_bytes()).hexdigest()
    assert digest == utils.SHIPPED_SHA256[name]
    assert digest in (MODELS / "README.md").read_text()  # the table a reader checks by hand


@pytest.fixture
def damaged_models(tmp_path, monkeypatch):
    """A copy of models/ in which every shipped file has one byte changed, as utils.MODELS."""
    copy = tmp_path / "models"
    copy.mkdir()
    for name in utils.SHIPPED_SHA256:
        data = bytearray((MODELS / name).read_bytes())
        data[len(data) // 2] ^= 1
        (copy / name).write_bytes(bytes(data))
    monkeypatch.setattr(utils, "MODELS", copy)
    return copy


def test_a_damaged_shipped_generator_is_refused_in_one_line_naming_the_fix(
        damaged_models, capsys):
    code = generate.main(["--model", str(damaged_models / "generator.keras"), "mix",
                          "--outdir", str(damaged_models.parent / "out")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "not the shipped file" in err and "git checkout models/generator.keras" in err
    assert not (damaged_models.parent / "out").exists()


def test_a_damaged_shipped_classifier_is_refused_not_retrained(damaged_models):
    path = damaged_models / "mnist_classifier.keras"
    before = path.read_bytes()
    with pytest.raises(utils.UserError, match="git checkout models/mnist_classifier.keras"):
        evaluate.get_classifier(path, read_mnist_npz(SAMPLE))
    assert path.read_bytes() == before


def test_a_missing_shipped_model_says_how_to_restore_it(tmp_path, monkeypatch):
    monkeypatch.setattr(utils, "MODELS", tmp_path)
    with pytest.raises(utils.UserError, match="is missing: restore it with `git checkout "
                                              "models/generator.keras`"):
        utils.check_shipped(tmp_path / "generator.keras")


def test_generate_draws_with_the_shipped_generator_when_given_none(tmp_path, capsys):
    assert generate.main(["mix", "--rows", "1-2", "--cols", "3-4", "--outdir", str(tmp_path)]) == 0
    assert (tmp_path / "mix-rows1-2-cols3-4-grid.png").is_file()


def test_the_shipped_generator_keeps_the_rows_digit_and_the_columns_stroke():
    """The grid's promise on a few hundred mixes, in the shipped classifier's features (the
    README's figures, 95% and r 0.88, are on 5,000: `python evaluate.py --pairs 5000`)."""
    generator = load_generator()
    assert generator.get_layer("synthesis").dtype_policy.name == "float32"
    classifier, accuracy = evaluate.get_classifier(utils.EVAL_CLASSIFIER, read_mnist_npz(SAMPLE))
    assert accuracy > 0.97  # on the sample's 500 test digits
    mixing = evaluate.Evaluator(generator, classifier).attribution(300)[3]  # the grid's split
    assert mixing["follows_coarse"] > 0.85 and mixing["follows_fine"] < 0.05
    assert mixing["width_r_fine"] > 0.75 and abs(mixing["width_r_coarse"]) < 0.3


def test_the_shipped_figures_are_the_generators_own():
    measured = json.loads((MODELS / "generator.eval.json").read_text())
    assert measured["source"] == "models/generator.keras" and measured["mixing"]["pairs"] == 5000
    readme = (ROOT / "README.md").read_text()
    assert f"FID {measured['fid']:.2f}" in readme
    assert f"{100 * measured['mixing']['follows_coarse']:.0f}%" in readme
    assert f"r {measured['mixing']['width_r_fine']:.2f}" in readme


def test_evaluate_writes_into_out_for_the_shipped_generator(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = evaluate.parse_args([])
    assert evaluate.check_args(args) == utils.OUT_DIR / "generator.eval.json"
    assert (tmp_path / "out").is_dir()
    assert args.classifier == utils.EVAL_CLASSIFIER


def test_the_float32_export_keeps_the_weights_and_the_images(tiny_model):
    import keras

    import stylegan

    keras.mixed_precision.set_dtype_policy("mixed_bfloat16")
    mixed = stylegan.make_gan(tiny_model.config)
    mixed.g.set_weights(tiny_model.g.get_weights())
    copy = stylegan.float32_copy(mixed.g, tiny_model.config)
    assert keras.config.dtype_policy().name == "mixed_bfloat16"  # the global policy put back
    assert copy.get_layer("synthesis").dtype_policy.name == "float32"
    for a, b in zip(copy.get_weights(), tiny_model.g.get_weights()):
        np.testing.assert_array_equal(a, b)
    z = np.random.default_rng(0).normal(size=(4, tiny_model.n_style, 8)).astype("float32")
    np.testing.assert_array_equal(stylegan.generate(copy, z, seed=1),
                                  stylegan.generate(tiny_model.g, z, seed=1))
