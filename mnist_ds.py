"""MNIST for the tutorial's StyleGAN: find the file, check it, and feed it through tf.data.

`load_mnist` looks, in order, at: the path you give (`python train.py --data PATH`), the
`MNIST_PATH` environment variable, Keras' cache `~/.keras/datasets/mnist.npz`, and Keras' download.
Offline, with none of these, it falls back to the small sample shipped in `data/mnist_sample.npz`
(2,500 training and 500 test digits, all ten classes) and says so.
"""
import os
import zipfile
from pathlib import Path

import numpy as np

SAMPLE_PATH = Path(__file__).resolve().parent / "data" / "mnist_sample.npz"
KERAS_CACHE = Path("~/.keras/datasets/mnist.npz").expanduser()
IMAGE_SIZE = 28


class DataError(ValueError):
    """A data file that cannot be used; the message is one line saying what and how to fix it."""


def load_mnist(path=None, verbose=True):
    """MNIST as `(x_train, y_train), (x_test, y_test)`: uint8 images [n, 28, 28], int labels.

    A path given here or in MNIST_PATH must work (a DataError says why not); the cache and the
    download are tried quietly, and the shipped sample is the last resort.
    """
    for given in (path, os.environ.get("MNIST_PATH")):
        if given:
            return read_mnist_npz(given)
    if KERAS_CACHE.is_file():
        try:
            return read_mnist_npz(KERAS_CACHE)
        except DataError:
            pass  # a broken cache file: try the download, which replaces it
    try:
        return _download()
    except Exception:  # offline, or Keras cannot reach its server: use the sample
        if verbose:
            print(f"MNIST: no full data set found (no --data, MNIST_PATH or {KERAS_CACHE}, and "
                  f"no download); using the {SAMPLE_PATH.name} sample of 2,500 digits. "
                  f"Give the full set with --data PATH/TO/mnist.npz.")
        return read_mnist_npz(SAMPLE_PATH)


def _download():
    import keras  # imported here: reading a file should not need Keras

    (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    return (_check_images(x_train, "download", "x_train"), y_train), (x_test, y_test)


def read_mnist_npz(path):
    """Read an npz with Keras' MNIST layout (keys x_train, y_train, x_test, y_test; x_train is
    required). Raises DataError with one line naming the file and the problem."""
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(f"data file {path} does not exist: give the path of mnist.npz "
                        f"(Keras' format) with --data or MNIST_PATH")
    if path.is_dir():
        raise DataError(f"data path {path} is a folder: give the mnist.npz file inside it")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        raise DataError(f"data file {path} is not a readable .npz file ({error}): give "
                        f"Keras' mnist.npz") from None
    if "x_train" not in arrays:
        raise DataError(f"data file {path} has no x_train array (it has: "
                        f"{', '.join(sorted(arrays)) or 'nothing'}): give Keras' mnist.npz")
    x_train = _check_images(arrays["x_train"], path, "x_train")
    x_test = arrays.get("x_test")
    if x_test is not None:
        x_test = _check_images(x_test, path, "x_test")
    return (x_train, arrays.get("y_train")), (x_test, arrays.get("y_test"))


def _check_images(x, path, key):
    """uint8 [n, 28, 28] (a trailing channel of 1 is dropped), n >= 1."""
    if x.ndim == 4 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.ndim != 3 or x.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise DataError(f"data file {path}: {key} has shape {x.shape}, expected "
                        f"[n, {IMAGE_SIZE}, {IMAGE_SIZE}] grey images")
    if x.dtype != np.uint8:
        raise DataError(f"data file {path}: {key} has dtype {x.dtype}, expected uint8 pixels "
                        f"in 0..255 as in Keras' mnist.npz")
    if len(x) == 0:
        raise DataError(f"data file {path}: {key} holds no images")
    return x


def make_dataset(images, batch_size, seed=None):
    """The training pipeline: scale uint8 [n, 28, 28] to [-1, 1] floats [n, 28, 28, 1] (tanh's
    range), cache, shuffle every epoch, batch (dropping the last partial batch so every step has
    the same shape), prefetch."""
    import tensorflow as tf

    if batch_size > len(images):
        raise DataError(f"batch size {batch_size} is larger than the {len(images)} training "
                        f"images: lower --batch-size or give more data")
    return (tf.data.Dataset.from_tensor_slices(images)
            .map(_to_unit_range, num_parallel_calls=tf.data.AUTOTUNE)
            .cache()
            .shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
            .batch(batch_size, drop_remainder=True)
            .prefetch(tf.data.AUTOTUNE))


def _to_unit_range(image):
    import tensorflow as tf

    return tf.cast(image[..., None], tf.float32) / 127.5 - 1.0
