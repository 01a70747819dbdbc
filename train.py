"""Train the tutorial's StyleGAN on MNIST and save a style-mixing grid every epoch.

    python train.py                       # 10 epochs, batch 64, latent 100, the measured best recipe
    python train.py --preset tutorial     # the tutorial's recipe exactly (its figures)
    python train.py --data PATH/mnist.npz # the full MNIST offline
    python train.py --resume              # continue the run in --out from its last checkpoint
    python train.py --dataset FACES/      # a folder of images, 64x64 colour (the tutorial's end)

Everything goes under --out (default visual/stylegan/, as the tutorial): <epoch>.png grids,
generating.gif, history.csv and losses.png, checkpoints/, and generator.keras (the trained
generator, which `keras.saving.load_model` reloads after `import stylegan`).
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow loads: hide its C++ chatter

import argparse  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from folder_ds import load_folder, make_folder_dataset  # noqa: E402
from mnist_ds import DataError, load_mnist, make_dataset  # noqa: E402
from recipes import PRESETS, RECIPE_KEYS, STRUCTURAL_KEYS  # noqa: E402
from stylegan import FOLDER_SIZES, LOSSES  # noqa: E402
from utils import (CHECKPOINT_DIR, ArgumentParser, CheckpointCallback,  # noqa: E402
                   TrainingGuard, UserError, latest_checkpoint, load_checkpoint,
                   read_checkpoint_meta, save_checkpoint, stylegan_from_settings)
from visual import MixingGridCallback, make_gif, plot_losses  # noqa: E402

# name = default  # meaning
DEFAULTS = dict(
    preset="stylegan",  # the recipe below the flags: "stylegan" (measured best) or "tutorial"
    epochs=10,  # total epochs (the default recipe measured to 10 on MNIST); --resume continues
    batch_size=64,  # images per step
    latent_dim=100,  # size of each z
    mapping_activation="linear",  # the tutorial's linear mapping net, or leaky_relu
    seed=0,  # seeds the weights, the training draws and the grid's z codes
    out="visual/stylegan",
    keep=3,  # checkpoints kept (the newest)
    precision="auto",  # mixed_bfloat16 on a CPU with bfloat16 units and no GPU, else float32
    dataset=None,  # a folder of .jpg/.png images instead of MNIST
    image_size=None,  # 28 for MNIST; for --dataset 32, 64 (the default), 128 or 256
    filters=64,  # style block width (MNIST: every block; folders: at full resolution)
    max_filters=256,  # folders: cap on the widths, which double towards 4x4
    loss="nonsaturating",  # the tutorial's, or wgan-gp (lambda 10)
    d_steps=1,  # discriminator updates per generator update
)
CPUINFO = Path("/proc/cpuinfo")  # where Linux lists the CPU's instruction sets
# settings that fix the network or the grid: a resumed run must keep them
FIXED_ON_RESUME = ("latent_dim", "mapping_activation", "seed", "image_size", "filters",
                   "max_filters", "preset", *STRUCTURAL_KEYS)


def parse_args(argv=None):
    p = ArgumentParser(description=__doc__.split("\n")[0])
    d = DEFAULTS  # flags default to None so a resumed run can tell what was given explicitly
    p.add_argument("--epochs", type=int, help=f"total epochs (default {d['epochs']})")
    p.add_argument("--batch-size", type=int, help=f"default {d['batch_size']}")
    p.add_argument("--latent-dim", type=int, help=f"size of z (default {d['latent_dim']})")
    p.add_argument("--preset", choices=list(PRESETS),
                   help="the recipe: stylegan (default, the measured best) or tutorial (the "
                        "tutorial's exactly); the flags below change single parts of it")
    p.add_argument("--lr", type=float, help="Adam learning rate of both G and D")
    p.add_argument("--g-lr", type=float, help="G's Adam learning rate")
    p.add_argument("--d-lr", type=float, help="D's Adam learning rate")
    p.add_argument("--beta-1", type=float, help="Adam beta_1 of both")
    p.add_argument("--beta-2", type=float, help="Adam beta_2 of both")
    p.add_argument("--lr-halved-from", type=int,
                   help="halve G's and D's learning rates from this epoch on (0: never)")
    p.add_argument("--convs-per-block", type=int, choices=[1, 2],
                   help="style layers per resolution: 1 (tutorial) or 2 (paper)")
    p.add_argument("--styled-to-image", action=argparse.BooleanOptionalAction,
                   help="one more style slot, modulating the last feature map before to_image "
                        "(StyleGAN2's toRGB; tutorial: off)")
    p.add_argument("--equalized-lr", action=argparse.BooleanOptionalAction,
                   help="equalised learning rate in every Dense and Conv2D (paper; tutorial: "
                        "off)")
    p.add_argument("--d-batchnorm", action=argparse.BooleanOptionalAction,
                   help="BatchNormalization in the MNIST discriminator (tutorial: on)")
    p.add_argument("--minibatch-std", action=argparse.BooleanOptionalAction,
                   help="minibatch standard deviation channel in D (paper)")
    p.add_argument("--r1-gamma", type=float, help="R1 penalty weight, 0 = off (paper: 10)")
    p.add_argument("--r1-every", type=int, help="lazy R1: on every N-th D step (default 16)")
    p.add_argument("--ema-beta", type=float,
                   help="moving average of G's weights for pictures and export, 0 = off")
    p.add_argument("--g-step-d-training", action=argparse.BooleanOptionalAction,
                   help="G's step runs D in training mode, real and fake batches apart "
                        "(tutorial: inference mode)")
    p.add_argument("--grid-coarse-size", type=int,
                   help="the grid's rows give the style layers up to this size in pixels")
    p.add_argument("--mapping-lr-mult", type=float,
                   help="mapping net's learning rate as a multiple of G's (paper: 0.01)")
    p.add_argument("--mixing-prob", type=float,
                   help="probability of style mixing per sample (stylegan 0.5, tutorial 0.9)")
    p.add_argument("--mapping-activation", choices=["linear", "leaky_relu"],
                   help=f"activation in the mapping net (default {d['mapping_activation']})")
    p.add_argument("--data", help="path of mnist.npz (default: MNIST_PATH, Keras' cache, "
                                  "download, else the shipped 2,500-digit sample)")
    p.add_argument("--out", help=f"output folder (default {d['out']})")
    p.add_argument("--seed", type=int, help=f"default {d['seed']}")
    p.add_argument("--precision", choices=["auto", "float32", "mixed_bfloat16", "mixed_float16"],
                   help="Keras dtype policy (default auto: mixed_bfloat16 on a CPU with "
                        "AVX-512 BF16 / AMX and no GPU, 1.4x faster there; else float32)")
    p.add_argument("--dataset", help="train on this folder of .jpg/.png images, not MNIST")
    p.add_argument("--image-size", type=int, help="with --dataset: 32, 64 (default), 128, 256")
    p.add_argument("--filters", type=int, help=f"default {d['filters']}")
    p.add_argument("--max-filters", type=int, help=f"default {d['max_filters']}")
    p.add_argument("--loss", choices=list(LOSSES), help=f"default {d['loss']}")
    p.add_argument("--d-steps", type=int, help="D updates per G update (default 1)")
    p.add_argument("--strategy", choices=["none", "mirrored"], default="none",
                   help="mirrored: tf.distribute.MirroredStrategy over the visible GPUs (or "
                        "the logical CPUs when there is none)")
    p.add_argument("--jit", action="store_true", help="compile the step with XLA")
    p.add_argument("--limit", type=int, help="use only the first N training images")
    p.add_argument("--keep", type=int, help=f"checkpoints to keep (default {d['keep']})")
    p.add_argument("--resume", action="store_true",
                   help="continue from the last checkpoint in --out")
    return p.parse_args(argv)


def resolve_settings(args, saved=None):
    """Explicit flags, else the resumed checkpoint's settings, else the preset's, else
    DEFAULTS. A checkpoint without a preset predates presets: it was the tutorial's recipe."""
    given = {k: v for k, v in vars(args).items()
             if (k in DEFAULTS or k in RECIPE_KEYS) and v is not None}
    if args.lr is not None:  # --lr sets both, --g-lr / --d-lr win over it
        given = {"g_lr": args.lr, "d_lr": args.lr, **given}
    if saved:
        saved = {"preset": "tutorial", **saved}
        for key in FIXED_ON_RESUME:
            if key in given and key in saved and given[key] != saved[key]:
                flag = "--" + key.replace("_", "-")
                raise UserError(f"--resume: the checkpoint was trained with {flag} {saved[key]}"
                                f", not {given[key]}: drop {flag} or use another --out")
    preset = given.get("preset") or (saved or {}).get("preset") or DEFAULTS["preset"]
    settings = {**DEFAULTS, **PRESETS[preset], **(saved or {}), **given}
    if settings["loss"] == "wgan-gp" and not saved and "beta_2" not in given:
        settings["beta_2"] = 0.99  # as the tutorial's face runs
    settings["image_size"] = settings["image_size"] or (64 if settings["dataset"] else 28)
    if settings["precision"] == "auto":
        settings["precision"] = auto_precision()
    check_settings(settings, args.limit)
    return settings


def auto_precision():
    """mixed_bfloat16 where there is no GPU and the CPU has bfloat16 units (AVX-512 BF16 or AMX):
    1.4x faster on this project's machine with no loss of quality (docs/results.md); float32
    elsewhere (a CPU without them emulates bfloat16 slowly; GPUs were not measured)."""
    if tf.config.list_physical_devices("GPU"):
        return "float32"
    try:
        cpu_flags = CPUINFO.read_text().split()
    except OSError:  # not Linux: no way to tell here
        return "float32"
    return "mixed_bfloat16" if {"avx512_bf16", "amx_bf16"} & set(cpu_flags) else "float32"


def check_settings(settings, limit):
    """A one-line UserError for the first setting out of range."""
    if settings["dataset"] and settings["image_size"] not in FOLDER_SIZES:
        raise UserError(f"--image-size {settings['image_size']}: with --dataset use one of "
                        f"{', '.join(map(str, FOLDER_SIZES))}")
    if not settings["dataset"] and settings["image_size"] != 28:
        raise UserError(f"--image-size {settings['image_size']}: MNIST is 28x28; give "
                        f"--dataset DIR to train on other images")
    for key in ("epochs", "batch_size", "latent_dim", "keep", "filters", "max_filters",
                "d_steps", "r1_every"):
        if settings[key] < 1:
            raise UserError(f"--{key.replace('_', '-')} must be at least 1, got {settings[key]}")
    if not 0.0 <= settings["mixing_prob"] <= 1.0:
        raise UserError(f"--mixing-prob must be in [0, 1], got {settings['mixing_prob']}")
    for key in ("g_lr", "d_lr", "mapping_lr_mult"):
        if settings[key] <= 0:
            raise UserError(f"--{key.replace('_', '-')} must be positive, got {settings[key]}")
    for key in ("beta_1", "beta_2", "ema_beta"):
        if not 0.0 <= settings[key] < 1.0:
            raise UserError(f"--{key.replace('_', '-')} must be in [0, 1), got {settings[key]}")
    if settings["lr_halved_from"] < 0:
        raise UserError(f"--lr-halved-from must be an epoch (1, 2, ...) or 0 for never, got "
                        f"{settings['lr_halved_from']}")
    if settings["r1_gamma"] < 0:
        raise UserError(f"--r1-gamma must be at least 0, got {settings['r1_gamma']}")
    if settings["mapping_lr_mult"] != 1.0 and settings["precision"] == "mixed_float16":
        raise UserError(f"--mapping-lr-mult {settings['mapping_lr_mult']} (the default "
                        f"recipe's is 0.01) needs --precision float32 or mixed_bfloat16: "
                        f"mixed_float16 scales the loss for one G optimizer only; add "
                        f"--mapping-lr-mult 1 to train in mixed_float16")
    if limit is not None and limit < 1:
        raise UserError(f"--limit must be at least 1, got {limit}")


def prepare_out_dir(out):
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as error:
        raise UserError(f"cannot write to the output folder {out} ({error.strerror}): "
                        f"choose another with --out") from None
    return out


def find_resume_point(ckpt_dir):
    meta_path = latest_checkpoint(ckpt_dir)
    if meta_path is None:
        raise UserError(f"--resume: no checkpoint in {ckpt_dir}: start without --resume, "
                        f"or point --out at the folder of the run to continue")
    return meta_path, read_checkpoint_meta(meta_path)


def build_model(settings, jit):
    keras.mixed_precision.set_dtype_policy(settings["precision"])
    model = stylegan_from_settings(settings)
    adam = lambda lr: keras.optimizers.Adam(lr, beta_1=settings["beta_1"],
                                            beta_2=settings["beta_2"])
    model.compile(d_optimizer=adam(settings["d_lr"]), g_optimizer=adam(settings["g_lr"]),
                  jit_compile=jit)
    return model


def make_strategy(name):
    """MirroredStrategy over the GPUs, or over the logical CPUs where there is no GPU (how
    tests/test_folders.py runs it on two logical CPU devices); else the default strategy."""
    if name != "mirrored":
        return tf.distribute.get_strategy()
    devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
    return tf.distribute.MirroredStrategy([d.name for d in devices])


def train(args):
    out = prepare_out_dir(args.out or DEFAULTS["out"])
    ckpt_dir = out / CHECKPOINT_DIR
    meta_path, meta = find_resume_point(ckpt_dir) if args.resume else (None, None)
    settings = resolve_settings(args, meta and meta["settings"])
    n_images, dataset = load_training_data(args.data, args.limit, settings)
    strategy = make_strategy(args.strategy)
    if settings["batch_size"] % strategy.num_replicas_in_sync:
        raise UserError(f"--batch-size {settings['batch_size']} does not split evenly over "
                        f"{strategy.num_replicas_in_sync} replicas: use a multiple of it")

    keras.utils.set_random_seed(settings["seed"])
    with strategy.scope():  # variables of the model and optimizers live on every replica
        model = build_model(settings, args.jit)
        initial_epoch = restore(model, meta_path) if meta_path else 0
    if initial_epoch >= settings["epochs"]:
        print(f"Already trained {initial_epoch} epochs (--epochs {settings['epochs']}): "
              f"nothing to train; raise --epochs to train more.")
    else:
        if strategy.num_replicas_in_sync > 1:
            print(f"MirroredStrategy: {strategy.num_replicas_in_sync} replicas, "
                  f"{settings['batch_size'] // strategy.num_replicas_in_sync} images each")
        print(f"Training on {n_images:,} images, {len(dataset)} steps of "
              f"{settings['batch_size']} per epoch, epochs {initial_epoch + 1}.."
              f"{settings['epochs']}, {settings['precision']}; output in {out}/")
        fit(model, dataset, out, settings, initial_epoch)
    finish(model, out)


def load_training_data(path, limit, settings):
    """(number of images, tf.data pipeline of batches) of MNIST or of the --dataset folder."""
    batch_size, seed = settings["batch_size"], settings["seed"]
    try:
        if settings["dataset"]:
            paths = load_folder(settings["dataset"], settings["image_size"])[:limit]
            return len(paths), make_folder_dataset(paths, settings["image_size"], batch_size,
                                                   seed)
        (x_train, _), _ = load_mnist(path)
        x_train = x_train[:limit]
        return len(x_train), make_dataset(x_train, batch_size, seed=seed)
    except DataError as error:
        raise UserError(str(error)) from None


def fit(model, dataset, out, settings, initial_epoch):
    """model.fit with a grid and a checkpoint per epoch; stops cleanly on Ctrl-C or a NaN."""
    ckpt_dir = out / CHECKPOINT_DIR
    guard = TrainingGuard()
    grids = MixingGridCallback(out, seed=settings["seed"],
                               coarse_size=settings["grid_coarse_size"])
    callbacks = [guard, grids, LearningRateDrop(settings),
                 CheckpointCallback(ckpt_dir, settings, keep=settings["keep"]),
                 keras.callbacks.CSVLogger(out / "history.csv", append=initial_epoch > 0)]
    model.fit(dataset, epochs=settings["epochs"], initial_epoch=initial_epoch,
              callbacks=callbacks, shuffle=False, verbose=1)
    if guard.interrupted:
        save_interrupted(model, out, guard, grids, settings)
        raise KeyboardInterrupt
    if guard.diverged_at:
        epoch, step = guard.diverged_at
        last = latest_checkpoint(ckpt_dir)
        raise TrainingDiverged(
            f"training diverged: a NaN or infinite loss at epoch {epoch}, step {step}; the last "
            f"good checkpoint ({last.name if last else 'none'}) is kept: lower --lr and "
            f"--resume")


def restore(model, meta_path):
    """Load the checkpoint into the model; returns the number of epochs it completed. (Its
    optimizers hold the old learning rates: LearningRateDrop sets this run's at each epoch.)"""
    epoch = load_checkpoint(model, meta_path)["epoch"]
    print(f"Resuming from {meta_path.name}: {epoch} epochs done.")
    return epoch


class LearningRateDrop(keras.callbacks.Callback):
    """Sets this run's learning rates at the start of every epoch (so a resumed run gets them,
    not the checkpoint's), halved from epoch `lr_halved_from` on (counted from 1; 0: never).
    At the full rate the default recipe's FID drifts up after epoch 6; halved from epoch 5 it
    falls at every epoch (docs/results.md, "Why the rates halve from epoch 5")."""

    def __init__(self, settings):
        super().__init__()
        self.settings = settings

    def on_epoch_begin(self, epoch, logs=None):
        start = self.settings["lr_halved_from"]
        factor = 0.5 if start and epoch + 1 >= start else 1.0
        self.model.set_learning_rates(self.settings["d_lr"] * factor,
                                      self.settings["g_lr"] * factor)


def save_interrupted(model, out, guard, grids, settings):
    """Ctrl-C: keep the weights of the epoch in progress (resume repeats that epoch from them)
    and its grid, so no work is lost."""
    done = max(guard.epoch - 1, 0)
    save_checkpoint(model, out / CHECKPOINT_DIR, done, settings)
    grid = grids.save_grid(f"interrupted-{guard.epoch}")
    print(f"\nInterrupted in epoch {guard.epoch} at step {guard.step}: saved its weights as "
          f"checkpoint {done} and the grid {grid}; continue with --resume.", file=sys.stderr)


def finish(model, out):
    """Export the generator and make the run's summary pictures."""
    model.sampling_generator.save(out / "generator.keras")
    gif = make_gif(out)
    history = out / "history.csv"
    if history.is_file() and history.stat().st_size:
        plot_losses(history, out / "losses.png")
    print(f"Saved {out / 'generator.keras'}" + (f", {gif}" if gif else "") +
          f" and {out / 'losses.png'}.")


class TrainingDiverged(Exception):
    """The run stopped on a non-finite loss (exit code 1: not the user's input)."""


def main(argv=None):
    args = parse_args(argv)
    try:
        train(args)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except TrainingDiverged as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130  # the shell's code for Ctrl-C; the checkpoint is already saved
    return 0


if __name__ == "__main__":
    sys.exit(main())
