"""The reliability promises (docs/usage.md, "Stopping, resuming, and what is checked"), one
test per kind of failure: kills at random moments, signals, a second run, two runs at once,
damaged and edited checkpoints, divergence, the data a resumed run trains on, files written
atomically, disk use."""
import csv
import json
import random
import re
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

import train as train_cli
import checkpoints
import utils
from conftest import ROOT, SAMPLE, assert_same_weights, h5_arrays
from conftest import train_in_subprocess as train

QUICK = ["--limit", "64", "--batch-size", "32", "--data", SAMPLE]  # 2 steps an epoch


def start_training(out, *flags):
    return subprocess.Popen([sys.executable, str(ROOT / "train.py"), *map(str, QUICK),
                             "--out", str(out), *map(str, flags)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait_for(path, process, timeout=300):
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, process.stderr.read()
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.05)


def wait_for_progress(out, process, timeout=300):
    """Until the run writes a checkpoint file (it is training, not starting up): True, or False
    when it finished first (nothing was left to train)."""
    started, deadline = time.time(), time.monotonic() + timeout
    while not any(p.stat().st_mtime > started for p in (out / "checkpoints").glob("*")
                  if p.exists()):
        if process.poll() is not None:
            assert process.returncode == 0, process.stderr.read()
            return False
        assert time.monotonic() < deadline, "no checkpoint written"
        time.sleep(0.05)
    return True


def history_epochs(out):
    with open(out / "history.csv") as f:
        return [int(row["epoch"]) for row in csv.DictReader(f)]


def check_run_folder(out):
    """Every checkpoint readable, finite and named by its completed epochs; history.csv one row
    per completed epoch up to the newest checkpoint's; no temporary file once nothing runs."""
    newest = 0
    for meta_path in checkpoints.list_checkpoints(out / "checkpoints"):
        meta, _ = checkpoints.read_checkpoint(meta_path)  # SHA-256, format, config, history
        assert meta_path == checkpoints.checkpoint_json(out / "checkpoints", meta["epoch"],
                                                  meta["step"])
        assert (meta["running_losses"] is None) == (meta["step"] == 0)
        arrays = h5_arrays(checkpoints.weights_of(meta_path)).values()
        floats = [a for a in arrays if np.asarray(a).dtype.kind == "f"]
        assert floats and all(np.isfinite(a).all() for a in floats), meta_path
        newest = max(newest, meta["epoch"])
    if (out / "history.csv").exists():
        epochs = history_epochs(out)
        assert epochs == list(range(1, len(epochs) + 1)) and len(epochs) <= newest + 1


@pytest.mark.slow
def test_a_run_killed_at_random_moments_resumes_to_one_row_per_epoch(tmp_path):
    out, epochs = tmp_path / "run", 5
    rng = random.Random(0)
    process = start_training(out, "--epochs", epochs, "--keep", 10, "--save-every", 1)
    for signum in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGKILL):
        if not wait_for_progress(out, process):
            break
        time.sleep(rng.uniform(0.0, 2.0))  # mid-step, mid-checkpoint, mid-grid: anywhere
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=120)
        assert "Traceback" not in stderr, stderr
        if signum != signal.SIGKILL:  # handled: a clean stop, or the run had just finished
            assert process.returncode in (0, {signal.SIGINT: 130, signal.SIGTERM: 143}[signum])
        check_run_folder(out)
        resume = ["--resume"] if checkpoints.list_checkpoints(out / "checkpoints") else []
        process = start_training(out, "--epochs", epochs, "--keep", 10, "--save-every", 1,
                                 *resume)
    _, stderr = process.communicate(timeout=600)  # the last one trains what is left
    assert process.returncode == 0, stderr
    check_run_folder(out)
    assert history_epochs(out) == list(range(1, epochs + 1))
    assert not list(out.rglob(checkpoints.TMP_PREFIX + "*"))
    assert (out / "generator.keras").is_file() and (out / f"{epochs}.png").is_file()


@pytest.mark.slow
def test_a_sigterm_while_a_finished_run_shuts_down_does_not_kill_it(tmp_path):
    out, log = tmp_path / "run", tmp_path / "stdout.txt"
    with open(log, "w") as stdout:
        process = subprocess.Popen([sys.executable, str(ROOT / "train.py"), *map(str, QUICK),
                                    "--epochs", "1", "--out", str(out)], cwd=ROOT,
                                   stdout=stdout, stderr=subprocess.PIPE, text=True)
        while "Saved" not in log.read_text():  # its last line: TensorFlow shuts down next
            assert process.poll() is None, process.stderr.read()
            time.sleep(0.01)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=120)
    # 0, or 143 where it landed before the run's last lines (releasing its lock); never -15,
    # the default action of SIGTERM, which Python's shutdown puts back
    assert process.returncode in (0, 143), stderr
    assert (out / "generator.keras").is_file()


@pytest.mark.slow
def test_ctrl_c_mid_epoch_keeps_the_weights_under_their_own_name_and_resume_goes_on(tmp_path):
    out = tmp_path / "run"
    process = start_training(out, "--epochs", 1000, "--limit", 640)  # 20 steps an epoch
    wait_for(out / "checkpoints" / "ckpt-0001.json", process)
    time.sleep(1.0)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    # "1 epoch is saved", "2 epochs are saved": the count and its verb agree
    assert re.search(r"\b(1 epoch is|(?!1 )\d+ epochs are) saved", stderr), stderr
    mid_epoch = list((out / "checkpoints").glob("ckpt-*-step*.json"))
    if mid_epoch:  # stopped mid-epoch (not in the few ms after an epoch's last step)
        meta, _ = checkpoints.read_checkpoint(mid_epoch[0])
        assert 0 < meta["step"] < 20 and (out / f"{meta['epoch'] + 1}-step{meta['step']}.png"
                                          ).is_file()
    done = max(checkpoints.read_checkpoint(p)[0]["epoch"]
               for p in checkpoints.list_checkpoints(out / "checkpoints"))
    resumed = train(*QUICK, "--limit", 640, "--resume", "--epochs", done + 1, "--out", out)
    assert resumed.returncode == 0, resumed.stderr
    assert f"Epoch {done + 1}/{done + 1}" in resumed.stdout
    assert (f"Epoch {done + 1} goes on from step" in resumed.stdout) == bool(mid_epoch)
    assert history_epochs(out) == list(range(1, done + 2))
    assert not list((out / "checkpoints").glob("*-step*.json"))  # superseded: pruned


@pytest.mark.slow
def test_a_run_killed_after_a_step_checkpoint_goes_on_as_if_it_never_stopped(tmp_path):
    # 20 steps an epoch; the tutorial's Dropout in D, whose random states must resume too
    flags = ["--limit", 640, "--epochs", 2, "--save-every", 4, "--d-dropout", 0.3]
    unbroken = train(*QUICK, *flags, "--out", tmp_path / "unbroken")
    assert unbroken.returncode == 0, unbroken.stderr
    out = tmp_path / "killed"
    process = start_training(out, *flags)
    wait_for(out / "checkpoints" / "ckpt-0000-step000004.json", process)
    process.kill()
    process.wait()
    resumed = train(*QUICK, *flags, "--resume", "--out", out)
    assert resumed.returncode == 0, resumed.stderr
    assert "Epoch 1 goes on from step" in resumed.stdout  # killed long before its 20th step
    counts = [int(count) for count in re.findall(r"^(\d+)/20 \[", resumed.stdout, re.M)]
    assert counts and counts[0] > 4 and counts[-1] == 20  # the bar counts on from step 5
    # the same data from the same step, the same random draws (the Dropout layers' too) and
    # the epoch's running mean losses: the same history and weights as the unbroken run's
    assert (out / "history.csv").read_text() == (tmp_path / "unbroken" / "history.csv"
                                                 ).read_text()
    assert_same_weights(*(run / "checkpoints" / "ckpt-0002.weights.h5"
                          for run in (tmp_path / "unbroken", out)))


@pytest.mark.slow
def test_a_second_run_into_a_used_folder_is_refused_and_changes_nothing(tmp_path, capsys):
    out = tmp_path / "run"
    assert train_cli.main([*map(str, QUICK), "--epochs", "1", "--out", str(out)]) == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    capsys.readouterr()
    assert train_cli.main([*map(str, QUICK), "--epochs", "2", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{out} is not empty" in err and "--resume" in err
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_a_second_process_on_a_locked_folder_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    lock = checkpoints.FolderLock(out)  # as a running train.py holds it
    try:
        assert train_cli.main([*map(str, QUICK), "--out", str(out)]) == 2
        assert "is in use by another train.py" in capsys.readouterr().err
    finally:
        lock.release()
    assert not list(out.glob("[!.]*"))


@pytest.mark.slow
def test_a_damaged_checkpoint_is_refused_by_name_and_resume_takes_the_one_before(tmp_path):
    out = tmp_path / "run"
    assert train(*QUICK, "--epochs", 2, "--out", out).returncode == 0
    weights = out / "checkpoints" / "ckpt-0002.weights.h5"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2: len(data) // 2 + 64] = b"\xff" * 64  # bytes overwritten in place
    weights.write_bytes(bytes(data))
    resumed = train("--resume", "--epochs", 2, "--out", out)
    assert resumed.returncode == 0, resumed.stderr
    assert "ckpt-0002.json or its weights ckpt-0002.weights.h5 were changed" in resumed.stderr
    assert "Resuming from ckpt-0001.json: 1 epochs done" in resumed.stdout
    assert "Epoch 2/2" in resumed.stdout
    assert checkpoints.read_checkpoint(out / "checkpoints" / "ckpt-0002.json")  # written anew


def test_edited_and_foreign_checkpoints_are_named_and_refused(tiny_model, tmp_path, capsys):
    import generate

    meta_path = checkpoints.save_checkpoint(tiny_model, tmp_path, 1, [{"epoch": 1}])
    meta = json.loads(meta_path.read_text())
    weights = checkpoints.weights_of(meta_path)

    def with_digest(m):  # as a hostile user would forge it
        m["sha256"] = checkpoints.digest(m, weights)

    for edit, message in [
            (lambda m: m["config"].update(latent_dim=100), "changed or damaged"),  # a hand edit
            (lambda m: m.update(format=1), "another version of train.py (checkpoint format 1; this one reads 5)"),
            (lambda m: (m["config"].update(mixing_prob=7), with_digest(m)), "mixing_prob"),
            (lambda m: (m["config"].update(colour="red"), with_digest(m)), "unknown setting"),
            (lambda m: (m.update(epoch=2), with_digest(m)), "named for other epochs"),
            (lambda m: (m.update(rng_state="ab"), with_digest(m)), "rng_state"),
            (lambda m: (m.update(step=5), with_digest(m)), "named for other epochs or steps"),
            (lambda m: (m.update(running_losses={"d_loss": [1.0, 1.0]}), with_digest(m)),
             "running_losses"),
            (lambda m: (m["rng_state"].pop(), with_digest(m)), "random states"),
            # another network: variables that Keras would skip with a warning only
            (lambda m: (m["config"].update(ema_beta=0.5), with_digest(m)), "does not fit"),
            (lambda m: m.clear(), "not a checkpoint (no 'format' field)"),
            (lambda m: m.pop("format"), "not a checkpoint (no 'format' field)")]:
        edited = json.loads(json.dumps(meta))
        edit(edited)
        meta_path.write_text(json.dumps(edited))
        assert generate.main(["--checkpoint", str(meta_path), "mix"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1 and message in err, err
        assert str(tmp_path / "ckpt-0001.") in err  # the file is named


def test_nan_weights_are_never_saved_nor_loaded(tiny_model, tmp_path, capsys):
    import generate

    good = checkpoints.save_checkpoint(tiny_model, tmp_path, 1, [{"epoch": 1}])
    tiny_model.mapping.w_avg.assign(np.full(16, np.nan, "float32"))  # a weight no loss sees
    with pytest.raises(checkpoints.NonFiniteWeights):
        checkpoints.save_checkpoint(tiny_model, tmp_path, 2, [{"epoch": 1}, {"epoch": 2}])
    assert checkpoints.list_checkpoints(tmp_path) == [good]
    with h5py.File(checkpoints.weights_of(good), "r+") as h5:  # a NaN written in, the digest forged
        arrays = []
        h5.visititems(lambda name, item: arrays.append(item) if isinstance(item, h5py.Dataset)
                      and item.dtype.kind == "f" and item.size else None)
        arrays[-1][...] = np.nan
    meta = json.loads(good.read_text())
    meta["sha256"] = checkpoints.digest(meta, checkpoints.weights_of(good))
    good.write_text(json.dumps(meta))
    with pytest.raises(checkpoints.CheckpointError, match="NaN or infinite weight"):
        checkpoints.read_checkpoint(good)
    tiny_model.g.save(tmp_path / "nan.keras")
    assert generate.main(["--model", str(tmp_path / "nan.keras"), "mix"]) == 2
    assert "holds a NaN or infinite weight" in capsys.readouterr().err


@pytest.mark.slow
def test_a_diverging_run_stops_and_keeps_the_last_good_checkpoint(tmp_path, capsys):
    out = tmp_path / "run"
    assert train_cli.main([*map(str, QUICK), "--epochs", "1", "--out", str(out)]) == 0
    good = (out / "checkpoints" / "ckpt-0001.weights.h5").read_bytes()
    capsys.readouterr()
    assert train_cli.main(["--epochs", "3", "--lr", "1e30", "--resume", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "training diverged: a NaN or infinite value at epoch 2, step" in err
    assert (out / "checkpoints" / "ckpt-0001.weights.h5").read_bytes() == good
    assert not (out / "checkpoints" / "ckpt-0002.json").exists()
    assert not (out / "2.png").exists()


@pytest.mark.slow
def test_resume_trains_on_the_runs_own_data_and_refuses_another(tmp_path, monkeypatch, capsys):
    out, other = tmp_path / "run", tmp_path / "other.npz"
    np.savez(other, x_train=np.zeros((500, 28, 28), np.uint8))
    assert train_cli.main([*map(str, QUICK), "--epochs", "1", "--out", str(out)]) == 0
    monkeypatch.setenv("MNIST_PATH", str(other))  # a new default: the run must not follow it
    capsys.readouterr()
    assert train_cli.main(["--resume", "--epochs", "2", "--out", str(out)]) == 0
    assert f"on 64 images of {SAMPLE}:" in capsys.readouterr().out
    assert train_cli.main(["--resume", "--epochs", "3", "--data", str(other),
                           "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"trained with --data {SAMPLE}, not --data {other}" in err


def test_a_resumed_run_sees_each_epoch_in_the_same_order_as_an_unbroken_one():
    import mnist_ds

    order = lambda first, step=0: [list(batch.numpy()) for batch in mnist_ds.epoch_order(
        10, 5, seed=3, first_epoch=first, epochs=3, first_step=step)]
    unbroken, resumed = order(0), order(1)
    assert unbroken[2:] == resumed  # epochs 2 and 3 (batches 2..5) as the unbroken run's
    assert unbroken[3:] == order(1, step=1)  # from the middle of epoch 2: its second batch on
    assert sorted(sum(unbroken[:2], [])) == list(range(10))  # every image once an epoch
    assert unbroken[:2] != unbroken[2:4]  # and another order each epoch


def test_a_failed_write_leaves_the_old_file_and_no_temporary_one(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text("old")

    def dies_half_way(tmp):
        tmp.write_text("half of the new")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        checkpoints.write_atomically(path, dies_half_way)
    assert path.read_text() == "old" and list(tmp_path.iterdir()) == [path]


def test_only_the_newest_checkpoints_are_kept(tiny_model, tmp_path):
    rows = []
    for epoch in range(1, 5):
        rows.append({"epoch": epoch})
        checkpoints.prune_checkpoints(tmp_path, 2, checkpoints.save_checkpoint(tiny_model, tmp_path, epoch,
                                                                   rows))
    names = lambda: [p.name for p in checkpoints.list_checkpoints(tmp_path)]
    for stray in ("ckpt-12.json", "ckpt-0003 (copy).json"):  # not named as checkpoints are
        (tmp_path / stray).write_text("{}")
    for step in (200, 10):  # in epoch 5, the second after a resume at a larger batch size
        saved = checkpoints.save_checkpoint(tiny_model, tmp_path, 4, rows, step=step)
        checkpoints.prune_checkpoints(tmp_path, 2, saved)
    assert names() == ["ckpt-0003.json", "ckpt-0004.json", "ckpt-0004-step000010.json"]
    saved = checkpoints.save_checkpoint(tiny_model, tmp_path, 5, [*rows, {"epoch": 5}])
    checkpoints.prune_checkpoints(tmp_path, 2, saved)
    assert names() == ["ckpt-0004.json", "ckpt-0005.json"]  # the mid-epoch one superseded
    assert len(list(tmp_path.glob("*.weights.h5"))) == 2


def test_a_folder_holding_only_a_killed_attempt_s_tensorboard_events_takes_a_fresh_run(tmp_path):
    out = tmp_path / "run"
    (out / "tensorboard").mkdir(parents=True)  # killed in epoch 1: events, lock, no checkpoint
    (out / "tensorboard" / "events.out.tfevents.1.host").write_bytes(b"old")
    (out / checkpoints.LOCK_NAME).touch()
    folder, lock = train_cli.open_run_folder(out, resume=False)
    lock.release()
    assert (out / "tensorboard" / "events.out.tfevents.1.host").read_bytes() == b"old"
    (out / "notes.txt").write_text("the user's")  # anything else still makes it another's
    with pytest.raises(utils.UserError, match="is not empty"):
        train_cli.open_run_folder(out, resume=False)
    other = tmp_path / "other"
    other.mkdir()
    (other / "tensorboard").write_text("a user's file of that name")
    with pytest.raises(utils.UserError, match=r"is not empty \(tensorboard\)"):
        train_cli.open_run_folder(other, resume=False)


def test_a_folder_moved_aside_by_a_write_killed_between_its_renames_comes_back(tmp_path):
    aside = tmp_path / f"{checkpoints.TMP_PREFIX}123-old-generator_savedmodel"
    aside.mkdir()
    (aside / "saved_model.pb").write_bytes(b"whole")
    (tmp_path / f"{checkpoints.TMP_PREFIX}123-generator_savedmodel").mkdir()  # the new, unfinished
    checkpoints.remove_temporary_files(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["generator_savedmodel"]
    assert (tmp_path / "generator_savedmodel" / "saved_model.pb").read_bytes() == b"whole"
    aside.mkdir()  # a second copy aside while the folder is there: the old one goes
    checkpoints.remove_temporary_files(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["generator_savedmodel"]


def test_a_folder_write_that_fails_between_its_renames_puts_the_old_folder_back(tmp_path,
                                                                               monkeypatch):
    target = tmp_path / "generator_savedmodel"
    target.mkdir()
    (target / "saved_model.pb").write_bytes(b"old")
    renames = []

    def replace(src, dst):  # the first rename (old aside) works, the second fails once
        renames.append(dst)
        if len(renames) == 2:
            raise OSError("disk gone")
        real_replace(src, dst)
    real_replace = checkpoints.os.replace
    monkeypatch.setattr(checkpoints.os, "replace", replace)
    write = lambda tmp: (tmp.mkdir(), (tmp / "saved_model.pb").write_bytes(b"new"))
    with pytest.raises(OSError, match="disk gone"):
        checkpoints.write_folder_atomically(target, write)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["generator_savedmodel"]
    assert (target / "saved_model.pb").read_bytes() == b"old"
    checkpoints.write_folder_atomically(target, write)  # and a write that works replaces it
    assert (target / "saved_model.pb").read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["generator_savedmodel"]


def test_a_mid_epoch_resume_with_another_batch_size_trains_the_epoch_from_its_start(
        tiny_model, tmp_path, capsys):
    import dataclasses

    tiny_model.d_loss_tracker.update_state(0.5)
    path = checkpoints.save_checkpoint(tiny_model, tmp_path, 1, [{"epoch": 1}], step=2)
    checkpoint = checkpoints.Checkpoint(path, *checkpoints.read_checkpoint(path))
    assert checkpoint.meta["running_losses"]["d_loss"] == [0.5, 1.0]
    data = lambda **changed: train_cli.TrainingData(
        None, 10, 100, dataclasses.replace(checkpoint.config, **changed))
    assert train_cli.restore(tiny_model, checkpoint, data()) == (1, 2)
    assert "1 epochs done, and 2 steps of epoch 2." in capsys.readouterr().out
    for changed in ({"batch_size": 7}, {"shuffle_buffer": 0}, {"steps_per_execution": 2}):
        assert train_cli.restore(tiny_model, checkpoint, data(**changed)) == (1, 0)
        assert "epoch 2 is trained again from its start" in capsys.readouterr().out
    fewer_steps = train_cli.TrainingData(None, 2, 100, checkpoint.config)  # the data shrank
    assert train_cli.restore(tiny_model, checkpoint, fewer_steps) == (1, 0)


@pytest.mark.slow
def test_a_checkpoint_of_another_run_is_named_and_skipped(tmp_path, capsys):
    from conftest import tiny_gan

    ours = checkpoints.save_checkpoint(tiny_gan(), tmp_path, 1, [{"epoch": 1, "d_loss": 0.5}])
    checkpoints.save_checkpoint(tiny_gan(seed=1), tmp_path, 1, [{"epoch": 1, "d_loss": 0.5}], step=6)
    assert checkpoints.newest_good_checkpoint(tmp_path).path == ours
    err = capsys.readouterr().err
    assert "ckpt-0001-step000006.json does not continue the run of ckpt-0001.json (its seed " \
           "differs)" in err
    checkpoints.save_checkpoint(tiny_gan(), tmp_path, 1, [{"epoch": 1, "d_loss": 0.7}], step=6)
    assert checkpoints.newest_good_checkpoint(tmp_path).path == ours  # another history
    assert "(its loss history differs)" in capsys.readouterr().err


def test_a_signal_while_main_puts_its_handlers_back_is_dropped(monkeypatch):
    real, calls = signal.signal, []

    def interrupted_once(signum, handler):  # as stop_now raises when a signal lands mid-loop
        calls.append(signum)
        if len(calls) == 1:
            raise train_cli.Stopped(signal.SIGTERM)
        return real(signum, handler)

    handlers = {signum: signal.getsignal(signum) for signum in train_cli.EXIT_CODES}
    monkeypatch.setattr(signal, "signal", interrupted_once)
    train_cli.put_back(handlers)  # no Stopped escapes: the finished run keeps its exit code
    assert len(calls) == len(handlers) + 1
    assert all(signal.getsignal(signum) == handler for signum, handler in handlers.items())
