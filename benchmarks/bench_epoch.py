"""The time a user waits: train.py's own epoch, against another commit's or between flags.

    python benchmarks/bench_epoch.py --commit ac59646 --variant "" --variant "--d-kernel 4"
    python benchmarks/bench_epoch.py --variant "" --variant=--no-minibatch-std --rounds 3

Each run is `python train.py --epochs 2 --limit N --data PATH --out TEMP`, with a variant's
flags in this checkout, or with its own defaults in a git worktree of --commit (made for the
run, removed after). Its second epoch counts, as Keras' progress bar gives it (steps, and
whole ms a step): the first epoch's tracing is left out, while the lazy penalties, the data
pipeline and the callbacks are in, as in a real epoch (bench_train.py times the step alone).
The runs go in turn, round by round, and each row keeps its median round: this machine's speed
drifts from one minute to the next, so compare rows of one run only. The commit (or, without
one, the first variant) is the baseline.
"""
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from utils import ArgumentParser, UserError  # noqa: E402

SHIPPED_MNIST = ROOT / "data" / "mnist.npz"
OWN_FLAGS = ("--epochs", "--limit", "--data", "--out", "--resume")  # set by this benchmark
ANSI = re.compile(r"\x1b\[[0-9;]*m")
BAR_END = re.compile(r"(\d+)/\1 .*? ([\d.]+)(us|ms|s)/step")  # "200/200 ━━━ 19s 93ms/step"
SECONDS = {"us": 1e-6, "ms": 1e-3, "s": 1.0}


def parse_args(argv=None):
    p = ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--commit", help="also time train.py as it was at this git commit (the "
                                    "baseline), with its own default flags")
    p.add_argument("--variant", action="append", default=[], metavar="FLAGS",
                   help="train.py flags for a run of this checkout, quoted ('' for none; one "
                        "flag alone as --variant=--flag); repeatable")
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
            words = shlex.split(flags)
        except ValueError as error:
            raise UserError(f"--variant {flags!r}: {error}") from None
        own = [word for word in words if word.split("=")[0] in OWN_FLAGS]
        if own:
            raise UserError(f"--variant {flags!r}: {own[0].split('=')[0]} is the benchmark's "
                            f"own (give --limit or --data to it, not to a variant)")
    names = [row_name(flags) for flags in args.variant]
    twice = [name for name in names if names.count(name) > 1]
    if twice:
        raise UserError(f"--variant: {twice[0]!r} given twice")
    if args.commit is not None:
        if not shutil.which("git"):
            raise UserError("--commit needs git, which is not installed")
        if git("rev-parse", "--verify", "--quiet", f"{args.commit}^{{commit}}").returncode:
            raise UserError(f"--commit {args.commit}: not a commit of this repository")


def row_name(flags):
    return f"this checkout {shlex.join(shlex.split(flags)) or '(defaults)'}"


def git(*words):
    return subprocess.run(["git", "-C", str(ROOT), *words], capture_output=True, text=True)


def epoch_of(output):
    """(steps, seconds a step) of the last epoch in train.py's output, from Keras' final
    progress line; None if there is none."""
    lines = ANSI.sub("", output.replace("\r", "\n")).splitlines()
    ends = [match for match in map(BAR_END.search, lines) if match]
    if not ends:
        return None
    steps, value, unit = ends[-1].groups()
    return int(steps), float(value) * SECONDS[unit]


def time_epoch(code_dir, flags, args, out):
    """((steps, seconds a step) of the second epoch, or None; the output's last line)."""
    command = [sys.executable, "train.py", "--epochs", "2", "--limit", str(args.limit),
               "--data", str(Path(args.data).resolve()), "--out", str(out), *flags]
    run = subprocess.run(command, cwd=code_dir, capture_output=True, text=True)
    epoch = epoch_of(run.stdout) if run.returncode == 0 else None
    return epoch, (run.stderr.strip().splitlines() or [""])[-1][:200]


def stop_on_sigterm(signum, frame):
    raise KeyboardInterrupt  # subprocess.run then kills the run, and `finally` cleans up


def main(argv=None):
    args = parse_args(argv)
    try:
        check_args(args)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    with tempfile.TemporaryDirectory(prefix="bench_epoch-") as temp:
        worktree = Path(temp) / "commit"
        rows = [(row_name(flags), ROOT, shlex.split(flags)) for flags in args.variant]
        try:
            if args.commit is not None:
                added = git("worktree", "add", "--detach", "--quiet", str(worktree), args.commit)
                if added.returncode:
                    print(f"error: git worktree add: {added.stderr.strip()[:200]}",
                          file=sys.stderr)
                    return 1
                short = git("rev-parse", "--short", args.commit).stdout.strip()
                rows.insert(0, (f"commit {short}", worktree, []))
            epochs = time_rows(rows, args, Path(temp))
        finally:
            if worktree.exists() and git("worktree", "remove", "--force", str(worktree)).returncode:
                print(f"warning: could not remove the worktree {worktree}; run `git worktree "
                      f"prune`", file=sys.stderr)
    if epochs is None:
        return 1
    print_table(epochs, args.limit)
    return 0


def time_rows(rows, args, temp):
    """{row name: [(steps, seconds a step) of each round]}, or None if a run timed nothing."""
    epochs = {name: [] for name, _, _ in rows}
    for round_ in range(args.rounds):
        for i, (name, code_dir, flags) in enumerate(rows):
            epoch, last_line = time_epoch(code_dir, flags, args, temp / f"run-{round_}-{i}")
            if epoch is None:
                print(f"{name}: no epoch timed: {last_line}", file=sys.stderr)
                return None
            epochs[name].append(epoch)
            print(f"round {round_ + 1}: {name}: {epoch[0]} steps of {1000 * epoch[1]:.0f} ms",
                  flush=True)
    return epochs


def print_table(epochs, limit):
    """A row per code and flags: its steps, each round's seconds an epoch (steps x seconds a
    step: rows may step on batches of their own), the median's, and its ratio to the first
    row's."""
    seconds = {name: [steps * step_s for steps, step_s in rounds]
               for name, rounds in epochs.items()}
    medians = {name: statistics.median(values) for name, values in seconds.items()}
    baseline = next(iter(medians.values()))
    print(f"\nthe second epoch of {limit:,} images, in seconds (Keras' progress bar: steps x "
          f"ms a step)\n\n| code and flags | steps | each round | median | vs the first row |"
          f"\n|---|---|---|---|---|")
    for name, values in seconds.items():
        rounds = ", ".join(f"{v:.1f}" for v in values)
        print(f"| {name} | {epochs[name][0][0]} | {rounds} | {medians[name]:.1f} | "
              f"{medians[name] / baseline:.2f}x |")


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("stopped: the runs and the worktree are removed, no table", file=sys.stderr)
        sys.exit(130)
