"""evaluate.py on a tiny generator and a tiny sample (the numbers themselves are not tested)."""
import json

import numpy as np
import pytest

import evaluate
import stylegan
import utils
from config import Config
from conftest import SAMPLE


def test_fid_is_zero_for_the_same_set_and_grows_with_a_shift():
    features = np.random.default_rng(0).normal(size=(500, 4))
    assert evaluate.fid(features, features) == pytest.approx(0, abs=1e-6)
    assert evaluate.fid(features, features + 2.0) == pytest.approx(16, rel=1e-6)  # |mu|^2


def test_class_coverage_of_one_class_and_of_all_ten():
    one_class = np.tile(np.eye(10)[3], (20, 1))
    shares, kl, confidence = evaluate.class_coverage(one_class)
    assert shares[3] == 1 and kl == pytest.approx(np.log(10)) and confidence == 1
    assert evaluate.class_coverage(np.eye(10))[1] == pytest.approx(0)


def test_evaluate_a_generator_end_to_end(tmp_path, capsys, tiny_model):
    model_path = tmp_path / "generator.keras"
    tiny_model.g.save(model_path)
    code = evaluate.main(["--model", str(model_path), "--data", str(SAMPLE), "--samples", "40",
                          "--pairs", "30", "--classifier", str(tmp_path / "clf.keras"),
                          "--classifier-epochs", "1"])
    assert code == 0
    printed = capsys.readouterr().out
    for line in ("FID real floor", "class shares", "mix class = coarse source"):
        assert line in printed
    result = json.loads((tmp_path / "generator.eval.json").read_text())
    assert len(result["class_shares"]) == 10 and sum(result["class_shares"]) == pytest.approx(1)
    assert result["fid"] >= 0 and result["fid_mixed"] >= 0 and result["fid_real_floor"] >= 0
    assert result["mixing"]["pairs"] == 30 and result["mixing"]["crossover"] == 2  # 7, 14 | 28
    assert [m["crossover"] for m in result["mixing_by_crossover"]] == [1, 2]
    assert (tmp_path / "clf.keras").is_file()  # cached for the next call


def test_a_training_checkpoint_gives_the_same_generator(tmp_path, tiny_model):
    gan = stylegan.make_gan(Config(seed=3))
    meta = utils.save_checkpoint(gan, tmp_path, 1, [{"epoch": 1}])
    generator = evaluate.load_generator(checkpoint=meta)
    for a, b in zip(gan.g.get_weights(), generator.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("flags, message", [
    (["--model", "missing.keras"], "missing.keras does not exist"),
    (["--checkpoint", "ckpt.weights.h5"], "is not a checkpoint's .json file"),
])
def test_a_missing_or_wrong_input_gives_one_line(capsys, flags, message):
    assert evaluate.main(flags) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
