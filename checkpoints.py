"""What a run keeps, and how: the lock on its folder, files written atomically, checkpoints
(written, read and checked, chosen, pruned), the exported generator.

A run folder (train.py's --out) holds one run. A lock file keeps a second process out, and every
file in it is written to a temporary name and renamed, so a kill at any moment leaves the last
complete version of each file. A checkpoint is two files in `<out>/checkpoints/`:
    ckpt-0003.weights.h5  every weight of the StyleGAN model: G (with w_avg), G's moving average,
                          D, the optimizers
    ckpt-0003.json        the epochs completed, the run's config, the loss history, the random
                          state, and one SHA-256 over these fields and the weights file
                          (written last: a json means complete weights)
`ckpt-0003-step000500.*` holds the run after 500 steps of epoch 4 (`--save-every`, or Ctrl-C
or SIGTERM there); `--resume` continues from its step.
"""
import collections
import errno
import fcntl
import hashlib
import itertools
import json
import math
import os
import re
import shutil
import stat
import sys
import warnings
from pathlib import Path

import numpy as np

import config as config_lib
from utils import SHIPPED_GENERATOR, UserError, check_shipped, file_mode, first_line

CHECKPOINT_DIR = "checkpoints"
CHECKPOINT_FORMAT = 5  # the version of the json's layout: the one this code reads
LOCK_NAME = ".lock"
TMP_PREFIX = ".tmp-"
LOSS_KEYS = ("d_loss", "g_loss")  # the history's columns besides the epoch
CHECKPOINT_NAME = re.compile(r"ckpt-(\d{4,})(?:-step(\d{6,}))?\.json")


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


def write_new(path, write):
    """As write_atomically, but never over a file: the finished file is linked to `path` or,
    where that name is taken (even by a file made a moment before, by another process), to the
    first free one of path-2, path-3, ... (numbered); returns the path written."""
    path = Path(path)
    tmp = path.with_name(f"{TMP_PREFIX}{os.getpid()}-{path.name}")
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        for number in itertools.count(1):
            try:
                os.link(tmp, numbered(path, number))  # creates the name or fails: no overwrite
                return numbered(path, number)
            except FileExistsError:
                continue
    finally:
        tmp.unlink(missing_ok=True)


def numbered(path, number):
    """path for 1, else stem-2.png, stem-3.png, ...: the names an output gives way to."""
    return path if number == 1 else path.with_name(f"{path.stem}-{number}{path.suffix}")


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
    """(epochs completed, steps done of the next epoch) as its name says, or None for a name
    that is not a checkpoint's."""
    match = CHECKPOINT_NAME.fullmatch(Path(meta_path).name)
    return match and (int(match[1]), int(match[2] or 0))


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


def save_checkpoint(model, ckpt_dir, epoch, history=(), step=0, watch=None, run=None):
    """Write the checkpoint of `epoch` epochs completed and `step` steps of the next (with the
    next epoch's running mean losses); returns the json's path. `history`: the mean losses of
    every completed epoch, one dict per epoch, which history.csv shows; `watch`: the run's
    callbacks.Watch, which --resume goes on with; `run`: the run's id (run.json). Non-finite
    weights are never written, and a checkpoint of another run under the same name is moved
    aside, not written over."""
    bad = non_finite_weight(model)
    if bad:
        raise NonFiniteWeights(f"not saved: weight {bad} is not finite")
    Path(ckpt_dir).mkdir(parents=True, exist_ok=True)
    meta_path = checkpoint_json(ckpt_dir, epoch, step)
    weights = weights_of(meta_path)
    if (meta_path.exists() or weights.exists()) and not intact_of(meta_path, run):
        move_aside(meta_path)
    write_atomically(weights, model.save_weights)
    meta = {"format": CHECKPOINT_FORMAT, "run": run, "epoch": epoch, "step": step,
            "running_losses": running_losses(model) if step else None,
            "history": list(history), "config": config_lib.to_dict(model.config),
            "watch": watch._asdict() if watch else {},
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
    """A checkpoint's json, checked before anything loads: readable, this version's format,
    named by its epochs and step, unchanged since it was written (its SHA-256 covers the json
    and the weights), a valid config and finite weights. Returns (meta, config.Config); a
    CheckpointError names the file and what is wrong."""
    meta_path, weights = Path(meta_path), weights_of(meta_path)
    try:
        if not stat.S_ISREG(os.stat(meta_path).st_mode):  # a pipe would block for ever
            raise CheckpointError(f"{meta_path} is not a regular file: not a checkpoint")
        meta = json.loads(meta_path.read_text())
        if not isinstance(meta, dict) or "format" not in meta:
            raise CheckpointError(f"{meta_path} is not a checkpoint (no 'format' field): give "
                                  f"the ckpt-*.json of a run that train.py wrote")
        if meta["format"] != CHECKPOINT_FORMAT:
            raise CheckpointError(f"{meta_path} was written by another version of train.py "
                                  f"(checkpoint format {meta['format']!r}; this one reads "
                                  f"{CHECKPOINT_FORMAT}): resume that run with the version "
                                  f"that wrote it, or start a new one")
        if not weights.is_file() or meta.get("sha256") != digest(meta, weights):
            raise CheckpointError(f"checkpoint {meta_path} or its weights {weights.name} were "
                                  f"changed or damaged since they were written (SHA-256)")
        if checkpoint_position(meta_path) is None:
            raise CheckpointError(f"{meta_path.name} is not named as train.py names checkpoints "
                                  f"(ckpt-NNNN.json, ckpt-NNNN-stepSSSSSS.json): a foreign-* "
                                  f"one was moved aside by a run; rename it to use it")
        if checkpoint_position(meta_path) != (meta["epoch"], meta["step"]):
            raise CheckpointError(f"checkpoint {meta_path} is named for other epochs or steps "
                                  f"than it holds ({meta['epoch']} epochs, {meta['step']} steps)")
        _check_fields(meta)
        config = config_lib.from_dict(meta["config"], name_of=lambda key: f"setting {key!r}")
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
    states = meta["rng_state"]
    if not isinstance(meta["watch"], dict) or not isinstance(meta["run"], (str, type(None))):
        raise ValueError("watch or run malformed")
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
    try:
        with warnings.catch_warnings():  # Keras only warns when variables do not fit: refuse
            warnings.simplefilter("error")
            model.load_weights(weights)
    except (Warning, ValueError, OSError, KeyError) as error:  # saved variables that do not fit
        raise CheckpointError(f"checkpoint {weights} does not fit this model "
                              f"({first_line(error)})") from None
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


def running_losses(model):
    """The epoch's running mean losses as {name: [total, count]}: what a mid-epoch checkpoint
    keeps, so the resumed epoch ends with the mean over all its steps."""
    return {m.name: [float(m.total.numpy()), float(m.count.numpy())] for m in model.metrics}


def set_running_losses(model, losses):
    for metric in model.metrics:
        metric.total.assign(losses[metric.name][0])
        metric.count.assign(losses[metric.name][1])


Checkpoint = collections.namedtuple("Checkpoint", "path meta config")
RUN_FILE = "run.json"  # the run's id and first config, written when the run starts
UNKNOWN = object()  # a folder whose run.json is gone: its checkpoints' chain decides


def write_run_file(out, run, config):
    """`<out>/run.json`: the id every checkpoint of the run carries, and its first config."""
    write_text_atomically(Path(out) / RUN_FILE, json.dumps(
        {"run": run, "config": config_lib.to_dict(config)}, indent=2))


def read_run_file(out):
    """The run id of `<out>/run.json`, or UNKNOWN (named on stderr) where it cannot be read."""
    meta = _json(Path(out) / RUN_FILE)
    if meta is None or not isinstance(meta.get("run"), (str, type(None))):
        warn_once(f"warning: {Path(out) / RUN_FILE} is missing or damaged: the run is taken to "
                  f"be the newest chain of good checkpoints")
        return UNKNOWN
    return meta["run"]


def newest_good_checkpoint(ckpt_dir, run=UNKNOWN):
    """The newest Checkpoint (json path, meta, Config) of the run `run` (the folder's run.json
    names it) that passes read_checkpoint's checks and continues the good one before it; a
    checkpoint of another run, or a damaged one, is named and skipped."""
    newest = None
    for meta_path in reversed(list_checkpoints(ckpt_dir, with_weights=False)):
        if run is not UNKNOWN and run_of(meta_path) != run:
            warn_once(f"warning: {meta_path} is not a checkpoint of this run ({RUN_FILE} names "
                      f"another): left alone")
            continue
        try:
            checkpoint = Checkpoint(meta_path, *read_checkpoint(meta_path))
        except CheckpointError as error:
            print(f"warning: {error}; trying the checkpoint before it", file=sys.stderr)
            continue
        foreign = newest and not_continued(newest, checkpoint)
        if newest and not foreign:
            return newest
        if foreign:
            print(f"warning: checkpoint {newest.path} does not continue the run of "
                  f"{checkpoint.path.name} ({foreign}); trying the checkpoint before it",
                  file=sys.stderr)
        newest = checkpoint
    if newest:
        return newest
    raise UserError(f"--resume: no usable checkpoint in {ckpt_dir}: start without --resume, "
                    f"or point --out at the folder of the run to continue")


def not_continued(newer, older):
    """What shows that checkpoint `newer` is not of the run that wrote `older` (a setting
    marked fixed, or the loss history), or None."""
    for name in config_lib.fixed_fields():
        if name in config_lib.PATH_FIELDS:  # the files may have moved between the two
            continue
        if getattr(newer.config, name) != getattr(older.config, name):
            return f"its {name} differs"
    if newer.meta["history"][:len(older.meta["history"])] != older.meta["history"]:
        return "its loss history differs"
    return None


def prune_checkpoints(ckpt_dir, keep, written):
    """After checkpoint `written`: of the checkpoints its run wrote before it (`lineage`), keep
    the newest `keep` of completed epochs, and of the mid-epoch ones only `written` itself (a
    mid-epoch one is superseded by the next checkpoint of any kind). Any other checkpoint (of
    another run, damaged, or of a branch the run left) is named once and left alone."""
    ours, strangers = lineage(ckpt_dir, written)
    for path in strangers:
        warn_once(f"warning: {path} is not a checkpoint of this run (another run's, damaged, "
                  f"or of a branch it left): left alone, and not counted against --keep")
    mid_epoch = lambda path: checkpoint_position(path)[1] != 0
    completed = [p for p in ours if not mid_epoch(p)]
    stale = [p for p in ours if mid_epoch(p) and p != Path(written)]
    for meta_path in completed[:-keep] + stale:
        meta_path.unlink(missing_ok=True)  # the json first: without it the weights are unused
        weights_of(meta_path).unlink(missing_ok=True)


def lineage(ckpt_dir, written):
    """(ours, strangers): the checkpoints in ckpt_dir that the run of checkpoint `written` wrote
    on its way to it (its run id, a loss history that `written`'s continues: earlier epochs, and
    earlier attempts at its own epoch), oldest first; the rest."""
    mine, ours, strangers = _json(written), [], []
    for path in list_checkpoints(ckpt_dir, with_weights=False):
        meta = _json(path)
        history = meta.get("history") if meta else None
        same = (mine is not None and isinstance(history, list)
                and history == mine.get("history", [])[:len(history)]
                and intact_of(path, mine.get("run")))
        (ours if same else strangers).append(path)
    return ours, strangers


def run_of(meta_path):
    """The run id a checkpoint's json names ("" where it cannot be read)."""
    meta = _json(meta_path)
    return meta.get("run", "") if meta else ""


def intact_of(meta_path, run):
    """Whether checkpoint `meta_path` is whole, unchanged since written (its SHA-256) and of the
    run `run`: one the run may replace or prune."""
    meta, weights = _json(meta_path), weights_of(meta_path)
    try:
        return (meta is not None and meta.get("run", "") == run and weights.is_file()
                and meta.get("sha256") == digest(meta, weights))
    except OSError:
        return False


def _json(path):
    """A checkpoint json as a dict, or None where it is not a readable regular file of one."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return None
        meta = json.loads(Path(path).read_text())
    except (OSError, ValueError, RecursionError):
        return None
    return meta if isinstance(meta, dict) else None


def move_aside(meta_path):
    """Files under the name the run writes next that are not an intact checkpoint of the run
    (another run's, damaged, a stray weights file): renamed `foreign-<name>` (or
    `foreign-2-<name>`, ...: never over another file), a name nothing lists or prunes."""
    pair = [path for path in (meta_path, weights_of(meta_path)) if os.path.lexists(path)]
    for i in itertools.count(1):
        prefix = "foreign-" if i == 1 else f"foreign-{i}-"
        if not any(os.path.lexists(path.with_name(prefix + path.name)) for path in pair):
            break
    for path in pair:
        os.rename(path, path.with_name(prefix + path.name))
    warn_once(f"warning: {meta_path.name} in {meta_path.parent} was not an intact checkpoint of "
              f"this run: moved aside as {prefix}{meta_path.name}, not written over")


_warned = set()


def warn_once(message):
    if message not in _warned:
        _warned.add(message)
        print(message, file=sys.stderr)


# ---------------------------------------------------------------------------------------------
# A generator to draw from: a checkpoint's or an exported one (generate.py, evaluate.py)
# ---------------------------------------------------------------------------------------------
def add_generator_source(parser):
    """The --checkpoint / --model choice of generate.py and evaluate.py."""
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--checkpoint", help="a training checkpoint's .json")
    source.add_argument("--model", help="a generator.keras that train.py exported (default: the "
                                        "shipped models/generator.keras)")


def load_generator(checkpoint=None, model=None, raw=False):
    """The generator of a training checkpoint (its .json) or of an exported .keras file (without
    either: the shipped one), checked to be one of this project's generators with finite
    weights. A checkpoint gives its moving average of G's weights where it has one, unless
    raw."""
    if model or not checkpoint:
        generator = _load_exported(Path(model or SHIPPED_GENERATOR))
    else:
        path = Path(checkpoint)
        if not path.is_file() or path.suffix != ".json":
            raise UserError(f"checkpoint {path} is not a checkpoint's .json file: give e.g. "
                            f"visual/stylegan/checkpoints/ckpt-0010.json")
        import stylegan  # here, not at the top: checkpoints.py itself needs no TensorFlow

        meta, config = read_checkpoint(path)
        gan = stylegan.make_gan(config)
        load_checkpoint(gan, path, meta)
        generator = gan.g if raw else gan.sampling_generator
    return generator


def _load_exported(path):
    import keras

    import stylegan  # registers the layers the saved generator names

    check_shipped(path)
    mode = file_mode(path, "model file", UserError)
    if mode is None:
        raise UserError(f"model file {path} does not exist: give the generator.keras that "
                        f"a training run exported")
    if stat.S_ISDIR(mode):
        raise UserError(f"model {path} is a folder (a SavedModel?): give the generator.keras "
                        f"file that a training run wrote beside it")
    if not stat.S_ISREG(mode):
        raise UserError(f"model file {path} is not a regular file (a pipe or device): give the "
                        f"generator.keras that a training run exported")
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


def export_saved_model(generator, folder):
    """The generator as a TensorFlow SavedModel that `tf.saved_model.load` runs without this
    project's code (TF Serving, or any TensorFlow program). Two signatures (Keras adds the first
    as serving_default), z one code for every style slot (no mixing), psi the truncation (1:
    off), images in [-1, 1], computed in the generator's dtype policy:
        serve(z [n, latent] float32, noise [n, H, W] float32, psi [] float32) -> {"images"}
        serve_seed(z, seed [] int64, psi) -> {"images"}, the noise drawn from the seed."""
    import keras
    import tensorflow as tf
    from keras import ops

    import stylegan

    mapping, synthesis = generator.get_layer("map"), generator.get_layer("synthesis")
    n_style, latent = generator.input[0].shape[1:]
    height, width = synthesis.input[1].shape[1:]

    def images(z, noise, psi):
        w = mapping(stylegan.repeat_z(z, n_style))
        w = mapping.truncate(w, ops.cast(psi, w.dtype))
        return {"images": ops.cast(synthesis([w, noise]), "float32")}

    def images_from_seed(z, seed, psi):
        noise = tf.random.stateless_normal([tf.shape(z)[0], height, width],
                                           tf.stack([seed, tf.constant(0, tf.int64)]))
        return images(z, noise, psi)
    z_spec = tf.TensorSpec([None, latent], tf.float32, name="z")
    psi_spec = tf.TensorSpec([], tf.float32, name="psi")
    noise_spec = tf.TensorSpec([None, height, width], tf.float32, name="noise")
    archive = keras.export.ExportArchive()
    archive.track(generator)
    archive.add_endpoint("serve", images, [z_spec, noise_spec, psi_spec])
    archive.add_endpoint("serve_seed", images_from_seed,
                         [z_spec, tf.TensorSpec([], tf.int64, name="seed"), psi_spec])
    archive.write_out(str(folder), verbose=False)
