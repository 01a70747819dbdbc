"""Milliseconds per training step of `model.fit` at several --steps-per-execution, for one recipe.

    python benchmarks/bench_execution.py                      # the default recipe, 1, 8 and 32
    python benchmarks/bench_execution.py --values 1,4 --steps 64 --rounds 3

Keras' `steps_per_execution` runs that many training steps in one compiled call, so Python
dispatches (and callbacks run) once per call instead of once per step. Each value gets its own
model, trained by `model.fit` on the shipped MNIST as train.py trains it; a warm-up fit traces the
call first, then every round times one fit of --steps steps for each value in turn (a shared
machine's speed drifts from one minute to the next: rounds interleave the values, and the
median round counts). The ratios against the first value, measured in one run, are the figures
to compare across machines.
"""
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import config as config_lib  # noqa: E402
from utils import ArgumentParser, UserError, quiet_tensorflow_start  # noqa: E402


def parse_args(argv=None):
    p = ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--values", default="1,8,32",
                   help="comma-separated steps_per_execution values; ratios are to the first")
    p.add_argument("--steps", type=int, default=96,
                   help="timed steps per fit, a multiple of every value")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--preset", default="stylegan", choices=sorted(config_lib.PRESETS))
    p.add_argument("--precision", default="auto", choices=config_lib.PRECISIONS)
    return p.parse_args(argv)


def check_args(args):
    """The values as ints; one line and exit code 2 for anything out of range."""
    try:
        values = [int(text) for text in args.values.split(",")]
    except ValueError:
        raise UserError(f"--values {args.values!r}: give whole numbers, e.g. 1,8,32") from None
    if min(values) < 1 or args.rounds < 1 or args.steps < 1:
        raise UserError("--values, --steps and --rounds must be at least 1")
    if any(args.steps % value for value in values):
        raise UserError(f"--steps {args.steps} must be a multiple of every value in --values "
                        f"({args.values}): a call runs whole groups of steps")
    return values


def make_fit(value, args):
    """A function that trains a fresh model of the recipe for `steps` steps, as train.py does."""
    import keras

    import mnist_ds
    import stylegan
    import train

    config = config_lib.from_dict({**config_lib.to_dict(config_lib.PRESETS[args.preset]),
                                   "steps_per_execution": value, "precision": args.precision})
    keras.mixed_precision.set_dtype_policy(train.resolved_precision(config))
    keras.utils.set_random_seed(0)
    model = stylegan.make_gan(config)
    images = mnist_ds.read_mnist_npz(mnist_ds.SHIPPED_PATH)[0][0]
    dataset, _ = mnist_ds.make_dataset(images, config.batch_size, epochs=1_000,
                                       steps_multiple=value)
    return lambda steps: model.fit(dataset, epochs=1, steps_per_epoch=steps, shuffle=False,
                                   verbose=0)


def main(argv=None):
    args = parse_args(argv)
    try:
        values = check_args(args)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    quiet_tensorflow_start()
    fits = {value: make_fit(value, args) for value in values}
    for value, fit in fits.items():
        fit(2 * value)  # traces the call
    times = {value: [] for value in values}
    for _ in range(args.rounds):
        for value, fit in fits.items():
            start = time.perf_counter()
            fit(args.steps)
            times[value].append((time.perf_counter() - start) / args.steps)
    base = statistics.median(times[values[0]])
    print(f"| steps_per_execution | ms/step | vs {values[0]} |\n|---|---|---|")
    for value in values:
        seconds = statistics.median(times[value])
        print(f"| {value} | {seconds * 1000:.1f} | {base / seconds:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
