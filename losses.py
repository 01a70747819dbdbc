"""The losses and penalties of a StyleGAN step: each a function of the networks and a batch.

- the tutorial's: binary cross-entropy, real images -> 1, generated -> 0 (G: its fakes -> 1);
- WGAN-GP (Gulrajani et al., 2017), `--loss wgan-gp`;
- lazy R1 on real images (Mescheder et al., 2018; StyleGAN2's lazy schedule), `--r1-gamma`;
- the hand penalty: a grid column's mix keeps the column's stroke width, `--hand-weight`.
Every loss is the batch's mean in float32, also under mixed precision.
"""
import keras
import tensorflow as tf
from keras import ops

GP_WEIGHT = 10.0  # lambda of the WGAN-GP penalty (the WGAN-GP paper's)
R1_EVERY = 16  # lazy R1: on every 16th D update, weighted by 16 (StyleGAN2's)
HAND_EVERY = 4  # the hand penalty: on every 4th G update, weighted by 4
INK_SHARPNESS = 10.0  # soft ink: a pixel at +-0.3 (of [-1, 1]) is 95% ink or paper


def binary_crossentropy(labels, logits):
    """The tutorial's `BinaryCrossentropy(from_logits=True)`: the batch's mean, in float32,
    bit-identical on one device. Not the Loss object: under tf.distribute it divides its value
    by the replica count, which the step already does once for the gradients' sum."""
    return ops.mean(keras.losses.binary_crossentropy(
        ops.cast(labels, "float32"), ops.cast(logits, "float32"), from_logits=True))


def discriminator_loss(gan, real_images, fake_images):
    """D's loss on a real batch and a fake one (both in training mode)."""
    d = gan.d
    if gan.config.loss == "wgan-gp":  # critic: real up, fake down, gradient norm 1 between
        return (ops.mean(d(fake_images, training=True)) - ops.mean(d(real_images, training=True))
                + GP_WEIGHT * gradient_penalty(gan, real_images, fake_images))
    n = ops.shape(real_images)[0]
    labels = ops.concatenate([ops.ones((n, 1)), ops.zeros((n, 1))], axis=0)
    if gan.config.d_batchnorm and not gan.config.minibatch_std:
        # the tutorial: one batch of both (BatchNorm's statistics over real and fake)
        logits = d(ops.concatenate([real_images, fake_images], axis=0), training=True)
    else:  # apart, so BatchNorm and minibatch-std groups see fakes alone, as in G's step
        logits = ops.concatenate([d(real_images, training=True),
                                  d(fake_images, training=True)], axis=0)
    return binary_crossentropy(labels, logits)


def generator_loss(gan, fake_logits):
    """G's loss on D's logits of its images: non-saturating (label the fakes real)."""
    if gan.config.loss == "wgan-gp":
        return -ops.mean(fake_logits)
    return binary_crossentropy(ops.ones_like(fake_logits), fake_logits)


def squared_input_gradients(discriminator, images):
    """|grad_x D(x)|^2 per image, in float32 (R1 and WGAN-GP penalise it)."""
    with tf.GradientTape() as tape:
        tape.watch(images)
        scores = discriminator(images, training=True)
    grads = ops.cast(tape.gradient(scores, images), "float32")
    return ops.sum(ops.square(grads), axis=(1, 2, 3))


def gradient_penalty(gan, real_images, fake_images):
    """WGAN-GP (Gulrajani et al., 2017, eq. 3): (|grad D(x_hat)| - 1)^2 on random interpolates
    x_hat = real + u (fake - real), u ~ U(0, 1) per sample."""
    u = gan.draw(keras.random.uniform, (ops.shape(real_images)[0], 1, 1, 1))
    x_hat = real_images + u * (fake_images - real_images)
    norms = ops.sqrt(squared_input_gradients(gan.d, x_hat) + 1e-12)
    return ops.mean(ops.square(norms - 1.0))


def lazily(optimizer, every, penalty):
    """penalty() on every `every`-th update of this optimizer, else 0 (StyleGAN2's lazy
    regularisation, section 3.1; the caller weights the penalty by `every`)."""
    return tf.cond(optimizer.iterations % every == 0, penalty, lambda: tf.constant(0.0))


def lazy_r1(gan, real_images):
    """R1 (Mescheder et al. 2018, eq. 9): gamma/2 E|grad D(real)|^2, pulling D flat around the
    real images; on every R1_EVERY-th D update, weighted by it, so it costs 1/R1_EVERY of the
    work."""
    def penalty():
        gradients = squared_input_gradients(gan.d, real_images)
        return 0.5 * gan.config.r1_gamma * R1_EVERY * ops.mean(gradients)
    return lazily(gan.d_optimizer, R1_EVERY, penalty)


def soft_stroke_width(images, sharpness=INK_SHARPNESS):
    """evaluate.hand's stroke width, made differentiable for a loss: twice the ink's area over
    its perimeter, with ink = sigmoid(sharpness * pixel) for the hard "pixel > 0" and the
    perimeter the summed change of ink between neighbours (the image's border counts as
    paper). images [n, H, W, 1] in [-1, 1]; one width per image, float32. Where evaluate.hand
    gives NaN (no ink at all) this gives a finite width (a blank 28x28 image: about 12)."""
    ink = ops.sigmoid(sharpness * ops.cast(images[..., 0], "float32"))
    padded = ops.pad(ink, ((0, 0), (1, 1), (1, 1)))
    perimeter = (ops.sum(ops.abs(padded[:, 1:] - padded[:, :-1]), axis=(1, 2)) +
                 ops.sum(ops.abs(padded[:, :, 1:] - padded[:, :, :-1]), axis=(1, 2)))
    return 2.0 * ops.sum(ink, axis=(1, 2)) / (perimeter + 1e-3)


def synthesis_and_features(gan):
    """Where the hand penalty's columns give to_image's style alone, the synthesis with its last
    feature map as a second output (the same layers and weights), so that the penalty's mixes
    can reuse G's own style blocks (see lazy_hand); else None."""
    if not (gan.config.hand_weight and gan.config.styled_to_image
            and gan.hand_split == gan.n_style - 1):
        return None
    synthesis = gan.synthesis
    return keras.Model(synthesis.inputs,
                       [synthesis.output, synthesis.get_layer("to_image_mod").input[0]],
                       name="synthesis_and_features")


def image_from_features(synthesis, features, w_last):
    """The synthesis's last layers on its last feature map, with w_last as to_image's style."""
    x = synthesis.get_layer("to_image_mod")((features, w_last))
    x = synthesis.get_layer("to_image")(x)
    return synthesis.get_layer("to_image_tanh")(x)


def lazy_hand(gan, w, images, noise, features=None):
    """"Each column one hand": for pairs of the batch's samples (r, c), the mix of r's coarse
    slots and c's fine ones (split at gan.hand_split, set by --hand-coarse-size) should have
    c's stroke width. The squared difference, with c's own image's width a fixed target, so the
    gradient goes through the mix alone. MNIST only (light ink on dark). On every HAND_EVERY-th
    G update, weighted by it.
    features: G's last feature map for `images` (from synthesis_and_features). The mix's style
    blocks then read r's own slots and noise, so they
    are r's feature map: only to_image runs again, and the penalty's gradient joins G's loss's
    in one backward pass through the blocks."""
    import stylegan

    def penalty():
        half = stylegan.batch_size_of(w) // 2
        if features is None:
            from_rows = stylegan.slots_before(gan.hand_split, gan.n_style)
            w_mix = stylegan.mix_styles(w[:half], w[half: 2 * half], from_rows)
            mixed = gan.synthesis([w_mix, noise[:half]], training=True)
        else:  # the row's feature map, the column's style of to_image
            mixed = image_from_features(gan.synthesis, features[:half],
                                        w[half: 2 * half, gan.hand_split])
        mixed = ops.cast(mixed, "float32")
        column_width = ops.stop_gradient(soft_stroke_width(images[half: 2 * half]))
        miss = ops.square(soft_stroke_width(mixed) - column_width)
        return gan.config.hand_weight * HAND_EVERY * ops.mean(miss)
    return lazily(gan.g_optimizer, HAND_EVERY, penalty)
