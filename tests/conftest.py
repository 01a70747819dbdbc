import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import stylegan  # noqa: E402
from config import Config  # noqa: E402

SAMPLE = ROOT / "tests" / "data" / "mnist_sample.npz"
TINY = dict(latent_dim=8, w_dim=16, filters=8)  # small enough for a test to train in seconds


@pytest.fixture(autouse=True)
def float32_policy():
    """Every test starts in float32 (train.py sets Keras' global dtype policy)."""
    keras.mixed_precision.set_dtype_policy("float32")
    yield
    keras.mixed_precision.set_dtype_policy("float32")


def tiny_gan(**settings):
    """A compiled StyleGAN of TINY widths and the given settings (the tutorial's for the rest)."""
    keras.utils.set_random_seed(0)
    return stylegan.make_gan(Config(**{**TINY, **settings}))


@pytest.fixture
def tiny_model():
    return tiny_gan()


def mix(model, z1, z2, crossover, noise):
    """The images of z1's styles on the layers < crossover and z2's on the rest."""
    z = stylegan.mix_styles(z1, z2, stylegan.slots_before(crossover, model.n_style))
    return stylegan.generate(model.g, z, noise)


def train_in_subprocess(*flags, cwd=ROOT):
    """`python train.py FLAGS` as a user runs it, on the shipped sample."""
    env = {**os.environ, "MNIST_PATH": str(SAMPLE), "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, str(ROOT / "train.py"), *map(str, flags)], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=600)


class Recorder:
    """Stands in for D in an eager train_step: records the images, the mode and the logits of
    each call."""

    def __init__(self, discriminator):
        self.d, self.calls = discriminator, []

    def __call__(self, images, training=False):
        logits = self.d(images, training=training)
        self.calls.append((np.asarray(images), training, np.asarray(logits)))
        return logits

    @property
    def trainable_variables(self):
        return self.d.trainable_variables


def h5_arrays(path):
    """{name: array} of every dataset in an .h5 weights file."""
    import h5py

    arrays = {}
    with h5py.File(path) as h5:
        h5.visititems(lambda name, item: arrays.__setitem__(name, item[()])
                      if isinstance(item, h5py.Dataset) else None)
    return arrays


def assert_same_weights(path_a, path_b):
    a, b = h5_arrays(path_a), h5_arrays(path_b)
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


TWO_LOGICAL_CPUS = (
    "import sys, numpy as np, tensorflow as tf\n"
    "cpu = tf.config.list_physical_devices('CPU')[0]\n"
    "tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()]"
    " * 2)\n"
    "sys.path.insert(0, sys.argv[1])\n")


def run_on_two_logical_cpus(script, *args):
    """`python -c script ROOT ARGS` in a process whose TensorFlow has two logical CPUs (what
    MirroredStrategy's tests run on), with the project importable."""
    return subprocess.run([sys.executable, "-c", TWO_LOGICAL_CPUS + script, str(ROOT),
                           *map(str, args)], capture_output=True, text=True, timeout=600)


@pytest.fixture
def run_folder(tmp_path):
    """A folder that holds a training run, as far as the scripts' guards can tell (a checkpoint
    in its checkpoints/): where no figure or view may be written."""
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "ckpt-0001.json").write_text("{}")
    return run
