"""Disk: only the newest --keep checkpoints stay; grids and the exported generator stay."""
import train as train_cli
import utils
from conftest import SAMPLE


def test_only_the_newest_checkpoints_are_kept(tiny_model, tmp_path):
    for epoch in range(1, 5):
        utils.save_checkpoint(tiny_model, tmp_path, epoch, settings={})
        utils.prune_checkpoints(tmp_path, keep=2)
    assert [p.name for p in utils.list_checkpoints(tmp_path)] == ["ckpt-0003.json",
                                                                "ckpt-0004.json"]
    assert len(list(tmp_path.glob("*.weights.h5"))) == 2


def test_a_run_prunes_checkpoints_but_never_grids_or_the_generator(tmp_path):
    out = tmp_path / "run"
    assert train_cli.main(["--epochs", "3", "--keep", "1", "--limit", "64", "--batch-size", "32",
                           "--data", str(SAMPLE), "--out", str(out)]) == 0
    assert [p.name for p in utils.list_checkpoints(out / "checkpoints")] == ["ckpt-0003.json"]
    assert sorted(p.name for p in out.glob("*.png")) == ["1.png", "2.png", "3.png",
                                                         "losses.png"]
    assert (out / "generator.keras").is_file()
