"""FID of a checkpoint's mixed images, one crossover at a time: which mixes are the poor ones?

    python benchmarks/fid_by_crossover.py runs/x/checkpoints/ckpt-0010.json --data mnist.npz

evaluate.py's "FID 2 latents" draws the crossover k uniformly in [1, n_style); this splits it:
for each k, --samples mixes with z1 on the style slots < k and z2 on the rest, their FID against
the MNIST test set and their class shares, beside the single-latent FID. Same classifier and
feature space as evaluate.py (docs/results.md, "How it is measured").
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import evaluate  # noqa: E402
from mnist_ds import DataError, load_mnist  # noqa: E402
from utils import ArgumentParser, UserError, load_generator, to_unit_range  # noqa: E402


def parse_args(argv=None):
    p = ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("checkpoint", help="a training checkpoint's .json")
    p.add_argument("--data", required=True, help="the full mnist.npz")
    p.add_argument("--samples", type=int, default=10000, help="images per row of the table")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--classifier", default=str(evaluate.DEFAULT_CLASSIFIER))
    return p.parse_args(argv)


def class_range(probabilities):
    shares = evaluate.class_coverage(probabilities)[0]
    return f"{100 * shares.min():.1f}-{100 * shares.max():.1f}%"


def main(argv=None):
    args = parse_args(argv)
    try:
        if not 2 <= args.samples <= 10 ** 6 or args.seed < 0:
            raise UserError("--samples must be in [2, 1,000,000] and --seed 0 or more")
        generator = load_generator(args.checkpoint)
        mnist = load_mnist(args.data)
        classifier, _ = evaluate.get_classifier(args.classifier, mnist)
    except (UserError, DataError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    ev = evaluate.Evaluator(generator, classifier, args.seed)
    test_features = ev.embed(to_unit_range(mnist[1][0][..., None]))[0]
    features, probabilities = ev.embed(ev.single_latent(args.samples))
    single = evaluate.fid(features, test_features)
    print("| images | FID | / 1 latent | class shares min-max |\n|---|---|---|---|")
    print(f"| 1 latent | {single:.1f} | 1.00 | {class_range(probabilities)} |")
    for k in range(1, ev.n_style):
        features, probabilities = ev.embed(ev.mixes(args.samples, k))
        mixed = evaluate.fid(features, test_features)
        print(f"| mixed at k={k} | {mixed:.1f} | {mixed / single:.2f} | "
              f"{class_range(probabilities)} |")


if __name__ == "__main__":
    sys.exit(main())
