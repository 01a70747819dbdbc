"""The time a user waits: train.py's own epoch, against another commit's or between flags.

    python benchmarks/bench_epoch.py --commit ac59646 --variant "" --variant "--d-kernel 4"
    python benchmarks/bench_epoch.py --variant "" --variant "--filters 32" --rounds 3

Each run is `python train.py --epochs 2 --limit N --data MNIST --out TEMP`, with a variant's
flags in this checkout, or as it is in a git worktree of --commit (made for the run, removed
after). Its second epoch counts, as Keras' progress bar gives it (ms a step): tracing is left
out, while the lazy penalties, the data pipeline and the callbacks are in, as in a real epoch.
bench_train.py times the step alone. The runs go in turn, round by round, and each row keeps
its median round: this machine's speed drifts from one minute to the next, so compare rows of
one run only. The commit (or, without one, the first variant) is the baseline.
"""
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from utils import ArgumentParser, UserError  # noqa: E402

SHIPPED_MNIST = ROOT / "data" / "mnist.npz"
ANSI = re.compile(r"\x1b\[[0-9;]*m")
BAR_END = re.compile(r"(\d+)/\1 .*? ([\d.]+)(us|ms|s)/step")  # "200/200 ━━━ 19s 93ms/step"
SECONDS = {"us": 1e-6, "ms": 1e-3, "s": 1.0}


def parse_args(argv=None):
    p = ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--commit", help="also time train.py as it was at this git commit (the "
                                    "baseline), with its own default flags")
    p.add_argument("--variant", action="append", default=[], metavar="FLAGS",
                   help="train.py flags for a run of this checkout, quoted ('' for none; "
                        "repeatable)")
    p.add_argument("--limit", type=int, default=12800,
                   help="images an epoch (12,800: 200 steps of the default's 64)")
    p.add_argument("--rounds", type=int, default=2, help="every row this many times, in turn")
    p.add_argument("--data", default=str(SHIPPED_MNIST), help="the mnist.npz to train on")
    return p.parse_args(argv)


def check_args(args):
    """One line and exit code 2 for anything wrong, before any run starts."""
    if not args.variant:
        raise UserError("give at least one --variant ('' runs train.py's defaults)")
    if args.limit < 1 or args.rounds < 1:
        raise UserError("--limit and --rounds must be at least 1")
    if not Path(args.data).is_file():
        raise UserError(f"--data {args.data}: no such file; give an mnist.npz")
    for flags in args.variant:
        try:
            shlex.split(flags)
        except ValueError as error:
            raise UserError(f"--variant {flags!r}: {error}") from None
    if args.commit and git("rev-parse", "--verify", "--quiet",
                           f"{args.commit}^{{commit}}").returncode != 0:
        raise UserError(f"--commit {args.commit}: not a commit of this repository")


def git(*words):
    return subprocess.run(["git", "-C", str(ROOT), *words], capture_output=True, text=True)


def step_seconds(output):
    """Seconds a step of the last epoch in train.py's output, from Keras' final progress line."""
    lines = ANSI.sub("", output.replace("\r", "\n")).splitlines()
    ends = [match for match in map(BAR_END.search, lines) if match]
    if not ends:
        return None
    _, value, unit = ends[-1].groups()
    return float(value) * SECONDS[unit]


def time_epoch(code_dir, flags, args, out):
    """(seconds a step of the second epoch, or None, the output's last line) of one run."""
    command = [sys.executable, "train.py", "--epochs", "2", "--limit", str(args.limit),
               "--data", str(Path(args.data).resolve()), "--out", str(out), *flags]
    run = subprocess.run(command, cwd=code_dir, capture_output=True, text=True)
    seconds = step_seconds(run.stdout) if run.returncode == 0 else None
    return seconds, (run.stderr.strip().splitlines() or [""])[-1][:200]


def main(argv=None):
    args = parse_args(argv)
    try:
        check_args(args)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="bench_epoch-") as temp:
        rows = [(f"this checkout {flags or '(defaults)'}", ROOT, shlex.split(flags))
                for flags in args.variant]
        if args.commit:
            worktree = Path(temp) / "commit"
            subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "--quiet",
                            str(worktree), args.commit], check=True)
            rows.insert(0, (f"commit {args.commit}", worktree, []))
        try:
            times = {name: [] for name, _, _ in rows}
            for round_ in range(args.rounds):
                for i, (name, code_dir, flags) in enumerate(rows):
                    seconds, last_line = time_epoch(code_dir, flags, args,
                                                    Path(temp) / f"run-{round_}-{i}")
                    if seconds is None:
                        print(f"{name}: no epoch timed: {last_line}", file=sys.stderr)
                        return 1
                    times[name].append(seconds)
                    print(f"round {round_ + 1}: {name}: {1000 * seconds:.0f} ms a step",
                          flush=True)
        finally:
            if args.commit:
                git("worktree", "remove", "--force", str(worktree))
    print_table(times, args.limit)
    return 0


def print_table(times, limit):
    """A row per code and flags: each round's ms a step, the median's, and its ratio to the
    first row's median."""
    medians = {name: statistics.median(values) for name, values in times.items()}
    baseline = next(iter(medians.values()))
    print(f"\nthe second epoch of {limit:,} images, ms a step (Keras' progress bar)\n"
          "\n| code and flags | each round | median | vs the first row |\n|---|---|---|---|")
    for name, values in times.items():
        rounds = ", ".join(f"{1000 * v:.0f}" for v in values)
        print(f"| {name} | {rounds} | {1000 * medians[name]:.0f} | "
              f"{medians[name] / baseline:.2f}x |")


if __name__ == "__main__":
    sys.exit(main())
