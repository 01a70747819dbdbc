"""How good are the digits and the mixes? FID, class coverage and mixing attribution.

    python evaluate.py --checkpoint visual/stylegan/checkpoints/ckpt-0010.json
    python evaluate.py --model visual/stylegan/generator.keras --data data/mnist.npz

All measures live in the feature space of a small MNIST classifier (trained once on the train
split, cached in --classifier, its test accuracy printed):
- FID (Fréchet distance of the 128-unit penultimate layer) between --samples generated digits
  and the MNIST test set, with the real floor (as many train digits against the test set);
- the class histogram of generated digits, its KL divergence from uniform (0 = all ten classes
  equally often; log 10 = 2.30 = one class only) and the mean classifier confidence;
- mixing attribution: for pairs (z1, z2) mixed at the grid's crossover, how often the mix's class
  is the coarse source's (z1) and how often the fine source's (z2), over pairs of two classes;
- the hand of a mix, at every crossover: the Pearson correlation of the mixes' stroke width and
  slant (`hand`) with their fine source's and with their coarse source's, over all pairs: does
  the column's z give the handwriting?
- the paper's Table 2 measure: FID with 1 latent, and with 2 latents mixed at a random crossover;
  and the FID of mixes at each crossover over the single-latent FID.
Writes the numbers as JSON (default: beside the checkpoint or model) and prints a table.
"""

import utils  # noqa: E402

utils.quiet_tensorflow_start()  # before Keras loads it: TensorFlow's start-up chatter kept back

import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402

import stylegan  # noqa: E402
from checkpoints import (add_generator_source, load_generator, write_atomically,  # noqa: E402
                         write_text_atomically)
from mnist_ds import DataError, check_labels, locate_mnist, read_mnist_npz  # noqa: E402
from stylegan import COARSE_SIZE, crossover_at  # noqa: E402
from utils import (EVAL_CLASSIFIER, OUT_DIR, SHIPPED_GENERATOR,  # noqa: E402
                   ArgumentParser, UserError, can_create_in, check_fits_in_memory,
                   check_shipped, first_line, in_models, inspected, to_unit_range)

DEFAULT_CLASSIFIER = Path(EVAL_CLASSIFIER)
SAMPLES = 10_000  # generated digits per FID
FEATURES = "features"  # the classifier's 128-unit penultimate layer: the FID space


# ---------------------------------------------------------------------------------------------
# The classifier
# ---------------------------------------------------------------------------------------------
def build_classifier():
    """A small CNN on [-1, 1] images (the generator's range)."""
    return keras.Sequential([
        keras.Input((28, 28, 1)),
        keras.layers.Conv2D(32, 3, activation="relu"),
        keras.layers.Conv2D(64, 3, activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Dropout(0.25),
        keras.layers.Flatten(),
        keras.layers.Dense(128, activation="relu", name=FEATURES),
        keras.layers.Dropout(0.5),
        keras.layers.Dense(10, activation="softmax"),
    ], name="mnist_classifier")


def check_classifier_path(path, flag="--classifier"):
    classifier = Path(path)
    if classifier.suffix != ".keras" or classifier.is_dir() or not can_create_in(classifier.parent):
        raise UserError(f"{flag} {classifier}: give a .keras file name in a folder that "
                        f"exists or can be made")


def get_classifier(path, mnist, epochs=3, verbose=1, flag="--classifier"):
    """The cached classifier, or a new one trained on the train split and saved to `path`."""
    (x_train, y_train), (x_test, y_test) = mnist
    path = Path(path)
    check_shipped(path)
    if path.is_file():
        try:
            classifier = keras.saving.load_model(path)
            feature_model(classifier)
        except Exception as error:  # damaged, or another model: Keras raises many kinds
            raise UserError(f"{flag} {path} is not this project's MNIST classifier "
                            f"({first_line(error)}): give another {flag} path (one that "
                            f"does not exist yet trains a new classifier there)") from None
    else:
        print(f"Training the MNIST classifier once ({len(x_train):,} digits, {epochs} epochs); "
              f"cached in {path}")
        keras.utils.set_random_seed(0)
        classifier = build_classifier()
        classifier.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        classifier.fit(to_unit_range(x_train[..., None]), y_train, batch_size=128,
                       epochs=epochs, verbose=verbose)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, without_optimizer(classifier).save)
    probabilities = classifier.predict(to_unit_range(x_test[..., None]), 256, verbose=0)
    accuracy = float(np.mean(np.argmax(probabilities, axis=1) == y_test))
    return classifier, accuracy


def without_optimizer(classifier):
    """The classifier's weights in an uncompiled copy: a third of the file (Adam's two moments
    not kept), all that measuring needs."""
    copy = build_classifier()
    copy.set_weights(classifier.get_weights())
    return copy


def feature_model(classifier):
    """Classifier -> (128 features, 10 class probabilities)."""
    return keras.Model(classifier.inputs,
                       [classifier.get_layer(FEATURES).output, classifier.outputs[0]])


# ---------------------------------------------------------------------------------------------
# The measures
# ---------------------------------------------------------------------------------------------
def fid(features_a, features_b):
    """Fréchet distance between Gaussians fitted to two feature sets:
    |mu_a - mu_b|^2 + Tr(C_a + C_b - 2 (C_a C_b)^(1/2)); the trace of the square root is
    computed as the sum of sqrt(eigenvalues) of the symmetric C_a^(1/2) C_b C_a^(1/2)."""
    mu_a, mu_b = features_a.mean(0), features_b.mean(0)
    cov_a = np.cov(features_a, rowvar=False)
    cov_b = np.cov(features_b, rowvar=False)
    root_a = _sqrt_psd(cov_a)
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(root_a @ cov_b @ root_a), 0, None)).sum()
    return float(np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2 * cross)


def _sqrt_psd(matrix):
    values, vectors = np.linalg.eigh(matrix)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def class_coverage(probabilities):
    """Share of each predicted class, KL(shares || uniform) and the mean top probability."""
    shares = np.bincount(probabilities.argmax(1), minlength=10) / len(probabilities)
    nonzero = shares[shares > 0]
    kl = float(np.sum(nonzero * np.log(nonzero * 10)))
    return shares, kl, float(probabilities.max(1).mean())


def hand(images):
    """Stroke width and slant of each digit ([n, H, W] or [n, H, W, 1], in [-1, 1]), from its
    ink: the pixels above half intensity (> 0).

    width: twice the ink's area over its perimeter (the ink pixels' edges that touch paper or
    the image's border): a bar w pixels wide and L long gives w L / (w + L), about w for a
    long stroke (3 x 20: 2.6). The perimeter counts pixel edges, so a diagonal stroke's
    staircase outline makes it read thinner than an upright one of the same width.
    slant: mu11 / mu02 of the ink's coordinates, x to the right and y upwards: the sideways step
    per unit of height, positive for a digit that leans right (/), 0 upright, negative (\\).
    A digit without ink gives NaN for both.
    """
    ink = np.asarray(images).reshape(len(images), *np.shape(images)[1:3]) > 0
    padded = np.pad(ink, ((0, 0), (1, 1), (1, 1)))
    perimeter = (np.abs(np.diff(padded, axis=1)).sum((1, 2)) +
                 np.abs(np.diff(padded, axis=2)).sum((1, 2)))
    area = ink.sum((1, 2))
    rows, cols = np.mgrid[0:ink.shape[1], 0:ink.shape[2]]
    x, y = cols.astype("float64"), -rows.astype("float64")
    with np.errstate(invalid="ignore", divide="ignore"):
        width = 2.0 * area / perimeter
        x_mean = (ink * x).sum((1, 2)) / area
        y_mean = (ink * y).sum((1, 2)) / area
        dx, dy = x - x_mean[:, None, None], y - y_mean[:, None, None]
        slant = (ink * dx * dy).sum((1, 2)) / (ink * dy * dy).sum((1, 2))
    return width, slant


def pearson(a, b):
    """Pearson's r of two samples over the entries where both are finite (NaN if fewer than 3
    or one of them is constant)."""
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:  # (std() of a constant may be 1e-17)
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def source_weights(mixed, fine, coarse):
    """(a, b) of the least-squares fit mixed = a fine + b coarse + c over the entries where all
    three are finite: how much of each source's measure a mix carries. a = 1, b = 0: it takes
    the fine source's whole; r alone says only that the mix moves the same way, however little.
    (NaN, NaN) with fewer than 4 entries or a constant source."""
    keep = np.isfinite(mixed) & np.isfinite(fine) & np.isfinite(coarse)
    if keep.sum() < 4 or np.ptp(fine[keep]) == 0 or np.ptp(coarse[keep]) == 0:
        return float("nan"), float("nan")
    design = np.stack([fine[keep], coarse[keep], np.ones(int(keep.sum()))], axis=1)
    (a, b, _), *_ = np.linalg.lstsq(design, mixed[keep], rcond=None)
    return float(a), float(b)


class Evaluator:
    """Generates from a generator and measures in the classifier's feature space."""

    def __init__(self, generator, classifier, seed=0, batch_size=500):
        self.generator = generator
        self.features = feature_model(classifier)
        self.n_style, self.latent_dim = generator.input[0].shape[1:]
        self.rng = np.random.default_rng(seed)
        self.batch_size = batch_size

    def embed(self, images):
        features, probabilities = self.features.predict(images, self.batch_size, verbose=0)
        return features, probabilities

    def images(self, z_stack, psi=1.0):
        noise = self.rng.standard_normal((len(z_stack), 28, 28), dtype=np.float32)
        images = stylegan.generate(self.generator, z_stack, noise, psi,
                                   batch_size=self.batch_size)
        if not np.isfinite(images).all():
            raise UserError("the generator makes NaN or infinite pixels: nothing to measure")
        return images

    def draw_z(self, n):
        return self.rng.standard_normal((n, self.latent_dim), dtype=np.float32)

    def single_latent(self, n, psi=1.0):
        return self.images(stylegan.repeat_z(self.draw_z(n), self.n_style), psi)

    def mixes(self, n, crossover, psi=1.0):
        """n images of two latents each, z1 on the style layers < crossover (an int, or one
        per image)."""
        from_z1 = stylegan.slots_before(crossover, self.n_style)
        return self.images(stylegan.mix_styles(self.draw_z(n), self.draw_z(n), from_z1), psi)

    def random_mixes(self, n, psi=1.0):
        """Two latents per image, crossover k drawn uniformly in [1, n_style) (Table 2)."""
        return self.mixes(n, self.rng.integers(1, max(self.n_style, 2), n), psi)

    def attribution(self, pairs, psi=1.0):
        """For every crossover k, mixes with z1 on the layers < k (coarse) and z2 on the rest
        (fine): the shares of mixes classed as the coarse or the fine source, over the pairs
        whose two sources are classed differently, and the correlations of the mixes' stroke
        width and slant with each source's (`hand`), over all pairs. Returns {k: {...}}."""
        z1, z2 = self.draw_z(pairs), self.draw_z(pairs)
        noise = self.rng.standard_normal((pairs, 28, 28), dtype=np.float32)

        def measure(z):  # (classes, (width, slant)) of the images of a z stack
            images = stylegan.generate(self.generator, z, noise, psi, batch_size=self.batch_size)
            return self.embed(images)[1].argmax(1), hand(images)
        coarse, coarse_hand = measure(stylegan.repeat_z(z1, self.n_style))
        fine, fine_hand = measure(stylegan.repeat_z(z2, self.n_style))
        differ = coarse != fine
        n = int(differ.sum())
        shares = {}
        for k in range(1, max(self.n_style, 2)):
            mixed, mixed_hand = measure(
                stylegan.mix_styles(z1, z2, stylegan.slots_before(k, self.n_style)))
            shares[k] = {
                "crossover": k, "pairs": pairs, "pairs_of_two_classes": n,
                "follows_coarse": float(np.mean(mixed[differ] == coarse[differ])) if n else None,
                "follows_fine": float(np.mean(mixed[differ] == fine[differ])) if n else None,
                **{f"{name}_r_{source}": pearson(mixed_hand[i], source_hand[i])
                   for i, name in enumerate(("width", "slant"))
                   for source, source_hand in (("fine", fine_hand), ("coarse", coarse_hand))},
                **dict(zip(("width_from_fine", "width_from_coarse"),
                           source_weights(mixed_hand[0], fine_hand[0], coarse_hand[0])))}
        return shares

    def fid_by_crossover(self, samples, test_features, psi=1.0):
        """{k: FID of samples mixes at crossover k} (the Table-2 measure, one k at a time)."""
        return {k: fid(self.embed(self.mixes(samples, k, psi))[0], test_features)
                for k in range(1, max(self.n_style, 2))}


def evaluate(generator, classifier, mnist, samples=SAMPLES, pairs=2000, psi=1.0, seed=0,
             coarse_size=COARSE_SIZE):
    """Every measure, as a dict."""
    (x_train, _), (x_test, _) = mnist
    ev = Evaluator(generator, classifier, seed)
    test_features = ev.embed(to_unit_range(x_test[..., None]))[0]
    real = x_train[np.random.default_rng(seed).permutation(len(x_train))[:samples]]
    single_features, single_probs = ev.embed(ev.single_latent(samples, psi))
    mixed_features = ev.embed(ev.random_mixes(samples, psi))[0]
    shares, kl, confidence = class_coverage(single_probs)
    by_crossover = ev.attribution(pairs, psi)
    single_fid = fid(single_features, test_features)
    for k, mixed_fid in ev.fid_by_crossover(samples, test_features, psi).items():
        by_crossover[k]["fid_mixed_over_single"] = mixed_fid / single_fid
    return {
        "samples": samples, "truncation_psi": psi,
        "fid": single_fid,
        "fid_real_floor": fid(ev.embed(to_unit_range(real[..., None]))[0], test_features),
        "fid_mixed": fid(mixed_features, test_features),
        "class_shares": shares.round(4).tolist(),
        "kl_from_uniform": kl,
        "mean_confidence": confidence,
        "mixing": by_crossover[crossover_at(generator, coarse_size)],
        "mixing_by_crossover": list(by_crossover.values()),
    }


def format_table(result):
    mixing = result["mixing"]
    shares = " ".join(f"{d}:{100 * s:.0f}%" for d, s in enumerate(result["class_shares"]))
    follow_pct = lambda share: "n/a" if share is None else f"{100 * share:.0f}%"
    follow = lambda key: follow_pct(mixing[key])
    by_crossover = lambda cell: "  ".join(f"{m['crossover']}: {cell(m)}"
                                          for m in result["mixing_by_crossover"])
    rows = [
        ("classifier test accuracy", f"{100 * result['classifier_accuracy']:.2f}%"),
        (f"FID, {result['samples']:,} samples vs MNIST test", f"{result['fid']:.2f}"),
        ("FID real floor (train vs test)", f"{result['fid_real_floor']:.2f}"),
        ("FID 2 latents, random crossover (Table 2)", f"{result['fid_mixed']:.2f}"),
        ("class shares", shares),
        ("KL from uniform (0 best, 2.30 worst)", f"{result['kl_from_uniform']:.3f}"),
        ("mean classifier confidence", f"{result['mean_confidence']:.3f}"),
        (f"mix class = coarse source (layers < {mixing['crossover']})", follow("follows_coarse")),
        ("mix class = fine source", follow("follows_fine")),
        ("  over pairs of two classes", f"{mixing['pairs_of_two_classes']} of {mixing['pairs']}"),
        ("mix class = coarse / fine, by crossover", by_crossover(
            lambda m: f"{follow_pct(m['follows_coarse'])}/{follow_pct(m['follows_fine'])}")),
        ("mix stroke width r with fine / coarse", by_crossover(
            lambda m: f"{m['width_r_fine']:.2f}/{m['width_r_coarse']:.2f}")),
        ("mix width = a fine + b coarse, a / b", by_crossover(
            lambda m: f"{m['width_from_fine']:.2f}/{m['width_from_coarse']:.2f}")),
        ("mix slant r with fine / coarse", by_crossover(
            lambda m: f"{m['slant_r_fine']:.2f}/{m['slant_r_coarse']:.2f}")),
        ("FID mixed / single, by crossover", by_crossover(
            lambda m: f"{m['fid_mixed_over_single']:.2f}")),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------
def parse_args(argv=None):
    p = ArgumentParser(description=__doc__.split("\n")[0])
    add_generator_source(p)
    p.add_argument("--data", help="mnist.npz (default: as train.py finds it)")
    p.add_argument("--samples", type=int, default=SAMPLES, help="generated digits per FID")
    p.add_argument("--pairs", type=int, default=2000, help="(z1, z2) pairs for attribution")
    p.add_argument("--psi", type=float, default=1.0, help="truncation psi (1 = off)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--coarse-size", type=int, default=COARSE_SIZE,
                   help="the headline attribution's split: style layers up to this size (px) "
                        f"are coarse (default {COARSE_SIZE}; the tutorial's grid: 7)")
    p.add_argument("--raw", action="store_true",
                   help="with --checkpoint: measure G itself, not its moving average")
    p.add_argument("--classifier", default=str(DEFAULT_CLASSIFIER),
                   help="cached classifier (trained there on first use)")
    p.add_argument("--classifier-epochs", type=int, default=3)
    p.add_argument("--json", help="where to write the numbers (default: beside the input, "
                                  "<name>.eval.json; out/ for the shipped generator)")
    return p.parse_args(argv)


def check_args(args):
    """Numbers and paths, before anything is loaded or measured: returns the json's path."""
    if not 2 <= args.samples <= 10 ** 7 or not 1 <= args.pairs <= 10 ** 7:
        raise UserError("--samples must be in [2, 10,000,000] and --pairs in [1, 10,000,000]")
    check_fits_in_memory(2 * args.samples * 28 * 28 * 4, f"{args.samples:,} digits twice",
                         "--samples")
    if args.seed < 0 or args.classifier_epochs < 1 or not np.isfinite(args.psi):
        raise UserError("--seed must be 0 or more, --classifier-epochs at least 1 and --psi a "
                        "finite number")
    if args.raw and not args.checkpoint:
        raise UserError("--raw measures G itself, which only a training checkpoint holds: give "
                        "--checkpoint (a generator.keras is G's moving average already)")
    source = Path(args.checkpoint or args.model or SHIPPED_GENERATOR)
    suffix = ".raw.eval.json" if args.raw else ".eval.json"
    beside = OUT_DIR if in_models(source) else source.parent
    out = Path(args.json) if args.json else beside / (source.stem + suffix)
    if out.parent == OUT_DIR:
        OUT_DIR.mkdir(exist_ok=True)
    if not out.parent.is_dir() or out.is_dir():
        raise UserError(f"--json {out}: give a file in an existing folder")
    if out.exists() and not out.name.endswith(".eval.json"):
        raise UserError(f"--json {out} exists and is not an earlier result (*.eval.json): "
                        f"give a new file name, so nothing else is overwritten")
    check_classifier_path(args.classifier)
    return out


def finite_or_null(value):
    """The result for strict JSON: NaN and infinities (an r of constant widths, say) as null."""
    if isinstance(value, dict):
        return {key: finite_or_null(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_null(item) for item in value]
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def main(argv=None):
    args = parse_args(argv)
    try:
        out = inspected(check_args, args)
        generator = load_generator(args.checkpoint, args.model, raw=args.raw)
        if tuple(generator.output.shape[1:]) != (28, 28, 1):
            raise UserError(f"the generator makes {generator.output.shape[1:]} images: "
                            f"evaluate.py measures MNIST generators (28x28 grey)")
        try:
            path = locate_mnist(args.data)
            mnist = read_mnist_npz(path)
            check_labels(mnist, path)
        except DataError as error:
            raise UserError(str(error)) from None
        classifier, accuracy = get_classifier(args.classifier, mnist, args.classifier_epochs)
        result = {"source": args.checkpoint or args.model or "models/generator.keras",
                  "raw": args.raw,
                  "classifier_accuracy": accuracy,
                  **evaluate(generator, classifier, mnist, args.samples, args.pairs, args.psi,
                             args.seed, args.coarse_size)}
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    try:
        write_text_atomically(out, json.dumps(finite_or_null(result), indent=2, allow_nan=False))
    except OSError as error:
        print(f"error: cannot write {out} ({error.strerror})", file=sys.stderr)
        return 1
    print(format_table(result))
    if accuracy < 0.985:
        print(f"note: the classifier's test accuracy is {100 * accuracy:.2f}%, below 98.5%: "
              f"its features are a weak yardstick, its FIDs not comparable with the README's "
              f"(trained on too few digits or epochs?); the shipped {EVAL_CLASSIFIER} reached "
              f"98.96%")
    print(f"Wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
