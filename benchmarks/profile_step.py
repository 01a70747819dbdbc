"""Where the compiled training step's time goes: TensorFlow's profiler, summed by op and by layer.

    python benchmarks/profile_step.py                         # the default, mixed_bfloat16
    python benchmarks/profile_step.py --preset tutorial --precision float32 --top 30

Builds the step as bench_train.py's "compiled" way does (same batch, same settings; here
`--set` applies to the tutorial preset too), warms it up, traces --steps steps with
`tf.profiler.experimental` and reads the trace (an XSpace protobuf) back: every TensorFlow op the
CPU ran, with its duration. It prints the op time per step by part of the model (G or D, forward
or backward, the optimizers, the rest), by layer of G and by op type. Ops run two at a time on
two cores and each op's own time includes its threads' work, so op time adds up to more than
the step's wall time: read the shares, not the sum. docs/speed.md summarises its output.
"""
import collections
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_train  # noqa: E402
from utils import UserError  # noqa: E402


def parse_args(argv=None):
    p = bench_train.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--preset", default="stylegan", choices=sorted(bench_train.config_lib.PRESETS))
    p.add_argument("--precision", default="mixed_bfloat16",
                   choices=bench_train.config_lib.PRECISIONS[1:])
    p.add_argument("--steps", type=int, default=5, help="traced steps")
    p.add_argument("--top", type=int, default=15, help="rows of each table")
    p.add_argument("--set", action="append", default=[], metavar="SETTING=VALUE",
                   help="a Config setting (repeatable), as in bench_train.py")
    args = p.parse_args(argv)
    # bench_train's own settings, for make_step (the --set overrides go to it apart)
    bench = bench_train.parse_args(["--presets", args.preset, "--precision", args.precision])
    return args, bench


def trace_ops(step, batch, steps, folder):
    """[(op name, op type, milliseconds)] of every op the traced steps ran."""
    import tensorflow as tf
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    for _ in range(3):  # tracing and oneDNN's first calls stay out of the trace
        logs = step(batch)
    float(logs["g_loss"])
    tf.profiler.experimental.start(folder)
    start = time.perf_counter()
    for _ in range(steps):
        logs = step(batch)
    float(logs["g_loss"])
    wall = (time.perf_counter() - start) / steps
    tf.profiler.experimental.stop()
    space = xplane_pb2.XSpace()
    space.ParseFromString(next(Path(folder).rglob("*.xplane.pb")).read_bytes())
    host = next(plane for plane in space.planes if plane.name == "/host:CPU")
    ops = []
    for line in host.lines:
        if not line.name.startswith("tf_Compute"):  # the executor's threads run the ops
            continue
        for event in line.events:
            label = host.event_metadata[event.metadata_id].name  # "scope/name:OpType"
            if ":" in label and "::" not in label:
                name, op_type = label.rsplit(":", 1)
                ops.append((name, op_type, event.duration_ps / 1e9))
    return ops, wall


def part(name):
    """G or D, forward or backward, from the op's name scope."""
    direction = "backward" if name.startswith("gradient_tape/") else "forward"
    if re.search(r"synthesis|generator|(^|/)map", name):
        return f"G {direction}"
    if "discriminator" in name:
        return f"D {direction}"
    if re.search(r"(?i)adam|optimizer|loss_scale", name):
        return "optimizers"
    return "other (random draws, EMA, sums)"


# G's synthesis net runs under its own name, or under synthesis_and_features (the same layers)
# where the hand penalty reuses G's last feature map
SYNTHESIS_SCOPES = ("synthesis", "synthesis_and_features")


def g_layer(name):
    """'style_2 conv', 'to_image', 'map', ... for an op of G: the name scopes after `synthesis`
    (or `map`), less the call counters Keras appends (`style_2_1` is style_2's first call)."""
    scopes = [re.sub(r"_\d+$", "", scope) for scope in name.split("/")[:-1]]  # [-1]: the op
    if "map" in scopes:
        return "map"
    starts = [i for i, scope in enumerate(scopes) if scope in SYNTHESIS_SCOPES]
    if not starts or starts[0] == len(scopes) - 1:
        return "other"
    layer, *inside = scopes[starts[0] + 1:]
    if layer.startswith("style") and inside:  # the style block's own layer
        return f"{layer} {re.sub(r'_[0-9]+$', '', inside[0])}"
    return layer


def print_table(title, totals, steps, top):
    total = sum(totals.values())
    print(f"\n| {title} | ms per step | share |\n|---|---|---|")
    for key, ms in totals.most_common(top):
        print(f"| {key} | {ms / steps:.1f} | {100 * ms / total:.0f}% |")


def main(argv=None):
    args, bench = parse_args(argv)
    try:
        bench_train.check_args(bench)
        bench_train.check_overrides(args.set)
        bench_train.bench_config(args.preset, bench, args.precision, args.set)
        if args.steps < 1:
            raise UserError("--steps must be at least 1")
    except bench_train.config_lib.ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    step, batch = bench_train.make_step("compiled", args.precision, args.preset, bench,
                                        args.set)
    with tempfile.TemporaryDirectory() as folder:
        ops, wall = trace_ops(step, batch, args.steps, folder)
    by_part, by_layer, by_type = (collections.Counter() for _ in range(3))
    for name, op_type, ms in ops:
        by_part[part(name)] += ms
        by_type[op_type] += ms
        if part(name).startswith("G"):
            by_layer[f"{g_layer(name)}, {part(name)[2:]}"] += ms
    print(f"{args.preset}, {args.precision}, batch {batch.shape[0]}: {1000 * wall:.0f} ms a "
          f"step (wall, while traced), {sum(by_part.values()) / args.steps:.0f} ms of op time")
    print_table("part", by_part, args.steps, args.top)
    print_table("layer of G", by_layer, args.steps, args.top)
    print_table("op type", by_type, args.steps, args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
