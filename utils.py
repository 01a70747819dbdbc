"""The run folder and its checkpoints, the one-line errors, and small helpers the scripts share.

A run folder (train.py's --out) holds one run. A lock file keeps a second process out, and every
file in it is written to a temporary name and renamed, so a kill at any moment leaves the last
complete version of each file. A checkpoint is two files in `<out>/checkpoints/`:
    ckpt-0003.weights.h5  every weight of the StyleGAN model: G (with w_avg), D, the optimizers
    ckpt-0003.json        the epochs completed, the run's config, the loss history, the random
                          state, and one SHA-256 over these fields and the weights file
                          (written last: a json means complete weights)
`ckpt-0003-step000500.*` holds the run after 500 steps of epoch 4 (`--save-every`, or Ctrl-C
or SIGTERM there); `--resume` continues from its step. (`ckpt-0003-interrupted.*`, from format
3, held the weights of a run stopped in epoch 4; resume trains that epoch again from them.)
"""
import argparse
import errno
import fcntl
import hashlib
import json
import math
import os
import re
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

import config as config_lib

# TensorFlow's start-up lines on a CPU machine: harmless, and printed before its logging settings
# apply (README, "A quiet start"); every other line TensorFlow prints then is passed on.
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


CHECKPOINT_DIR = "checkpoints"
CHECKPOINT_FORMAT = 4  # the version of the json's layout; 1 predates config.Config
READABLE_FORMATS = (2, 3, 4)  # 2 lacks the fields of config.BEFORE_FIELD_EXISTED; 2 and 3
# mark an interrupted epoch with `interrupted_at` (retrained from its start) instead of `step`
LOCK_NAME = ".lock"
TMP_PREFIX = ".tmp-"
LOSS_KEYS = ("d_loss", "g_loss")  # the history's columns besides the epoch
CHECKPOINT_NAME = re.compile(r"ckpt-(\d{4,})(?:-step(\d{6,})|(-interrupted))?\.json")


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


# ---------------------------------------------------------------------------------------------
# Files written atomically, the run folder's lock
# ---------------------------------------------------------------------------------------------
def write_atomically(path, write):
    """`write(tmp_path)` writes the file under a temporary name in the same folder, which then
    replaces `path` in one step: readers see the old file or the new one, never half of one.
    The temporary name keeps the suffix (Keras and Pillow pick the format from it)."""
    path = Path(path)
    tmp = path.with_name(f"{TMP_PREFIX}{os.getpid()}-{path.name}")  # two writers never collide
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())  # on disk before the rename, so a power cut cannot leave it empty
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_text_atomically(path, text):
    return write_atomically(path, lambda tmp: Path(tmp).write_text(text))


def write_folder_atomically(path, write):
    """As write_atomically, for a folder (a SavedModel): `write(tmp_folder)`, then one rename
    puts it in place; an old folder at `path` is first moved aside, then deleted (a kill between
    the two renames leaves it aside, and remove_temporary_files puts it back)."""
    path = Path(path)
    tmp, old = (path.with_name(f"{TMP_PREFIX}{os.getpid()}-{tag}{path.name}")
                for tag in ("", "old-"))
    try:
        write(tmp)
        if path.exists():
            os.replace(path, old)
        os.replace(tmp, path)
    except BaseException:  # an error or Ctrl-C between the renames: the old folder goes back
        if old.exists() and not path.exists():
            os.replace(old, path)
        raise
    finally:
        for leftover in (tmp, old):
            shutil.rmtree(leftover, ignore_errors=True)
    return path


def remove_temporary_files(*folders):
    """Delete the temporary files and folders a killed write_atomically or
    write_folder_atomically left in these folders (only names they make, `.tmp-<pid>-<name>`;
    not in subfolders)."""
    ours = re.compile(re.escape(TMP_PREFIX) + r"\d+-(old-)?(.+)")
    for folder in folders:
        for tmp in sorted(Path(folder).glob(TMP_PREFIX + "*")):
            match = ours.fullmatch(tmp.name)
            if not match:
                continue
            if tmp.is_dir() and not tmp.is_symlink():
                original = tmp.with_name(match[2])
                if match[1] and not original.exists():  # killed between the two renames
                    os.replace(tmp, original)
                else:
                    shutil.rmtree(tmp, ignore_errors=True)
            elif tmp.is_file():
                tmp.unlink(missing_ok=True)


class FolderLock:
    """An exclusive lock on a folder for this process's lifetime (fcntl.flock: released by the
    kernel when the process dies, so a killed run never leaves the folder locked)."""

    def __init__(self, folder):
        self.path = Path(folder) / LOCK_NAME
        self.file = open(self.path, "a+")
        try:
            fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            self.file.close()
            if error.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            raise UserError(f"{folder} is in use by another train.py: wait for it to finish, "
                            f"or give another --out") from None
        self.file.truncate(0)
        self.file.write(str(os.getpid()))
        self.file.flush()

    def release(self):
        fcntl.flock(self.file, fcntl.LOCK_UN)
        self.file.close()


# ---------------------------------------------------------------------------------------------
# Checkpoints
# ---------------------------------------------------------------------------------------------
def checkpoint_json(ckpt_dir, epoch, step=0):
    return Path(ckpt_dir) / f"ckpt-{epoch:04d}{f'-step{step:06d}' if step else ''}.json"


def checkpoint_position(meta_path):
    """(epochs completed, steps done of the next epoch, whether it is format 3's
    `-interrupted`) as its name says, or None for a name that is not a checkpoint's."""
    match = CHECKPOINT_NAME.fullmatch(Path(meta_path).name)
    return match and (int(match[1]), int(match[2] or 0), bool(match[3]))


def weights_of(meta_path):
    return Path(meta_path).with_name(Path(meta_path).name[:-len(".json")] + ".weights.h5")


def weights_digest(model):
    """The first 16 hex digits of a SHA-256 over a model's weights, in order: two models with
    the same digest hold the same weights."""
    hasher = hashlib.sha256()
    for variable in model.weights:
        hasher.update(np.ascontiguousarray(np.asarray(variable)).tobytes())
    return hasher.hexdigest()[:16]


def non_finite_weight(model):
    """The path of the first weight holding a NaN or an infinity, or None."""
    for variable in model.weights:
        value = np.asarray(variable)
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            return variable.path
    return None


def save_checkpoint(model, ckpt_dir, epoch, history=(), step=0):
    """Write the checkpoint of `epoch` epochs completed and `step` steps of the next (with the
    next epoch's running mean losses); returns the json's path. `history`: the mean losses of
    every completed epoch, one dict per epoch, which history.csv shows. Non-finite weights are
    never written."""
    bad = non_finite_weight(model)
    if bad:
        raise NonFiniteWeights(f"not saved: weight {bad} is not finite")
    Path(ckpt_dir).mkdir(parents=True, exist_ok=True)
    meta_path = checkpoint_json(ckpt_dir, epoch, step)
    weights = weights_of(meta_path)
    model.build_optimizers()
    write_atomically(weights, model.save_weights)
    meta = {"format": CHECKPOINT_FORMAT, "epoch": epoch, "step": step,
            "running_losses": model.running_losses() if step else None,
            "history": list(history), "config": config_lib.to_dict(model.config),
            "rng_state": [np.asarray(state).tolist() for state in seed_states(model)]}
    meta["sha256"] = digest(meta, weights)
    write_text_atomically(meta_path, json.dumps(meta, indent=2))
    return meta_path


class NonFiniteWeights(Exception):
    """The model's weights hold a NaN or an infinity: they must not be saved."""


def digest(meta, weights):
    """SHA-256 of a checkpoint's json fields (but this one) and its weights file's bytes: any
    change to either, a damaged byte or a hand edit, shows as a mismatch."""
    fields = {key: value for key, value in meta.items() if key != "sha256"}
    hasher = hashlib.sha256(json.dumps(fields, sort_keys=True).encode())
    with open(weights, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            hasher.update(block)
    return hasher.hexdigest()


def list_checkpoints(ckpt_dir, with_weights=True):
    """Every checkpoint json (with its weights beside it, unless with_weights=False), oldest
    first (a mid-epoch one after the completed checkpoint it started from)."""
    found = [(position, path) for path in Path(ckpt_dir).glob("ckpt-*.json")
             # not evaluate.py's ckpt-NNNN.eval.json, written beside a checkpoint
             if (position := checkpoint_position(path))
             and (weights_of(path).is_file() or not with_weights)]
    return [path for _, path in sorted(found)]


def read_checkpoint(meta_path):
    """A checkpoint's json, checked before anything loads: readable, this project's format,
    named by its epochs and step, unchanged since it was written (its SHA-256 covers the json
    and the weights), a valid config and finite weights. Returns (meta, config.Config), meta
    with `step` and `running_losses` whatever its format; a CheckpointError names the file and
    what is wrong."""
    meta_path, weights = Path(meta_path), weights_of(meta_path)
    try:
        meta = json.loads(meta_path.read_text())
        if not isinstance(meta, dict) or "format" not in meta:
            raise CheckpointError(f"{meta_path} is not a checkpoint (no 'format' field): give "
                                  f"the ckpt-*.json of a run that train.py wrote")
        if meta["format"] not in READABLE_FORMATS:
            raise CheckpointError(f"{meta_path} is a checkpoint of another version of train.py "
                                  f"(format {meta['format']!r}): resume that run with the "
                                  f"version that wrote it")
        if not weights.is_file() or meta.get("sha256") != digest(meta, weights):
            raise CheckpointError(f"checkpoint {meta_path} or its weights {weights.name} were "
                                  f"changed or damaged since they were written (SHA-256)")
        if meta["format"] < 4:  # an interrupted epoch was trained again from its start
            interrupted = meta.pop("interrupted_at") is not None
            meta.update(step=0, running_losses=None, interrupted=interrupted)
        if checkpoint_position(meta_path) != (meta["epoch"], meta["step"],
                                              meta.get("interrupted", False)):
            raise CheckpointError(f"checkpoint {meta_path} is named for other epochs or steps "
                                  f"than it holds ({meta['epoch']} epochs, {meta['step']} steps)")
        _check_fields(meta)
        saved = meta["config"]
        if meta["format"] == 2:  # written before these fields existed: the values it had then
            saved = {**config_lib.BEFORE_FIELD_EXISTED, **saved}
        config = config_lib.from_dict(saved, name_of=lambda key: f"setting {key!r}")
        _check_finite_file(weights)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as error:
        raise CheckpointError(f"checkpoint {meta_path} cannot be used ({first_line(error)})") \
            from None
    return meta, config


def _check_fields(meta):
    """The json's own fields have the shapes save_checkpoint gives them."""
    is_int = lambda value: isinstance(value, int) and not isinstance(value, bool)
    pair = lambda value: (isinstance(value, list) and len(value) == 2
                          and all(map(is_int, value)))
    rows, losses = meta["history"], meta["running_losses"]
    sums = lambda value: (isinstance(value, list) and len(value) == 2 and all(
        isinstance(x, float) and math.isfinite(x) for x in value) and value[1] >= 0)
    states = meta["rng_state"] if meta["format"] >= 4 else [meta["rng_state"]]
    if not (is_int(meta["epoch"]) and isinstance(states, list) and all(map(pair, states))
            and is_int(meta["step"]) and meta["step"] >= 0
            and (losses is None if meta["step"] == 0 else (
                isinstance(losses, dict) and sorted(losses) == sorted(LOSS_KEYS)
                and all(map(sums, losses.values()))))
            and [row.get("epoch") for row in rows] == list(range(1, meta["epoch"] + 1))
            and all(math.isfinite(row.get(key, 0.0)) for row in rows for key in LOSS_KEYS)):
        raise ValueError("epoch, step, running_losses, rng_state or history malformed")


def _check_finite_file(weights):
    """Every float array in an .h5 weights file finite (NaNs in G's moving average, which no
    loss sees, included)."""
    import h5py

    arrays = []
    with h5py.File(weights, "r") as h5:
        h5.visititems(lambda name, item: arrays.append((name, item[()]))
                      if isinstance(item, h5py.Dataset) else None)
    for name, array in arrays:
        array = np.asarray(array)
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            raise ValueError(f"{weights.name} holds a NaN or infinite weight ({name})")


class CheckpointError(UserError):
    """A checkpoint that cannot be trusted: unreadable, foreign, edited or damaged."""


def load_checkpoint(model, meta_path, meta):
    """Restore weights, optimizer state and random state into a compiled model. `meta` comes
    from read_checkpoint, which has checked the file (finite weights included)."""
    weights = weights_of(meta_path)
    model.build_optimizers()  # the slots must exist before their saved values can load
    try:
        with warnings.catch_warnings():  # Keras only warns when variables do not fit: refuse
            warnings.simplefilter("error")
            model.load_weights(weights)
    except (Warning, ValueError, OSError, KeyError) as error:  # saved variables that do not fit
        raise CheckpointError(f"checkpoint {weights} does not fit this model "
                              f"({first_line(error)})") from None
    if meta["format"] < 4:  # it kept the training draws' state only, not the dropouts'
        state = model.seed_generator.state
        state.assign(np.asarray(meta["rng_state"], dtype=state.dtype))
        return
    states = seed_states(model)
    if len(states) != len(meta["rng_state"]):
        raise CheckpointError(f"checkpoint {meta_path} holds {len(meta['rng_state'])} random "
                              f"states, the model {len(states)}: it does not fit this model")
    for state, saved in zip(states, meta["rng_state"]):
        state.assign(np.asarray(saved, dtype=state.dtype))


def seed_states(model):
    """The state of every keras.random.SeedGenerator in the model (its training draws' and its
    Dropout layers'), which save_weights leaves out; a resumed run goes on with them."""
    return [v for v in model.variables if v.path.endswith("seed_generator_state")]


def prune_checkpoints(ckpt_dir, keep, written):
    """After checkpoint `written`: keep the newest `keep` checkpoints of completed epochs, and
    of the mid-epoch ones only `written` itself (a mid-epoch one is superseded by the next
    checkpoint of any kind; going by names alone would misjudge a resumed epoch trained again
    at another batch size)."""
    checkpoints = list_checkpoints(ckpt_dir)
    mid_epoch = lambda path: checkpoint_position(path)[1:] != (0, False)
    completed = [p for p in checkpoints if not mid_epoch(p)]
    stale = [p for p in checkpoints if mid_epoch(p) and p != Path(written)]
    for meta_path in completed[:-keep] + stale:
        meta_path.unlink(missing_ok=True)  # the json first: without it the weights are unused
        weights_of(meta_path).unlink(missing_ok=True)


def all_finite(logs):
    return all(math.isfinite(float(value)) for value in (logs or {}).values())


# ---------------------------------------------------------------------------------------------
# A generator to draw from: a checkpoint's or an exported one (generate.py, evaluate.py)
# ---------------------------------------------------------------------------------------------
def add_generator_source(parser):
    """The --checkpoint / --model choice of generate.py and evaluate.py."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", help="a training checkpoint's .json")
    source.add_argument("--model", help="a generator.keras that train.py exported")


def load_generator(checkpoint=None, model=None, raw=False):
    """The generator of a training checkpoint (its .json) or of an exported .keras file, checked
    to be one of this project's generators with finite weights. A checkpoint gives its moving
    average of G's weights where it has one, unless raw."""
    if model:
        generator = _load_exported(Path(model))
    else:
        path = Path(checkpoint)
        if not path.is_file() or path.suffix != ".json":
            raise UserError(f"checkpoint {path} is not a checkpoint's .json file: give e.g. "
                            f"visual/stylegan/checkpoints/ckpt-0005.json")
        import stylegan  # here: loading a .keras file must not need the training code

        meta, config = read_checkpoint(path)
        gan = stylegan.make_gan(config)
        load_checkpoint(gan, path, meta)
        generator = gan.g if raw else gan.sampling_generator
    return generator


def _load_exported(path):
    import keras

    import stylegan  # registers the layers the saved generator names

    if not path.is_file():
        raise UserError(f"model file {path} does not exist: give the generator.keras that "
                        f"a training run exported")
    try:
        generator = keras.saving.load_model(path)
    except Exception as error:  # Keras raises many kinds for a file it cannot read
        raise UserError(f"{path} is not a saved generator ({first_line(error)}): give a "
                        f"generator.keras file") from None
    if not stylegan.is_generator(generator):
        raise UserError(f"{path} is a Keras model but not a generator of this project (it needs"
                        f" inputs z and noise and the layers map and synthesis)")
    bad = non_finite_weight(generator)
    if bad:
        raise UserError(f"{path} holds a NaN or infinite weight ({bad}): export it again from "
                        f"a good checkpoint")
    return generator


def can_create_in(folder):
    """True when `folder` exists as a writable folder, or could be made: its nearest existing
    parent is a writable folder (output paths are checked before the work that writes them)."""
    folder = Path(folder).absolute()
    while not folder.exists():
        folder = folder.parent
    return folder.is_dir() and os.access(folder, os.W_OK)


# ---------------------------------------------------------------------------------------------
# Sizes checked before allocating
# ---------------------------------------------------------------------------------------------
def check_fits_in_memory(n_bytes, what, flag):
    """A UserError when n_bytes is more than half of this machine's memory."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not on this system: cannot tell
        return
    if n_bytes > total // 2:
        raise UserError(f"{flag}: {what} would take {n_bytes / 2 ** 30:.1f} GiB, more than half "
                        f"of this machine's {total / 2 ** 30:.1f} GiB: ask for less")
