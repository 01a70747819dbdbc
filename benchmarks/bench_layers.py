"""Two of the step's layers alone, each against the way it was written before, forward and backward.

    python benchmarks/bench_layers.py

- AdaNorm: the fused op it is now (`stylegan.AdaNorm`) against the formula's ops, statistics in
  float32 (`mean, variance = moments(x); (x - mean) / sqrt(variance + eps)`).
- to_image: its 5x5 conv to one channel in float32 (as it ran under mixed precision before)
  against bfloat16 (it runs in the compute dtype now).

Both on the default's largest feature map: 64 images of 28x28x64, compiled (`tf.function`), the
median of --steps calls after 3 warm-up calls. Ratios within one run are what to compare.
"""
import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import utils  # noqa: E402

utils.quiet_tensorflow_start()
SHAPE = (64, 28, 28, 64)  # the default's batch, at style_2's size


def median_ms(function, steps, *inputs):
    """Median wall time of one call, in ms, of function(*inputs) -> (output, gradient)."""
    import numpy as np

    for _ in range(3):
        function(*inputs)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        float(np.sum(function(*inputs)[1]))  # waits for the gradient
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def with_gradient(layer):
    """A compiled function: layer(x) and d sum(w * layer(x)) / dx."""
    import tensorflow as tf

    @tf.function
    def run(x, weights):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x)
            loss = tf.reduce_sum(weights * tf.cast(y, "float32"))
        return y, tf.cast(tape.gradient(loss, x), "float32")
    return run


def formula_norm(x, epsilon=1e-5):
    """AdaNorm as the tutorial writes it, with float32 statistics (the code before the fused op)."""
    from keras import ops
    x32 = ops.cast(x, "float32")
    mean, variance = ops.moments(x32, axes=[1, 2], keepdims=True)
    return ops.cast((x32 - mean) * ops.rsqrt(variance + epsilon), x.dtype)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=30)
    args = p.parse_args(argv)
    if args.steps < 1:
        print("error: --steps must be at least 1", file=sys.stderr)
        return 2
    import tensorflow as tf

    import stylegan

    x32 = tf.random.stateless_normal(SHAPE, [0, 1]) * 2.0 + 0.5
    weights = tf.random.stateless_normal(SHAPE, [0, 2])
    kernel = tf.random.stateless_normal((5, 5, SHAPE[-1], 1), [0, 3]) * 0.05
    print("| layer | way | dtype | ms, forward and backward |\n|---|---|---|---|")
    for dtype in ("float32", "bfloat16"):
        x = tf.cast(x32, dtype)
        policy = "float32" if dtype == "float32" else "mixed_bfloat16"  # as in training
        for way, layer in (("the formula's ops (before)", formula_norm),
                           ("the fused op (now)", stylegan.AdaNorm(dtype=policy))):
            ms = median_ms(with_gradient(layer), args.steps, x, weights)
            print(f"| AdaNorm | {way} | {dtype} | {ms:.1f} |")
    image_weights = weights[..., :1]
    for dtype, way in (("float32", "(before, under mixed precision)"),
                       ("bfloat16", "(now, under mixed precision)")):
        k = tf.cast(kernel, dtype)
        conv = with_gradient(lambda x: tf.nn.conv2d(x, k, 1, "SAME"))
        ms = median_ms(conv, args.steps, tf.cast(x32, dtype), image_weights)
        print(f"| to_image's conv, 64 -> 1 channel | {way} | {dtype} | {ms:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
