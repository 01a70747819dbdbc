"""Training over several devices and machines: MirroredStrategy's losses, and two
MultiWorkerMirroredStrategy workers on localhost (loopback ports only, bounded in time)."""
import json
import os
import re
import socket
import subprocess
import sys

import numpy as np
import pytest

import checkpoints
import train as train_cli
from conftest import ROOT, SAMPLE, run_on_two_logical_cpus


@pytest.mark.slow
def test_the_gan_loss_is_not_divided_by_the_replicas_twice():
    # Keras' Loss objects divide by the replica count under a strategy; the step divides once
    script = (
        "import losses\n"
        "strategy = tf.distribute.MirroredStrategy(['/cpu:0', '/cpu:1'])\n"
        "loss = strategy.run(tf.function(lambda: losses.binary_crossentropy(\n"
        "    tf.ones((4, 1)), tf.zeros((4, 1)))))\n"
        "print([float(v) for v in strategy.experimental_local_results(loss)])\n")
    run = run_on_two_logical_cpus(script)
    assert run.returncode == 0, run.stderr[-2000:]
    assert np.allclose(json.loads(run.stdout.strip().splitlines()[-1]), [np.log(2)] * 2)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_two_workers(out, *flags):
    ports = [free_port(), free_port()]
    workers = []
    for index in (0, 1):
        tf_config = {"cluster": {"worker": [f"localhost:{port}" for port in ports]},
                     "task": {"type": "worker", "index": index}}
        env = {**os.environ, "TF_CONFIG": json.dumps(tf_config), "TF_CPP_MIN_LOG_LEVEL": "3"}
        workers.append(subprocess.Popen(
            [sys.executable, str(ROOT / "train.py"), "--strategy", "multiworker", "--data",
             str(SAMPLE), "--limit", "64", "--batch-size", "32", "--out", str(out),
             *map(str, flags)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True))
    try:
        return [worker.communicate(timeout=300) + (worker.returncode,) for worker in workers]
    finally:
        for worker in workers:
            worker.kill()


@pytest.mark.slow
def test_two_workers_train_in_step_only_the_chief_writes_and_both_resume(tmp_path):
    out = tmp_path / "run"
    for flags in (["--epochs", 1], ["--epochs", 2, "--resume"]):
        (_, chief_err, chief_code), (worker_out, worker_err, worker_code) = run_two_workers(
            out, *flags)
        assert chief_code == 0 and worker_code == 0, chief_err[-2000:] + worker_err[-2000:]
        assert "Worker 1 of 2: training in step with worker 0" in worker_out
        scratch = re.search(r"Output in (\S+)/:", worker_out)[1]
        assert not os.path.exists(scratch)  # the worker's own files: gone
        digest = re.search(r"generator.keras shares: (\w+)", worker_out)[1]
        chief = checkpoints.load_generator(model=out / "generator.keras")
        assert checkpoints.weights_digest(chief) == digest  # the same weights on both workers
    assert "Epoch 2/2" in worker_out and "Epoch 1/2" not in worker_out  # resumed from the chief's
    assert (out / "history.csv").read_text().count("\n") == 3  # header, epochs 1 and 2
    assert sorted(p.name for p in (out / "checkpoints").glob("*.json")) == ["ckpt-0001.json",
                                                                             "ckpt-0002.json"]


def test_a_missing_or_malformed_tf_config_is_one_line(tmp_path, capsys, monkeypatch):
    for value in (None, "{}", '{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", '
                              '"index": 3}}'):
        if value is None:
            monkeypatch.delenv("TF_CONFIG", raising=False)
        else:
            monkeypatch.setenv("TF_CONFIG", value)
        assert train_cli.main(["--strategy", "multiworker", "--data", str(SAMPLE), "--out",
                               str(tmp_path / "run")]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: --strategy multiworker needs TF_CONFIG") and \
            err.count("\n") == 1, err
    assert not (tmp_path / "run").exists()


def test_the_keras_method_the_gan_overrides_for_multiworker_still_exists():
    # StyleGAN._maybe_symbolic_build skips a step of Keras' fit that fails across workers; if
    # Keras renamed it, the override would silently stop applying
    from keras.src.backend.tensorflow.trainer import TensorFlowTrainer

    assert callable(getattr(TensorFlowTrainer, "_maybe_symbolic_build", None))
