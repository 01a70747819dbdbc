"""Bad input: one line `error: ...`, exit code 2, no traceback, before any work, nothing lost."""
import numpy as np
import pytest

import train as train_cli
from conftest import SAMPLE
from conftest import train_in_subprocess as train


@pytest.mark.parametrize("flags, message", [
    # numbers out of range, not finite, or of the wrong kind: one check for flags and files
    (["--epochs", 0], "--epochs must be in [1, "),
    (["--batch-size", -5], "--batch-size must be in [1, "),
    (["--mixing-prob", 1.5], "--mixing-prob must be in [0.0, 1.0], got 1.5"),
    (["--seed", -1], "--seed must be in [0, 2147483648), got -1"),
    (["--lr", "nan"], "--lr must be a finite number, got nan"),
    (["--r1-gamma", "inf"], "--r1-gamma must be a finite number"),
    (["--lr", 0], "--lr must be in [1e-12, ...), got 0.0"),
    (["--beta-2", 1], "--beta-2 must be in [0.0, 1.0), got 1.0"),
    (["--ema-beta", -0.1], "--ema-beta must be in [0.0, 1.0)"),
    (["--lr-halved-from", -1], "--lr-halved-from must be in [0, ...), got -1"),
    (["--filters", 10 ** 9], "--filters must be in [1, 4096]"),
    # combinations
    (["--image-size", 64], "MNIST is 28x28"),
    (["--dataset", "nowhere", "--image-size", 48], "--image-size must be one of 28, 32"),
    (["--data", SAMPLE, "--dataset", "nowhere"], "--data and --dataset both given"),
    (["--preset", "tutorial", "--r1-gamma", 1], "R1 needs D without BatchNorm"),
    (["--preset", "tutorial", "--loss", "wgan-gp"], "WGAN-GP needs D without BatchNorm"),
    (["--preset", "tutorial", "--no-d-batchnorm", "--r1-gamma", 1],
     "give --r1-gamma 0 (or train a new run"),
    # a setting the recipe would not read
    (["--preset", "tutorial", "--mixing-prob", 0], "--mixing-prob 0.0: acts with --mixing "
                                                   "crossover only, so this run would ignore it"),
    (["--preset", "tutorial", "--hand-coarse-size", 14], "acts with --hand-weight only"),
    (["--dataset", "nowhere", "--d-kernel", 3], "--d-kernel 3: sets the MNIST discriminator"),
    (["--dataset", "nowhere", "--no-d-batchnorm"], "--no-d-batchnorm: sets the MNIST"),
    (["--jit", "on", "--precision", "mixed_bfloat16"], "XLA cannot compile this step in mixed"),
    (["--batch-size", 1], "--batch-size 2 or more (or --hand-weight 0)"),  # the default's penalty
    (["--hand-weight", 1, "--preset", "tutorial"], "give --hand-weight 0 (or train a new run"),
    (["--shared-optimizer"], "give --r1-gamma 0 --hand-weight 0 (or train a new run"),  # both
    (["--hand-weight", 1, "--dataset", "nowhere", "--image-size", 64], "MNIST only"),
    (["--dataset", "nowhere", "--eval-every", 1], "the FID is measured with an MNIST classifier"),
    (["--steps-per-execution", 5000], "--steps-per-execution must be in [1, 1024]"),
    (["--steps-per-execution", 8, "--limit", 128, "--batch-size", 32],
     "an epoch of 4 steps is shorter than --steps-per-execution 8"),
    (["--eval-every", 1, "--eval-classifier", "clf.h5"], "--eval-classifier clf.h5: give a .keras"),
    (["--save-every", -1], "--save-every must be in [0, 1048576], got -1"),
    (["--keep", 0], "--keep must be in [1, 1048576], got 0"),
    (["--eval-classifier", "clf.keras"], "acts with --eval-every only, so this run would ignore"),
    # data
    (["--data", "missing.npz"], "missing.npz does not exist"),
    (["--dataset", "nowhere"], "nowhere is not a folder"),
    (["--batch-size", 100, "--limit", 50], "batch size 100 is larger than the 50"),
    # runs
    (["--resume"], "holds no run (no checkpoint in checkpoints/)"),
    (["--lr", "-1"], "--lr must be in [1e-12, ...), got -1.0"),
])
def test_bad_input_gives_one_line_and_exit_code_2(tmp_path, capsys, monkeypatch, flags, message):
    monkeypatch.setenv("MNIST_PATH", str(SAMPLE))
    assert train_cli.main([*map(str, flags), "--out", str(tmp_path / "run")]) == 2
    stderr = capsys.readouterr().err
    assert stderr.startswith("error: ") and stderr.count("\n") == 1, stderr
    assert message in stderr
    run = tmp_path / "run"  # no work done: nothing written (a lock file at most)
    assert not run.exists() or [p.name for p in run.iterdir()] in ([], [".lock"])


def test_a_foreign_eval_classifier_is_refused_before_training(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MNIST_PATH", str(SAMPLE))
    foreign = tmp_path / "clf.keras"
    foreign.write_bytes(b"not a model")
    assert train_cli.main(["--eval-every", "1", "--eval-classifier", str(foreign), "--out",
                           str(tmp_path / "run")]) == 2
    stderr = capsys.readouterr().err
    assert f"--eval-classifier {foreign} is not this project's MNIST classifier" in stderr
    assert not list((tmp_path / "run").glob("*.png")) and foreign.read_bytes() == b"not a model"


def test_a_data_file_that_is_not_an_npz_is_named(tmp_path, capsys):
    npy = tmp_path / "x.npy"
    np.save(npy, np.zeros((3, 28, 28), np.uint8))
    assert train_cli.main(["--data", str(npy), "--out", str(tmp_path / "run")]) == 2
    assert f"data file {npy} is one array (.npy), not an .npz archive" in capsys.readouterr().err


@pytest.mark.slow
def test_the_command_line_exits_with_code_2_and_no_traceback(tmp_path):
    run = train("--latent-dim", 0, "--out", tmp_path / "run")
    assert run.returncode == 2
    assert run.stderr.strip().splitlines()[-1].startswith("error: --latent-dim must be in [1, ")
    assert "Traceback" not in run.stderr


def test_an_output_folder_that_cannot_be_written_is_refused(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert train_cli.main(["--out", str(blocker / "run")]) == 2
    assert "cannot write to the output folder" in capsys.readouterr().err
