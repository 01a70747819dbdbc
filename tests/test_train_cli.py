"""`python train.py` end to end, as a user runs it: outputs, resume, export, one-line errors."""
import csv
import os
import subprocess
import sys

import pytest

import train as train_cli
from conftest import ROOT

SAMPLE = ROOT / "data" / "mnist_sample.npz"


def train(*flags, cwd=ROOT):
    env = {**os.environ, "MNIST_PATH": str(SAMPLE), "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, str(ROOT / "train.py"), *map(str, flags)], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=600)


def test_one_epoch_then_resume_to_two(tmp_path):
    out = tmp_path / "run"
    first = train("--epochs", 1, "--limit", 256, "--out", out)
    assert first.returncode == 0, first.stderr
    assert "4 steps of 64 per epoch" in first.stdout
    for name in ("1.png", "generating.gif", "generator.keras", "history.csv", "losses.png",
                 "checkpoints/ckpt-0001.json", "checkpoints/ckpt-0001.weights.h5"):
        assert (out / name).is_file(), name

    second = train("--epochs", 2, "--limit", 256, "--out", out, "--resume")
    assert second.returncode == 0, second.stderr
    assert "Resuming from ckpt-0001.json: 1 epochs done" in second.stdout
    assert "Epoch 2/2" in second.stdout and "Epoch 1/2" not in second.stdout
    assert (out / "2.png").is_file() and (out / "checkpoints" / "ckpt-0002.json").is_file()
    with open(out / "history.csv") as f:
        assert [row["epoch"] for row in csv.DictReader(f)] == ["0", "1"]


def test_the_exported_generator_loads_with_only_the_layers_module(tmp_path):
    out = tmp_path / "run"
    assert train("--epochs", 1, "--limit", 64, "--out", out).returncode == 0
    script = (
        "import sys, numpy as np, keras; sys.path.insert(0, sys.argv[2]); import stylegan\n"
        "g = keras.saving.load_model(sys.argv[1])\n"
        "rng = np.random.default_rng(0)\n"
        "z = rng.normal(size=(2, 3, 100)).astype('float32')\n"
        "noise = rng.normal(size=(2, 28, 28)).astype('float32')\n"
        "print(float(np.asarray(g([z, noise])).std()), g.get_layer('map').w_avg.shape)\n")
    run = subprocess.run([sys.executable, "-c", script, str(out / "generator.keras"),
                          str(ROOT)], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    std, shape = run.stdout.split(maxsplit=1)
    assert float(std) > 0 and shape.strip() == "(128,)"


@pytest.mark.parametrize("flags, message", [
    (["--epochs", 0], "--epochs must be at least 1, got 0"),
    (["--batch-size", -5], "--batch-size must be at least 1"),
    (["--mixing-prob", 1.5], "--mixing-prob must be in [0, 1]"),
    (["--data", "missing.npz"], "missing.npz does not exist"),
    (["--resume"], "--resume: no checkpoint in"),
    (["--batch-size", 100, "--limit", 50], "batch size 100 is larger than the 50"),
])
def test_bad_input_gives_one_line_and_exit_code_2(tmp_path, capsys, monkeypatch, flags, message):
    monkeypatch.setenv("MNIST_PATH", str(SAMPLE))
    assert train_cli.main([*map(str, flags), "--out", str(tmp_path / "run")]) == 2
    stderr = capsys.readouterr().err
    assert stderr.startswith("error: ") and stderr.count("\n") == 1
    assert message in stderr


def test_the_command_line_exits_with_code_2_and_no_traceback(tmp_path):
    run = train("--latent-dim", 0, "--out", tmp_path / "run")
    assert run.returncode == 2
    assert run.stderr.strip().splitlines()[-1] == "error: --latent-dim must be at least 1, got 0"
    assert "Traceback" not in run.stderr


def test_resume_refuses_a_checkpoint_of_another_network(tmp_path, capsys):
    out = tmp_path / "run"
    assert train_cli.main(["--epochs", "1", "--limit", "64", "--out", str(out),
                           "--data", str(SAMPLE)]) == 0
    capsys.readouterr()
    assert train_cli.main(["--resume", "--latent-dim", "64", "--out", str(out)]) == 2
    assert ("the checkpoint was trained with --latent-dim 100, not 64"
            in capsys.readouterr().err)


def test_an_output_folder_that_cannot_be_written_is_refused(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert train_cli.main(["--out", str(blocker / "run")]) == 2
    assert "cannot write to the output folder" in capsys.readouterr().err


def test_a_diverging_run_stops_and_keeps_the_last_good_checkpoint(tmp_path, capsys):
    out = tmp_path / "run"
    common = ["--limit", "128", "--batch-size", "32", "--out", str(out), "--data", str(SAMPLE)]
    assert train_cli.main(["--epochs", "1", *common]) == 0
    good = (out / "checkpoints" / "ckpt-0001.weights.h5").read_bytes()
    capsys.readouterr()
    assert train_cli.main(["--epochs", "3", "--lr", "1e30", "--resume", *common]) == 1
    err = capsys.readouterr().err
    assert "training diverged: a NaN or infinite loss at epoch 2, step" in err
    assert "(ckpt-0001.json) is kept" in err
    assert (out / "checkpoints" / "ckpt-0001.weights.h5").read_bytes() == good
    assert not (out / "checkpoints" / "ckpt-0002.json").exists()
    assert not (out / "2.png").exists()
