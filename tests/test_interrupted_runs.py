"""A run killed at any moment, or stopped with Ctrl-C, resumes without losing finished work."""
import signal
import subprocess
import sys
import time

import keras
import numpy as np

import utils
from conftest import ROOT, SAMPLE
from conftest import train_in_subprocess as train

QUICK = ["--limit", "128", "--batch-size", "32", "--data", SAMPLE]


def start_training(out):
    return subprocess.Popen([sys.executable, str(ROOT / "train.py"), "--epochs", "1000",
                             *map(str, QUICK), "--out", str(out)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait_for(path, process, timeout=300):
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, process.stderr.read()
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.05)


def test_a_run_killed_mid_epoch_resumes_from_its_last_complete_checkpoint(tmp_path):
    out = tmp_path / "run"
    process = start_training(out)
    wait_for(out / "checkpoints" / "ckpt-0002.json", process)
    time.sleep(0.4)  # somewhere in epoch 3: training, drawing the grid or saving
    process.send_signal(signal.SIGKILL)
    process.wait()

    done = utils.read_checkpoint_meta(utils.latest_checkpoint(out / "checkpoints"))["epoch"]
    assert done >= 2
    resumed = train("--resume", "--epochs", done, "--out", out)  # load and export only
    assert resumed.returncode == 0, resumed.stderr
    assert f"Resuming from ckpt-{done:04d}.json: {done} epochs done" in resumed.stdout

    meta_path = utils.latest_checkpoint(out / "checkpoints")
    checkpoint = utils.stylegan_from_settings(utils.read_checkpoint_meta(meta_path)["settings"])
    checkpoint.compile()
    utils.load_checkpoint(checkpoint, meta_path)
    exported = keras.saving.load_model(out / "generator.keras")  # G's moving average
    for a, b in zip(checkpoint.sampling_generator.get_weights(), exported.get_weights(),
                    strict=True):
        np.testing.assert_array_equal(a, b)

    more = train("--resume", "--epochs", done + 1, "--out", out)
    assert more.returncode == 0, more.stderr
    assert f"Epoch {done + 1}/{done + 1}" in more.stdout and f"Epoch {done}/" not in more.stdout
    assert (out / "checkpoints" / f"ckpt-{done + 1:04d}.json").is_file()


def test_ctrl_c_saves_a_checkpoint_and_the_grid_then_resume_goes_on(tmp_path):
    out = tmp_path / "run"
    process = start_training(out)
    wait_for(out / "checkpoints" / "ckpt-0001.json", process)
    time.sleep(0.3)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "Interrupted in epoch" in stderr and "Traceback" not in stderr
    assert list(out.glob("interrupted-*.png"))
    done = utils.read_checkpoint_meta(utils.latest_checkpoint(out / "checkpoints"))["epoch"]
    resumed = train("--resume", "--epochs", done + 1, "--out", out)
    assert resumed.returncode == 0, resumed.stderr
    assert f"Epoch {done + 1}/{done + 1}" in resumed.stdout


def test_a_checkpoint_without_its_json_is_not_used(tiny_model, tmp_path):
    """A kill between writing the weights and the json: the older checkpoint is used."""
    utils.save_checkpoint(tiny_model, tmp_path, 1, settings={})
    utils.save_checkpoint(tiny_model, tmp_path, 2, settings={})
    (tmp_path / "ckpt-0002.json").unlink()  # as if killed between the two writes
    assert utils.latest_checkpoint(tmp_path).name == "ckpt-0001.json"
