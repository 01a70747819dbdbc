"""evaluate.py on a tiny generator and a tiny sample (the numbers themselves are not tested)."""
import json

import numpy as np
import pytest

import evaluate
import stylegan
import checkpoints
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


def bar(width, lean=0):
    """A 20-pixel stroke `width` wide on black, its top shifted `lean` pixels right per 4 rows."""
    image = -np.ones((28, 28))
    for row in range(4, 24):
        left = 12 + lean * (23 - row) // 4
        image[row, left:left + width] = 1.0
    return image


def test_hand_measures_stroke_width_and_slant():
    pixel, edge = -np.ones((28, 28)), -np.ones((28, 28))
    pixel[5, 5] = 1.0
    edge[:, :2] = 1.0  # a bar 2 wide along the left border: the border is paper too
    edge[3, 10] = 0.0  # exactly half intensity is not ink
    width, slant = evaluate.hand(np.stack([bar(3), bar(5), bar(3, lean=1), bar(3, lean=-1),
                                           -np.ones((28, 28)), pixel, edge]))
    assert width[0] == pytest.approx(2 * 60 / 46) and width[1] == pytest.approx(2 * 100 / 50)
    assert width[5] == pytest.approx(0.5) and width[6] == pytest.approx(2 * 56 / 60)
    assert slant[0] == pytest.approx(0) and slant[1] == pytest.approx(0)  # upright
    assert slant[2] == pytest.approx(0.25, abs=0.02)  # leans right: a pixel per 4 rows
    assert slant[3] == pytest.approx(-0.25, abs=0.02)  # leans left
    assert np.isnan(width[4]) and np.isnan(slant[4])  # no ink, no hand


def test_source_weights_give_how_much_of_each_source_a_mix_carries():
    rng = np.random.default_rng(0)
    fine, coarse = rng.normal(2, 0.5, 200), rng.normal(2, 0.5, 200)
    mixed = 0.7 * fine + 0.2 * coarse + 1.0
    mixed[3] = np.nan  # no ink: left out
    assert evaluate.source_weights(mixed, fine, coarse) == pytest.approx((0.7, 0.2))
    assert evaluate.source_weights(0.1 * fine, fine, coarse) == pytest.approx((0.1, 0), abs=1e-9)
    assert np.isnan(evaluate.source_weights(mixed, np.ones(200), coarse)).all()


def test_pearson_skips_missing_values_and_says_nan_where_there_is_no_correlation():
    a = np.array([1.0, 2.0, np.nan, 3.0, 4.0])
    assert evaluate.pearson(a, 2 * a + 1) == pytest.approx(1)
    assert evaluate.pearson(a, -a) == pytest.approx(-1)
    assert np.isnan(evaluate.pearson(np.full(7, 0.1), np.arange(7.0)))  # a constant
    assert np.isnan(evaluate.pearson(a[:2], a[:2]))  # two points always line up


@pytest.mark.slow
def test_evaluate_a_generator_end_to_end(tmp_path, capsys, tiny_model):
    model_path = tmp_path / "generator.keras"
    tiny_model.g.save(model_path)
    code = evaluate.main(["--model", str(model_path), "--data", str(SAMPLE), "--samples", "40",
                          "--pairs", "30", "--classifier", str(tmp_path / "clf.keras"),
                          "--classifier-epochs", "1"])
    assert code == 0
    printed = capsys.readouterr().out
    for line in ("FID real floor", "class shares", "mix class = coarse source",
                 "mix stroke width r with fine / coarse", "FID mixed / single, by crossover"):
        assert line in printed
    result = json.loads((tmp_path / "generator.eval.json").read_text())
    assert len(result["class_shares"]) == 10 and sum(result["class_shares"]) == pytest.approx(1)
    assert result["fid"] >= 0 and result["fid_mixed"] >= 0 and result["fid_real_floor"] >= 0
    assert result["mixing"]["pairs"] == 30 and result["mixing"]["crossover"] == 2  # 7, 14 | 28
    assert [m["crossover"] for m in result["mixing_by_crossover"]] == [1, 2]
    for m in result["mixing_by_crossover"]:
        assert m["fid_mixed_over_single"] > 0
        assert "width_from_fine" in m and "width_from_coarse" in m
        for key in ("width_r_fine", "width_r_coarse", "slant_r_fine", "slant_r_coarse"):
            assert -1 <= m[key] <= 1 or np.isnan(m[key])  # NaN: an untrained G may draw no ink
    assert (tmp_path / "clf.keras").is_file()  # cached for the next call


def test_a_training_checkpoint_gives_the_same_generator(tmp_path, tiny_model):
    gan = stylegan.make_gan(Config(seed=3))
    meta = checkpoints.save_checkpoint(gan, tmp_path, 1, [{"epoch": 1}])
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
