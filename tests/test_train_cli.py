"""`python train.py` end to end, as a user runs it: outputs, resume, export."""
import csv
import subprocess
import sys

import pytest

from conftest import ROOT
from conftest import train_in_subprocess as train


def test_one_epoch_then_resume_to_two(tmp_path):
    out = tmp_path / "run"
    first = train("--epochs", 1, "--limit", 256, "--out", out)
    assert first.returncode == 0, first.stderr
    assert "4 steps of 64 an epoch" in first.stdout
    for name in ("1.png", "generating.gif", "generator.keras", "history.csv", "losses.png",
                 "checkpoints/ckpt-0001.json", "checkpoints/ckpt-0001.weights.h5"):
        assert (out / name).is_file(), name

    second = train("--epochs", 2, "--limit", 256, "--out", out, "--resume")
    assert second.returncode == 0, second.stderr
    assert "Resuming from ckpt-0001.json: 1 epochs done" in second.stdout
    assert "Epoch 2/2" in second.stdout and "Epoch 1/2" not in second.stdout
    assert (out / "2.png").is_file() and (out / "checkpoints" / "ckpt-0002.json").is_file()
    with open(out / "history.csv") as f:
        assert [row["epoch"] for row in csv.DictReader(f)] == ["1", "2"]


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


def test_auto_precision_picks_bfloat16_only_on_a_cpu_with_bfloat16_units(tmp_path, monkeypatch):
    import train as train_cli

    cpuinfo = tmp_path / "cpuinfo"
    monkeypatch.setattr(train_cli, "CPUINFO", cpuinfo)
    monkeypatch.setattr(train_cli.tf.config, "list_physical_devices", lambda kind: [])
    assert train_cli.auto_precision() == "float32"  # no /proc/cpuinfo: cannot tell
    cpuinfo.write_text("flags : fpu sse avx2 avx512f\n")
    assert train_cli.auto_precision() == "float32"
    cpuinfo.write_text("flags : fpu sse avx2 avx512f avx512_bf16 amx_bf16\n")
    assert train_cli.auto_precision() == "mixed_bfloat16"
    monkeypatch.setattr(train_cli.tf.config, "list_physical_devices", lambda kind: ["GPU:0"])
    assert train_cli.auto_precision() == "float32"  # GPUs were not measured


def resolve(*flags, saved=None):
    import train as train_cli

    return train_cli.resolve_config(train_cli.parse_args(list(map(str, flags))), saved)


def test_presets_give_the_recipe_and_single_flags_change_one_part_of_it():
    from config import PRESETS, Config

    assert resolve() == PRESETS["stylegan"]  # the command line's default: the measured best
    assert PRESETS["tutorial"] == Config()  # Config's defaults: the tutorial's recipe
    tutorial = resolve("--preset", "tutorial", "--no-d-batchnorm", "--r1-gamma", "5",
                       "--no-shared-optimizer")
    assert tutorial.r1_gamma == 5.0 and not tutorial.d_batchnorm  # the flags win over the preset
    assert tutorial.g_lr == tutorial.d_lr == 0.001 and tutorial.beta_1 == 0.0
    assert tutorial.convs_per_block == 1 and tutorial.preset == "tutorial"
    both = resolve("--lr", "0.01", "--d-lr", "0.002")
    assert both.g_lr == 0.01 and both.d_lr == 0.002  # --d-lr wins over --lr


def test_every_config_field_is_a_flag_with_its_meaning_as_help(capsys):
    import train as train_cli
    from config import FIELDS

    with pytest.raises(SystemExit):
        train_cli.parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    for name, field in FIELDS.items():
        flag = "--" + name.replace("_", "-")
        assert flag in text, flag
        assert " ".join(field.metadata["meaning"].split()) in text, name


def test_a_resumed_run_keeps_the_structure_but_may_change_the_schedule():
    from utils import UserError

    saved = resolve()
    with pytest.raises(UserError, match="trained with --styled-to-image, not "
                                        "--no-styled-to-image: drop --no-styled-to-image"):
        resolve("--no-styled-to-image", saved=saved)
    with pytest.raises(UserError, match="trained with --mapping-lr-mult 0.01"):
        resolve("--mapping-lr-mult", "1", saved=saved)
    changed = resolve("--mixing-prob", "0.3", "--lr", "0.0005", saved=saved)
    assert changed.mixing_prob == 0.3 and changed.g_lr == changed.d_lr == 0.0005


def test_the_learning_rates_halve_from_the_given_epoch_on(tmp_path):
    import train as train_cli
    from stylegan import make_gan

    config = resolve("--lr", "0.002", "--lr-halved-from", "3", "--precision", "float32")
    model = make_gan(config)
    keeper = train_cli.RunKeeper(tmp_path, config, steps_per_epoch=1)
    keeper.set_model(model)
    rates = lambda: [float(o.learning_rate) for o in (model.d_optimizer, model.g_optimizer)]
    keeper.on_epoch_begin(1)  # the second epoch: full rates
    assert rates() == pytest.approx([0.002, 0.002])
    keeper.on_epoch_begin(2)  # the third: halved
    assert rates() == pytest.approx([0.001, 0.001])


def test_one_lever_travels_from_flag_to_optimizer_to_checkpoint_to_resume(tmp_path):
    """--adam-epsilon, added as one Config field and one use in StyleGAN.compile: a flag, in
    the optimizers, stored in the checkpoint, read back on --resume and changeable there."""
    import utils
    from stylegan import make_gan

    out = tmp_path / "run"
    first = train("--epochs", 1, "--limit", 64, "--adam-epsilon", 1e-8, "--out", out)
    assert first.returncode == 0, first.stderr
    meta, config = utils.read_checkpoint(out / "checkpoints" / "ckpt-0001.json")
    assert config.adam_epsilon == 1e-8 and meta["config"]["adam_epsilon"] == 1e-8
    model = make_gan(config)
    assert model.g_optimizer.epsilon == model.d_optimizer.epsilon == 1e-8
    assert resolve("--resume", saved=config).adam_epsilon == 1e-8  # left out: the run's own
    assert resolve("--resume", "--adam-epsilon", 1e-6, saved=config).adam_epsilon == 1e-6
