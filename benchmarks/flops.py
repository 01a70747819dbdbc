"""FLOPs of one training step, counted from its graph (the issue "Ready for real face runs": a
GPU run on paper).

    python benchmarks/flops.py                      # the MNIST default and 64x64 faces

TensorFlow's profiler adds up the float operations registered for every op of the compiled
step's graph: the convolutions and both their gradients, the matmuls, the elementwise ops. The
graph is traced in float32; the count does not depend on the precision. Not counted: the ops
inside tf.cond branches, i.e. lazy R1, which runs on every 16th D step only. What the count
implies on a GPU is an estimate (README, Speed).
"""
import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
import utils  # noqa: E402

utils.quiet_tensorflow_start()


def step_flops(image_size, batch_size=0, preset="stylegan"):
    """Float operations of one training step of the preset at image_size (batch_size 0: the
    preset's)."""
    import tensorflow as tf

    import bench_train

    flags = ["--image-size", str(image_size), "--presets", preset]
    args = bench_train.parse_args(flags + (["--batch-size", str(batch_size)] if batch_size else []))
    step, batch = bench_train.make_step("compiled", "float32", preset, args)
    graph = step.get_concrete_function(batch).graph
    tf.get_logger().setLevel("ERROR")  # the v1 profiler's deprecation notice
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    return tf.compat.v1.profiler.profile(graph, options=options).total_float_ops


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", default="28,64", help="image sizes (28: MNIST)")
    p.add_argument("--batch-size", type=int, default=0, help="0: the recipe's (64)")
    args = p.parse_args(argv)
    for size in (int(s) for s in args.sizes.split(",")):
        flops = step_flops(size, args.batch_size)
        print(f"{size}x{size}: {flops / 1e9:,.1f} GFLOP a training step")


if __name__ == "__main__":
    main()
