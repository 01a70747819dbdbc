"""Training speed of the tutorial's StyleGAN: compiled step, XLA, and the tutorial's eager loop.

    python benchmarks/bench_train.py                       # float32, all three ways
    python benchmarks/bench_train.py --precision float32,mixed_bfloat16
    python benchmarks/bench_train.py --ways compiled --presets tutorial,stylegan  # recipe cost

Each way runs in its own process (so its peak memory is its own) on the same fixed batch of
real MNIST digits: a warm-up (tracing, XLA compilation), then --steps timed steps. The baseline is
the tutorial's way: the same `train_step` called from a plain Python loop, no tf.function. Each
preset steps on its own batch (the tutorial: 32 real digits, so 1,875 steps an MNIST epoch; the
default: 64, 937 steps), so the table gives seconds per MNIST epoch and their ratio to that
baseline measured in the same run, which is the figure to compare across machines (absolute
speeds on shared machines drift).
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import config as config_lib  # noqa: E402
from utils import ArgumentParser, UserError  # noqa: E402

MNIST_TRAIN = 60_000  # images in an MNIST epoch: an epoch is MNIST_TRAIN // batch steps
WAYS = {  # name: how the step runs
    "eager": "the tutorial's loop: train_step called eagerly (baseline)",
    "compiled": "tf.function(train_step), as model.fit runs it",
    "xla": "tf.function(train_step, jit_compile=True)",
}


def parse_args(argv=None):
    p = ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=30, help="timed steps per way")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    p.add_argument("--batch-size", type=int,
                   help="real images per step (default: each preset's own, tutorial 32, "
                        "stylegan 64)")
    p.add_argument("--latent-dim", type=int, default=100)
    p.add_argument("--image-size", type=int, default=28,
                   help="28: MNIST digits; 32..256: the folder model on random colour images")
    p.add_argument("--loss", default="nonsaturating", help="nonsaturating or wgan-gp")
    p.add_argument("--d-steps", type=int, default=1)
    p.add_argument("--precision", default="float32",
                   help="comma-separated Keras dtype policies: float32, mixed_bfloat16 "
                        "(CPUs with AVX-512 BF16 / AMX), mixed_float16 (GPUs)")
    p.add_argument("--ways", default=",".join(WAYS), help="comma-separated: " + ", ".join(WAYS))
    p.add_argument("--presets", default="tutorial",
                   help="comma-separated train.py recipes: tutorial (the core), stylegan")
    p.add_argument("--worker", nargs=3, metavar=("WAY", "PRECISION", "PRESET"),
                   help=argparse.SUPPRESS)
    return p.parse_args(argv)


def bench_config(preset, args, precision="float32"):
    """The recipe's Config with this benchmark's sizes (checked as train.py checks flags)."""
    settings = {**config_lib.to_dict(config_lib.PRESETS[preset]), "latent_dim": args.latent_dim,
                "image_size": args.image_size,
                "batch_size": args.batch_size or config_lib.PRESETS[preset].batch_size,
                "loss": args.loss, "d_steps": args.d_steps, "precision": precision,
                "dataset": "" if args.image_size == config_lib.MNIST_SIZE else "random images"}
    if settings["loss"] == "wgan-gp":
        settings["d_batchnorm"] = False  # a gradient penalty needs D without BatchNorm
    return config_lib.from_dict(settings)


def check_args(args):
    """One line and exit code 2 for anything out of range, before any process starts."""
    lists = {"--ways": (args.ways, WAYS), "--presets": (args.presets, config_lib.PRESETS),
             "--precision": (args.precision, config_lib.PRECISIONS[1:])}
    for flag, (text, allowed) in lists.items():
        unknown = [item for item in text.split(",") if item not in allowed]
        if unknown:
            raise UserError(f"{flag} {unknown[0]!r}: choose from {', '.join(allowed)}")
    if args.steps < 1 or args.warmup < 1:
        raise UserError("--steps and --warmup must be at least 1 (the first step traces)")
    if args.batch_size is not None and args.batch_size < 1:
        raise UserError("--batch-size must be at least 1")
    if args.image_size == config_lib.MNIST_SIZE and (args.batch_size or 0) > 2500:
        raise UserError("--batch-size: the shipped sample has 2,500 digits; ask for fewer")
    for preset in args.presets.split(","):
        try:
            bench_config(preset, args)
        except config_lib.ConfigError as error:
            raise UserError(str(error)) from None


def run_worker(way, precision, preset, args):
    """Time one way in this process; print one JSON line."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import numpy as np
    import tensorflow as tf

    import mnist_ds
    import stylegan
    from utils import to_unit_range

    keras.utils.set_random_seed(0)
    keras.mixed_precision.set_dtype_policy(precision)
    config = bench_config(preset, args, precision)
    model = stylegan.make_gan(config)  # its optimizers too
    n = config.batch_size
    if args.image_size == 28:
        images = mnist_ds.read_mnist_npz(mnist_ds.SAMPLE_PATH)[0][0][:n, ..., None]
    else:  # the speed does not depend on the pixels
        images = np.random.default_rng(0).integers(
            0, 256, (n, args.image_size, args.image_size, 3))
    batch = tf.constant(to_unit_range(images.astype("uint8")))
    step = {"eager": model.train_step,
            "compiled": tf.function(model.train_step),
            "xla": tf.function(model.train_step, jit_compile=True)}[way]

    for _ in range(args.warmup):
        logs = step(batch)
    float(logs["g_loss"])  # wait for the warm-up to finish
    start = time.perf_counter()
    for _ in range(args.steps):
        logs = step(batch)
    losses = [float(logs["d_loss"]), float(logs["g_loss"])]  # also waits for the last step
    seconds = (time.perf_counter() - start) / args.steps
    print(json.dumps({"way": way, "precision": precision, "preset": preset, "step_s": seconds,
                      "batch_size": n,
                      "finite": bool(np.all(np.isfinite(losses))),
                      "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def measure(way, precision, preset, argv):
    command = [sys.executable, __file__, *argv, "--worker", way, precision, preset]
    run = subprocess.run(command, capture_output=True, text=True)
    if run.returncode != 0:  # reported in the table, with the error's last line
        error = run.stderr.strip().splitlines()[-1][:200]
        print(f"{way} / {precision} / {preset} failed: {error}", file=sys.stderr)
        return {"way": way, "precision": precision, "preset": preset, "error": error}
    return json.loads(run.stdout.strip().splitlines()[-1])


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.worker:
        return run_worker(*args.worker, args)
    try:
        check_args(args)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    ways = args.ways.split(",")
    print(f"StyleGAN train step, {args.image_size}x{args.image_size}, "
          f"latent {args.latent_dim}, loss {args.loss}, {args.d_steps} D step(s); "
          f"{args.steps} timed steps after {args.warmup} warm-up; {os.cpu_count()} CPU cores")
    rows = [measure(way, precision, preset, argv) for preset in args.presets.split(",")
            for precision in args.precision.split(",") for way in ways]
    timed = [r for r in rows if "error" not in r]
    base = next((r for r in timed if r["way"] == "eager" and r["precision"] == "float32"),
                timed[0])  # the tutorial's eager float32 step where it was measured
    baseline = base["step_s"]
    base_epoch = baseline * (MNIST_TRAIN // base["batch_size"])
    print(f"\n| recipe | way | precision | real images/step | ms/step | s per MNIST epoch | "
          f"epoch vs {base['preset']} {base['way']} {base['precision']} | "
          "peak RSS MiB | losses finite |\n|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if "error" in r:
            print(f"| {r['preset']} | {r['way']} | {r['precision']} | failed (see above) "
                  f"| | | | | |")
            continue
        epoch_s = r["step_s"] * (MNIST_TRAIN // r["batch_size"])
        print(f"| {r['preset']} | {r['way']} | {r['precision']} | {r['batch_size']} | "
              f"{1000 * r['step_s']:.0f} | {epoch_s:.0f} | {epoch_s / base_epoch:.2f}x | "
              f"{r['peak_rss_mib']:.0f} | {r['finite']} |")
    print("\n" + "\n".join(f"{way}: {WAYS[way]}" for way in ways))


if __name__ == "__main__":
    sys.exit(main())
