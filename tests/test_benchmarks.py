"""The benchmark scripts: the speed table's ratios, their refusals, and the profile's summary."""
import dataclasses
import os
import subprocess
import sys
import time

import pytest

import config
from conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import bench_epoch  # noqa: E402
import bench_execution  # noqa: E402
import bench_lazy  # noqa: E402
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
    (["--set", "step=bogus"], "--presets stylegan: --set step must be one of g_first, d_first"),
    (["--set", "step=d_first", "--presets", "tutorial"], "add another preset"),
    (["--d-steps", "2"], "--d-steps 2: the tutorial's step updates D once"),
    (["--batch-size", "2501"], "--batch-size must be at most 2,500"),
])
def test_a_bad_setting_is_refused_in_one_line_before_any_measurement(flags, message):
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_train.py"), *flags],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.startswith("error: ") and message in run.stderr
    assert run.stderr.count("\n") == 1


def test_an_epoch_s_time_is_read_from_the_last_epoch_s_progress_bar():
    bar = "\x1b[1m{0}/200\x1b[0m \x1b[32m━━━━\x1b[0m \x1b[1m{1}\x1b[0m {2}/step - d_loss: 0.6"
    epoch = lambda eta_ms, total, ms: "\r".join([bar.format(199, "0s", f"{eta_ms}ms"),
                                                  bar.format(200, "0s", f"{ms}ms"),
                                                  bar.format(200, total, f"{ms}ms")])
    output = "\n".join(["Epoch 1/2", epoch(150, "31s", 155), "Epoch 2/2", epoch(90, "19s", 93),
                        "Saved runs/x/generator.keras"])
    steps, seconds = bench_epoch.epoch_of(output)
    assert steps == 200 and seconds == pytest.approx(0.093)
    assert bench_epoch.epoch_of("Epoch 1/2\n" + bar.format(200, "3s", "2s")) == (200, 2.0)
    assert bench_epoch.epoch_of("error: no such file") is None


def test_the_epoch_table_compares_whole_epochs_when_batches_differ(capsys):
    # 200 steps of 64 against 400 of 32 (the same images): 0.09 s a step is 18 s, 0.05 is 20 s
    bench_epoch.print_table({"commit abc": [(200, 0.09), (200, 0.10)],
                             "this checkout --batch-size 32": [(400, 0.05), (400, 0.05)]}, 12800)
    out = capsys.readouterr().out
    assert "| commit abc | 200 | 18.0, 20.0 | 19.0 | 1.00x |" in out
    assert "| this checkout --batch-size 32 | 400 | 20.0, 20.0 | 20.0 | 1.05x |" in out


@pytest.mark.parametrize("flags, message", [
    ([], "give at least one --variant"),
    (["--variant", "", "--commit", "no-such-commit"], "--commit no-such-commit: not a commit"),
    (["--variant", "", "--data", "missing.npz"], "--data missing.npz: no such file"),
    (["--variant", "--out 'unclosed"], "--variant \"--out 'unclosed\": No closing quotation"),
    (["--variant", "", "--rounds", "0"], "--limit and --rounds must be at least 1"),
    (["--variant", "--out runs/x"], "--out is the benchmark's own"),
    (["--variant=--epochs=1"], "--epochs is the benchmark's own"),
    (["--variant", "", "--variant", "  "], "'this checkout (defaults)' given twice"),
])
def test_a_bad_epoch_benchmark_is_refused_in_one_line_before_any_run(flags, message, capsys):
    assert bench_epoch.main(flags) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


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


def test_the_folder_benchmark_compares_the_pipeline_s_rate_with_the_step_s():
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_folder.py"),
                          "--images", "200", "--image-size", "32", "--steps", "1", "--warmup",
                          "1"], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    line = run.stdout.strip().splitlines()[-1]
    fed = float(line.split("feeds ")[1].split()[0].replace(",", ""))
    consumed = float(line.split("consumes ")[1].split()[0].replace(",", ""))
    ratio = float(line.split("is ")[-1].split("x")[0].replace(",", ""))
    assert "200 JPEGs 178x218 -> 32x32, batch 64" in line
    # The script rounds the ratio of its unrounded rates to a whole number, so the ratio
    # of the printed (rounded) rates may differ from it by a little more than 0.5.
    assert fed > 0 and consumed > 0 and ratio == pytest.approx(fed / consumed, rel=0.01, abs=1)


def test_a_step_s_counted_flops_grow_with_the_batch_and_are_mostly_convolutions():
    import flops

    per_image = [flops.step_flops(28, n) / n for n in (8, 16)]
    assert per_image[0] == pytest.approx(per_image[1], rel=0.05)  # linear in the batch
    # G's 3x3 conv at 28x28, 64 -> 64 channels, forward: 2 * 28 * 28 * 9 * 64 * 64 per image;
    # with its two gradients, three times that: the step counts at least that much
    assert per_image[1] > 3 * 2 * 28 * 28 * 9 * 64 * 64


def test_the_flops_count_sees_a_set_lever_the_discriminator_s_width():
    import flops

    narrower_d, default = (flops.step_flops(28, 8, overrides=o) / 8 for o in (["d_filters=32"], ()))
    # D's second conv (5x5, stride 2, 14x14 -> 7x7) grows from 32 -> 64 to 96 -> 192 channels
    # (the bound below counts only the growth to 64 -> 128);
    # once forward with its two gradients on one image, the step counts at least that much more
    assert default - narrower_d > 3 * 2 * 7 * 7 * 25 * (64 * 128 - 32 * 64)


@pytest.mark.parametrize("flags, message", [
    (["--set", "nope=1"], "--set nope=1: give SETTING=VALUE with a Config setting"),
    (["--set", "d_filters=0"], "--set d_filters must be in [1, 4096], got 0 (at --sizes 28)"),
    (["--set", "image_size=64"], "--set image_size=64: flops.py counts the default recipe at"),
    (["--set", "d_filters=" + "1" * 5000], "--set d_filters must be int, got '111"),
    (["--sizes", "28,x"], "--sizes '28,x': give different image sizes from 28, 32, 64"),
    (["--sizes", "28,28"], "--sizes '28,28': give different image sizes"),
    (["--batch-size", "5000"], "--batch-size must be 0 (the recipe's) to 2,500"),
])
def test_the_flops_count_refuses_bad_values_in_one_line(flags, message, tmp_path):
    # before TensorFlow loads: here a "tensorflow" that cannot be imported
    (tmp_path / "tensorflow").mkdir()
    (tmp_path / "tensorflow" / "__init__.py").write_text("raise ImportError('too early')\n")
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "flops.py"), *flags],
                         capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert run.returncode == 2 and run.stderr.startswith("error: ") and message in run.stderr
    assert run.stderr.count("\n") == 1


def test_the_steps_per_execution_benchmark_times_each_value_against_the_first():
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_execution.py"),
                          "--values", "1,2", "--steps", "2", "--rounds", "1"],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    rows = [line.split("|")[1:4] for line in run.stdout.splitlines()
            if line.startswith("| ") and line[2].isdigit()]
    (one, ms_one, ratio_one), (two, ms_two, ratio_two) = rows
    assert (one.strip(), two.strip(), ratio_one.strip()) == ("1", "2", "1.00x")
    assert float(ratio_two.strip()[:-1]) == pytest.approx(float(ms_one) / float(ms_two),
                                                          abs=0.02)


@pytest.mark.parametrize("steps_per_call", [1, 4])
def test_the_steps_per_execution_benchmark_leaves_a_fits_idle_ends_out_of_its_time(
        steps_per_call):
    def fit(steps, callbacks):  # as model.fit calls a callback: once a call, idle at both ends
        time.sleep(1.0)
        for first in range(0, steps, steps_per_call):
            for callback in callbacks:
                callback.on_train_batch_begin(first)
            time.sleep(0.02 * steps_per_call)
            for callback in callbacks:
                callback.on_train_batch_end(first + steps_per_call - 1)
        time.sleep(1.0)

    # 0.02 s a step; the whole fit would give 0.02 + 2.0 / 12 s
    assert 0.02 <= bench_execution.seconds_per_step(fit, 12) < 0.1


def test_the_steps_per_execution_benchmark_times_several_settings_together():
    args = bench_execution.parse_args(["--setting", "filters,d_filters", "--values", "64/32,48/64"])
    configs = bench_execution.check_args(args)
    assert [(c.filters, c.d_filters) for c in configs.values()] == [(64, 32), (48, 64)]
    assert list(configs) == ["64/32", "48/64"]  # the table's rows, as given


@pytest.mark.parametrize("flags, message", [
    (["--values", "1,3", "--steps", "4"], "--steps 4 must be a multiple of every steps_per_"),
    (["--values", "1,x"], "--values of steps_per_execution must be int, got 'x'"),
    (["--values", "0,1"], "--values of steps_per_execution must be in [1, 1024], got 0"),
    (["--setting", "nope"], "--setting 'nope': give a setting of the network or the step"),
    (["--setting", "epochs", "--values", "1,2"], "epochs, limit"),
    (["--values", "1,1"], "--values 1,1: a value is given twice"),
    (["--worker", "2", "--values", "1,2"], "--worker 2: no such value"),
    (["--preset", "tutorial", "--setting", "hand_weight", "--values", "0,1"],
     "hand_weight=1 in --preset tutorial, as train.py says: --hand-weight 1"),
    (["--setting", "hand_weight", "--values", "0,-1"], "hand_weight must be in [0.0, 1000000.0]"),
    (["--setting", "filters,d_filters", "--values", "64/32,48"],
     "--values '48': give 2 value(s) joined by '/', one for each of --setting filters,d_filters"),
    (["--setting", "filters,epochs", "--values", "64/1"], "--setting 'epochs': give a setting"),
    (["--setting", "filters,filters", "--values", "64/48"], "a setting is named twice"),
    (["--values", "1, 1"], "--values 1, 1: a value is given twice"),
])
def test_the_steps_per_execution_benchmark_refuses_bad_values_in_one_line(flags, message):
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_execution.py"),
                          *flags], capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and run.stderr.startswith("error: ") and message in run.stderr
    assert run.stderr.count("\n") == 1


def test_the_lazy_benchmark_prices_a_penalty_by_its_steps_extra_time_over_its_period():
    steps = [((), 0.100)] * 5 + [(("hand",), 0.200)] * 2 + [(("R1", "hand"), 0.300)]
    table = bench_lazy.summary(steps, {"R1": ("d", 16), "hand": ("g", 4)})
    assert "| none | 5 | 100.0 | 1.00x |" in table
    assert "| hand | 2 | 200.0 | 2.00x |" in table and "| R1 + hand | 1 | 300.0 | 3.00x |" in table
    assert "hand (every 4th step): +25.0% on an epoch" in table  # (200 - 100) / 4 / 100
    assert "R1 (every" not in table  # R1 never ran alone: no price for it
    with pytest.raises(bench_lazy.UserError, match="no timed step ran without a penalty"):
        bench_lazy.summary([(("hand",), 0.2)], {"hand": ("g", 4)})


def test_the_lazy_benchmark_times_the_default_recipes_steps_and_groups_them_by_penalty():
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_lazy.py"),
                          "--warmup", "1", "--steps", "8"],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    counts = {line.split("|")[1].strip(): int(line.split("|")[2])
              for line in run.stdout.splitlines() if line.startswith("| ") and "---" not in line
              and "steps" not in line}
    # G and D updates 1..8: the hand penalty (every 4th G update) ran at 4 and 8, R1 (every
    # 16th D update) never
    assert counts == {"none": 6, "hand": 2}, run.stdout
