"""FLOPs of one training step, counted from its graph (the issue "Ready for real face runs": a
GPU run on paper).

    python benchmarks/flops.py                      # the MNIST default and 64x64 faces
    python benchmarks/flops.py --sizes 28 --set d_filters=64   # the cost of one lever

TensorFlow's profiler adds up the float operations registered for every op of the compiled
step's graph: the convolutions and both their gradients, the matmuls, the elementwise ops. The
graph is traced in float32; the count does not depend on the precision. Not counted: the ops
inside tf.cond branches, i.e. the lazy penalties (R1 on every 16th D step, the hand penalty
on every 4th G step). What the count implies on a GPU is an estimate (README, Speed).
"""
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
import utils  # noqa: E402


def bench_args(image_size, batch_size=0, preset="stylegan"):
    """bench_train.py's arguments for one step of the preset at image_size (batch_size 0: the
    preset's)."""
    import bench_train

    flags = ["--image-size", str(image_size), "--presets", preset]
    return bench_train.parse_args(flags + (["--batch-size", str(batch_size)] if batch_size else []))


def step_flops(image_size, batch_size=0, preset="stylegan", overrides=()):
    """Float operations of one training step of the preset at image_size, with the Config
    overrides ("name=value", as bench_train.py's --set) applied."""
    import tensorflow as tf

    import bench_train

    step, batch = bench_train.make_step("compiled", "float32", preset,
                                        bench_args(image_size, batch_size, preset), overrides)
    graph = step.get_concrete_function(batch).graph
    tf.get_logger().setLevel("ERROR")  # the v1 profiler's deprecation notice
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    return tf.compat.v1.profiler.profile(graph, options=options).total_float_ops


def check_args(args):
    """The sizes as ints; one line and exit code 2 (raised as UserError) for a bad size, batch or
    --set, before anything is traced."""
    import bench_train

    config_lib = bench_train.config_lib
    allowed = (config_lib.MNIST_SIZE, *config_lib.FOLDER_SIZES)
    try:
        sizes = [int(size) for size in args.sizes.split(",")]
    except ValueError:
        sizes = []
    if not sizes or any(size not in allowed for size in sizes) or len(set(sizes)) < len(sizes):
        raise utils.UserError(f"--sizes {args.sizes!r}: give different image sizes from "
                              f"{', '.join(map(str, allowed))} (28: MNIST), such as 28,64")
    if not 0 <= args.batch_size <= 2500:
        raise utils.UserError("--batch-size must be 0 (the recipe's) to 2,500: a step's count "
                              "needs no bigger batch")
    owned = [text for text in args.set if text.split("=")[0] in bench_train.OWN_FLAGS]
    if owned:
        raise utils.UserError(f"--set {owned[0]}: flops.py counts the default recipe at "
                              f"--sizes and --batch-size; it does not change that setting")
    bench_train.check_overrides(args.set)
    for size in sizes:
        try:
            bench_train.bench_config("stylegan", bench_args(size, args.batch_size),
                                     overrides=args.set)
        except config_lib.ConfigError as error:
            raise utils.UserError(f"{error} (at --sizes {size})") from None
    return sizes


def main(argv=None):
    p = utils.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", default="28,64", help="image sizes (28: MNIST)")
    p.add_argument("--batch-size", type=int, default=0, help="0: the recipe's (64)")
    p.add_argument("--set", action="append", default=[], metavar="SETTING=VALUE",
                   help="a Config setting of the default recipe, e.g. d_filters=64 "
                        "(repeatable), as bench_train.py takes it")
    args = p.parse_args(argv)
    try:
        sizes = check_args(args)
    except utils.UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    utils.quiet_tensorflow_start()  # once the flags are checked: a refusal needs no TensorFlow
    for size in sizes:
        flops = step_flops(size, args.batch_size, overrides=args.set)
        print(f"{size}x{size}: {flops / 1e9:,.1f} GFLOP a training step")
    return 0


if __name__ == "__main__":
    sys.exit(main())
