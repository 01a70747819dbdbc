"""Milliseconds per training step of `model.fit` at several values of one setting, for one recipe.

    python benchmarks/bench_execution.py                      # the default recipe, 1, 8 and 32
    python benchmarks/bench_execution.py --values 1,4 --steps 64 --rounds 3
    python benchmarks/bench_execution.py --setting hand_weight --values 0,1   # a penalty's cost
    python benchmarks/bench_execution.py --setting filters,d_filters --values 64/32,48/64  # both

Keras' `steps_per_execution` runs that many training steps in one compiled call, so Python
dispatches (and callbacks run) once per call instead of once per step. Each value gets its own
model in a process of its own, trained by `model.fit` on the shipped MNIST as train.py trains it:
a warm-up fit traces the call, then one fit of --steps steps is timed, from its first step's
start to its last step's end. Every round measures each value in turn (a shared machine's speed
drifts from one minute to the next: rounds interleave the values, and the median round
counts). The ratios against the first value, measured in one run, are the figures to compare
across machines. The setting is steps_per_execution unless --setting names another (or several,
comma-separated, each value then giving theirs joined by "/"); all of a fit's steps are timed,
so a lazy penalty's occasional steps count at their share.
"""
import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import config as config_lib  # noqa: E402
from bench_train import json_or_text  # noqa: E402
from utils import ArgumentParser, UserError, quiet_tensorflow_start  # noqa: E402


def parse_args(argv=None):
    p = ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--setting", default="steps_per_execution",
                   help="the Config field (of the networks or the step) whose --values are "
                        "timed; several, comma-separated, to time them together")
    p.add_argument("--values", default="1,8,32",
                   help="comma-separated values of --setting (of several settings: each as "
                        "64/32); ratios are to the first")
    p.add_argument("--steps", type=int, default=96,
                   help="timed steps per fit, a multiple of every value")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--preset", default="stylegan", choices=sorted(config_lib.PRESETS))
    p.add_argument("--precision", default="auto", choices=config_lib.PRECISIONS)
    p.add_argument("--worker", type=int, help=argparse.SUPPRESS)  # time one value, in-process
    return p.parse_args(argv)


def check_args(args):
    """A Config for each value, checked as train.py checks flags; one line and exit code 2 for
    anything out of range."""
    names = args.setting.split(",")
    if len(set(names)) < len(names):
        raise UserError(f"--setting {args.setting}: a setting is named twice")
    for name in names:
        if name not in config_lib.FIELDS or name in NOT_IN_THE_STEP:
            raise UserError(f"--setting {name!r}: give a setting of the network or the "
                            f"step (config.py lists them; {', '.join(NOT_IN_THE_STEP)} do not "
                            f"change a step)")
    values = args.values.split(",")
    for value in values:
        if len(value.split("/")) != len(names):
            raise UserError(f"--values {value!r}: give {len(names)} value(s) joined by '/', "
                            f"one for each of --setting {args.setting}")
    parsed = [tuple(json_or_text(part.strip()) for part in value.split("/")) for value in values]
    if len(set(parsed)) < len(parsed):
        raise UserError(f"--values {args.values}: a value is given twice")
    if args.rounds < 1 or args.steps < 1:
        raise UserError("--steps and --rounds must be at least 1")
    configs = {}
    for value, parts in zip(values, parsed):
        try:
            configs[value] = recipe(args, parts)
        except config_lib.ConfigError as error:  # its flags are train.py's
            raise UserError(f"{args.setting}={value} in --preset {args.preset}, as train.py "
                            f"says: {error}") from None
    if args.worker is not None and not 0 <= args.worker < len(values):
        raise UserError(f"--worker {args.worker}: no such value")
    if any(args.steps % config.steps_per_execution for config in configs.values()):
        raise UserError(f"--steps {args.steps} must be a multiple of every steps_per_execution "
                        f"({args.values}): a call runs whole groups of steps")
    return configs


# settings of a run, not of its networks or step: the benchmark's fit would time one recipe twice
NOT_IN_THE_STEP = ("preset", "epochs", "limit", "data", "dataset", "shuffle_buffer", "keep",
                   "save_every", "eval_every", "eval_classifier", "log_every", "lr_halved_from",
                   "grid_noise")


def recipe(args, parts):
    """The preset's Config with each setting of --setting at its value in `parts` (one value
    of --values, read: (1,) for "1", (64, 32) for "64/32")."""
    chosen = dict(zip(args.setting.split(","), parts))
    settings = {**config_lib.to_dict(config_lib.PRESETS[args.preset]),
                "precision": args.precision, **chosen}
    return config_lib.from_dict(settings, lambda name: f"--values of {name}")


def make_fit(config):
    """A function that trains a fresh model of the recipe for `steps` steps, as train.py does."""
    import keras

    import mnist_ds
    import stylegan
    import train

    keras.mixed_precision.set_dtype_policy(train.resolved_precision(config))
    keras.utils.set_random_seed(0)
    model = stylegan.make_gan(config)
    images = mnist_ds.read_mnist_npz(mnist_ds.SHIPPED_PATH)[0][0]
    dataset, _ = mnist_ds.make_dataset(images, config.batch_size, epochs=1_000,
                                       steps_multiple=config.steps_per_execution)
    return lambda steps, callbacks=(): model.fit(dataset, epochs=1, steps_per_epoch=steps,
                                                 shuffle=False, verbose=0,
                                                 callbacks=list(callbacks))


def call_clock():
    """A Keras callback noting when a fit's first call starts and its last call ends."""
    import keras

    class CallClock(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            if batch == 0:
                self.start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.end = time.perf_counter()

    return CallClock()


def seconds_per_step(fit, steps):
    """One fit's seconds per step, from its first call's start to its last call's end:
    `model.fit` sometimes idles after its last step until about the next 10.24 s from its start
    (docs/results.md, "A timing artefact"), and that wait is not the steps' time."""
    clock = call_clock()
    fit(steps, [clock])
    return (clock.end - clock.start) / steps


def run_worker(config, steps):
    """Time one fit of `steps` steps in this process, after one that traces; print the seconds
    per step."""
    quiet_tensorflow_start()
    fit = make_fit(config)
    fit(2 * config.steps_per_execution)  # traces the call
    print(json.dumps({"step_s": seconds_per_step(fit, steps)}))


def measure(index, argv):
    """One value's seconds per step, timed in a fresh process: a second model in one process
    steps slower than the first (measured: 1.3-1.5x, whichever value came second)."""
    command = [sys.executable, __file__, *argv, "--worker", str(index)]
    run = subprocess.run(command, capture_output=True, text=True)
    if run.returncode != 0:
        raise UserError(f"the measurement of value {index + 1} failed: "
                        f"{(run.stderr.strip().splitlines() or ['no message'])[-1][:300]}")
    return json.loads(run.stdout.strip().splitlines()[-1])["step_s"]


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    try:
        configs = check_args(args)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    values = list(configs)
    if args.worker is not None:
        run_worker(configs[values[args.worker]], args.steps)
        return 0
    times = {value: [] for value in values}
    try:
        for _ in range(args.rounds):
            for index, value in enumerate(values):
                times[value].append(measure(index, argv))
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    base = statistics.median(times[values[0]])
    print(f"| {args.setting} | ms/step | vs {values[0]} |\n|---|---|---|")
    for value in values:
        seconds = statistics.median(times[value])
        print(f"| {value} | {seconds * 1000:.1f} | {base / seconds:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
