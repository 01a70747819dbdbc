"""The benchmark scripts: the speed table's ratios, their refusals, and the profile's summary."""
import dataclasses
import subprocess
import sys

import pytest

import config
from conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import bench_train  # noqa: E402
import profile_step  # noqa: E402


def row(preset, precision, ms, batch_size):
    return {"way": "compiled", "preset": preset, "precision": precision, "step_s": ms / 1000,
            "batch_size": batch_size, "peak_rss_mib": 900.0, "finite": True}


def test_the_table_compares_each_epoch_with_the_tutorials_best_and_each_precision_with_float32(
        capsys):
    bench_train.print_table([
        row("tutorial", "float32", 200, 32), row("tutorial", "mixed_bfloat16", 100, 32),
        row("stylegan", "float32", 300, 64), row("stylegan", "mixed_bfloat16", 150, 64)])
    lines = {tuple(cell.strip() for cell in line.split("|")[1:4]): line
             for line in capsys.readouterr().out.splitlines() if line.startswith("| ")}
    # the tutorial: 1,875 steps an epoch; its best is mixed_bfloat16 (187.5 s)
    assert "| 188 | 1.00x | 2.00x |" in lines[("tutorial", "compiled", "mixed_bfloat16")]
    assert "| 375 | 2.00x | 1.00x |" in lines[("tutorial", "compiled", "float32")]
    # the default: 937 steps of 64 digits; 140.55 s / 187.5 s = 0.75x
    assert "| 141 | 0.75x | 2.00x |" in lines[("stylegan", "compiled", "mixed_bfloat16")]


def test_an_epoch_s_step_time_pays_the_lazy_penalties_in_whole_cycles():
    default = config.PRESETS["stylegan"]
    assert bench_train.lazy_cycle(config.PRESETS["tutorial"]) == 1
    assert bench_train.lazy_cycle(default) == 16  # R1 every 16th step, the hand's every 4th
    assert bench_train.lazy_cycle(dataclasses.replace(default, r1_gamma=0.0)) == 4
    assert bench_train.cycles_of(20, 16) == 2 and bench_train.cycles_of(32, 16) == 2
    # every row of one run is timed over the same cycle, the tutorial's too
    assert bench_train.timing_cycle(bench_train.parse_args([])) == 16
    assert bench_train.timing_cycle(bench_train.parse_args(["--presets", "tutorial"])) == 1
    # a penalty every 4th step at twice the plain step's time: 1.25 a step, where the median
    # of single steps would say 1; one cycle slowed by a burst does not move the median cycle
    times = [1.0, 1.0, 1.0, 2.0] * 2 + [9.0, 9.0, 9.0, 9.0]
    assert bench_train.epoch_step_seconds(times, 4) == 1.25


@pytest.mark.parametrize("flags, message", [
    (["--set", "no_such_setting=1"], "--set no_such_setting=1: give SETTING=VALUE with a Config"),
    (["--set", "precision=float32"], "--set precision: use --precision"),
    (["--set", "step=bogus"], "--presets stylegan: --set step must be one of g_first, same_fakes"),
    (["--set", "step=g_first", "--presets", "tutorial"], "add another preset"),
    (["--ways", "formula,turbo"], "--ways 'turbo': choose from eager, compiled, xla, formula"),
    (["--batch-size", "2501"], "--batch-size must be at most 2,500"),
])
def test_a_bad_setting_is_refused_in_one_line_before_any_measurement(flags, message):
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_train.py"), *flags],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.startswith("error: ") and message in run.stderr
    assert run.stderr.count("\n") == 1


@pytest.mark.slow
def test_the_profile_attributes_the_step_s_op_time_to_g_and_d(capsys):
    # D at 32/64 (the default's is 96/192): then G's backward pass clearly outweighs D's
    assert profile_step.main(["--precision", "float32", "--steps", "1", "--top", "40",
                              "--set", "d_filters=32"]) == 0
    out = capsys.readouterr().out
    parts = {line.split("|")[1].strip(): float(line.split("|")[2])
             for line in out.split("| part |")[1].split("\n\n")[0].splitlines()[2:]}
    # G and D are told apart: the small D's backward pass takes less than G's
    assert parts["G backward"] > parts["D backward"] > 0 and parts["G forward"] > 0
    assert "| style_2 conv, backward |" in out and "| to_image, backward |" in out
    assert "| _MklNativeFusedConv2D |" in out or "| Conv2D |" in out


def test_the_same_weights_digest_sees_one_changed_number_and_not_a_renamed_array(tmp_path):
    import h5py
    import numpy as np

    import same_weights

    arrays = {"g/kernel": np.arange(6, dtype="float32").reshape(2, 3), "d/bias": np.ones(3)}

    def write(name, renames=(), change=False):
        with h5py.File(tmp_path / name, "w") as h5:
            for key, array in arrays.items():
                array = array.copy()
                if change and key == "d/bias":
                    array[1] = np.nextafter(array[1], 2)  # one number, by the least it can move
                h5[dict(renames).get(key, key)] = array
        return same_weights.weights_digest(tmp_path / name)
    original = write("a.h5")
    assert original[1] == 2
    assert write("renamed.h5", renames={"g/kernel": "synthesis/kernel"}) == original
    assert write("changed.h5", change=True)[0] != original[0]
