"""Train the tutorial's StyleGAN on MNIST and save a style-mixing grid every epoch.

    python train.py                       # 10 epochs, batch 64, latent 100, the measured best recipe
    python train.py --preset tutorial     # the tutorial's recipe exactly (its figures)
    python train.py --data PATH/mnist.npz # the full MNIST offline
    python train.py --resume              # continue the run in --out from its last checkpoint
    python train.py --dataset FACES/      # a folder of images, 64x64 colour (the tutorial's end)

A run lives in its own folder, --out (default visual/stylegan/, as the tutorial): <epoch>.png
grids, generating.gif, history.csv and losses.png, checkpoints/, and generator.keras (the trained
generator, which `keras.saving.load_model` reloads after `import stylegan`). A fresh run refuses a
folder that holds another run's files; --resume continues the run in it.
"""
import signal
import sys


def exit_while_loading(signum, frame):
    sys.exit(128 + signum)  # nothing written yet: exit at once, with the shell's code


if __name__ == "__main__":  # from the first line: a signal while TensorFlow loads exits cleanly
    for _signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(_signum, exit_while_loading)

import utils  # noqa: E402

utils.quiet_tensorflow_start()  # before Keras loads it: TensorFlow's start-up chatter kept back

import argparse  # noqa: E402
import collections  # noqa: E402
import dataclasses  # noqa: E402
import functools  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import tempfile  # noqa: E402
import uuid  # noqa: E402
from pathlib import Path  # noqa: E402

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

import config as config_lib  # noqa: E402
from callbacks import (EXIT_CODES, HISTORY, TENSORBOARD, EpochFID, ProgressBar,  # noqa: E402
                       RunKeeper, Stopped, Watch, eval_classifier_of, stop_now,
                       write_history)
from checkpoints import (CHECKPOINT_DIR, LOCK_NAME, RUN_FILE, UNKNOWN,  # noqa: E402
                         FolderLock, export_saved_model, list_checkpoints, load_checkpoint,
                         load_generator, newest_good_checkpoint, non_finite_weight,
                         read_run_file, remove_temporary_files, weights_digest,
                         write_atomically, write_folder_atomically, write_run_file)
from config import FIELDS, PRESETS  # noqa: E402
from folder_ds import load_folder, make_folder_dataset  # noqa: E402
from mnist_ds import DataError, locate_mnist, make_dataset, read_mnist_npz  # noqa: E402
from stylegan import float32_copy, make_gan  # noqa: E402
from utils import ArgumentParser, UserError, first_line  # noqa: E402
from visual import make_gif, plot_losses  # noqa: E402

DEFAULT_PRESET = "stylegan"  # the measured best; Config() itself is the tutorial's recipe
DEFAULT_OUT = "visual/stylegan"
FOLDER_IMAGE_SIZE = 64  # --dataset without --image-size: the tutorial's faces
CPUINFO = Path("/proc/cpuinfo")  # where Linux lists the CPU's instruction sets
SAVED_MODEL = "generator_savedmodel"  # the generator for TensorFlow alone (no project code)


# ---------------------------------------------------------------------------------------------
# Flags -> Config
# ---------------------------------------------------------------------------------------------
def parse_args(argv=None):
    p = ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default=DEFAULT_OUT, help=f"the run's folder (default {DEFAULT_OUT})")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its newest good checkpoint; recipe "
                        "flags left out come from the checkpoint")
    p.add_argument("--strategy", choices=["none", "mirrored", "multiworker"], default="none",
                   help="mirrored: tf.distribute.MirroredStrategy over the visible GPUs (or "
                        "the logical CPUs when there is none); multiworker: "
                        "MultiWorkerMirroredStrategy over the machines of TF_CONFIG, one "
                        "process each, worker 0 writing the run")
    p.add_argument("--jit", nargs="?", choices=["auto", "on", "off"], const="on",
                   default="auto", help="compile the step with XLA: on (--jit alone; float32 "
                                        "only), off, or auto (the default): on with GPUs in "
                                        "float32, else off")
    watch = p.add_argument_group("watching the run (not part of the recipe; on --resume, the "
                                 "run's own unless given)")
    helps = {"keep": "completed-epoch checkpoints kept, the newest",
             "save_every": "a checkpoint and a grid every N steps of an epoch too (0: at epoch "
                           "ends only); --resume continues from that step",
             "log_every": "TensorBoard (the run's tensorboard/): the losses every N steps, and "
                          "per epoch with the grid (0: no TensorBoard)",
             "eval_every": "MNIST: every N epochs, evaluate.py's FID of 10,000 digits against "
                           "the test set, on the bar and in TensorBoard (0: never)",
             "eval_classifier": "the classifier whose features --eval-every measures in "
                                "(trained there once if missing)"}
    defaults = {**Watch._field_defaults, "eval_classifier": "the shipped "
                                                            "models/mnist_classifier.keras"}
    for name, default in Watch._field_defaults.items():
        watch.add_argument(config_lib.flag(name), type=type(default), help=f"{helps[name]} "
                           f"(default {defaults[name]})",
                           metavar="PATH" if isinstance(default, str) else "N")
    recipe = p.add_argument_group(
        "the recipe", f"each defaults to the preset's ({DEFAULT_PRESET} unless --preset; on "
                      f"--resume, the run's own); see config.py")
    for name, field in FIELDS.items():
        kind, meta = config_lib.field_type(name), field.metadata
        options = dict(help=meta["meaning"] + preset_values(name), default=None)
        if kind is bool:
            options["action"] = argparse.BooleanOptionalAction
        else:
            options["type"] = kind
            if kind is str and meta["choices"]:
                options["choices"] = meta["choices"]
        recipe.add_argument(config_lib.flag(name), **options)
    return p.parse_args(argv)


def watch_options(args, saved=None):
    """The run's Watch: the flags given, over the resumed run's (`saved`, a dict) or the
    defaults; each checked."""
    given = {name: getattr(args, name) for name in Watch._fields
             if getattr(args, name) is not None}
    from_run = {name: value for name, value in (saved or {}).items() if name in Watch._fields}
    watch = Watch(**{**Watch()._asdict(), **from_run, **given})
    for name in ("keep", "save_every", "log_every", "eval_every"):  # the counts
        value, least = getattr(watch, name), 1 if name == "keep" else 0
        if type(value) is not int or not least <= value <= config_lib.FIELD_LIMIT:
            raise UserError(f"{config_lib.flag(name)} must be in [{least}, "
                            f"{config_lib.FIELD_LIMIT}], got {value}")
    if not isinstance(watch.eval_classifier, str):
        raise UserError(f"--eval-classifier must be a path, got {watch.eval_classifier!r}")
    not_read_yet = args.resume and saved is None  # the resumed run's own --eval-every
    if "eval_classifier" in given and not watch.eval_every and not not_read_yet:
        raise UserError(f"--eval-classifier {watch.eval_classifier}: acts with --eval-every "
                        f"only, so this run would ignore it: leave it out or add --eval-every N")
    if watch.eval_every:
        import evaluate

        evaluate.check_classifier_path(eval_classifier_of(watch), "--eval-classifier")
    return watch


def preset_values(name):
    """What each preset sets, for a flag's help: " [tutorial 0.3, stylegan 0.2]" or " [both 64]"
    (nothing for a setting both leave empty)."""
    if name == "preset":
        return f" [default: {DEFAULT_PRESET}]"
    values = {preset: getattr(config, name) for preset, config in PRESETS.items()}
    if len(set(values.values())) == 1:
        return f" [both {values['tutorial']}]" if values["tutorial"] != "" else ""
    return " [" + ", ".join(f"{preset} {value}" for preset, value in values.items()) + "]"


def resolve_config(args, saved=None):
    """The run's Config: the flags given, over the resumed run's config (`saved`) or over the
    preset's. A resumed run refuses a flag that would change a `fixed` setting; every run
    refuses a flag for a setting its recipe would not read."""
    given = {name: getattr(args, name) for name in FIELDS if getattr(args, name) is not None}
    for key in config_lib.PATH_FIELDS:
        if given.get(key):
            given[key] = absolute(given[key], config_lib.flag(key))
    if saved is not None:
        check_unchanged(saved, given)
        if saved.dataset and "dataset" not in given and not Path(saved.dataset).is_dir():
            raise UserError(f"--resume: the run's --dataset {saved.dataset} is gone: give the "
                            f"folder's new place with --dataset")
        base = saved
    else:
        base = PRESETS[given.get("preset", DEFAULT_PRESET)]
        if given.get("dataset") and "image_size" not in given:
            given["image_size"] = FOLDER_IMAGE_SIZE
        if given.get("dataset"):
            given = {**config_lib.MNIST_ONLY, **given}
        if given.get("loss") == "wgan-gp" and "beta_2" not in given:
            given["beta_2"] = 0.99  # as the tutorial's face runs
    try:
        config = config_lib.from_dict({**config_lib.to_dict(base), **given})
    except config_lib.ConfigError as error:
        raise UserError(str(error)) from None
    unused = config_lib.unused(config)
    for name in given:
        if name in unused and getattr(args, name) is not None:
            raise UserError(f"{as_flags(name, given[name])}: {unused[name]}, so this run would "
                            f"ignore it: leave it out")
    if config.dataset and args.eval_every:
        raise UserError(f"--eval-every {args.eval_every}: the FID is measured with an MNIST "
                        f"classifier; a folder run has no such yardstick (use pytorch-fid on "
                        f"`generate.py samples --png`)")
    check_xla(config, args.jit)
    return config


def absolute(path, flag):
    """A path the user gave, absolute with its links resolved where that can be done; a loop of
    links or a name too long is refused in one line."""
    try:
        return str(Path(path).expanduser().resolve())
    except (OSError, RuntimeError) as error:  # RuntimeError: a loop of symbolic links
        raise UserError(f"{flag} {path}: cannot resolve it ({first_line(error)}): give "
                        f"another path") from None


def check_unchanged(saved, given):
    for key in config_lib.fixed_fields():
        if key in given and given[key] != getattr(saved, key):
            if key in config_lib.PATH_FIELDS and not Path(getattr(saved, key)).exists():
                continue  # the run's file or folder moved: the new path is taken
            was, now = as_flags(key, getattr(saved, key)), as_flags(key, given[key])
            raise UserError(f"--resume: the run was trained with {was}, not {now}: drop "
                            f"{now.split()[0]} or start a new run in another --out")


def as_flags(key, value):
    """A setting as it is typed: "--d-filters 64", "--styled-to-image", "--no-d-batchnorm"."""
    flag = config_lib.flag(key)
    if isinstance(value, bool):
        return flag if value else "--no-" + flag[2:]
    return f"{flag} {value}"


def gpu_capabilities():
    """The compute capability (major, minor) of each visible GPU; (0, 0) where TensorFlow does
    not say (not CUDA)."""
    return [tuple(tf.config.experimental.get_device_details(gpu).get("compute_capability",
                                                                     (0, 0)))
            for gpu in tf.config.list_physical_devices("GPU")]


def auto_precision():
    """On GPUs: mixed_bfloat16 where every one has compute capability 8.0 or more (bfloat16
    tensor cores, and no loss scaling needed), mixed_float16 with loss scaling on 7.x (float16
    tensor cores only), float32 on older ones (no tensor cores: half precision gains little).
    Estimates from the hardware's specifications: no GPU run has measured them here.
    On a CPU: mixed_bfloat16 where it has bfloat16 units (AVX-512 BF16 or AMX), about 1.4x
    faster a step of the default on a 2-core AMD EPYC with them (84 against 116 ms, docs/speed.md)
    with no loss of quality (docs/results.md); float32 elsewhere (a CPU without them emulates
    bfloat16 slowly)."""
    capabilities = gpu_capabilities()
    if capabilities:
        oldest = min(capabilities)
        return ("mixed_bfloat16" if oldest >= (8, 0) else
                "mixed_float16" if oldest >= (7, 0) else "float32")
    try:
        cpu_flags = CPUINFO.read_text().split()
    except OSError:  # not Linux: no way to tell here
        return "float32"
    return "mixed_bfloat16" if {"avx512_bf16", "amx_bf16"} & set(cpu_flags) else "float32"


def slow_cpu_note(precision):
    """Where the time goes on a CPU without bfloat16 units (most laptops and cloud CPUs): a line
    for the run's time estimate, empty elsewhere."""
    if precision != "float32" or tf.config.list_physical_devices("GPU") \
            or auto_precision() != "float32":
        return ""
    return ("\nThis CPU has no bfloat16 units (AVX-512 BF16 or AMX), so it trains in float32: on "
            "a 2-core CPU with them a step takes 1.4x as long in float32 as in mixed_bfloat16 "
            "(the default recipe: 116 ms against 84; docs/speed.md).")


def use_xla(jit, precision):
    """--jit auto: XLA on GPUs (it fuses the many small ops of a step) in float32, not on a CPU,
    where it measured slower than tf.function (docs/speed.md). XLA refuses the step in mixed
    precision: the gradient of the bilinear upsampling comes out in float32 inside a bfloat16
    or float16 graph (measured on this CPU; the same graph goes to a GPU)."""
    gpus = bool(tf.config.list_physical_devices("GPU"))
    return jit == "on" or (jit == "auto" and gpus and precision == "float32")


def resolved_precision(config):
    return auto_precision() if config.precision == "auto" else config.precision


def check_xla(config, jit):
    precision = resolved_precision(config)
    if jit == "on" and precision != "float32":
        raise UserError(f"--jit on with {precision}: XLA cannot compile this step in mixed "
                        f"precision (bilinear upsampling's gradient); give --precision float32 "
                        f"or leave out --jit")


# ---------------------------------------------------------------------------------------------
# The run folder, the data, the model
# ---------------------------------------------------------------------------------------------
def open_run_folder(out, resume):
    """Create or reopen --out and lock it. One folder, one run: a fresh run needs a new or empty
    folder (nothing of another run, or of the user, is ever overwritten); --resume needs one that
    holds a run. Temporary files a killed run left are removed once the folder is ours."""
    out = Path(out)
    try:
        if resume and not list_checkpoints(out / CHECKPOINT_DIR, with_weights=False):
            raise UserError(f"--resume: {out} holds no run (no checkpoint in "
                            f"{CHECKPOINT_DIR}/): start without --resume, or point --out at "
                            f"the run to continue")
        held = sorted(p.name for p in out.iterdir()  # what a run killed before its first
                      if p.name not in (LOCK_NAME, RUN_FILE)  # checkpoint leaves is no run
                      and not only_events(p)) if out.is_dir() else []
    except OSError as error:  # no permission, a name too long, a loop of links
        raise UserError(f"--out {out}: cannot look inside it ({error.strerror}): choose another "
                        f"folder with --out") from None
    if not resume and held:
        raise UserError(f"{out} is not empty ({', '.join(held[:3])}"
                        f"{', ...' if len(held) > 3 else ''}): continue the run in it with "
                        f"--resume, or give a new folder with --out")
    try:
        out.mkdir(parents=True, exist_ok=True)
        lock = FolderLock(out)
    except OSError as error:
        raise UserError(f"cannot write to the output folder {out} ({error.strerror}): "
                        f"choose another with --out") from None
    remove_temporary_files(out, out / CHECKPOINT_DIR)
    return out, lock


def only_events(path):
    """True for a tensorboard/ folder of TensorFlow event files alone: what an attempt killed
    before its first checkpoint leaves, no run to keep apart (a new run's events join them)."""
    return (path.name == TENSORBOARD and path.is_dir() and not path.is_symlink()
            and all(f.name.startswith("events.out.tfevents.") and f.is_file()
                    for f in path.iterdir()))


TrainingData = collections.namedtuple("TrainingData", "batches steps n_images config")


def load_training_data(config):
    """The TrainingData of MNIST or a --dataset folder: `batches(epoch, step)`, the tf.data
    pipeline from that step of that epoch (both from 0) to the last epoch; the steps of an
    epoch; the number of images; the Config with its data path made explicit."""
    limit = config.limit or None
    try:
        if config.dataset:
            images = load_folder(config.dataset)[:limit]
            make = functools.partial(make_folder_dataset, image_size=config.image_size)
        else:
            path = locate_mnist(config.data or None)
            images = read_mnist_npz(path)[0][0][:limit]
            config, make = dataclasses.replace(config, data=str(path)), make_dataset
        batches = lambda epoch, step: make(
            images, batch_size=config.batch_size, seed=config.seed, first_epoch=epoch,
            epochs=config.epochs, shuffle_buffer=config.shuffle_buffer, first_step=step,
            steps_multiple=config.steps_per_execution)
        _, steps = batches(0, 0)  # and checks the batch size against the images
    except DataError as error:
        raise UserError(str(error)) from None
    return TrainingData(lambda epoch, step: batches(epoch, step)[0], steps, len(images), config)


def make_strategy(name):
    """MirroredStrategy over the GPUs, or over the logical CPUs where there is none (how
    tests/test_folders.py runs it on two logical CPU devices); MultiWorkerMirroredStrategy
    over the workers of TF_CONFIG; else the default strategy."""
    if name == "multiworker":
        worker_index()  # checks TF_CONFIG first: TensorFlow's own errors are tracebacks
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name != "mirrored":
        return tf.distribute.get_strategy()
    devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
    return tf.distribute.MirroredStrategy([d.name for d in devices])


def worker_index():
    """(this worker's index, the number of workers) from TF_CONFIG, the standard description
    of a TensorFlow cluster: {"cluster": {"worker": ["host:port", ...]}, "task": {"type":
    "worker", "index": i}}. Worker 0 is the chief."""
    text = os.environ.get("TF_CONFIG", "")
    try:
        spec = json.loads(text)
        workers, task = spec["cluster"]["worker"], spec["task"]
        index = task["index"]
        valid = (set(spec["cluster"]) == {"worker"} and task["type"] == "worker"
                 and isinstance(workers, list) and workers and isinstance(index, int)
                 and 0 <= index < len(workers))
    except (ValueError, KeyError, TypeError):
        valid = False
    if not valid:
        raise UserError(f"--strategy multiworker needs TF_CONFIG as JSON like "
                        f"'{{\"cluster\": {{\"worker\": [\"host0:port\", \"host1:port\"]}}, "
                        f"\"task\": {{\"type\": \"worker\", \"index\": 0}}}}' (got "
                        f"{text[:80]!r}): see --strategy in docs/usage.md")
    return index, len(workers)


def restore(model, checkpoint, data):
    """Load a checkpoint; returns where training goes on: (epochs done, steps done of the next
    one). (Its optimizers hold the old learning rates: RunKeeper sets this run's each epoch.)"""
    meta, saved = checkpoint.meta, checkpoint.config
    load_checkpoint(model, checkpoint.path, meta)
    epoch, step = meta["epoch"], meta["step"]
    batching = lambda c: (c.batch_size, c.shuffle_buffer, c.steps_per_execution)
    same_steps = batching(saved) == batching(data.config) and step < data.steps
    print(f"Resuming from {checkpoint.path.name}: {epoch} epochs done"
          + (f", and {step} steps of epoch {epoch + 1}" if step else "") + ".")
    if step and not same_steps:
        print(f"--batch-size, --shuffle-buffer, --steps-per-execution or the data changed, so "
              f"step {step} now means other images: epoch {epoch + 1} is trained again from its "
              f"start (from the weights saved at that step), to see every image once.")
        return epoch, 0
    return epoch, step


# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------
def train(args):
    """Check everything, then train; returns the exit code. A fresh run's flags and data are
    checked before its folder is touched; a resumed run's come from the folder."""
    watch_options(args)  # checked before any work
    strategy = make_strategy(args.strategy)  # MultiWorkerMirroredStrategy before any other op
    if args.strategy == "multiworker" and worker_index()[0] > 0:
        return train_as_worker(args, strategy)
    if args.resume:
        out, lock = open_run_folder(args.out, resume=True)
    else:
        data = load_training_data(resolve_config(args))
        check_out_apart(args.out, data.config)
        out, lock = open_run_folder(args.out, resume=False)
    try:
        resume_from, run, known = None, uuid.uuid4().hex, UNKNOWN  # a new run, a new id
        if args.resume:
            known = read_run_file(out)
            resume_from = newest_good_checkpoint(out / CHECKPOINT_DIR, known)
            run = resume_from.meta["run"]
            data = load_training_data(resolve_config(args, resume_from.config))
            check_out_apart(out, data.config)
        if known is UNKNOWN:  # a new run, or one whose run.json was lost
            write_run_file(out, run, data.config)
        return train_in(out, strategy, args, data, resume_from, run)
    finally:
        lock.release()


def check_out_apart(out, config):
    """--out may not lie inside --dataset: the run's own grids would become training images."""
    if config.dataset and Path(absolute(out, "--out")).is_relative_to(config.dataset):
        raise UserError(f"--out {out} lies inside --dataset {config.dataset}: its grids would be "
                        f"trained on as images; give an --out outside the image folder")


def train_as_worker(args, strategy):
    """A worker other than the chief (worker 0) of --strategy multiworker: it trains in step
    with the chief, runs the same code (every collective op must be met by every worker), and
    keeps none of it: its files go to a temporary folder, removed at the end. With --resume it
    reads the chief's newest checkpoint in --out, so --out must be a folder it can reach."""
    index, count = worker_index()
    resume_from = (newest_good_checkpoint(Path(args.out) / CHECKPOINT_DIR,
                                          read_run_file(args.out)) if args.resume else None)
    data = load_training_data(resolve_config(args, resume_from and resume_from.config))
    print(f"Worker {index} of {count}: training in step with worker 0, which writes the run to "
          f"{args.out}/.")
    with tempfile.TemporaryDirectory(prefix="stylegan-worker-") as scratch:
        code = train_in(Path(scratch), strategy, args, data, resume_from,
                        resume_from.meta["run"] if resume_from else None)
        if code == 0:
            generator = load_generator(model=Path(scratch) / "generator.keras")
            print(f"Worker {index} done; its generator's weights digest "
                  f"(checkpoints.weights_digest), "
                  f"which worker 0's generator.keras shares: {weights_digest(generator)}")
        return code


def print_intro(config, n_images, steps, first_epoch, precision, out):
    """What is trained, on what, where it goes, and how to read the time an epoch takes."""
    gpus = len(tf.config.list_logical_devices("GPU"))
    device = f"{gpus} GPU{'s' if gpus > 1 else ''}" if gpus else "the CPU"
    source = config.dataset or config.data
    print(f"Training StyleGAN ({config.preset} recipe, {precision}, on {device}) on {n_images:,} "
          f"images of {source}: {steps} steps of {config.batch_size} an epoch, epochs "
          f"{first_epoch + 1}..{config.epochs}.\n"
          f"Output in {out}/: a mixing grid each epoch, checkpoints, and generator.keras at the "
          f"end.\nThe first step compiles the model (up to a minute); the run's time is said "
          f"after the next steps, and the bar shows the time the epoch has left.")


def train_in(out, strategy, args, data, resume_from, run):
    config, steps = data.config, data.steps
    if config.batch_size % strategy.num_replicas_in_sync:
        raise UserError(f"--batch-size {config.batch_size} does not split evenly over "
                        f"{strategy.num_replicas_in_sync} replicas: use a multiple of it")
    if config.hand_weight and config.batch_size < 2 * strategy.num_replicas_in_sync:
        raise UserError(f"--hand-weight pairs the images of a batch: give --batch-size "
                        f"{2 * strategy.num_replicas_in_sync} or more (or --hand-weight 0)")
    precision = resolved_precision(config)
    keras.mixed_precision.set_dtype_policy(precision)
    keras.utils.set_random_seed(config.seed)
    with strategy.scope():  # variables of the model and optimizers live on every replica
        model = make_gan(config, jit_compile=use_xla(args.jit, precision))
        first_epoch, first_step = restore(model, resume_from, data) if resume_from else (0, 0)
    if first_epoch >= config.epochs:
        done = f" and {first_step} steps of epoch {first_epoch + 1}" if first_step else ""
        print(f"Already trained {first_epoch} epochs{done} (--epochs {config.epochs}): nothing "
              f"to train; the exports hold these weights. Raise --epochs to train more.")
        return finish(model, out)
    watch = watch_options(args, resume_from and resume_from.meta["watch"])
    fid = EpochFID(config.data, eval_classifier_of(watch)) if watch.eval_every else None
    if strategy.num_replicas_in_sync > 1:
        print(f"{type(strategy).__name__}: {strategy.num_replicas_in_sync} replicas, "
              f"{config.batch_size // strategy.num_replicas_in_sync} images each")
    print_intro(config, data.n_images, steps, first_epoch, precision, out)
    history = resume_from.meta["history"] if resume_from else []
    write_history(out / HISTORY, history)  # drops the row of an epoch trained again
    keeper = RunKeeper(out, config, watch, steps, history, fid, run)
    if first_step:
        keeper.go_on_from(first_step, resume_from.meta["running_losses"])
    bar = ProgressBar(keeper, config.epochs, eta_note=slow_cpu_note(precision))
    run_fits(model, [keeper, bar], data, first_epoch, first_step)
    return report_stop(keeper) or finish(model, out)


def run_fits(model, callbacks, data, first_epoch, first_step):
    """model.fit from that step of that epoch to the last epoch. Keras runs the same steps in
    every epoch of a fit, so the rest of a resumed epoch is a fit of its own, first."""
    keeper = callbacks[0]
    fit = lambda epoch, step: model.fit(
        data.batches(epoch, step), epochs=data.config.epochs, initial_epoch=epoch,
        steps_per_epoch=data.steps - step, callbacks=callbacks, shuffle=False, verbose=0)
    try:
        if first_step:
            print(f"Epoch {first_epoch + 1} goes on from step {first_step + 1} of {data.steps}.")
            fit(first_epoch, first_step)
            first_epoch += 1
        if first_epoch < data.config.epochs and not (keeper.signal or keeper.diverged_at):
            fit(first_epoch, 0)
    except (tf.errors.NotFoundError, tf.errors.InvalidArgumentError) as error:
        if not data.config.dataset:
            raise
        raise DataChanged(f"an image of --dataset {data.config.dataset} could no longer be read "
                          f"({first_line(error.message)}): the folder changed during training. "
                          f"The checkpoints of completed epochs are kept; restore the folder "
                          f"(or give a folder that holds the run's images) and --resume") from None


class DataChanged(Exception):
    """The training images changed under a running run: exit code 1 (work was done)."""


def report_stop(keeper):
    """For a run that diverged or was stopped by a signal: its message and exit code (None for
    a run that trained to its end)."""
    if keeper.diverged_at:
        epoch, step = keeper.diverged_at
        advice = ("the checkpoints of completed epochs are kept: lower --lr and --resume"
                  if keeper.completed else "no epoch completed: run again with a lower --lr")
        print(f"error: training diverged: a NaN or infinite value at epoch {epoch}, step {step};"
              f" {advice}", file=sys.stderr)
        return 1
    if keeper.signal:
        saved = keeper.save_interrupted()
        print(f"\nStopped ({signal.Signals(keeper.signal).name}) in epoch {keeper.epoch} at "
              f"step {keeper.step}: {keeper.completed} "
              f"{'epoch is' if keeper.completed == 1 else 'epochs are'} saved"
              + (f", and {saved}" if saved else "") + "; continue with --resume.",
              file=sys.stderr)
        return EXIT_CODES[keeper.signal]
    return None


def finish(model, out):
    """Export the generator (computing in float32, whatever precision trained it) and make the
    run's summary pictures."""
    generator = float32_copy(model.sampling_generator, model.config)
    if non_finite_weight(generator):
        raise UserError("the generator's weights are not finite: nothing exported")
    write_atomically(out / "generator.keras", generator.save)
    write_folder_atomically(out / SAVED_MODEL, lambda tmp: export_saved_model(generator, tmp))
    gif = make_gif(out)
    if (out / HISTORY).is_file():
        plot_losses(out / HISTORY, out / "losses.png")
    print(f"Saved {out / 'generator.keras'}, {out / SAVED_MODEL}" + (f", {gif}" if gif else "")
          + f" and {out / 'losses.png'}.")
    return 0


def main(argv=None):
    args = parse_args(argv)
    previous = {signum: signal.signal(signum, stop_now) for signum in EXIT_CODES}
    try:
        return train(args)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except DataChanged as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except Stopped as stop:  # every file is whole (written atomically), the checkpoints kept
        signum = stop.args[0]
        print(f"\nStopped ({signal.Signals(signum).name}); the checkpoints of completed epochs "
              f"are kept.", file=sys.stderr)
        return EXIT_CODES[signum]
    except OSError as error:  # a full disk, a folder removed under the run
        print(f"error: {error.strerror or error}: {error.filename or ''}: the checkpoints of "
              f"completed epochs are kept; free space or fix the folder, then --resume",
              file=sys.stderr)
        return 1
    finally:
        put_back(previous)


def put_back(handlers):
    """Put back the signal handlers main() replaced. A signal that lands while it does so finds
    stop_now still there; the run is over by then, so it is dropped, not a traceback."""
    while True:
        try:
            for signum, handler in handlers.items():
                signal.signal(signum, handler)
            return
        except Stopped:
            continue


if __name__ == "__main__":
    code = main()
    # Every file is written. Python's shutdown puts back the default, fatal action of SIGINT and
    # SIGTERM while TensorFlow's threads wind down: one arriving then would kill a finished run
    # (exit -15 instead of its code). Ignored handlers outlive the shutdown.
    for _signum in EXIT_CODES:
        signal.signal(_signum, signal.SIG_IGN)
    sys.exit(code)
