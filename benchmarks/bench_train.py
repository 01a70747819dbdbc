"""Training speed of the two recipes per MNIST epoch: compiled, or XLA, or an eager loop.

    python benchmarks/bench_train.py          # both presets, compiled, float32 and mixed_bfloat16
    python benchmarks/bench_train.py --precision float32 --ways eager,compiled,xla
    python benchmarks/bench_train.py --presets tutorial,stylegan --set mixing_prob=0.9  # one lever
    python benchmarks/bench_train.py --precision float32 --ways compiled,formula  # two AdaNorms

Each measurement runs in its own process (so its peak memory is its own) on one fixed batch of
real MNIST digits: a warm-up (tracing, XLA compilation), then --steps timed steps in whole cycles
of the lazy penalties (the default's R1 on every 16th D update, its hand penalty on every 4th
G update: an epoch pays them; every row is timed over the longest cycle of the recipes timed),
and the median cycle's mean step counts. Every measurement is repeated --rounds times, in
turn with the others, and the median round counts: a shared machine's speed drifts by 10-20%
from one minute to the next.
Each preset steps on its own batch (the tutorial: 32 real digits, so 1,875 steps an MNIST epoch;
the default: 64, 937 steps), so the table gives seconds per MNIST epoch, their ratio to the
tutorial preset's fastest epoch in the same run (its best precision), and each precision's speed
against float32 for the same recipe. Ratios measured in one run are the figures to compare
across machines. mixed_bfloat16 is fast only on CPUs with AVX-512 BF16 or AMX (elsewhere it is
emulated: slow).
"""
import argparse
import json
import math
import os
import resource
import statistics
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
    "formula": "as compiled, with AdaNorm's formula in place of the fused op (FusedAdaNorm)",
}


def parse_args(argv=None):
    p = ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=48,
                   help="timed steps per measurement, rounded up to whole cycles of the lazy "
                        "penalties (the default recipe's: 16 steps; the tutorial's: 1)")
    p.add_argument("--rounds", type=int, default=3,
                   help="measure every row this many times, in turn, and keep the median: "
                        "a shared machine's speed drifts between processes")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    p.add_argument("--batch-size", type=int,
                   help="real images per step (default: each preset's own, tutorial 32, "
                        "stylegan 64)")
    p.add_argument("--latent-dim", type=int, default=100)
    p.add_argument("--image-size", type=int, default=28,
                   help="28: MNIST digits; 32..256: the folder model on random colour images")
    p.add_argument("--loss", default="nonsaturating", help="nonsaturating or wgan-gp")
    p.add_argument("--precision", default="float32,mixed_bfloat16",
                   help="comma-separated Keras dtype policies: float32, mixed_bfloat16 "
                        "(CPUs with AVX-512 BF16 / AMX), mixed_float16 (GPUs)")
    p.add_argument("--ways", default="compiled", help="comma-separated: " + ", ".join(WAYS))
    p.add_argument("--presets", default="tutorial,stylegan",
                   help="comma-separated train.py recipes: tutorial (the core), stylegan")
    p.add_argument("--set", action="append", default=[], metavar="SETTING=VALUE",
                   help="a Config setting for every recipe but the tutorial's (the "
                        "baseline), e.g. mixing_prob=0.9 (repeatable): to time one lever")
    p.add_argument("--worker", nargs=3, metavar=("WAY", "PRECISION", "PRESET"),
                   help=argparse.SUPPRESS)
    return p.parse_args(argv)


# settings the benchmark sets from its own flags: --set may not change them
OWN_FLAGS = {"latent_dim": "--latent-dim", "image_size": "--image-size", "dataset": "--image-size",
             "batch_size": "--batch-size", "loss": "--loss", "precision": "--precision"}


def bench_config(preset, args, precision="float32", overrides=()):
    """The recipe's Config with this benchmark's sizes and the `--set` overrides ("name=value"),
    checked as train.py checks flags."""
    settings = {**config_lib.to_dict(config_lib.PRESETS[preset]), "latent_dim": args.latent_dim,
                "image_size": args.image_size,
                "batch_size": args.batch_size or config_lib.PRESETS[preset].batch_size,
                "loss": args.loss, "precision": precision,
                "dataset": "" if args.image_size == config_lib.MNIST_SIZE else "random images"}
    if settings["dataset"]:
        settings.update(config_lib.MNIST_ONLY)
    overridden = dict(parse_setting(text) for text in overrides)
    settings.update(overridden)
    if settings["loss"] == "wgan-gp":
        settings["d_batchnorm"] = False  # a gradient penalty needs D without BatchNorm
    name_of = lambda name: f"--set {name}" if name in overridden else config_lib.flag(name)
    return config_lib.from_dict(settings, name_of)


def overrides_for(preset, args):
    """--set changes every recipe but the tutorial's, the baseline the others are timed against."""
    return [] if preset == "tutorial" else args.set


def parse_setting(text):
    """("step", "g_first") for "step=g_first"; the value read as JSON where it is (1, 0.5,
    true), else as a string."""
    name, _, value = text.partition("=")
    return name, json_or_text(value)


def json_or_text(text):
    """1 and 0.5 and true as JSON reads them; g_first (or [], which no setting takes) as itself."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):  # not JSON, or too long or deep to read as JSON
        return text
    return value if isinstance(value, (bool, int, float, str)) else text


def check_args(args):
    """One line and exit code 2 for anything out of range, before any process starts."""
    lists = {"--ways": (args.ways, WAYS), "--presets": (args.presets, config_lib.PRESETS),
             "--precision": (args.precision, config_lib.PRECISIONS[1:])}
    for flag, (text, allowed) in lists.items():
        unknown = [item for item in text.split(",") if item not in allowed]
        if unknown:
            raise UserError(f"{flag} {unknown[0]!r}: choose from {', '.join(allowed)}")
    if args.steps < 1 or args.warmup < 1 or args.rounds < 1:
        raise UserError("--steps, --warmup and --rounds must be at least 1 (the first step "
                        "traces)")
    if args.batch_size is not None and args.batch_size < 1:
        raise UserError("--batch-size must be at least 1")
    if args.image_size == config_lib.MNIST_SIZE and (args.batch_size or 0) > 2500:
        raise UserError("--batch-size must be at most 2,500: a step's time needs no bigger batch")
    check_overrides(args.set)
    if args.set and set(args.presets.split(",")) == {"tutorial"}:
        raise UserError("--set changes the recipes timed against the tutorial's, which stays "
                        "the baseline: add another preset (--presets tutorial,stylegan)")
    for preset in args.presets.split(","):
        try:
            bench_config(preset, args, overrides=overrides_for(preset, args))
        except config_lib.ConfigError as error:
            raise UserError(f"--presets {preset}: {error}") from None


def check_overrides(overrides):
    """Each --set names a Config setting that the benchmark's own flags do not set."""
    for text in overrides:
        name = text.split("=")[0]
        if "=" not in text or name not in config_lib.FIELDS:
            raise UserError(f"--set {text}: give SETTING=VALUE with a Config setting: one of "
                            f"{', '.join(config_lib.FIELDS)}")
        if name in OWN_FLAGS:
            raise UserError(f"--set {name}: use {OWN_FLAGS[name]}")


def make_step(way, precision, preset, args, overrides=()):
    """(the training step as `way` runs it, a fixed batch of real images) for a preset."""
    import keras
    import numpy as np
    import tensorflow as tf

    import mnist_ds
    import stylegan
    from utils import to_unit_range

    keras.utils.set_random_seed(0)
    keras.mixed_precision.set_dtype_policy(precision)
    if way == "formula":  # the networks built with AdaNorm's formula where the fused op was
        stylegan.FusedAdaNorm = stylegan.AdaNorm
    model = stylegan.make_gan(bench_config(preset, args, precision, overrides))  # and Adam
    n = model.config.batch_size
    if args.image_size == 28:
        images = mnist_ds.read_mnist_npz(mnist_ds.SHIPPED_PATH)[0][0][:n, ..., None]
    else:  # the speed does not depend on the pixels
        images = np.random.default_rng(0).integers(
            0, 256, (n, args.image_size, args.image_size, 3))
    batch = tf.constant(to_unit_range(images.astype("uint8")))
    step = {"eager": model.train_step,
            "compiled": tf.function(model.train_step),
            "formula": tf.function(model.train_step),
            "xla": tf.function(model.train_step, jit_compile=True)}[way]
    return step, batch


def run_worker(way, precision, preset, args):
    """Time one way in this process; print one JSON line."""
    import utils

    utils.quiet_tensorflow_start()
    import numpy as np

    step, batch = make_step(way, precision, preset, args, overrides_for(preset, args))
    n = int(batch.shape[0])
    for _ in range(args.warmup):
        logs = step(batch)
    float(logs["g_loss"])  # wait for the warm-up to finish
    cycle = timing_cycle(args)
    times = []
    for _ in range(cycles_of(args.steps, cycle) * cycle):  # returns once run (CPU tensors)
        start = time.perf_counter()
        logs = step(batch)
        losses = [float(logs["d_loss"]), float(logs["g_loss"])]
        times.append(time.perf_counter() - start)
    seconds = epoch_step_seconds(times, cycle)
    print(json.dumps({"way": way, "precision": precision, "preset": preset, "step_s": seconds,
                      "batch_size": n,
                      "finite": bool(np.all(np.isfinite(losses))),
                      "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def lazy_cycle(config):
    """Steps after which the lazy penalties (R1, the hand's) repeat: an epoch pays each in
    turn, so a step's time for an epoch is a mean over whole cycles."""
    import losses

    return math.lcm(1, *([losses.R1_EVERY] if config.r1_gamma else []),
                    *([losses.HAND_EVERY] if config.hand_weight else []))


def timing_cycle(args):
    """The steps each row's means are taken over: the longest cycle among the recipes timed, the
    same for every row, so that every row's figure is the same statistic."""
    return math.lcm(*(lazy_cycle(bench_config(preset, args, overrides=overrides_for(preset, args)))
                      for preset in args.presets.split(",")))


def cycles_of(steps, cycle):
    """Whole cycles that cover at least `steps` steps."""
    return -(-steps // cycle)


def epoch_step_seconds(times, cycle):
    """A step's time in an epoch: each whole cycle's mean step, then the median cycle (a shared
    machine's bursts move a mean; the median of single steps would leave the lazy ones out)."""
    means = [statistics.fmean(times[i:i + cycle]) for i in range(0, len(times), cycle)]
    return statistics.median(means)


def measure(way, precision, preset, argv):
    command = [sys.executable, __file__, *argv, "--worker", way, precision, preset]
    run = subprocess.run(command, capture_output=True, text=True)
    if run.returncode != 0:  # reported in the table, with the error's last line
        error = (run.stderr.strip().splitlines() or [f"exit code {run.returncode}"])[-1][:200]
        print(f"{way} / {precision} / {preset} failed: {error}", file=sys.stderr)
        return {"way": way, "precision": precision, "preset": preset, "error": error}
    return json.loads(run.stdout.strip().splitlines()[-1])


def median_row(measurements):
    """One row from a run's rounds: the median step time, the highest peak memory."""
    failed = [m for m in measurements if "error" in m]
    if failed:
        return failed[0]
    return {**measurements[0], "step_s": statistics.median(m["step_s"] for m in measurements),
            "peak_rss_mib": max(m["peak_rss_mib"] for m in measurements),
            "finite": all(m["finite"] for m in measurements)}


def epoch_seconds(row):
    return row["step_s"] * (MNIST_TRAIN // row["batch_size"])


def print_table(rows):
    """One line per measurement: seconds per MNIST epoch, the ratio to the tutorial's fastest
    epoch measured in this run (its best precision) and to float32 of the same recipe and way."""
    timed = [r for r in rows if "error" not in r]
    tutorial = [r for r in timed if r["preset"] == "tutorial"]
    baseline = "the tutorial's best" if tutorial else "the fastest row"
    best = min(tutorial or timed, key=epoch_seconds) if timed else None
    float32 = {(r["preset"], r["way"]): r for r in timed if r["precision"] == "float32"}
    print(f"\n| recipe | way | precision | real images/step | ms/step | s per MNIST epoch | "
          f"epoch vs {baseline} | speed vs float32 | peak RSS MiB | losses finite |"
          "\n|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if "error" in r:
            print(f"| {r['preset']} | {r['way']} | {r['precision']} | failed (see above) "
                  f"| | | | | | |")
            continue
        own_float32 = float32.get((r["preset"], r["way"]))
        speedup = (f"{own_float32['step_s'] / r['step_s']:.2f}x" if own_float32 else "")
        print(f"| {r['preset']} | {r['way']} | {r['precision']} | {r['batch_size']} | "
              f"{1000 * r['step_s']:.0f} | {epoch_seconds(r):.0f} | "
              f"{epoch_seconds(r) / epoch_seconds(best):.2f}x | {speedup} | "
              f"{r['peak_rss_mib']:.0f} | {r['finite']} |")
    if best:
        print(f"\n{baseline}: {best['preset']} {best['way']} {best['precision']}")


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
    cycle = timing_cycle(args)
    print(f"StyleGAN train step, {args.image_size}x{args.image_size}, "
          f"latent {args.latent_dim}, loss {args.loss}, "
          f"{' '.join(args.set) or 'no --set'}; {cycles_of(args.steps, cycle) * cycle} timed "
          f"steps (means over {cycle}) after {args.warmup} warm-up, {args.rounds} round(s); "
          f"{os.cpu_count()} CPU cores")
    runs = [(way, precision, preset) for preset in args.presets.split(",")
            for precision in args.precision.split(",") for way in ways]
    rounds = [[measure(*run, argv) for run in runs] for _ in range(args.rounds)]
    print_table([median_row(list(of_one_run)) for of_one_run in zip(*rounds)])
    print("\n" + "\n".join(f"{way}: {WAYS[way]}" for way in ways))


if __name__ == "__main__":
    sys.exit(main())
