"""Does projection keep a real digit, and its hand? project.py on MNIST test digits.

    python benchmarks/bench_project.py --data data/mnist.npz   # 200 digits, the shipped generator

Projects the first --n digits of MNIST's test set (one batch, project.py's steps and rate) with
the shipped generator and measures, in the shipped classifier's features and with evaluate.py's
stroke width:
- the digit: how often the classifier gives the projection the target's label;
- the pixels: the mean squared error of the projections, beside the nearest of 10,000 generated
  samples' (the closest the generator gets without projection);
- the hand: the Pearson r of the projection's stroke width with the target's;
- mixing: each projection as the column of a mix (the grid's split: a random row's z on every
  style block, the projection's w on the rest): how often the mix keeps its row's class, and
  the r of the mixes' stroke width with the targets';
- the time: one digit projected alone, start to end (the step's tracing included).
"""
import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import utils  # noqa: E402

utils.quiet_tensorflow_start()

import keras  # noqa: E402
import numpy as np  # noqa: E402

import evaluate  # noqa: E402
import project  # noqa: E402
import stylegan  # noqa: E402
from checkpoints import load_generator  # noqa: E402
from mnist_ds import locate_mnist, read_mnist_npz  # noqa: E402


def nearest_sample_error(generator, targets, n_samples=10_000, seed=0):
    """The mean, over targets, of the squared pixel error to the closest of n generated digits
    (one z on every slot, generate.py's fixed noise)."""
    n_style, latent = generator.input[0].shape[1:]
    z = stylegan.repeat_z(np.random.default_rng(seed).standard_normal((n_samples, latent),
                                                                      "float32"), n_style)
    noise = np.repeat(project.Projector(generator).noise, n_samples, axis=0)
    samples = stylegan.generate(generator, z, noise).reshape(n_samples, -1)
    flat = targets.reshape(len(targets), -1)
    distances = ((flat ** 2).sum(1)[:, None] - 2 * flat @ samples.T
                 + (samples ** 2).sum(1)[None]) / flat.shape[1]
    return float(distances.min(axis=1).mean())


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", help="mnist.npz (default: as train.py finds it)")
    p.add_argument("--n", type=int, default=200, help="test digits projected")
    args = p.parse_args()
    generator = load_generator()
    features = evaluate.feature_model(keras.saving.load_model(utils.EVAL_CLASSIFIER))
    classes = lambda images: features.predict(images, 500, verbose=0)[1].argmax(1)
    (_, _), (x_test, y_test) = read_mnist_npz(locate_mnist(args.data))
    targets, labels = utils.to_unit_range(x_test[:args.n]), y_test[:args.n]

    projector = project.Projector(generator)
    start = time.perf_counter()
    project.Projector(generator)(targets[:1])
    one = time.perf_counter() - start
    w, losses = projector(targets)
    projections = projector.images(w)

    n_style, latent = generator.input[0].shape[1:]
    z_rows = stylegan.repeat_z(np.random.default_rng(1).standard_normal((args.n, latent),
                                                                        "float32"), n_style)
    w_rows = np.asarray(generator.get_layer("map")(z_rows))
    from_rows = np.arange(n_style) < stylegan.crossover_at(generator)
    mixes = projector.images(np.where(from_rows[None, :, None], w_rows, w))
    rows = projector.images(w_rows)

    width_target, _ = evaluate.hand(targets)
    width_projection, _ = evaluate.hand(projections)
    width_mix, _ = evaluate.hand(mixes)
    print(f"{args.n} MNIST test digits, {project.STEPS} steps at rate {project.LEARNING_RATE}:")
    kept = np.mean(classes(projections) == labels)
    print(f"  the projection's class is the target's: {kept:.1%}")
    print(f"  pixels' mean squared error: {np.mean((projections[..., 0] - targets) ** 2):.4f} "
          f"(the nearest of 10,000 generated digits: "
          f"{nearest_sample_error(generator, targets):.4f})")
    r = evaluate.pearson(width_projection, width_target)
    print(f"  stroke width r, projection with target: {r:.3f}")
    print(f"  as the column of a mix: the row's class kept in "
          f"{np.mean(classes(mixes) == classes(rows)):.1%}; the mix's width r with the target's "
          f"{evaluate.pearson(width_mix, width_target):.3f}")
    print(f"  one digit alone: {one:.1f} s ({project.STEPS} steps, tracing included)")


if __name__ == "__main__":
    main()
