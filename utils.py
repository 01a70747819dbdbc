"""Checkpoints that resume a run exactly, and the one-line errors of the command line.

A checkpoint is two files in `<out>/checkpoints/`:
    ckpt-0003.weights.h5  every weight of the StyleGAN model: G (with w_avg), D, both optimizers
    ckpt-0003.json        the epoch, the settings of the run and the random-number state
Both are written to a temporary name and renamed, the json last: a json on disk means its
weights are complete, so a run killed at any moment leaves the last good checkpoint readable.
"""
import argparse
import json
import math
import os
import re
import signal
from pathlib import Path

import keras
import numpy as np

from recipes import MODEL_KEYS

CHECKPOINT_DIR = "checkpoints"


class UserError(Exception):
    """Bad input from the user: the scripts print the one-line message and exit with code 2."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a bad flag gives one line and exit code 2, like every other input error."""

    def error(self, message):
        self.exit(2, f"error: {message} (see --help)\n")


def checkpoint_files(ckpt_dir, epoch):
    stem = Path(ckpt_dir) / f"ckpt-{epoch:04d}"
    return stem.with_name(stem.name + ".weights.h5"), stem.with_name(stem.name + ".json")


def save_checkpoint(model, ckpt_dir, epoch, settings):
    """Write checkpoint `epoch` (the number of completed epochs); returns the json's path."""
    ckpt_dir = Path(ckpt_dir)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    weights_path, meta_path = checkpoint_files(ckpt_dir, epoch)
    tmp_weights = weights_path.with_name(".tmp-" + weights_path.name)
    model.build_optimizers()
    model.save_weights(tmp_weights)
    os.replace(tmp_weights, weights_path)
    meta = {"epoch": epoch, "settings": settings,
            "rng_state": np.asarray(model.seed_generator.state).tolist()}
    _write_atomically(meta_path, json.dumps(meta, indent=2))
    return meta_path


def _write_atomically(path, text):
    tmp = path.with_name(".tmp-" + path.name)
    tmp.write_text(text)
    os.replace(tmp, path)


def list_checkpoints(ckpt_dir):
    """The complete checkpoints' json paths, oldest first."""
    metas = [p for p in Path(ckpt_dir).glob("ckpt-*.json") if re.fullmatch(r"ckpt-\d+", p.stem)]
    complete = [p for p in metas if p.with_suffix(".weights.h5").is_file()]
    return sorted(complete, key=lambda p: int(p.stem.split("-")[1]))


def latest_checkpoint(ckpt_dir):
    checkpoints = list_checkpoints(ckpt_dir)
    return checkpoints[-1] if checkpoints else None


def read_checkpoint_meta(meta_path):
    try:
        return json.loads(Path(meta_path).read_text())
    except (OSError, ValueError) as error:
        raise UserError(f"checkpoint {meta_path} cannot be read ({error}): delete it to resume "
                        f"from the one before") from None


def load_checkpoint(model, meta_path):
    """Restore weights, optimizer state and random state into a compiled model; returns the
    checkpoint's meta (its "epoch" is where training continues)."""
    meta = read_checkpoint_meta(meta_path)
    weights = Path(meta_path).with_suffix(".weights.h5")
    model.build_optimizers()  # the slots must exist before their saved values can load
    try:
        model.load_weights(weights)
    except (ValueError, OSError) as error:  # saved shapes or variables that do not fit
        raise UserError(f"checkpoint {weights} does not fit this model ({_first_line(error)}):"
                        f" use the settings it was trained with") from None
    state = model.seed_generator.state
    state.assign(np.asarray(meta["rng_state"], dtype=state.dtype))
    return meta


def prune_checkpoints(ckpt_dir, keep):
    """Delete all but the newest `keep` checkpoints."""
    for meta_path in list_checkpoints(ckpt_dir)[:-keep]:
        meta_path.with_suffix(".weights.h5").unlink(missing_ok=True)
        meta_path.unlink(missing_ok=True)


def all_finite(logs):
    return all(math.isfinite(float(value)) for value in (logs or {}).values())


class CheckpointCallback(keras.callbacks.Callback):
    """A checkpoint at every completed epoch end, keeping the newest `keep`; never one of an
    epoch cut short (Ctrl-C, a non-finite loss), so NaN weights cannot replace a good one."""

    def __init__(self, ckpt_dir, settings, keep=3):
        super().__init__()
        self.ckpt_dir, self.settings, self.keep = Path(ckpt_dir), settings, keep

    def on_epoch_end(self, epoch, logs=None):
        if epoch_completed(self.model, logs):
            save_checkpoint(self.model, self.ckpt_dir, epoch + 1, self.settings)
            prune_checkpoints(self.ckpt_dir, self.keep)


def epoch_completed(model, logs):
    """False for an epoch that TrainingGuard cut short: fit still calls on_epoch_end then."""
    return not model.stop_training and all_finite(logs)


class TrainingGuard(keras.callbacks.Callback):
    """Stops training cleanly at the end of the current step on Ctrl-C (SIGINT) or at the first
    NaN or infinite loss, and remembers which: `interrupted`, `diverged_at` = (epoch, step),
    both counted from 1. A signal handler, not the KeyboardInterrupt exception, so that Ctrl-C
    never lands inside TensorFlow; a second Ctrl-C stops at once."""

    def __init__(self):
        super().__init__()
        self.epoch = self.step = 0
        self.interrupted = False
        self.diverged_at = None
        self._previous_handler = None

    def on_train_begin(self, logs=None):
        self._previous_handler = signal.signal(signal.SIGINT, self._on_sigint)

    def on_train_end(self, logs=None):
        signal.signal(signal.SIGINT, self._previous_handler)

    def _on_sigint(self, signum, frame):
        self.interrupted = True
        self.model.stop_training = True
        signal.signal(signal.SIGINT, signal.default_int_handler)

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch, self.step = epoch + 1, 0

    def on_train_batch_end(self, batch, logs=None):
        self.step = batch + 1
        if not all_finite(logs):
            self.diverged_at = (self.epoch, self.step)
            self.model.stop_training = True


def load_generator(checkpoint=None, model=None, raw=False):
    """The generator of a training checkpoint (its .json) or of an exported .keras file.
    A checkpoint gives its moving average of G's weights where it has one, unless raw."""
    if model:
        path = Path(model)
        if not path.is_file():
            raise UserError(f"model file {path} does not exist: give the generator.keras that "
                            f"a training run exported")
        try:
            return keras.saving.load_model(path)
        except Exception as error:  # Keras raises many kinds for a file it cannot read
            raise UserError(f"{path} is not a saved generator ({_first_line(error)}): give a "
                            f"generator.keras file") from None
    path = Path(checkpoint)
    if not path.is_file() or path.suffix != ".json":
        raise UserError(f"checkpoint {path} is not a checkpoint's .json file: give e.g. "
                        f"visual/stylegan/checkpoints/ckpt-0005.json")
    gan = stylegan_from_settings(read_checkpoint_meta(path)["settings"])
    gan.compile()
    load_checkpoint(gan, path)
    return gan.g if raw else gan.sampling_generator


def stylegan_from_settings(settings):
    """The StyleGAN model a run's settings describe (the tutorial's recipe for keys a run
    lacks, as in runs that predate presets)."""
    import stylegan  # here: stylegan.py stays free of this module

    image_size = settings.get("image_size") or 28
    return stylegan.StyleGAN(
        latent_dim=settings["latent_dim"], image_size=image_size,
        channels=1 if image_size == 28 else 3, filters=settings.get("filters", 64),
        max_filters=settings.get("max_filters", 256),
        mapping_activation=settings["mapping_activation"],
        loss=settings.get("loss", "nonsaturating"), d_steps=settings.get("d_steps", 1),
        seed=settings.get("seed"), **{key: settings[key] for key in MODEL_KEYS if key in settings})


def _first_line(error):
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
