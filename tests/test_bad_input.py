"""Bad input: one line `error: ...`, exit code 2, no traceback, nothing lost."""
import pytest

import train as train_cli
from conftest import SAMPLE
from conftest import train_in_subprocess as train


@pytest.mark.parametrize("flags, message", [
    (["--epochs", 0], "--epochs must be at least 1, got 0"),
    (["--batch-size", -5], "--batch-size must be at least 1"),
    (["--mixing-prob", 1.5], "--mixing-prob must be in [0, 1]"),
    (["--data", "missing.npz"], "missing.npz does not exist"),
    (["--resume"], "--resume: no checkpoint in"),
    (["--batch-size", 100, "--limit", 50], "batch size 100 is larger than the 50"),
    (["--image-size", 64], "MNIST is 28x28"),
    (["--dataset", "nowhere", "--image-size", 48], "with --dataset use one of 32, 64"),
    (["--dataset", "nowhere"], "--dataset nowhere is not a folder"),
    (["--d-steps", 0], "--d-steps must be at least 1"),
    (["--g-lr", 0], "--g-lr must be positive, got 0.0"),
    (["--beta-1", 1], "--beta-1 must be in [0, 1), got 1.0"),
    (["--ema-beta", -0.1], "--ema-beta must be in [0, 1)"),
    (["--r1-gamma", -1], "--r1-gamma must be at least 0"),
    (["--r1-every", 0], "--r1-every must be at least 1"),
    (["--lr-halved-from", -1], "--lr-halved-from must be an epoch"),
    (["--mapping-lr-mult", 0.1, "--precision", "mixed_float16"],
     "needs --precision float32 or mixed_bfloat16"),
    (["--precision", "mixed_float16"], "add --mapping-lr-mult 1 to train in mixed_float16"),
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
