"""Small helpers the scripts share: TensorFlow's quiet start, the one-line errors, pixels,
and checks made before any work starts.
"""
import argparse
import hashlib
import math
import os
import re
import sys
import tempfile
from pathlib import Path

import numpy as np

# TensorFlow's start-up lines on a CPU machine: harmless, and printed before its logging settings
# apply (docs/usage.md); every other line TensorFlow prints then is passed on.
TF_CHATTER = re.compile(r"absl::InitializeLog|oneDNN custom operations are on|"
                        r"Could not find cuda drivers|failed call to cuInit|"
                        r"Unable to register cu(DNN|FFT|BLAS) factory|computation placer|"
                        r"TF-TRT Warning|This TensorFlow binary is optimized|"
                        r"rebuild TensorFlow with the appropriate compiler flags")


def quiet_tensorflow_start():
    """Import TensorFlow and list its devices with file descriptor 2 caught (its C++ logging
    writes there, past Python's sys.stderr), then pass on every caught line that is not known
    start-up chatter. Call it before anything imports TensorFlow. TF_CPP_MIN_LOG_LEVEL 3 (unless
    set) keeps its C++ log quiet for the rest of the run: TensorFlow's errors reach Python as
    exceptions, and TF_CPP_MIN_LOG_LEVEL=0 shows everything."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices()  # where a CUDA build tries the GPU driver
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            for line in caught.read().decode(errors="replace").splitlines(keepends=True):
                if not TF_CHATTER.search(line):
                    sys.stderr.write(line)


# The trained models the project ships (models/README.md: the commands that made them, their
# figures), checked against their SHA-256 on every load, as data/mnist.npz is
MODELS = Path(__file__).resolve().parent / "models"
OUT_DIR = Path("out")  # where generate.py and evaluate.py write by default (git-ignored)
SHIPPED_GENERATOR = str(MODELS / "generator.keras")  # generate.py's and evaluate.py's default
EVAL_CLASSIFIER = str(MODELS / "mnist_classifier.keras")  # evaluate.py's, and --eval-every's
SHIPPED_SHA256 = {
    "generator.keras": "8c14f801e44d523ba7ff096cef49354f62440451055083feedfee39876d18e3a",
    "mnist_classifier.keras": "a33f82daebdf5fc633c1ca5802adb73bbefc5e0cedbbb53ec435879e8d34ad4e",
}


def in_models(path):
    """Whether `path` lies in the project's models/ folder, by whatever route (links included)."""
    return Path(path).absolute().parent.resolve() == MODELS.resolve()


def check_shipped(path):
    """A shipped model must be the file models/README.md measured: UserError if it is missing
    or its bytes differ. Any other path passes (it is checked as a model when loaded)."""
    path = Path(path)
    if not in_models(path) or path.name not in SHIPPED_SHA256:
        return
    restore = f"restore it with `git checkout models/{path.name}`"
    if not path.is_file():
        raise UserError(f"{path} is missing: {restore}")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != SHIPPED_SHA256[path.name]:
        raise UserError(f"{path} is not the shipped file (SHA-256 {digest[:12]}..., expected "
                        f"{SHIPPED_SHA256[path.name][:12]}...): {restore}")


class UserError(Exception):
    """Bad input from the user: the scripts print the one-line message and exit with code 2."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a bad flag gives one line and exit code 2, like every other input error."""

    def error(self, message):
        self.exit(2, f"error: {message} (see --help)\n")


def first_line(error):
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:200]


# ---------------------------------------------------------------------------------------------
# Pixels
# ---------------------------------------------------------------------------------------------
def to_unit_range(images):
    """uint8 pixels 0..255 -> float32 in [-1, 1], tanh's range: numpy in, numpy out; a
    TensorFlow tensor (in a tf.data pipeline) gives a tensor."""
    if isinstance(images, np.ndarray):
        return images.astype(np.float32) / 127.5 - 1.0
    import tensorflow as tf

    return tf.cast(images, tf.float32) / 127.5 - 1.0


def to_uint8(images):
    """[-1, 1] floats [n, h, w, c] -> uint8 [n, h, w] (grey) or [n, h, w, 3] (colour)."""
    images = squeeze_channel(np.asarray(images))
    return np.round((np.clip(images, -1, 1) + 1) * 127.5).astype(np.uint8)


def squeeze_channel(images):
    """[n, h, w, 1] -> [n, h, w] (grey); colour [n, h, w, 3] stays."""
    return images[..., 0] if images.shape[-1] == 1 else images


def all_finite(logs):
    return all(math.isfinite(float(value)) for value in (logs or {}).values())


def inspected(check, args):
    """check(args), with an OSError from looking at a path the user gave (a name too long, a
    loop of links, no permission) as one UserError line."""
    try:
        return check(args)
    except OSError as error:
        raise UserError(f"{error.filename or 'a path given'}: cannot inspect it "
                        f"({error.strerror or error}): give another path") from None


def can_create_in(folder):
    """True when `folder` exists as a writable folder, or could be made: its nearest existing
    parent is a writable folder (output paths are checked before the work that writes them)."""
    try:
        folder = Path(folder).absolute()
        while not folder.exists():
            folder = folder.parent
        return folder.is_dir() and os.access(folder, os.W_OK)
    except OSError:  # a name too long, a loop of links: nothing can be made there
        return False


# ---------------------------------------------------------------------------------------------
# Sizes checked before allocating
# ---------------------------------------------------------------------------------------------
def file_mode(path, what, error_class):
    """os.stat's st_mode of a path the user named (following links), None where nothing is
    there; any other failure (no permission, a name too long, a loop of links) as one line."""
    try:
        return os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as error:
        raise error_class(f"{what} {path} cannot be inspected ({error.strerror}): give a path "
                          f"this user can read") from None


def memory_bytes():
    """This machine's memory in bytes (2**63 where the system cannot tell)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 2 ** 63


def check_fits_in_memory(n_bytes, what, flag):
    """A UserError when n_bytes is more than half of this machine's memory."""
    total = memory_bytes()
    if n_bytes > total // 2:
        raise UserError(f"{flag}: {what} would take {n_bytes / 2 ** 30:.1f} GiB, more than half "
                        f"of this machine's {total / 2 ** 30:.1f} GiB: ask for less")
