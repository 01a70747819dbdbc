"""Find a real digit's styles: projection, image -> w, by optimisation (NVlabs' projector.py,
for digits).

    python project.py --mnist-test 7                 # the 8th digit of MNIST's test set
    python project.py --image my-digit.png          # any picture of one digit
    python generate.py mix --cols 6-9 --col-w out/project-mnist-test7.npy   # its hand, mixed

Writes into --outdir (default out/), never over a file: project-NAME.npy, the w [n_style, w_dim]
as the generator takes it (a row or column source of `generate.py mix --row-w/--col-w`), and
project-NAME.png: the target, the projection, and the distance over the steps.

The generator stays fixed; what is optimised, with Adam, is one w per image, starting from
w_avg (the mean w of training) and put on every style slot, so the w found is a point of the
space the mapping network fills, as the grid's sources are. The noise inputs stay fixed
(generate.py's noise image). The distance minimised is the pixels' mean squared error alone.
Measured on 200 MNIST test digits (docs/results.md, "Projection"): one free w per slot remakes
the pixels closer, but mixed into other digits as their column it broke the rows' digits more
often (87.5% kept against 92.5%); adding the evaluation classifier's features to that distance
kept the class no better (100% with or without them) and followed the stroke width less.
"""
import utils  # noqa: E402

utils.quiet_tensorflow_start()  # before Keras loads it: TensorFlow's start-up chatter kept back

import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from PIL import Image, ImageOps, UnidentifiedImageError  # noqa: E402

from checkpoints import add_generator_source, load_generator, write_new  # noqa: E402
from utils import OUT_DIR, ArgumentParser, UserError, file_mode, inspected  # noqa: E402

STEPS = 200  # Adam steps
LEARNING_RATE = 0.05


class Projector:
    """Projects images into one generator's w space, a batch at a time."""

    def __init__(self, generator, noise=None, steps=STEPS, learning_rate=LEARNING_RATE):
        self.mapping = generator.get_layer("map")
        self.synthesis = generator.get_layer("synthesis")
        self.n_style = generator.input[0].shape[1]
        self.image_shape = tuple(self.synthesis.output.shape[1:])
        size = self.image_shape[0]
        self.noise = (np.random.default_rng(0).standard_normal((1, size, size), "float32")
                      if noise is None else noise)  # generate.py's default noise image
        self.steps, self.learning_rate = steps, learning_rate

    def __call__(self, targets):
        """(w [n, n_style, w_dim], the loss after each step) for targets [n, H, W] or
        [n, H, W, C] in [-1, 1]."""
        targets = tf.reshape(tf.convert_to_tensor(targets, tf.float32),
                             (-1, *self.image_shape))
        n = targets.shape[0]
        w = tf.Variable(tf.tile(tf.cast(self.mapping.w_avg, tf.float32)[None, None], (n, 1, 1)))
        noise = tf.repeat(tf.convert_to_tensor(self.noise), n, axis=0)
        optimizer = tf.keras.optimizers.Adam(self.learning_rate)

        @tf.function
        def step():
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(tf.square(self.draw(w, noise) - targets))
            optimizer.apply_gradients([(tape.gradient(loss, w), w)])
            return loss

        losses = [float(step()) for _ in range(self.steps)]
        return np.repeat(w.numpy(), self.n_style, axis=1), losses

    def draw(self, w, noise):
        """Images of w [n, 1, w_dim] (one w for every slot) or [n, n_style, w_dim]."""
        if w.shape[1] == 1:
            w = tf.repeat(w, self.n_style, axis=1)
        return tf.cast(self.synthesis([w, noise]), tf.float32)

    def images(self, w):
        """Images [n, H, W, C] of w [n, n_style, w_dim] under the fixed noise."""
        noise = tf.convert_to_tensor(np.repeat(self.noise, len(w), axis=0))
        return np.asarray(self.draw(tf.convert_to_tensor(w, tf.float32), noise))


# ---------------------------------------------------------------------------------------------
# Targets, and the command line
# ---------------------------------------------------------------------------------------------
MAX_IMAGE_BYTES = 20_000_000  # a picture of one digit; a larger file is refused unread


def read_digit(path, size=28):
    """A picture of one digit as the generator draws digits: grey, size x size, in [-1, 1],
    light strokes on a dark ground (a dark-on-light picture, as drawn on paper, is inverted)."""
    import stat

    mode = file_mode(Path(path), "--image", UserError)
    if mode is None or not stat.S_ISREG(mode):
        raise UserError(f"--image {path}: give an image file (PNG, JPEG, ...)")
    if Path(path).stat().st_size > MAX_IMAGE_BYTES:
        raise UserError(f"--image {path}: larger than {MAX_IMAGE_BYTES:,} bytes; give a "
                        f"picture of one digit")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                digit = digit_of(ImageOps.exif_transpose(image), size)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise UserError(f"--image {path}: too many pixels for a picture of one digit") from None
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise UserError(f"--image {path}: not an image Pillow reads ({error})") from None
    if (digit > 0).sum() < MIN_INK:
        raise UserError(f"--image {path}: no digit in it (blank, or strokes the shade of the "
                        f"ground)")
    return digit


MIN_INK = 5  # pixels of stroke, of 28 x 28, for a picture to hold a digit


def digit_of(image, size=28):
    """A PIL image of one digit -> grey size x size in [-1, 1], light strokes on dark ground
    (transparent pixels count as white paper; a mostly light picture is inverted; 16-bit and
    float pictures are stretched to their own range)."""
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        values = np.asarray(image, np.float64)
        spread = max(values.max() - values.min(), 1e-12)
        image = Image.fromarray(np.uint8(255 * (values - values.min()) / spread))
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        paper = Image.new("RGBA", image.size, "white")
        image = Image.alpha_composite(paper, image.convert("RGBA"))
    grey = np.asarray(image.convert("L").resize((size, size), Image.LANCZOS), np.float32)
    if np.median(grey) > 127:  # mostly light: strokes drawn dark on light
        grey = 255 - grey
    return grey / 127.5 - 1


def mnist_test_digit(index, data=None):
    """(digit in [-1, 1], its label) of MNIST's test set, from the MNIST train.py finds."""
    from mnist_ds import DataError, check_labels, locate_mnist, read_mnist_npz

    try:
        path = locate_mnist(data)
        mnist = read_mnist_npz(path)
        check_labels(mnist, path)
    except DataError as error:
        raise UserError(str(error)) from None
    (_, _), (x_test, y_test) = mnist
    if not 0 <= index < len(x_test):
        raise UserError(f"--mnist-test {index}: the test set has digits 0 to {len(x_test) - 1}")
    return x_test[index].astype(np.float32) / 127.5 - 1, int(y_test[index])


def save_picture(target, projection, losses, path, title):
    """Target | projection | the distance over the steps, as one PNG."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 2.6))
    axes = fig.subplots(1, 3, gridspec_kw={"width_ratios": [1, 1, 1.6]})
    for ax, image, name in zip(axes, (target, projection), ("target", "projection")):
        ax.imshow(image.squeeze(), cmap="gray", vmin=-1, vmax=1)
        ax.set(xticks=[], yticks=[], title=name)
    axes[2].plot(np.arange(1, len(losses) + 1), losses)
    axes[2].set(yscale="log", xlabel="step", title="pixels' mean squared error")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return write_new(path, lambda tmp: fig.savefig(tmp, dpi=100))


def parse_args(argv=None):
    p = ArgumentParser(description=__doc__.split("\n")[0])
    add_generator_source(p)
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--image", help="a picture of one digit")
    target.add_argument("--mnist-test", type=int, metavar="INDEX",
                        help="a digit of MNIST's test set, 0 to 9,999")
    p.add_argument("--data", help="mnist.npz for --mnist-test (default: as train.py finds it)")
    p.add_argument("--steps", type=int, default=STEPS, help=f"Adam steps (default {STEPS})")
    p.add_argument("--outdir", default=OUT_DIR, help="where the files go (default out/)")
    return p.parse_args(argv)


def check_args(args):
    """The flags and the target, before the generator loads: (target, label or None, name)."""
    if not 1 <= args.steps <= 100_000:
        raise UserError(f"--steps must be in [1, 100,000], got {args.steps}")
    if args.image is not None and args.data:
        raise UserError("--data is read for --mnist-test only: leave it out with --image")
    import generate  # its output-folder checks and its short names

    generate.check_outdir(args.outdir)
    if args.image is not None:
        name = generate.short_stem(f"project-{Path(args.image).stem}")
        return read_digit(args.image), None, name
    target, label = mnist_test_digit(args.mnist_test, args.data)
    return target, label, f"project-mnist-test{args.mnist_test}"


def main(argv=None):
    args = parse_args(argv)
    try:
        target, label, name = inspected(check_args, args)
        generator = load_generator(args.checkpoint, args.model)
        if tuple(generator.output.shape[1:]) != (*target.shape, 1):
            raise UserError(f"the generator makes {tuple(generator.output.shape[1:])} images; "
                            f"projection takes grey {target.shape[0]}x{target.shape[1]} digits")
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    projector = Projector(generator, steps=args.steps)
    start = time.perf_counter()
    try:
        w, losses = projector(target[None])
    except KeyboardInterrupt:  # nothing is written before the projection ends
        return 130
    seconds = time.perf_counter() - start
    projection = projector.images(w)[0]
    about = f" (a {label})" if label is not None else ""
    try:
        outdir = Path(args.outdir)
        outdir.mkdir(parents=True, exist_ok=True)
        npy = write_new(outdir / f"{name}.npy", lambda tmp: np.save(tmp, w[0]))
        png = save_picture(target, projection, losses, npy.with_suffix(".png"),  # one stem
                           f"{npy.stem}{about}: {args.steps} steps, pixels' MSE "
                           f"{losses[-1]:.4f}")
    except OSError as error:
        print(f"error: cannot write {error.filename} ({error.strerror})", file=sys.stderr)
        return 1
    print(f"Projected in {seconds:.1f} s ({args.steps} steps): pixels' mean squared error "
          f"{losses[-1]:.4f}. Wrote {npy} (w, {w.shape[1]} slots) and {png}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
