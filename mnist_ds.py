"""MNIST for the tutorial's StyleGAN: find the file, check it, and feed it through tf.data.

`load_mnist` looks, in order, at: the path you give (`python train.py --data PATH`), the
`MNIST_PATH` environment variable, Keras' cache `~/.keras/datasets/mnist.npz`, and the full MNIST
shipped with the project in `data/mnist.npz` (checked against its SHA-256; data/README.md gives
its source and licence). Only where that file is missing does it try Keras' download.
"""
import hashlib
import os
import stat
import sys
import zipfile
from pathlib import Path

import numpy as np

from utils import file_mode, first_line, memory_bytes, to_unit_range

SHIPPED_PATH = Path(__file__).resolve().parent / "data" / "mnist.npz"
SHIPPED_SHA256 = "06af5dfe73b70e3bc1c36439982b18a8d76803db9b544f6fdf838a37fbb01b64"
KERAS_CACHE = Path("~/.keras/datasets/mnist.npz").expanduser()
IMAGE_SIZE = 28


class DataError(ValueError):
    """A data file that cannot be used; the message is one line saying what and how to fix it."""


def load_mnist(path=None):
    """MNIST as `(x_train, y_train), (x_test, y_test)`: uint8 images [n, 28, 28], int labels."""
    return read_mnist_npz(locate_mnist(path))


def locate_mnist(path=None):
    """The mnist.npz to read: `path`, else MNIST_PATH, else Keras' cache, else the shipped
    file (its checksum checked), else Keras' download. A path given must exist (DataError);
    a damaged shipped file, or no file at all, is a DataError too."""
    for given in (path, os.environ.get("MNIST_PATH")):
        if given:
            given = Path(given).expanduser().absolute()
            if file_mode(given, "data file", DataError) is None:
                raise DataError(f"data file {given} does not exist: give the path of mnist.npz "
                                f"(Keras' format) with --data or MNIST_PATH")
            return given
    if _readable(KERAS_CACHE, say=True):
        return KERAS_CACHE
    if SHIPPED_PATH.exists():
        check_shipped(SHIPPED_PATH)
        return SHIPPED_PATH
    if _downloaded():
        return KERAS_CACHE
    raise DataError(f"no MNIST found: {SHIPPED_PATH} is missing (restore it with `git checkout "
                    f"data/mnist.npz`), and no --data, MNIST_PATH, Keras cache or download")


def check_shipped(path):
    """The shipped file is the one the project was measured on: its SHA-256 must match."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != SHIPPED_SHA256:
        raise DataError(f"{path} is damaged (SHA-256 {digest[:12]}..., expected "
                        f"{SHIPPED_SHA256[:12]}...): restore it with `git checkout data/mnist.npz`"
                        f" or give another mnist.npz with --data")


def _readable(path, say=False):
    """Whether `path` is a usable mnist.npz; with `say`, a place that exists but cannot be used
    (unreadable, not a regular file, damaged) is named on stderr before the lookup goes on."""
    try:
        read_mnist_npz(path)
        return True
    except DataError as error:
        if say and not _missing(path):  # there, but not usable: say why it is passed over
            print(f"note: skipping {path}: {error}", file=sys.stderr)
        return False


def _missing(path):
    """True where nothing is at `path` (not where it cannot be looked at)."""
    try:
        return file_mode(path, "data file", DataError) is None
    except DataError:
        return False


def _downloaded():
    """Keras' MNIST download into KERAS_CACHE; False when offline or the file is unusable."""
    try:
        _download()
    except Exception:  # offline, or Keras cannot reach its server
        return False
    return _readable(KERAS_CACHE)


def _download():
    import keras  # imported here: reading a file should not need Keras

    keras.datasets.mnist.load_data()


def read_mnist_npz(path):
    """Read an npz with Keras' MNIST layout (keys x_train, y_train, x_test, y_test; x_train is
    required). Raises DataError with one line naming the file and the problem."""
    path = Path(path).expanduser()
    mode = file_mode(path, "data file", DataError)
    if mode is None:
        raise DataError(f"data file {path} does not exist: give the path of mnist.npz "
                        f"(Keras' format) with --data or MNIST_PATH")
    if stat.S_ISDIR(mode):
        raise DataError(f"data path {path} is a folder: give the mnist.npz file inside it")
    if not stat.S_ISREG(mode):  # a pipe or a device would block, or never end
        raise DataError(f"data file {path} is not a regular file (a pipe, socket or device): "
                        f"give the mnist.npz file itself")
    _check_sizes(path)
    try:
        loaded = np.load(path, allow_pickle=False)
        if isinstance(loaded, np.lib.npyio.NpzFile):
            with loaded as npz:
                arrays = {key: npz[key] for key in npz.files}
    except (OSError, ValueError, TypeError, AttributeError, zipfile.BadZipFile, EOFError) as error:
        raise DataError(f"data file {path} is not a readable .npz file ({first_line(error)}): "
                        f"give Keras' mnist.npz") from None
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise DataError(f"data file {path} is one array (.npy), not an .npz archive of x_train, "
                        f"y_train, ...: give Keras' mnist.npz")
    if "x_train" not in arrays:
        raise DataError(f"data file {path} has no x_train array (it has: "
                        f"{', '.join(sorted(arrays)) or 'nothing'}): give Keras' mnist.npz")
    x_train = _check_images(arrays["x_train"], path, "x_train")
    x_test = arrays.get("x_test")
    if x_test is not None:
        x_test = _check_images(x_test, path, "x_test")
    return (x_train, arrays.get("y_train")), (x_test, arrays.get("y_test"))


def check_labels(mnist, path):
    """The labels evaluate.py needs: y_train and y_test, one whole number in 0..9 per image of
    x_train and x_test. Raises DataError naming what is wrong."""
    (x_train, y_train), (x_test, y_test) = mnist
    if x_test is None or y_train is None or y_test is None:
        raise DataError(f"data file {path} needs y_train, x_test and y_test besides x_train "
                        f"(Keras' mnist.npz has them)")
    for key, images, labels in (("y_train", x_train, y_train), ("y_test", x_test, y_test)):
        if labels.ndim != 1 or len(labels) != len(images) or labels.dtype.kind not in "iu":
            raise DataError(f"data file {path}: {key} must hold one whole-number label per "
                            f"image ({len(images):,}), got shape {labels.shape} of "
                            f"{labels.dtype}")
        if labels.min() < 0 or labels.max() > 9:
            raise DataError(f"data file {path}: {key} holds labels outside 0..9 "
                            f"({labels.min()}..{labels.max()})")


def _check_sizes(path):
    """Every array's size as its .npy header declares it, before anything is allocated: no
    larger than what the file holds (an edited header would allocate a billion images from a
    few bytes), and all of them no more than half this machine's memory."""
    try:
        declared = list(_declared_sizes(path))
    except (OSError, ValueError, zipfile.BadZipFile, EOFError):
        return  # not a zip of .npy files: np.load says what is wrong
    for name, shape, size, held in declared:
        if size > held:
            raise DataError(f"data file {path}: {name} declares shape {shape} ({size:,} bytes) "
                            f"but holds {held:,}: the file is damaged or edited; give Keras' "
                            f"mnist.npz")
    total = sum(size for _, _, size, _ in declared)
    if total > memory_bytes() // 2:
        raise DataError(f"data file {path} holds {total / 2 ** 30:.1f} GiB of arrays, more than "
                        f"half of this machine's memory: give a smaller file")


def _declared_sizes(path):
    """(member name, shape, bytes declared, bytes held) of every .npy in an npz, from headers."""
    with zipfile.ZipFile(path) as archive:
        for member in archive.infolist():
            if member.filename.endswith(".npy"):
                with archive.open(member) as f:
                    version = np.lib.format.read_magic(f)
                    read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                                   else np.lib.format.read_array_header_2_0)
                    shape, _, dtype = read_header(f)
                size = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
                yield member.filename, shape, size, member.file_size


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


def epoch_order(n, batch_size, seed, first_epoch, epochs, shuffle_buffer=0, first_step=0,
                steps_multiple=1):
    """A tf.data stream of index batches [batch_size] for epochs first_epoch..epochs-1 (counted
    from 0), starting after the first epoch's first `first_step` batches. Epoch e visits the n
    images in an order fixed by (seed, e) alone, so a resumed run sees the same order as one
    that never stopped, also from the middle of an epoch; the last partial batch of an epoch is
    dropped, so every step has the same shape, and so are the last batches that do not fill a
    group of `steps_multiple` (Keras' steps_per_execution runs whole groups).

    shuffle_buffer 0: a full permutation. N > 0: the order of the tutorial's `shuffle(1024)`
    (see buffer_order).
    """
    import tensorflow as tf

    if batch_size > n:
        raise DataError(f"batch size {batch_size} is larger than the {n} training images: "
                        f"lower --batch-size or give more data")
    steps = epoch_steps(n, batch_size, steps_multiple)
    if steps == 0:
        raise DataError(f"an epoch of {n // batch_size} steps is shorter than "
                        f"--steps-per-execution {steps_multiple}: lower it")

    def one_epoch(epoch):
        if shuffle_buffer:
            order = tf.numpy_function(
                lambda e: buffer_order(n, shuffle_buffer, np.random.default_rng([seed, e])),
                [epoch], tf.int64, stateful=False)
            order.set_shape([n])
        else:
            order = tf.random.experimental.stateless_shuffle(
                tf.range(n, dtype=tf.int64), tf.stack([tf.constant(seed, tf.int64), epoch]))
        return (tf.data.Dataset.from_tensor_slices(order).batch(batch_size, drop_remainder=True)
                .take(steps))

    return tf.data.Dataset.range(first_epoch, epochs).flat_map(one_epoch).skip(first_step)


def buffer_order(n, buffer_size, rng):
    """The order in which tf.data's `shuffle(buffer_size)` hands out n items: each next item is
    drawn at random from a buffer of the next buffer_size in file order, and its place in the
    buffer is refilled with the next one. Computed here from `rng`, so it depends on (seed,
    epoch) alone, not on TensorFlow's global seed."""
    pool = list(range(min(buffer_size, n)))
    upcoming, order = len(pool), np.empty(n, np.int64)
    for i, u in enumerate(rng.random(n)):
        k = int(u * len(pool))
        order[i] = pool[k]
        if upcoming < n:
            pool[k], upcoming = upcoming, upcoming + 1
        else:
            pool[k] = pool[-1]
            pool.pop()
    return order


def epoch_steps(n, batch_size, steps_multiple=1):
    """The steps of an epoch over n images: whole batches, in whole groups of steps_multiple."""
    return n // batch_size // steps_multiple * steps_multiple


def make_dataset(images, batch_size, seed=0, first_epoch=0, epochs=1, shuffle_buffer=0,
                 first_step=0, steps_multiple=1):
    """The training pipeline for uint8 images [n, 28, 28]: batches of [batch_size, 28, 28, 1]
    in [-1, 1] (tanh's range), in epoch_order, prefetched. Returns (dataset, steps per epoch)."""
    import tensorflow as tf

    pixels = tf.constant(images)
    batches = (epoch_order(len(images), batch_size, seed, first_epoch, epochs, shuffle_buffer,
                           first_step, steps_multiple)
               .map(lambda index: to_unit_range(tf.gather(pixels, index)[..., None]),
                    num_parallel_calls=tf.data.AUTOTUNE)
               .prefetch(tf.data.AUTOTUNE))
    return batches, epoch_steps(len(images), batch_size, steps_multiple)
