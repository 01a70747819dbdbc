"""`python train.py` end to end, as a user runs it: outputs, resume, export."""
import csv
import dataclasses
import math
import re
import subprocess
import sys
import types

import pytest

import callbacks
import train as train_cli
from conftest import ROOT, assert_same_weights
from conftest import train_in_subprocess as train


@pytest.mark.slow
def test_one_epoch_then_resume_to_two(tmp_path):
    out = tmp_path / "run"
    first = train("--epochs", 1, "--limit", 256, "--out", out, "--log-every", 3,
                  "--save-every", 2)
    assert first.returncode == 0, first.stderr
    assert "4 steps of 64 an epoch" in first.stdout
    for name in ("1.png", "1-step2.png", "generating.gif", "generator.keras", "history.csv", "losses.png",
                 "checkpoints/ckpt-0001.json", "checkpoints/ckpt-0001.weights.h5",
                 "generator_savedmodel/saved_model.pb"):
        assert (out / name).is_file(), name

    second = train("--epochs", 2, "--limit", 256, "--out", out, "--resume")
    assert second.returncode == 0, second.stderr
    assert "Resuming from ckpt-0001.json: 1 epochs done" in second.stdout
    assert "Epoch 2/2" in second.stdout and "Epoch 1/2" not in second.stdout
    assert (out / "2.png").is_file() and (out / "checkpoints" / "ckpt-0002.json").is_file()
    assert (out / "2-step2.png").is_file()  # the resumed run kept --save-every 2
    assert not list((out / "checkpoints").glob("*-step*"))  # superseded by the epochs' ends
    with open(out / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert [row["epoch"] for row in rows] == ["1", "2"]
    logged = tensorboard_events(out / "tensorboard")  # the resumed run kept --log-every 3
    assert sorted(logged["steps/g_loss"]) == [3, 6]  # steps 1-4 of epoch 1, 5-8 of epoch 2
    assert logged["epoch/d_loss"] == pytest.approx({int(r["epoch"]): float(r["d_loss"])
                                                   for r in rows}, rel=1e-6)
    assert sorted(logged["epoch/learning_rate"]) == sorted(logged["mixing_grid"]) == [1, 2]
    assert sorted(logged["steps/mixing_grid"]) == [2, 6]  # step 2 of each epoch


@pytest.mark.slow
def test_steps_per_execution_trains_the_same_steps_with_checkpoints_between_calls(tmp_path):
    flags = ["--epochs", 1, "--batch-size", 32, "--limit", 288, "--save-every", 4,
             "--log-every", 2]  # 9 steps
    single = train(*flags, "--out", tmp_path / "one")
    grouped = train(*flags, "--steps-per-execution", 3, "--out", tmp_path / "three")
    assert single.returncode == grouped.returncode == 0, grouped.stderr
    # checkpoints, grids and logs at the end of the call that passed a multiple of their
    # interval: steps 3, 6 and 9 (a mid-epoch one at 6; 9 is the epoch's end)
    assert sorted(p.name for p in (tmp_path / "three").glob("1*.png")) == ["1-step6.png",
                                                                          "1.png"]
    assert sorted(tensorboard_events(tmp_path / "three" / "tensorboard")["steps/g_loss"]) == [
        3, 6, 9]
    # the same steps on the same data with the same draws, three to a call: the same run
    assert_same_weights(*(run / "checkpoints" / "ckpt-0001.weights.h5"
                          for run in (tmp_path / "one", tmp_path / "three")))


@pytest.mark.slow
def test_eval_every_puts_the_fid_on_the_bar_and_in_tensorboard(tmp_path):
    out, classifier = tmp_path / "run", tmp_path / "clf.keras"
    run = train("--epochs", 2, "--limit", 128, "--eval-every", 2, "--eval-classifier",
                classifier, "--out", out)
    assert run.returncode == 0, run.stderr
    assert classifier.is_file()  # trained once, on the run's data, and kept
    fids = tensorboard_events(out / "tensorboard")["epoch/fid"]
    assert list(fids) == [2] and 0 < fids[2] < 1000  # every 2nd epoch
    assert run.stdout.count(" - fid: ") == 1 and f"fid: {fids[2]:.4f}" in run.stdout


def tensorboard_events(folder):
    """{tag: {step: value}} of every event file in a TensorBoard folder (images: their size)."""
    import tensorflow as tf

    logged = {}
    for path in sorted(folder.glob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                data = tf.make_ndarray(value.tensor)
                logged.setdefault(value.tag, {})[event.step] = (
                    float(data) if data.ndim == 0 else data.size)
    return logged


@pytest.mark.slow
def test_the_exported_generator_loads_with_only_the_layers_module(tmp_path):
    out = tmp_path / "run"
    assert train("--epochs", 1, "--limit", 64, "--out", out).returncode == 0
    script = (
        "import sys, numpy as np, keras; sys.path.insert(0, sys.argv[2]); import stylegan\n"
        "g = keras.saving.load_model(sys.argv[1])\n"
        "rng = np.random.default_rng(0)\n"
        "z = rng.normal(size=(2, *g.input[0].shape[1:])).astype('float32')\n"
        "noise = rng.normal(size=(2, 28, 28)).astype('float32')\n"
        "print(float(np.asarray(g([z, noise])).std()), g.get_layer('map').w_avg.shape)\n")
    run = subprocess.run([sys.executable, "-c", script, str(out / "generator.keras"),
                          str(ROOT)], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    std, shape = run.stdout.split(maxsplit=1)
    assert float(std) > 0 and shape.strip() == "(128,)"


@pytest.mark.slow
def test_xla_compiles_and_trains_a_float32_run_with_a_lazy_penalty(tmp_path):
    out = tmp_path / "run"  # the hand penalty's tf.cond differentiates G inside a branch
    run = train("--epochs", 1, "--limit", 64, "--jit", "--precision", "float32",
                "--hand-weight", 0.1, "--out", out)  # on its first step
    assert run.returncode == 0, run.stderr
    with open(out / "history.csv") as f:
        row, = csv.DictReader(f)
    assert all(math.isfinite(float(row[key])) for key in ("d_loss", "g_loss"))


class FakeGPUs:
    """tf.config's answers for a machine with GPUs of the given compute capabilities."""

    def __init__(self, monkeypatch, *capabilities):
        gpus = [f"GPU:{i}" for i in range(len(capabilities))]
        details = dict(zip(gpus, capabilities))
        config = train_cli.tf.config
        monkeypatch.setattr(config, "list_physical_devices",
                            lambda kind=None: gpus if kind == "GPU" else [])
        monkeypatch.setattr(config.experimental, "get_device_details",
                            lambda gpu: {"compute_capability": details[gpu]})


def test_auto_precision_picks_bfloat16_only_on_a_cpu_with_bfloat16_units(tmp_path, monkeypatch):
    cpuinfo = tmp_path / "cpuinfo"
    monkeypatch.setattr(train_cli, "CPUINFO", cpuinfo)
    FakeGPUs(monkeypatch)  # none
    assert train_cli.auto_precision() == "float32"  # no /proc/cpuinfo: cannot tell
    cpuinfo.write_text("flags : fpu sse avx2 avx512f\n")
    assert train_cli.auto_precision() == "float32"
    cpuinfo.write_text("flags : fpu sse avx2 avx512f avx512_bf16 amx_bf16\n")
    assert train_cli.auto_precision() == "mixed_bfloat16"
    assert not train_cli.use_xla("auto", "float32") and train_cli.use_xla("on", "float32")


@pytest.mark.parametrize("capabilities, precision", [
    ([(9, 0)], "mixed_bfloat16"), ([(8, 6), (8, 0)], "mixed_bfloat16"),
    ([(7, 5)], "mixed_float16"), ([(9, 0), (7, 5)], "mixed_float16"),  # the oldest decides
    ([(6, 1)], "float32")])
def test_auto_precision_and_xla_on_gpus_follow_their_compute_capability(
        tmp_path, monkeypatch, capabilities, precision):
    monkeypatch.setattr(train_cli, "CPUINFO", tmp_path / "cpuinfo")
    (tmp_path / "cpuinfo").write_text("flags : avx512_bf16\n")  # the GPUs decide, not the CPU
    FakeGPUs(monkeypatch, *capabilities)
    assert train_cli.auto_precision() == precision
    assert train_cli.use_xla("auto", precision) == (precision == "float32")  # XLA: float32 only
    assert train_cli.use_xla("auto", "float32") and not train_cli.use_xla("off", "float32")


def resolve(*flags, saved=None):
    return train_cli.resolve_config(train_cli.parse_args(list(map(str, flags))), saved)


def test_presets_give_the_recipe_and_single_flags_change_one_part_of_it():
    from config import PRESETS, Config

    assert resolve() == PRESETS["stylegan"]  # the command line's default: the measured best
    assert PRESETS["tutorial"] == Config()  # Config's defaults: the tutorial's recipe
    tutorial = resolve("--preset", "tutorial", "--no-d-batchnorm", "--r1-gamma", "5",
                       "--no-shared-optimizer")
    assert tutorial.r1_gamma == 5.0 and not tutorial.d_batchnorm  # the flags win over the preset
    assert tutorial.lr == 0.001 and tutorial.preset == "tutorial"
    assert resolve("--lr", "0.01").lr == 0.01


def test_a_folder_run_leaves_out_the_settings_measured_on_digits_only():
    assert resolve().hand_weight == 0.1  # the default's MNIST recipe has it
    assert resolve("--dataset", "faces").hand_weight == 0.0
    assert resolve("--dataset", "faces", "--hand-weight", "0").hand_weight == 0.0
    assert resolve().filters == 48 and resolve("--dataset", "faces").filters == 64
    assert resolve("--dataset", "faces", "--filters", "32").filters == 32


def test_the_grid_s_split_is_a_picture_setting_apart_from_the_hand_penalty_s():
    from config import PRESETS
    from stylegan import make_gan

    saved = PRESETS["stylegan"]  # the hand penalty on, at its own split
    shown = resolve("--resume", "--grid-coarse-size", "7", saved=saved)
    assert shown == dataclasses.replace(saved, grid_coarse_size=7)  # nothing else changes
    trained = dataclasses.replace(saved, precision="float32")
    assert (make_gan(trained).hand_split ==
            make_gan(dataclasses.replace(trained, grid_coarse_size=7)).hand_split == 3)
    assert make_gan(dataclasses.replace(trained, hand_coarse_size=14)).hand_split == 2


def test_every_config_field_is_a_flag_with_its_meaning_as_help(capsys):
    from config import FIELDS

    with pytest.raises(SystemExit):
        train_cli.parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    for name, field in FIELDS.items():
        flag = "--" + name.replace("_", "-")
        assert flag in text, flag
        assert " ".join(field.metadata["meaning"].split()) in text, name
    for name in train_cli.Watch._fields:  # and the run's own flags
        assert "--" + name.replace("_", "-") in text, name


def test_a_resumed_run_keeps_the_structure_but_may_change_the_schedule():
    from utils import UserError

    saved = resolve()
    with pytest.raises(UserError, match="trained with --styled-to-image, not "
                                        "--no-styled-to-image: drop --no-styled-to-image"):
        resolve("--no-styled-to-image", saved=saved)
    with pytest.raises(UserError, match="trained with --mapping-lr-mult 0.01"):
        resolve("--mapping-lr-mult", "1", saved=saved)
    changed = resolve("--mixing-prob", "0.3", "--lr", "0.0005", saved=saved)
    assert changed.mixing_prob == 0.3 and changed.lr == 0.0005


def test_the_learning_rates_halve_from_the_given_epoch_on(tmp_path):
    from stylegan import make_gan

    config = resolve("--lr", "0.002", "--lr-halved-from", "3", "--precision", "float32")
    model = make_gan(config)
    keeper = train_cli.RunKeeper(tmp_path, config, train_cli.Watch(), steps_per_epoch=1)
    keeper.set_model(model)
    rates = lambda: [float(o.learning_rate) for o in (model.d_optimizer, model.g_optimizer)]
    keeper.on_epoch_begin(1)  # the second epoch: full rates
    assert rates() == pytest.approx([0.002, 0.002])
    keeper.on_epoch_begin(2)  # the third: halved
    assert rates() == pytest.approx([0.001, 0.001])


@pytest.mark.slow
def test_one_lever_travels_from_flag_to_optimizer_to_checkpoint_to_resume(tmp_path):
    """--beta-2, one Config field and one use in StyleGAN.compile (a lever is added in those
    two places): a flag, in the optimizers, stored in the checkpoint, read back on --resume
    and changeable there."""
    import checkpoints
    from stylegan import make_gan

    out = tmp_path / "run"
    first = train("--epochs", 1, "--limit", 64, "--beta-2", 0.9, "--out", out)
    assert first.returncode == 0, first.stderr
    meta, config = checkpoints.read_checkpoint(out / "checkpoints" / "ckpt-0001.json")
    assert config.beta_2 == 0.9 and meta["config"]["beta_2"] == 0.9
    model = make_gan(config)
    assert model.g_optimizer.beta_2 == model.d_optimizer.beta_2 == 0.9
    assert resolve("--resume", saved=config).beta_2 == 0.9  # left out: the run's own
    assert resolve("--resume", "--beta-2", 0.95, saved=config).beta_2 == 0.95


def test_a_resumed_run_may_name_a_classifier_for_the_eval_every_it_kept(tmp_path):
    watch = train_cli.watch_options
    args = train_cli.parse_args(["--resume", "--eval-classifier", str(tmp_path / "c.keras")])
    watch(args)  # before the run's own flags are read: not refused
    assert watch(args, {"eval_every": 2}).eval_classifier == str(tmp_path / "c.keras")
    with pytest.raises(train_cli.UserError, match="acts with --eval-every only"):
        watch(args, {"eval_every": 0})


def feed(bar, keeper, steps, logs=None):
    for step in steps:
        keeper.step = step
        bar.on_train_batch_end(step, logs or {"d_loss": 0.5, "g_loss": 1.0})


def bar_counts(text, total):
    return [int(count) for count in re.findall(rf"^(\d+)/{total} \[", text, re.M)]


def test_the_bar_counts_the_epochs_own_steps_and_stays_where_training_stopped(capsys):
    # epoch 2 of 3 resumed after step 164 of 937, stopped (Ctrl-C) after step 199
    keeper = types.SimpleNamespace(steps_per_epoch=937, epoch=2, step=164)
    bar = callbacks.ProgressBar(keeper, epochs=3, measure=5)
    bar.on_epoch_begin(1)
    feed(bar, keeper, range(165, 200))
    bar.on_epoch_end(1, {"d_loss": 0.5, "g_loss": 1.0})
    out = capsys.readouterr().out
    counts = bar_counts(out, 937)
    assert counts and min(counts) >= 165 and counts[-1] == 199, out
    # the run's estimate after 5 timed steps (165 untimed: it compiles): 2 x 937 + 937 - 170
    assert "the 1,704 steps left take about" in out, out


def test_a_finished_epoch_ends_the_bar_at_its_last_step_and_the_estimate_comes_once(capsys):
    keeper = types.SimpleNamespace(steps_per_epoch=4, epoch=1, step=0)
    bar = callbacks.ProgressBar(keeper, epochs=2, measure=30)
    for epoch in (1, 2):
        keeper.epoch = epoch
        bar.on_epoch_begin(epoch - 1)
        feed(bar, keeper, range(1, 5))
        bar.on_epoch_end(epoch - 1, {"d_loss": 0.5, "g_loss": 1.0})
    out = capsys.readouterr().out
    assert bar_counts(out, 4).count(4) == 2, out
    # an epoch shorter than `measure` steps: said at its end, from the 3 steps after the first
    assert out.count("steps left take") == 1 and "the 4 steps left" in out, out


def test_the_time_estimate_says_why_only_on_a_cpu_without_bfloat16_units(monkeypatch):
    monkeypatch.setattr(train_cli, "auto_precision", lambda: "float32")
    assert "no bfloat16 units" in train_cli.slow_cpu_note("float32")
    assert train_cli.slow_cpu_note("mixed_bfloat16") == ""
    monkeypatch.setattr(train_cli, "auto_precision", lambda: "mixed_bfloat16")
    assert train_cli.slow_cpu_note("float32") == ""  # float32 chosen on a CPU that has them
