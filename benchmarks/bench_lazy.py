"""What the lazy penalties cost, timed step by step within one fit of one model.

    python benchmarks/bench_lazy.py                  # the default recipe, 480 timed steps
    python benchmarks/bench_lazy.py --steps 960 --preset stylegan

A lazy penalty runs on every N-th update only (R1: every r1_every-th D step; the hand and
fine-style penalties: every N-th G step), so one fit has steps with a penalty and steps
without. Timing every step of one fit compares them on the same model, in the same process, at
the same machine speed: runs in separate processes cannot, on a machine whose speed changes
from one process to the next (docs/results.md, "Steps per call"). A penalty on every N-th step
adds (its steps' extra time) / N to the mean step, and so to an epoch.
"""
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import config as config_lib  # noqa: E402
from bench_execution import make_fit  # noqa: E402
from utils import ArgumentParser, UserError, quiet_tensorflow_start  # noqa: E402


def parse_args(argv=None):
    p = ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=480, help="timed steps")
    p.add_argument("--warmup", type=int, default=32,
                   help="untimed steps first: the trace, and the machine settling")
    p.add_argument("--preset", default="stylegan", choices=sorted(config_lib.PRESETS))
    p.add_argument("--precision", default="auto", choices=config_lib.PRECISIONS)
    return p.parse_args(argv)


LABELS = {"r1_gamma": "R1", "hand_weight": "hand", "fine_style_weight": "fine style"}


def lazy_penalties(config):
    """{label: (the optimizer whose updates count, every)} of the penalties this recipe has
    on (config.lazy_penalties, named for the table)."""
    return {LABELS.get(weight, weight): how
            for weight, how in config_lib.lazy_penalties(config).items()}


def step_clock(penalties):
    """A Keras callback that records each step's seconds, and which lazy penalties ran in it,
    in its list `steps`."""
    import keras

    class StepClock(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.steps = []

        def on_train_batch_begin(self, batch, logs=None):
            counts = {"d": int(self.model.d_optimizer.iterations),
                      "g": int(self.model.g_optimizer.iterations)}
            self.ran = tuple(name for name, (who, every) in penalties.items()
                             if counts[who] % every == 0)
            self.start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            float(logs["d_loss"])  # waits for the step to end: the loss is one of its outputs
            self.steps.append((self.ran, time.perf_counter() - self.start))

    return StepClock()


def summary(steps, penalties):
    """A markdown table: median ms of the steps with each set of penalties, and each penalty's
    share of an epoch against the steps with none."""
    groups = {}
    for ran, seconds in steps:
        groups.setdefault(ran, []).append(seconds)
    if () not in groups:
        raise UserError("no timed step ran without a penalty: give more --steps")
    plain = statistics.median(groups[()])
    lines = ["| penalties in the step | steps | median ms | vs none |", "|---|---|---|---|"]
    for ran in sorted(groups, key=len):
        median = statistics.median(groups[ran])
        lines.append(f"| {' + '.join(ran) or 'none'} | {len(groups[ran])} | "
                     f"{median * 1000:.1f} | {median / plain:.2f}x |")
    for name, (_, every) in penalties.items():
        alone = groups.get((name,))
        if alone:
            extra = (statistics.median(alone) - plain) / every / plain
            lines.append(f"\n{name} (every {every}th step): {extra:+.1%} on an epoch")
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    try:
        if args.steps < 1 or args.warmup < 1:
            raise UserError(f"--steps {args.steps} --warmup {args.warmup}: give 1 or more")
        config = config_lib.PRESETS[args.preset]
        config = config_lib.from_dict({**config_lib.to_dict(config),  # a call per step
                                       "precision": args.precision, "steps_per_execution": 1})
        penalties = lazy_penalties(config)
        if not penalties:
            raise UserError(f"--preset {args.preset} has no lazy penalty on")
    except (UserError, config_lib.ConfigError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    quiet_tensorflow_start()
    fit = make_fit(config)
    fit(args.warmup)
    clock = step_clock(penalties)
    fit(args.steps, callbacks=[clock])
    try:
        print(summary(clock.steps, penalties))
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
