"""Diverging training: stop on a NaN loss, name where, keep the last good checkpoint."""
import train as train_cli
from conftest import SAMPLE


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
