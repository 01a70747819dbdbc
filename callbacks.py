"""The callbacks of a training run: `RunKeeper` (checkpoints, the grid, history.csv, signals,
learning rates), `MixingGrid` (the tutorial's picture, saved each epoch), `TensorBoardLog`
and `EpochFID` (--eval-every).
"""
import collections
import csv
import io
import signal
import sys
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from PIL import Image

from checkpoints import (CHECKPOINT_DIR, LOSS_KEYS, NonFiniteWeights, prune_checkpoints,
                         save_checkpoint, set_running_losses, write_text_atomically)
from mnist_ds import DataError, check_labels, read_mnist_npz
from utils import EVAL_CLASSIFIER, UserError, all_finite, to_unit_range
from visual import grid_inputs, mixing_grid, save_png
from stylegan import crossover_at

HISTORY = "history.csv"
TENSORBOARD = "tensorboard"
EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}  # the shell's 128 + signal number


class EpochFID:
    """evaluate.py's FID for --eval-every: 10,000 single-latent digits of the sampling
    generator against the MNIST test set, in the features of evaluate.py's classifier (a
    float32 model, loaded or trained once before training starts)."""

    def __init__(self, data, classifier_path):
        import evaluate

        self.evaluate = evaluate
        evaluate.check_classifier_path(classifier_path, "--eval-classifier")
        mnist = read_mnist_npz(data)
        try:
            check_labels(mnist, data)
        except DataError as error:
            raise UserError(f"--eval-every: {error}") from None
        run_policy = keras.mixed_precision.dtype_policy()
        keras.mixed_precision.set_dtype_policy("float32")  # the classifier's, as evaluate.py's
        try:
            self.classifier, _ = evaluate.get_classifier(classifier_path, mnist,
                                                         verbose=0, flag="--eval-classifier")
        finally:
            keras.mixed_precision.set_dtype_policy(run_policy)
        self.test_features = evaluate.feature_model(self.classifier).predict(
            to_unit_range(mnist[1][0][..., None]), 500, verbose=0)[0]

    def __call__(self, generator):
        digits = self.evaluate.Evaluator(generator, self.classifier)
        images = digits.single_latent(self.evaluate.SAMPLES)
        return float(self.evaluate.fid(digits.embed(images)[0], self.test_features))


class MixingGrid:
    """The tutorial's picture (训练出来的效果如下) of a model's sampling generator, as
    `<out_dir>/<name>.png`: fixed sources and noise, so successive grids show the same mixes;
    the rows give the style slots up to coarse_size pixels, the columns the rest."""

    def __init__(self, out_dir, config, n=12, zoom=None):
        self.out_dir = Path(out_dir)
        self.coarse_size = config.grid_coarse_size
        self.zero_noise = config.grid_noise == "zeros"  # the tutorial's grid turns noise off
        self.n, self.seed, self.zoom = n, config.seed, zoom  # zoom None: 2 up to 32 px, else 1

    def save(self, model, name):
        size = model.img_shape[0]
        z1, z2, noise = grid_inputs(model.latent_dim, self.n, self.seed, size, self.zero_noise)
        generator = model.sampling_generator
        grid = mixing_grid(generator, z1, z2, noise, crossover_at(generator, self.coarse_size))
        return save_png(grid, self.out_dir / f"{name}.png", self.zoom or (2 if size <= 32 else 1))


# How a run is watched and kept, apart from its recipe (train.py's flags; each checkpoint keeps
# them, and --resume goes on with them unless given anew); eval_classifier "" is the shipped one,
# named so and not by its path, so that a run resumed from another clone still finds it
Watch = collections.namedtuple("Watch", "keep save_every log_every eval_every eval_classifier",
                               defaults=(3, 1000, 50, 0, ""))


def eval_classifier_of(watch):
    return watch.eval_classifier or EVAL_CLASSIFIER


MidEpoch = collections.namedtuple("MidEpoch", "epoch step checkpoint grid")


class RunKeeper(keras.callbacks.Callback):
    """The run's life, in one place. At each epoch start: the epoch's learning rates. At each
    step end: a stop on the first non-finite loss, and every `save_every` steps a mid-epoch
    checkpoint and grid. At each completed epoch end, in this order: the checkpoint, the
    history row, the grid (and with --eval-every the FID). On Ctrl-C or SIGTERM (what a
    scheduler sends before preemption): training stops at the end of the current step (of the
    current call, with --steps-per-execution), which save_interrupted keeps as a mid-epoch
    checkpoint; a second signal stops at once. A signal handler, not the KeyboardInterrupt
    exception, so no signal lands inside TensorFlow or half-way through a file."""

    def __init__(self, out, config, watch, steps_per_epoch, history=(), fid=None, run=None):
        super().__init__()
        self.out, self.config, self.watch, self.run = out, config, watch, run
        self.steps_per_epoch = steps_per_epoch
        self.epoch = self.step = 0  # the epoch in progress and its steps done, from 1
        self.first_step = 0  # the epoch's steps done before this fit (Keras counts from 0)
        self.go_on = None  # (step, running losses) a resumed epoch goes on from
        self.mid_epoch = None  # the last mid-epoch save, a MidEpoch
        self.history = list(history)  # one row per completed epoch, kept in every checkpoint
        self.completed = len(self.history)  # epochs completed and saved
        self.signal = self.diverged_at = None
        self.grid = MixingGrid(out, config)
        self._previous_handlers = {}
        self.lr = config.lr
        self.fid = fid  # an EpochFID, for --eval-every
        self.log = (TensorBoardLog(out / TENSORBOARD, watch.log_every, steps_per_epoch,
                                   config.steps_per_execution) if watch.log_every else None)

    def on_train_begin(self, logs=None):
        for signum in EXIT_CODES:
            self._previous_handlers[signum] = signal.signal(signum, self._on_signal)

    def on_train_end(self, logs=None):
        for signum, handler in self._previous_handlers.items():
            signal.signal(signum, handler)

    def _on_signal(self, signum, frame):
        self.signal = signum
        self.model.stop_training = True
        for either in EXIT_CODES:  # a second signal, of either kind, stops at once
            signal.signal(either, stop_now)

    def go_on_from(self, step, running_losses):
        """The next epoch is the rest of a resumed one: its steps and mean losses so far."""
        self.go_on = (step, running_losses)

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch, self.step = epoch + 1, 0
        if self.go_on:
            self.step, running_losses = self.go_on
            set_running_losses(self.model, running_losses)  # after fit's reset: the epoch's
        self.first_step = self.step
        halve = self.config.lr_halved_from and self.epoch >= self.config.lr_halved_from
        self.lr = self.config.lr * (0.5 if halve else 1.0)
        self.model.d_optimizer.learning_rate = self.lr  # (G's is the same one where shared)
        self.model.g_optimizer.learning_rate = self.lr

    def on_train_batch_end(self, batch, logs=None):
        self.step = self.first_step + batch + 1
        if not all_finite(logs):
            return self.diverge()
        if self.log:
            self.log.step(self.epoch, self.step, logs)
        if self.step < self.steps_per_epoch and reached_multiple(
                self.step, self.watch.save_every, self.config.steps_per_execution):
            self.save_mid_epoch()

    def diverge(self):
        self.diverged_at = (self.epoch, self.step)
        self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        if self.go_on:  # the rest of a resumed epoch is a fit of its own: whole epochs follow
            self.go_on, self.model.stop_training = None, True
        if self.step < self.steps_per_epoch or self.diverged_at:
            return  # cut short: no checkpoint, row or grid of it
        row = {"epoch": self.epoch, **{key: float(logs[key]) for key in LOSS_KEYS}}
        try:
            saved = save_checkpoint(self.model, self.out / CHECKPOINT_DIR, self.epoch,
                                    [*self.history, row], watch=self.watch, run=self.run)
        except NonFiniteWeights:
            return self.diverge()
        self.history.append(row)
        self.completed = self.epoch
        prune_checkpoints(self.out / CHECKPOINT_DIR, self.watch.keep, saved)
        write_history(self.out / HISTORY, self.history)  # a copy of the checkpoint's
        grid = self.grid.save(self.model, self.epoch)
        fid = None
        if self.fid and self.epoch % self.watch.eval_every == 0:
            fid = logs["fid"] = self.fid(self.model.sampling_generator)  # the bar shows it
        if self.log:
            self.log.epoch(row, self.lr, grid, fid)

    def save_mid_epoch(self):
        """A checkpoint of the epoch in progress at this step (resume goes on from it), which
        supersedes the epoch's earlier ones, and its grid `<epoch>-step<step>.png`."""
        try:
            saved = save_checkpoint(self.model, self.out / CHECKPOINT_DIR, self.completed,
                                    self.history, step=self.step, watch=self.watch,
                                    run=self.run)
        except NonFiniteWeights:
            return self.diverge()
        prune_checkpoints(self.out / CHECKPOINT_DIR, self.watch.keep, saved)
        grid = self.grid.save(self.model, f"{self.epoch}-step{self.step}")
        self.mid_epoch = MidEpoch(self.epoch, self.step, saved, grid)
        if self.log:
            self.log.grid(self.epoch, self.step, grid)

    def save_interrupted(self):
        """Where a signal cut an epoch short: its mid-epoch checkpoint at that step, and grid
        (saved now unless --save-every just did). Returns what is saved, or None."""
        if self.completed == self.epoch or self.diverged_at or self.step == self.first_step:
            return None  # nothing trained since the last checkpoint
        if not self.mid_epoch or self.mid_epoch[:2] != (self.epoch, self.step):
            self.save_mid_epoch()
        if self.diverged_at:
            return None
        return (f"the weights at that step as {self.mid_epoch.checkpoint.name} and the grid "
                f"{self.mid_epoch.grid.name}")


class ProgressBar(keras.callbacks.Callback):
    """The epoch's bar, counting the epoch's own steps (a resumed epoch goes on at 165/937, not
    1/773) and left at the step reached when training stops (Keras' own bar jumps to the
    epoch's end at Ctrl-C). After the run's first `measure` steps past compiling, one line says
    what the whole run's training steps will take at the speed measured; `eta_note` (from
    train.py) adds why where the machine is slow."""

    WIDTH = 30  # characters of the bar

    def __init__(self, keeper, epochs, measure=30, eta_note=""):
        super().__init__()
        self.keeper, self.epochs, self.measure, self.eta_note = keeper, epochs, measure, eta_note
        self.live = sys.stdout.isatty()  # a terminal redraws one line; a log gets a few lines
        self.timed = None  # (step, time) of this epoch's first step done, after compiling
        self.run_timed = None  # the same for the run, for the whole run's estimate
        self.drawn_at, self.drawn_step = 0.0, None

    def on_epoch_begin(self, epoch, logs=None):
        print(f"Epoch {epoch + 1}/{self.epochs}", flush=True)
        self.timed = None

    def on_train_batch_end(self, batch, logs=None):
        step, now = self.keeper.step, time.time()
        if self.timed is None:
            self.timed = (step, now)
        if self.run_timed is None:
            self.run_timed = (self.steps_done(), now)
        elif self.run_timed is not True:
            self.time_the_run(now)
        total = self.keeper.steps_per_epoch
        if (self.live and now - self.drawn_at >= 0.1) or (
                not self.live and step % max(1, total // 10) == 0 and step < total):
            self.draw(logs, now)  # (a log gets the epoch's last line at its end, with the FID)

    def on_epoch_end(self, epoch, logs=None):
        if self.live or self.drawn_step != self.keeper.step:
            self.draw(logs, time.time())  # the step reached, also when stopped
        if self.live:
            print(flush=True)

    def draw(self, logs, now):
        step, total = self.keeper.step, self.keeper.steps_per_epoch
        first, start = self.timed or (step, now)
        per_step = (now - start) / (step - first) if step > first else 0.0
        filled = self.WIDTH * step // total
        timing = (f" {duration(now - start)}" if step == total else
                  f" {duration(per_step * (total - step))} left, {1000 * per_step:.0f} ms/step"
                  if per_step else "")
        values = "".join(f" - {key}: {float(value):.4f}" for key, value in (logs or {}).items())
        line = f"{step}/{total} [{'=' * filled}{'.' * (self.WIDTH - filled)}]{timing}{values}"
        print(f"\r{line}\033[K" if self.live else line, end="" if self.live else "\n",
              flush=True)
        self.drawn_at, self.drawn_step = now, step

    def steps_done(self):
        return (self.keeper.epoch - 1) * self.keeper.steps_per_epoch + self.keeper.step

    def time_the_run(self, now):
        first, start = self.run_timed
        if self.steps_done() == first:
            return
        done, total = self.steps_done(), self.epochs * self.keeper.steps_per_epoch
        if done - first < self.measure and done < total and \
                self.keeper.step < self.keeper.steps_per_epoch:
            return
        self.run_timed = True  # said once (or never, for a run whose steps are all done)
        if done == total:
            return
        per_step = (now - start) / (done - first)
        print(f"\nMeasured {1000 * per_step:.0f} ms a step: the {total - done:,} steps left take "
              f"about {duration(per_step * (total - done))} on this machine (each epoch's grid "
              f"and checkpoint add a few seconds).{self.eta_note}", flush=True)


def duration(seconds):
    """'1 h 05 min', '13 min 20 s' or '40 s'."""
    seconds = round(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


class TensorBoardLog:
    """The run's `tensorboard/` folder, for `tensorboard --logdir OUT/tensorboard`: every
    `every` steps D's and G's loss (the epoch's running means, as the progress bar shows them);
    at each completed epoch its mean losses, the learning rates and the mixing grid. Steps count
    from the run's first, so a resumed run continues the curves. (TensorFlow appends its event
    files as it goes: they are a log, the one output not written atomically.)"""

    def __init__(self, folder, every, steps_per_epoch, steps_per_call):
        self.writer = tf.summary.create_file_writer(str(folder))
        self.every, self.steps_per_epoch = every, steps_per_epoch
        self.steps_per_call = steps_per_call

    def step(self, epoch, step, logs):
        global_step = self.global_step(epoch, step)
        if reached_multiple(global_step, self.every, self.steps_per_call):
            with self.writer.as_default(step=global_step):
                for key in LOSS_KEYS:
                    tf.summary.scalar(f"steps/{key}", float(logs[key]))

    def epoch(self, row, lr, grid, fid=None):
        with self.writer.as_default(step=row["epoch"]):
            for key in LOSS_KEYS:
                tf.summary.scalar(f"epoch/{key}", row[key])
            if fid is not None:
                tf.summary.scalar("epoch/fid", fid)
            tf.summary.scalar("epoch/learning_rate", lr)
            self._image("mixing_grid", grid)
        self.writer.flush()

    def grid(self, epoch, step, grid):
        """A mid-epoch checkpoint's grid, on the steps' axis."""
        with self.writer.as_default(step=self.global_step(epoch, step)):
            self._image("steps/mixing_grid", grid)
        self.writer.flush()

    def global_step(self, epoch, step):
        """Steps from the run's first: the axis of the step curves and the mid-epoch grids."""
        return (epoch - 1) * self.steps_per_epoch + step

    @staticmethod
    def _image(tag, png):
        image = np.asarray(Image.open(png))
        tf.summary.image(tag, image.reshape(1, *image.shape[:2], -1))


def reached_multiple(step, every, steps_per_call):
    """Whether the call of steps_per_call steps that ended at `step` passed a multiple of
    `every` (0: never): with Keras' steps_per_execution the callbacks see only a call's end."""
    return every > 0 and step // every > (step - steps_per_call) // every


def write_history(path, rows):
    """history.csv: epoch (from 1), d_loss, g_loss; rewritten whole from the checkpoint's rows,
    so it has exactly one row per completed epoch whatever stopped the run before."""
    if not rows:
        return
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomically(path, text.getvalue())


class Stopped(BaseException):
    """Ctrl-C or SIGTERM outside the training loop, or a second one inside it. A BaseException,
    as KeyboardInterrupt is, so no `except Exception` in Keras or TensorFlow swallows it."""


def stop_now(signum, frame):
    raise Stopped(signum)
