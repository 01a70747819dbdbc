"""StyleGAN "multi-style mixing" on MNIST, in TensorFlow 2 / Keras 3.

Read it next to the tutorial (`StyleGAN 混合多风格`, section 秀代码 "show the code") and the paper
(Karras et al., 2019, "A Style-Based Generator Architecture for Generative Adversarial Networks").
The layout follows the tutorial, which draws the block as in StyleGAN2's figure 2(c):

    z [n, n_style, latent] --Map--> w [n, n_style, w_dim]        (one z per style layer)

    const 7x7x128 -> AddNoise -> AdaNorm -> Style(64, no upsampling)  7x7   <- w[:, 0], noise
                                         -> Style(64)                14x14 <- w[:, 1], noise
                                         -> Style(64)                28x28 <- w[:, 2], noise
                                         [-> AdaMod               28x28 <- w[:, 3]]
                                         -> Conv 5x5 -> tanh  =  image 28x28x1

    (The bracketed AdaMod, a style on to_image as StyleGAN2 styles its toRGB layers, is in the
    default recipe, `styled_to_image=True`, not in the tutorial's.)

    Style block: AdaMod(x, w) -> [UpSampling2D] -> Conv3x3 -> AdaNorm -> LeakyReLU -> AddNoise

Because every style layer reads its own slot of z, style mixing is only a choice of which z sits
in which slot (`mix_z`). The generator is a Keras functional model made of two parts, `map`
(z -> w) and `synthesis` (w, noise -> image), so truncation can work on w at inference.
For the tutorial's last part (64x64 faces), `architecture` grows the same blocks from a 4x4
constant to 32..256 pixels.
"""
import math

import keras
import tensorflow as tf
from keras import layers, ops

from config import FOLDER_SIZES, MNIST_SIZE

IMG_SHAPE = (28, 28, 1)  # MNIST
PACKAGE = "stylegan"  # registered name prefix, so a saved generator reloads after `import stylegan`


# ---------------------------------------------------------------------------------------------
# Equalised learning rate (ProGAN, Karras et al. 2018, section 4.1; the paper's every layer)
# ---------------------------------------------------------------------------------------------
HE_GAIN = math.sqrt(2.0)  # for layers followed by a leaky ReLU; 1 for the others


@keras.saving.register_keras_serializable(package=PACKAGE)
class ScaledDense(layers.Dense):
    """A Dense layer whose weights are multiplied by a constant at every call.

    equalized: the weights start as N(0, 1) and are scaled by gain / sqrt(fan_in) (He's
    initialisation moved from the start into the forward pass), so every layer learns at the
    same relative speed under Adam, whose step does not depend on a weight's scale.
    lr_mult: the weights are stored divided by lr_mult and multiplied back here, so the same
    Adam step moves them lr_mult times as far: the paper's mapping net learns at 0.01 of G's
    rate with G's one optimizer (NVlabs' FullyConnectedLayer(lr_multiplier)).
    """

    def __init__(self, units, equalized=False, lr_mult=1.0, gain=HE_GAIN, **kwargs):
        start = (keras.initializers.RandomNormal(stddev=1.0 / lr_mult) if equalized else
                 keras.initializers.VarianceScaling(1.0 / lr_mult ** 2, "fan_avg", "uniform"))
        kwargs.setdefault("kernel_initializer", start)  # Keras' glorot_uniform / lr_mult
        super().__init__(units, **kwargs)
        self.equalized, self.lr_mult, self.gain = equalized, lr_mult, gain

    def build(self, input_shape):
        super().build(input_shape)
        he = self.gain / math.sqrt(input_shape[-1]) if self.equalized else 1.0
        self.kernel_scale = he * self.lr_mult

    def call(self, inputs):
        y = ops.matmul(inputs, self.kernel * self.kernel_scale)
        return self.activation(y + self.bias * self.lr_mult if self.use_bias else y)

    def get_config(self):
        return {**super().get_config(), "equalized": self.equalized, "lr_mult": self.lr_mult,
                "gain": self.gain}


@keras.saving.register_keras_serializable(package=PACKAGE)
class EqualizedConv2D(layers.Conv2D):
    """Conv2D with an equalised learning rate (see ScaledDense); fan_in = k * k * channels."""

    def __init__(self, filters, kernel_size, gain=HE_GAIN, **kwargs):
        kwargs.setdefault("kernel_initializer", keras.initializers.RandomNormal(stddev=1.0))
        super().__init__(filters, kernel_size, **kwargs)
        self.gain = gain

    def build(self, input_shape):
        super().build(input_shape)
        self.scale = self.gain / math.sqrt(math.prod(self.kernel_size) * input_shape[-1])

    def convolution_op(self, inputs, kernel):
        return super().convolution_op(inputs, kernel * self.scale)

    def get_config(self):
        return {**super().get_config(), "gain": self.gain}


def dense(units, equalized=False, gain=HE_GAIN, lr_mult=1.0, **kwargs):
    """keras.layers.Dense, or ScaledDense for an equalised learning rate or lr_mult != 1."""
    if equalized or lr_mult != 1.0:
        return ScaledDense(units, equalized, lr_mult, gain=gain, **kwargs)
    return layers.Dense(units, **kwargs)


def conv(filters, kernel_size, equalized=False, gain=HE_GAIN, **kwargs):
    """keras.layers.Conv2D, or EqualizedConv2D with equalized=True."""
    if equalized:
        return EqualizedConv2D(filters, kernel_size, gain=gain, **kwargs)
    return layers.Conv2D(filters, kernel_size, **kwargs)


# ---------------------------------------------------------------------------------------------
# The three small plug-ins of the synthesis net (tutorial: AdaNorm, AdaMod, AddNoise)
# Their options' defaults, and Style's and Const's, are what this code built before the option
# existed, so a generator.keras saved then loads with its own meaning; build_networks always
# passes the config's values.
# ---------------------------------------------------------------------------------------------
@keras.saving.register_keras_serializable(package=PACKAGE)
class AdaNorm(layers.Layer):
    """The "norm" of figure 2(c): pulls every feature map of every sample back to zero mean and
    unit variance over its height and width (instance normalisation, no learned affine)."""

    def __init__(self, epsilon=1e-5, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = epsilon  # keeps the division finite on a flat feature map

    def call(self, x):
        # (x - mean) / sqrt(variance + epsilon), as one fused op: batch normalisation of a
        # batch of one image whose channels are every (sample, channel) pair computes exactly
        # these statistics, in float32 also under mixed precision, and its gradient is one op
        # too: faster than the formula's dozen ops (docs/results.md, "Where a step's time
        # goes").
        n, (height, width, c) = ops.shape(x)[0], x.shape[1:]
        one_image = tf.reshape(tf.transpose(x, [1, 2, 0, 3]), [1, height, width, n * c])
        # training mode: the statistics of this input (no running averages, so none given);
        # scale 1 and offset 0: no learned affine
        y = tf.raw_ops.FusedBatchNormV3(
            x=one_image, scale=tf.ones([n * c]), offset=tf.zeros([n * c]), mean=tf.zeros([0]),
            variance=tf.zeros([0]), epsilon=self.epsilon, is_training=True)[0]
        return tf.transpose(tf.reshape(y, [height, width, n, c]), [2, 0, 1, 3])

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package=PACKAGE)
class AdaMod(layers.Layer):
    """The "A" of the paper: a Dense layer turns w into a per-channel scale y_s and bias y_b that
    modulate the feature map x: `(1 + y_s) * x + y_b` (the 1 makes a zero y the identity).

    kernel_init: "normal" starts the Dense kernel as N(0, 1), the tutorial's ("this kernel is
    important": each channel's scale then differs clearly from style to style), or
    "glorot_uniform", Keras' default. An equalised layer always starts as N(0, 1), scaled.
    """

    def __init__(self, equalized=False, kernel_init="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.equalized = equalized  # an equalised learning rate for the Dense layer
        self.kernel_init = kernel_init

    def build(self, input_shape):
        x_shape, w_shape = input_shape
        self.channels = x_shape[-1]
        # [y_s, y_b] for each channel
        start = {} if self.equalized else {"kernel_initializer": (
            keras.initializers.RandomNormal(0.0, 1.0) if self.kernel_init == "normal"
            else self.kernel_init)}
        self.y = dense(2 * self.channels, self.equalized, gain=1.0, dtype=self.dtype_policy,
                       name="y", **start)
        self.y.build(w_shape)

    def call(self, inputs):
        x, w = inputs
        y = ops.reshape(self.y(w), [-1, 2, 1, 1, self.channels])
        return (1.0 + y[:, 0]) * x + y[:, 1]

    def get_config(self):
        return {**super().get_config(), "equalized": self.equalized,
                "kernel_init": self.kernel_init}


@keras.saving.register_keras_serializable(package=PACKAGE)
class AddNoise(layers.Layer):
    """The "B" of the paper: a learned per-channel scale times a noise image. The tutorial feeds
    one full-size noise image to every layer and crops it to the feature map's height and width.

    init_std: the scales start as N(0, init_std): the tutorial's 1 ("large initial noise"), or
    0 for zeros, the paper's, where the network learns how much noise each channel wants.
    """

    def __init__(self, init_std=0.0, **kwargs):
        super().__init__(**kwargs)
        self.init_std = init_std

    def build(self, input_shape):
        x_shape, _ = input_shape
        start = (keras.initializers.RandomNormal(0.0, self.init_std) if self.init_std
                 else "zeros")
        self.noise_scale = self.add_weight(shape=(x_shape[-1],), initializer=start,
                                           name="noise_scale")

    def call(self, inputs):
        x, noise = inputs  # noise: [n, H, W, 1] with H, W >= the feature map's
        noise = noise[:, : x.shape[1], : x.shape[2], :]
        return x + self.noise_scale * noise

    def get_config(self):
        return {**super().get_config(), "init_std": self.init_std}


class BilinearUpSampling2D(layers.UpSampling2D):
    """Keras' `UpSampling2D(2, interpolation="bilinear")` (the tutorial's), the same numbers
    faster under mixed precision. For a bfloat16 or float16 input tf.image.resize computes in
    float32 and clips the result to the input dtype's range before casting it back. A bilinear
    mix of the input's own values cannot leave that range, so the clip changes nothing, yet it
    and its gradient are five elementwise ops on the largest feature map (docs/results.md, "Two
    savings that keep the numbers"). This calls the same resize op (half-pixel centres) and
    casts, without the clip. Channels last, height and width known (as every feature map of
    the generator)."""

    def __init__(self, **kwargs):
        super().__init__(**{**kwargs, "size": 2, "interpolation": "bilinear",
                            "data_format": "channels_last"})

    def call(self, x):
        height, width = x.shape[1], x.shape[2]
        y = tf.raw_ops.ResizeBilinear(images=x, size=[2 * height, 2 * width],
                                      half_pixel_centers=True)
        return ops.cast(y, x.dtype)


# ---------------------------------------------------------------------------------------------
# Mapping net and the style block
# ---------------------------------------------------------------------------------------------
@keras.saving.register_keras_serializable(package=PACKAGE)
class Map(layers.Layer):
    """The mapping net z -> w: a few Dense layers, applied to every style slot of z.

    The tutorial found that a non-linearity between the Dense layers made MNIST results worse, so
    the default is linear; `activation="leaky_relu"` puts it back to test that open question.
    lr_mult < 1 makes the net learn that much slower than the rest of G (the paper: 0.01).
    The layer also keeps `w_avg`, the running mean of w seen in training (updated by
    `StyleGAN.train_step`), which the truncation trick pulls towards at inference.
    """

    def __init__(self, size=128, num_layers=2, activation="linear", equalized=False,
                 lr_mult=1.0, **kwargs):
        super().__init__(**kwargs)
        self.size = size  # width of w
        self.num_layers = num_layers
        self.activation = activation  # "linear" (the tutorial's choice) or "leaky_relu"
        self.equalized = equalized  # equalised learning rate
        self.lr_mult = lr_mult  # learning rate of these layers / G's
        self.f = [dense(size, equalized, lr_mult=lr_mult, activation=activation,
                        name=f"dense_{i}") for i in range(num_layers)]

    def build(self, input_shape):
        shape = input_shape
        for dense in self.f:
            dense.build(shape)
            shape = (*shape[:-1], self.size)
        self.w_avg = self.add_weight(
            shape=(self.size,), initializer="zeros", trainable=False, name="w_avg")

    def call(self, z):
        w = z
        for dense in self.f:
            w = dense(w)
        return w

    def truncate(self, w, psi):
        """Truncation trick (paper, section 3.2 / appendix B): `w_avg + psi * (w - w_avg)`."""
        w_avg = ops.cast(self.w_avg, w.dtype)
        return w_avg + psi * (w - w_avg)

    def get_config(self):
        return {**super().get_config(), "size": self.size, "num_layers": self.num_layers,
                "activation": self.activation, "equalized": self.equalized,
                "lr_mult": self.lr_mult}


@keras.saving.register_keras_serializable(package=PACKAGE)
class Style(layers.Layer):
    """One synthesis block: AdaMod -> [UpSampling2D] -> Conv3x3 -> AdaNorm -> LeakyReLU ->
    AddNoise. Takes `(x, w, noise)` where w is this block's slot of w, [n, w_dim].
    leaky_slope: the tutorial's 0.3 (Keras' default) or the paper's 0.2; noise_init_std and
    mod_init: how AddNoise and AdaMod start (see those)."""

    def __init__(self, filters, upsampling=True, equalized=False, leaky_slope=0.2,
                 noise_init_std=0.0, mod_init="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.upsampling = upsampling
        self.equalized = equalized  # equalised learning rate in AdaMod and the conv
        self.leaky_slope, self.noise_init_std, self.mod_init = leaky_slope, noise_init_std, mod_init
        self.ada_mod = AdaMod(equalized, mod_init, name="ada_mod")
        self.up = BilinearUpSampling2D() if upsampling else None
        self.conv = conv(filters, 3, equalized, padding="same", name="conv")
        self.ada_norm = AdaNorm(name="ada_norm")
        self.leaky_relu = layers.LeakyReLU(leaky_slope)
        self.add_noise = AddNoise(noise_init_std, name="add_noise")

    def build(self, input_shape):
        x_shape, w_shape, noise_shape = input_shape
        self.ada_mod.build((x_shape, w_shape))
        if self.upsampling:
            x_shape = (x_shape[0], 2 * x_shape[1], 2 * x_shape[2], x_shape[3])
        self.conv.build(x_shape)
        self.add_noise.build(((*x_shape[:3], self.filters), noise_shape))

    def call(self, inputs):
        x, w, noise = inputs
        x = self.ada_mod((x, w))
        if self.up is not None:
            x = self.up(x)
        x = self.conv(x)
        x = self.ada_norm(x)
        x = self.leaky_relu(x)
        return self.add_noise((x, noise))

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "upsampling": self.upsampling,
                "equalized": self.equalized, "leaky_slope": self.leaky_slope,
                "noise_init_std": self.noise_init_std, "mod_init": self.mod_init}


def batch_size_of(tensor):
    """The batch size as a Python int where the trace knows it (a batch of fixed size): XLA
    needs the sizes of slices, and of the tiles their gradients make, at compile time."""
    return tensor.shape[0] if tensor.shape[0] is not None else ops.shape(tensor)[0]


@keras.saving.register_keras_serializable(package=PACKAGE)
class Const(layers.Layer):
    """The learned constant image the style layers reshape ("the clay", 黏土), repeated for
    every sample of the batch. Not ones: AdaNorm would turn a flat map into 0.

    init "glorot_uniform": the tutorial's constant is a Dense(7*7*128, use_bias=False) applied to
    an input of ones, which is this weight exactly, started as that Dense's Keras-default kernel:
    U(-a, a), a = sqrt(6 / (1 + 7*7*128)). "normal": N(0, 0.05).
    """

    def __init__(self, shape=(7, 7, 128), init="normal", **kwargs):
        super().__init__(**kwargs)
        self.shape, self.init = tuple(shape), init
        limit = math.sqrt(6.0 / (1 + math.prod(self.shape)))  # glorot: fan_in 1, fan_out H*W*C
        start = (keras.initializers.RandomUniform(-limit, limit) if init == "glorot_uniform"
                 else keras.initializers.RandomNormal(0.0, 0.05))
        self.const = self.add_weight(shape=(1, *self.shape), initializer=start, name="const")

    def call(self, like):
        # a broadcast, not a tile: under XLA a tile's gradient inside a lazy penalty's tf.cond
        # needs shapes the branch only gets at run time
        const = ops.convert_to_tensor(self.const)  # in the layer's compute dtype
        return ops.zeros((batch_size_of(like), 1, 1, 1), const.dtype) + const

    def get_config(self):
        return {**super().get_config(), "shape": self.shape, "init": self.init}


@keras.saving.register_keras_serializable(package=PACKAGE)
class StyleSlot(layers.Layer):
    """Picks style layer `index`'s slot of w: w[:, index] (a named layer so the saved model
    holds no anonymous slicing op)."""

    def __init__(self, index, **kwargs):
        super().__init__(**kwargs)
        self.index = index

    def call(self, w):
        return w[:, self.index]

    def get_config(self):
        return {**super().get_config(), "index": self.index}


# ---------------------------------------------------------------------------------------------
# Generator and discriminator
# ---------------------------------------------------------------------------------------------


def architecture(image_size=28, filters=64, max_filters=256, convs_per_block=1,
                 styled_to_image=False):
    """Style layers and widths for an image size.

    28 (MNIST): the tutorial's 7 -> 14 -> 28, `filters` in every block, a 7x7x128 constant.
    32..256 (a power of two): a 4x4 constant and one style block per doubling up to image_size
    (the tutorial's faces), `filters` wide at full resolution and twice as wide at each halving
    down to 4x4, at most `max_filters`.
    convs_per_block: style layers per resolution: 1 (the tutorial) or 2 (the paper: the second
    works at the same size, without upsampling, with its own w slot and noise).
    styled_to_image: one more style layer, an AdaMod on the last feature map before to_image
    with its own (last) slot of w, as StyleGAN2 modulates its toRGB layers.
    Returns n_style (every slot of w), the width and whether it upsamples for every style block,
    the constant's channels.
    """
    if image_size == MNIST_SIZE:
        widths, const_channels = [filters] * 3, 128
    elif image_size in FOLDER_SIZES:
        sizes = [4 * 2 ** i for i in range(int(math.log2(image_size)) - 1)]  # 4, .., image_size
        widths = [min(max_filters, filters * image_size // size) for size in sizes]
        const_channels = widths[0]
    else:
        raise ValueError(f"image size {image_size} is not supported: use 28 (MNIST) or one of "
                         f"{', '.join(map(str, FOLDER_SIZES))}")
    per_layer = [width for width in widths for _ in range(convs_per_block)]
    upsample = [i > 0 and c == 0 for i in range(len(widths)) for c in range(convs_per_block)]
    return {"n_style": len(per_layer) + int(styled_to_image), "filters": per_layer,
            "upsample": upsample, "const_channels": const_channels}


def build_generator(latent_dim=100, n_style=3, w_dim=128, filters=64, const_channels=128,
                    mapping_layers=2, mapping_activation="linear", img_shape=IMG_SHAPE,
                    upsample=None, styled_to_image=False, equalized=False, mapping_lr_mult=1.0,
                    const_init="normal", **style_options):
    """z [n, n_style, latent_dim] and noise [n, H, W] -> image [n, H, W, C] in [-1, 1].

    By default the first style block works at the constant's size without upsampling and each
    later one doubles the size: n_style = 3 gives 7 -> 14 -> 28 as in the tutorial. `upsample`
    (one bool per style block) says otherwise; `filters`: one width for every block, or a list
    with one per block. styled_to_image: the last of the n_style slots modulates to_image's
    input (see `architecture`), the others feed the style blocks. equalized: every Dense and
    Conv2D with an equalised learning rate. mapping_lr_mult: the mapping net's learning rate as
    a multiple of the rest of G's. const_init: see Const; style_options (leaky_slope,
    noise_init_std, mod_init): see Style.
    """
    blocks = n_style - int(styled_to_image)
    upsample = [i > 0 for i in range(blocks)] if upsample is None else list(upsample)
    up_blocks = sum(upsample)
    base = img_shape[0] // 2 ** up_blocks
    if blocks < 1 or len(upsample) != blocks or base * 2 ** up_blocks != img_shape[0]:
        raise ValueError(f"n_style={n_style} does not fit a {img_shape[0]}px image: "
                         f"{img_shape[0]} must be a multiple of 2**(upsampling layers)")
    synthesis = _build_synthesis(n_style, w_dim, filters, const_channels, base, img_shape,
                                 upsample, styled_to_image, equalized, const_init, style_options)
    z = keras.Input((n_style, latent_dim), name="z")
    noise = keras.Input(img_shape[:2], name="noise")
    w = Map(w_dim, mapping_layers, mapping_activation, equalized, mapping_lr_mult,
            name="map")(z)
    return keras.Model([z, noise], synthesis([w, noise]), name="generator")


def _build_synthesis(n_style, w_dim, filters, const_channels, base, img_shape, upsample,
                     styled_to_image, equalized, const_init, style_options):
    """The synthesis net g: w [n, n_style, w_dim] and noise [n, H, W] -> image."""
    w = keras.Input((n_style, w_dim), name="w")
    noise_ = keras.Input(img_shape[:2], name="noise")
    noise = layers.Reshape((*img_shape[:2], 1))(noise_)
    const = Const((base, base, const_channels), const_init, name="const")(w)
    x = AddNoise(style_options.get("noise_init_std", 0.0), name="const_noise")((const, noise))
    x = AdaNorm(name="const_norm")(x)
    blocks = len(upsample)
    widths = filters if isinstance(filters, (list, tuple)) else [filters] * blocks
    for i in range(blocks):  # 7^2, 14^2, 28^2 (two layers at each with convs_per_block=2)
        w_i = StyleSlot(i, name=f"w_{i}")(w)
        x = Style(widths[i], upsample[i], equalized, name=f"style_{i}",
                  **style_options)((x, w_i, noise))
    if styled_to_image:  # the finest style: scales and shifts the channels to_image combines
        w_last = StyleSlot(blocks, name=f"w_{blocks}")(w)
        x = AdaMod(equalized, style_options.get("mod_init", "glorot_uniform"),
                   name="to_image_mod")((x, w_last))
    # The conv in the compute dtype: with one output channel oneDNN's float32 kernel is slow
    # (docs/results.md, "Where a step's time goes"). The tanh and the image in float32 under
    # mixed precision too (Keras' advice for a model's last layer).
    x = conv(img_shape[-1], 5, equalized, gain=1.0, padding="same", name="to_image")(x)
    o = layers.Activation("tanh", dtype="float32", name="to_image_tanh")(x)
    return keras.Model([w, noise_], o, name="synthesis")


def build_discriminator(img_shape=IMG_SHAPE, batchnorm=True, minibatch_std=False,
                        equalized=False, filters=64, kernel_size=4, leaky_slope=0.3,
                        dropout=0.3):
    """The tutorial's discriminator: "no different from earlier networks" (与以前的网络没什么差别),
    the mnist_uni_disc_cnn of its gan_cnn.py: two strided convs, `filters` then 2 * filters
    wide, each followed by BatchNorm, LeakyReLU and Dropout (the tutorial's rate: 0.3), then
    one Dense logit.

    batchnorm=False drops its BatchNormalization layers (the paper's D has none, and R1 wants
    each sample's gradient alone); minibatch_std=True adds the paper's minibatch standard
    deviation channel before the last layer, so D can see a batch that lacks variety;
    equalized=True gives its Conv2D and Dense layers an equalised learning rate; dropout=0
    leaves the Dropout layers out (the paper's D has none), so D holds no random state.
    """
    norm = (lambda: [layers.BatchNormalization()]) if batchnorm else (lambda: [])
    drop = (lambda: [layers.Dropout(dropout)]) if dropout else (lambda: [])
    return keras.Sequential([
        keras.Input(img_shape),
        conv(filters, kernel_size, equalized, strides=2, padding="same"),
        *norm(),
        layers.LeakyReLU(leaky_slope),
        *drop(),
        conv(2 * filters, kernel_size, equalized, strides=2, padding="same"),
        *norm(),
        layers.LeakyReLU(leaky_slope),
        *drop(),
        *([MinibatchStd(name="minibatch_std")] if minibatch_std else []),
        layers.Flatten(),
        # a logit: real > 0 > fake; float32 for the loss
        dense(1, equalized, gain=1.0, dtype="float32"),
    ], name="discriminator")


@keras.saving.register_keras_serializable(package=PACKAGE)
class MinibatchStd(layers.Layer):
    """Minibatch standard deviation (ProGAN, Karras et al. 2018, section 3; the paper's D): the
    standard deviation of every feature over groups of `group_size` samples, averaged to one
    number per group and appended as a constant extra channel. A generator that collapses
    to a few digits makes it small, which D can then see."""

    def __init__(self, group_size=4, **kwargs):
        super().__init__(**kwargs)
        self.group_size = group_size

    def call(self, x):
        n, h, w, c = ops.shape(x)[0], x.shape[1], x.shape[2], x.shape[3]
        # a batch that does not split into groups of group_size: one group of all samples
        group = self.group_size if x.shape[0] and x.shape[0] % self.group_size == 0 else n
        y = ops.reshape(ops.cast(x, "float32"), [group, -1, h, w, c])
        std = ops.sqrt(ops.var(y, axis=0) + 1e-8)  # [n / group, h, w, c]
        std = ops.mean(std, axis=[1, 2, 3])  # one number per group
        std = ops.tile(ops.reshape(std, [-1, 1, 1, 1]), [group, h, w, 1])
        return ops.concatenate([x, ops.cast(std, x.dtype)], axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], input_shape[-1] + 1)

    def get_config(self):
        return {**super().get_config(), "group_size": self.group_size}


def build_deep_discriminator(img_shape, filters=64, max_filters=256, minibatch_std=False,
                             equalized=False, leaky_slope=0.2):
    """For 32..256 px images: a strided Conv3x3 + LeakyReLU per halving down to 4x4, widths
    mirroring the generator's; no BatchNorm, so the WGAN-GP penalty sees each sample alone."""
    size = img_shape[0]
    stack = [keras.Input(img_shape), conv(filters, 3, equalized, padding="same"),
             layers.LeakyReLU(leaky_slope)]
    while size > 4:
        size //= 2
        stack += [conv(min(max_filters, filters * img_shape[0] // size), 3, equalized,
                       strides=2, padding="same"), layers.LeakyReLU(leaky_slope)]
    stack += [*([MinibatchStd(name="minibatch_std")] if minibatch_std else []),
              layers.Flatten(), dense(1, equalized, gain=1.0, dtype="float32")]
    return keras.Sequential(stack, name="discriminator")


# ---------------------------------------------------------------------------------------------
# Style mixing and inference helpers (work on a StyleGAN's `g` or on an exported generator)
# ---------------------------------------------------------------------------------------------
def repeat_z(z, n_style):
    """One z [n, latent] on every style layer: [n, n_style, latent] (no mixing)."""
    return ops.repeat(ops.convert_to_tensor(z, "float32")[:, None], n_style, axis=1)


def mix_z(z1, z2, crossover, n_style):
    """The per-layer z stack [n, n_style, latent] of a style mix of z1 and z2 ([n, latent] each):
    layers < crossover take z1 (coarse styles), layers >= crossover take z2 (fine styles).

    crossover: an int, or an int tensor [n] (one per sample); n_style means "z1 everywhere".
    """
    z1, z2 = repeat_z(z1, n_style), repeat_z(z2, n_style)
    crossover = ops.reshape(ops.convert_to_tensor(crossover, "int32"), [-1, 1])
    from_z1 = ops.arange(n_style, dtype="int32")[None, :] < crossover  # [n or 1, n_style]
    return ops.where(from_z1[..., None], z1, z2)


COARSE_SIZE = 28  # default: every style layer but the last is "coarse" (the tutorial's grid: 7)


def style_sizes(generator):
    """The output height of every style layer, in order: 7, 14, 28 for the tutorial's net
    (and 28 for to_image's modulation where the generator has one)."""
    synthesis = generator.get_layer("synthesis")
    blocks = [layer for layer in synthesis.layers if layer.name.startswith("style_")]
    sizes = [block.output.shape[1] for block in blocks]
    return sizes + [sizes[-1]] * (generator.input[0].shape[1] - len(blocks))


def grid_crossover(generator, coarse_size=COARSE_SIZE):
    """Where the grid splits coarse from fine: the style layers working at coarse_size pixels
    or less come from the row source (at least one layer, and one left for the columns).
    7 for the tutorial's 3 layers: 7x7 | 14x14, 28x28; 14 or 28: 7x7, 14x14 | 28x28. With a
    styled to_image (the default recipe), 28 gives the rows every style block and the columns
    to_image's style alone: the digit follows the row in about 9 mixes in 10 (docs/results.md)."""
    sizes = style_sizes(generator)
    coarse = sum(size <= coarse_size for size in sizes)
    return min(max(1, coarse), max(1, len(sizes) - 1))


def is_generator(model):
    """True for a generator that build_generator made: inputs z [n, n_style, latent] and
    noise [n, H, W], a Map layer "map" and a synthesis model "synthesis" (w, noise -> image)."""
    try:
        mapping, synthesis = model.get_layer("map"), model.get_layer("synthesis")
        shapes = [tuple(x.shape) for x in (*model.inputs, *synthesis.inputs, model.output)]
    except (ValueError, AttributeError, TypeError):  # no such layer, or not a functional model
        return False
    return (isinstance(mapping, Map) and isinstance(synthesis, keras.Model)
            and [len(shape) for shape in shapes] == [3, 3, 3, 3, 4])


def generate(generator, z, noise=None, truncation_psi=1.0, seed=None, batch_size=256):
    """Images [n, H, W, C] in [-1, 1] for z [n, n_style, latent] (numpy in, numpy out).

    noise: [n, H, W], or None to draw it from `seed`. truncation_psi < 1 pulls w towards the
    training mean w_avg (1 = off; used only at inference, never in training).
    """
    mapping, synthesis = generator.get_layer("map"), generator.get_layer("synthesis")
    z = ops.convert_to_tensor(z, "float32")
    if noise is None:
        noise = keras.random.normal((z.shape[0], *synthesis.input[1].shape[1:]), seed=seed)
    noise = ops.convert_to_tensor(noise, "float32")
    images = []
    for start in range(0, z.shape[0], batch_size):
        w = mapping(z[start:start + batch_size])
        if truncation_psi != 1.0:
            w = mapping.truncate(w, truncation_psi)
        images.append(synthesis([w, noise[start:start + batch_size]]))
    return ops.convert_to_numpy(ops.concatenate(images, axis=0))


def export_saved_model(generator, folder):
    """The generator as a TensorFlow SavedModel that `tf.saved_model.load` runs without this
    project's code (TF Serving, or any TensorFlow program). Two signatures (Keras adds the first
    as serving_default), z one code for every style slot (no mixing), psi the truncation (1:
    off), images in [-1, 1], computed in the generator's dtype policy:
        serve(z [n, latent] float32, noise [n, H, W] float32, psi [] float32) -> {"images"}
        serve_seed(z, seed [] int64, psi) -> {"images"}, the noise drawn from the seed."""
    mapping, synthesis = generator.get_layer("map"), generator.get_layer("synthesis")
    n_style, latent = generator.input[0].shape[1:]
    height, width = synthesis.input[1].shape[1:]

    def images(z, noise, psi):
        w = mapping(repeat_z(z, n_style))
        w = mapping.truncate(w, ops.cast(psi, w.dtype))
        return {"images": ops.cast(synthesis([w, noise]), "float32")}

    def images_from_seed(z, seed, psi):
        noise = tf.random.stateless_normal([tf.shape(z)[0], height, width],
                                           tf.stack([seed, tf.constant(0, tf.int64)]))
        return images(z, noise, psi)
    z_spec = tf.TensorSpec([None, latent], tf.float32, name="z")
    psi_spec = tf.TensorSpec([], tf.float32, name="psi")
    noise_spec = tf.TensorSpec([None, height, width], tf.float32, name="noise")
    archive = keras.export.ExportArchive()
    archive.track(generator)
    archive.add_endpoint("serve", images, [z_spec, noise_spec, psi_spec])
    archive.add_endpoint("serve_seed", images_from_seed,
                         [z_spec, tf.TensorSpec([], tf.int64, name="seed"), psi_spec])
    archive.write_out(str(folder), verbose=False)


def _global_batch(batch_size):
    """(global batch size, this replica's slice of it). Under tf.distribute the SeedGenerator is
    mirrored, so every replica draws the same numbers: each draws for the global batch and keeps
    its own share (without a strategy: the batch and all of it)."""
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return batch_size, slice(None)
    start = context.replica_id_in_sync_group * batch_size
    return batch_size * context.num_replicas_in_sync, slice(start, start + batch_size)


def binary_crossentropy(labels, logits):
    """The tutorial's `BinaryCrossentropy(from_logits=True)`: the batch's mean, in float32,
    bit-identical on one device. Not the Loss object: under tf.distribute it divides its value by the
    replica count, which the step already does once for the gradients' sum (the loss would be
    divided twice, and the logged losses halved on two GPUs)."""
    return ops.mean(keras.losses.binary_crossentropy(
        ops.cast(labels, "float32"), ops.cast(logits, "float32"), from_logits=True))


INK_SHARPNESS = 10.0  # soft ink: a pixel at +-0.3 (of [-1, 1]) is 95% ink or paper


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


def lazily(optimizer, every, penalty):
    """penalty() on every `every`-th update of this optimizer, else 0 (StyleGAN2's lazy
    regularisation, section 3.1; the caller weights the penalty by `every`)."""
    return tf.cond(optimizer.iterations % every == 0, penalty, lambda: tf.constant(0.0))


def _multi_worker():
    return isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy)


def _replicas():
    """Replicas training in sync (1 without tf.distribute): gradients are summed over them, so
    each replica's mean loss is divided by their number."""
    return tf.distribute.get_strategy().num_replicas_in_sync


# ---------------------------------------------------------------------------------------------
# The networks a config describes, and the GAN that trains them
# ---------------------------------------------------------------------------------------------
def build_networks(config):
    """(generator, discriminator, generator_ema) for a config.Config: the tutorial's 28x28
    networks for MNIST, the grown ones for a folder of images; generator_ema (a second
    generator for G's moving average) is None when config.ema_beta is 0."""
    arch = architecture(config.image_size, config.filters, config.max_filters,
                        config.convs_per_block, config.styled_to_image)
    img_shape = (config.image_size, config.image_size, config.channels)

    def new_generator():
        return build_generator(config.latent_dim, arch["n_style"], config.w_dim, arch["filters"],
                               arch["const_channels"], config.mapping_layers,
                               config.mapping_activation, img_shape, arch["upsample"],
                               config.styled_to_image, config.equalized_lr,
                               config.mapping_lr_mult, config.const_init,
                               leaky_slope=config.leaky_slope,
                               noise_init_std=config.noise_init_std, mod_init=config.mod_init)

    generator, generator_ema = new_generator(), None
    if config.ema_beta:  # G's moving average starts as a copy of G and is never trained
        generator_ema = new_generator()
        generator_ema.set_weights(generator.get_weights())
        generator_ema.trainable = False
    if config.image_size == MNIST_SIZE:
        discriminator = build_discriminator(
            img_shape, batchnorm=config.d_batchnorm, minibatch_std=config.minibatch_std,
            equalized=config.equalized_lr, filters=config.d_filters,
            kernel_size=config.d_kernel, leaky_slope=config.leaky_slope,
            dropout=config.d_dropout)
    else:
        discriminator = build_deep_discriminator(
            img_shape, filters=config.filters, max_filters=config.max_filters,
            minibatch_std=config.minibatch_std, equalized=config.equalized_lr,
            leaky_slope=config.leaky_slope)
    return generator, discriminator, generator_ema


def make_gan(config, jit_compile=False):
    """The StyleGAN a config describes, compiled with its optimizers (under the dtype policy
    set before the call)."""
    generator, discriminator, generator_ema = build_networks(config)
    gan = StyleGAN(generator, discriminator, config, generator_ema)
    gan.compile(jit_compile=jit_compile, steps_per_execution=config.steps_per_execution)
    return gan


def squared_input_gradients(discriminator, images):
    """|grad_x D(x)|^2 per image, in float32 (R1 and WGAN-GP penalise it)."""
    with tf.GradientTape() as tape:
        tape.watch(images)
        scores = discriminator(images, training=True)
    grads = ops.cast(tape.gradient(scores, images), "float32")
    return ops.sum(ops.square(grads), axis=(1, 2, 3))


@keras.saving.register_keras_serializable(package=PACKAGE)
class StyleGAN(keras.Model):
    """Generator + discriminator trained with style-mixing regularisation (paper, section 3.1),
    in the keras-io GAN examples' shape: the networks come in built (`build_networks`), this
    class holds the training step. `config` (config.Config) sets the recipe; `generator_ema`,
    a second generator, follows G's moving average when config.ema_beta > 0.

    `compile()` then `fit(dataset_of_images)`; the step runs compiled (`tf.function`, or XLA
    with `compile(jit_compile=True)`).
    """

    def __init__(self, generator, discriminator, config, generator_ema=None, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        self.g, self.d, self.g_ema = generator, discriminator, generator_ema
        self.mapping = generator.get_layer("map")
        self.synthesis = generator.get_layer("synthesis")
        self.n_style, self.latent_dim = generator.input[0].shape[1:]  # z [n, n_style, latent]
        self.img_shape = tuple(generator.output.shape[1:])
        # crossover mixing at one split (config.mixing_coarse_size), or None: a random one
        self.fixed_crossover = (grid_crossover(generator, config.mixing_coarse_size)
                                if config.mixing_coarse_size else None)
        # the grid's split: its rows give the style slots before this one
        self.grid_split = config.grid_crossover or grid_crossover(generator,
                                                                  config.grid_coarse_size)
        # where a grid column gives to_image's style alone (the default grid), the hand
        # penalty's mix shares its style blocks with G's own pass: the synthesis with its last
        # feature map as a second output lets lazy_hand reuse them. It holds synthesis's own
        # weights; a checkpoint gains only an empty group for it (older ones load without it).
        self.synthesis_and_features = None
        if config.hand_weight and config.styled_to_image and self.grid_split == self.n_style - 1:
            to_image_mod = self.synthesis.get_layer("to_image_mod")
            self.synthesis_and_features = keras.Model(
                self.synthesis.inputs, [self.synthesis.output, to_image_mod.input[0]],
                name="synthesis_and_features")
        # every call of the compiled step advances this state, so every step draws anew
        self.seed_generator = keras.random.SeedGenerator(config.seed)
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
        self.built = True  # g and d are functional models, built already

    @property
    def sampling_generator(self):
        """The generator to draw pictures with and to export: the moving average of G's
        weights where there is one (smoother, better digits), else G itself."""
        return self.g if self.g_ema is None else self.g_ema

    def compile(self, d_optimizer=None, g_optimizer=None, **kwargs):
        """Adam with the config's rates and betas unless given: one for D and one for G, or with
        config.shared_optimizer the tutorial's single Adam for both (moments per weight, one
        step counter that both updates of a step advance). Under mixed_float16 the optimizer
        scales the loss (float16 gradients underflow unscaled)."""
        super().compile(**kwargs)
        c = self.config
        adam = lambda lr: keras.optimizers.Adam(lr, c.beta_1, c.beta_2, epsilon=c.adam_epsilon)
        self.d_optimizer = d_optimizer or adam(c.d_lr)
        self.g_optimizer = g_optimizer or (self.d_optimizer if c.shared_optimizer
                                           else adam(c.g_lr))
        if self.dtype_policy.name == "mixed_float16":  # a shared one: one scale for G and D
            scaled = {}
            wrap = lambda o: scaled.setdefault(id(o), keras.optimizers.LossScaleOptimizer(o))
            self.d_optimizer, self.g_optimizer = wrap(self.d_optimizer), wrap(self.g_optimizer)
        self.build_optimizers()  # now, not inside the compiled step (MirroredStrategy can't)

    def build_optimizers(self):
        """Create the optimizers' slots now (fit does it lazily), so that a checkpoint always
        holds and loads them whole."""
        if self.g_optimizer is self.d_optimizer:
            to_build = [(self.d_optimizer, self.d.trainable_variables + self.g.trainable_variables)]
        else:
            to_build = [(self.d_optimizer, self.d.trainable_variables),
                        (self.g_optimizer, self.g.trainable_variables)]
        for optimizer, variables in to_build:
            if not optimizer.built:
                optimizer.build(variables)

    def set_learning_rates(self, d_lr, g_lr):
        """(A shared optimizer has one rate: Config makes g_lr equal d_lr then.)"""
        self.d_optimizer.learning_rate = d_lr
        self.g_optimizer.learning_rate = g_lr

    @property
    def metrics(self):
        # listed here, Keras resets them each epoch: the bar shows epoch means, not the last batch
        return [self.d_loss_tracker, self.g_loss_tracker]

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        """Nothing to build: the networks and optimizers are built before fit. (Under a strategy
        Keras 3 would take a batch and average it over the replicas here, which fails across
        the workers of MultiWorkerMirroredStrategy: keras-team/keras#20585.)"""

    def running_losses(self):
        """The epoch's running mean losses as {name: [total, count]}: what a mid-epoch
        checkpoint keeps, so the resumed epoch ends with the mean over all its steps."""
        return {m.name: [float(m.total.numpy()), float(m.count.numpy())] for m in self.metrics}

    def set_running_losses(self, losses):
        for metric in self.metrics:
            metric.total.assign(losses[metric.name][0])
            metric.count.assign(losses[metric.name][1])

    def call(self, inputs, training=False):
        return self.g(inputs, training=training)

    # -- random draws: keras.random with the model's SeedGenerator, never numpy (frozen when traced)
    def draw_crossover(self, batch_size):
        """Per sample: with probability mixing_prob a crossover k in [1, n_style) (or the
        fixed one, config.mixing_coarse_size), else n_style (one z for every layer)."""
        k = keras.random.randint((batch_size,), 1, max(self.n_style, 2),
                                 seed=self.seed_generator)
        if self.fixed_crossover is not None:  # drawn all the same, so the random state moves
            k = ops.full_like(k, self.fixed_crossover)  # as it does without the setting
        mixed = (keras.random.uniform((batch_size,), seed=self.seed_generator)
                 < self.config.mixing_prob)
        return ops.where(mixed, k, self.n_style)

    def draw_slots(self, z1, z2):
        """The tutorial's mixing: every style slot takes z1 or z2 at random, one choice per step
        shared by the whole batch (2 of the 2**n_style choices are no mix at all)."""
        from_z1 = keras.random.randint((self.n_style,), 0, 2, seed=self.seed_generator) == 0
        return ops.where(from_z1[None, :, None], z1[:, None], z2[:, None])

    def draw_inputs(self, batch_size):
        """Generator inputs for training: a z stack [n, n_style, latent] mixed as config.mixing
        says, and noise [n, H, W]."""
        n, mine = _global_batch(batch_size)
        z1, z2 = (keras.random.normal((n, self.latent_dim), seed=self.seed_generator)
                  for _ in range(2))
        if self.config.mixing == "random_slots":
            z = self.draw_slots(z1, z2)
        else:
            z = mix_z(z1, z2, self.draw_crossover(n), self.n_style)
        noise = keras.random.normal((n, *self.img_shape[:2]), seed=self.seed_generator)
        return z[mine], noise[mine]

    def train_step(self, real_images):
        """One step as config.step says. g_first (the tutorial's `step`): G's update on twice the
        real batch, then D's on the real batch and the first half of the images G's step made
        (before its update). d_first: D's update(s), each on fresh fakes, then G's on fresh
        fakes. same_fakes: D's update(s), the last on the fakes that G's update then uses, so
        G makes them once."""
        batch_size = ops.shape(real_images)[0]
        if self.config.step == "g_first":
            g_loss, fakes, _ = self.g_step(2 * batch_size)
            d_loss = self.d_step(real_images, fakes[:batch_size])
        else:
            shared = self.config.step == "same_fakes"
            fresh = self.config.d_steps - 1 if shared else self.config.d_steps
            for _ in range(fresh):  # unrolled when traced: a Python int
                fakes = self.g(self.draw_inputs(batch_size), training=True)
                d_loss = self.d_step(real_images, fakes)
            g_loss, _, last_d_loss = self.g_step(batch_size, real_images if shared else None)
            d_loss = last_d_loss if shared else d_loss
        if self.g_ema is not None:
            self.update_ema()
        self.d_loss_tracker.update_state(d_loss)
        self.g_loss_tracker.update_state(g_loss)
        logs = {m.name: m.result() for m in self.metrics}
        if _multi_worker():  # Keras 3 averages a log over workers along axis 0: give it one
            logs = {name: ops.reshape(value, (1,)) for name, value in logs.items()}
        return logs

    def d_step(self, real_images, fake_images):
        """The discriminator learns to tell real images from generated ones."""
        with tf.GradientTape() as tape:
            d_loss = self.discriminator_loss(real_images, fake_images)
            penalty = self.lazy_r1(real_images) if self.config.r1_gamma else 0.0
            scaled_loss = self.d_optimizer.scale_loss((d_loss + penalty) / _replicas())
        grads = tape.gradient(scaled_loss, self.d.trainable_variables)
        self.d_optimizer.apply_gradients(zip(grads, self.d.trainable_variables))
        return d_loss

    def g_step(self, batch_size, real_images=None):
        """The generator learns to fool the discriminator; returns its loss, the images it made
        (before its update) and D's loss. With real_images (step same_fakes), D first learns
        from them and these images, and G's loss is the updated D's verdict on the same images:
        G's forward pass serves both updates (as in PyTorch's DCGAN example)."""
        z, noise = self.draw_inputs(batch_size)
        d_loss = None
        with tf.GradientTape() as tape:
            w = self.mapping(z, training=True)
            if self.synthesis_and_features is None:
                images, features = self.synthesis([w, noise], training=True), None
            else:
                images, features = self.synthesis_and_features([w, noise], training=True)
            if real_images is not None:
                with tape.stop_recording():  # D's update is no part of G's gradient
                    d_loss = self.d_step(real_images, images)
            logits = self.d(images, training=self.config.g_step_d_training)
            g_loss = self.generator_loss(logits)
            penalty = (self.lazy_fine_style(w, images, noise)
                       if self.config.fine_style_weight else 0.0)
            if self.config.hand_weight:
                penalty += self.lazy_hand(w, images, noise, features)
            scaled_loss = self.g_optimizer.scale_loss((g_loss + penalty) / _replicas())
        grads = tape.gradient(scaled_loss, self.g.trainable_variables)
        self.g_optimizer.apply_gradients(zip(grads, self.g.trainable_variables))
        self.update_w_avg(w)
        return g_loss, images, d_loss

    def discriminator_loss(self, real_images, fake_images):
        if self.config.loss == "wgan-gp":  # critic: real up, fake down, gradient norm 1 between
            return (ops.mean(self.d(fake_images, training=True))
                    - ops.mean(self.d(real_images, training=True))
                    + self.config.gp_weight * self.gradient_penalty(real_images, fake_images))
        # the tutorial's: real images -> 1, generated -> 0
        n = ops.shape(real_images)[0]
        labels = ops.concatenate([ops.ones((n, 1)), ops.zeros((n, 1))], axis=0)
        c = self.config
        if c.d_batchnorm and not c.minibatch_std and not c.g_step_d_training:
            # the tutorial: one batch of both (BatchNorm's statistics over real and fake)
            logits = self.d(ops.concatenate([real_images, fake_images], axis=0), training=True)
        else:  # apart, so BatchNorm and minibatch-std groups see fakes alone, as in G's step
            logits = ops.concatenate([self.d(real_images, training=True),
                                      self.d(fake_images, training=True)], axis=0)
        return binary_crossentropy(labels, logits)

    def generator_loss(self, fake_logits):
        if self.config.loss == "wgan-gp":
            return -ops.mean(fake_logits)
        # non-saturating: label the fakes as real
        return binary_crossentropy(ops.ones_like(fake_logits), fake_logits)

    def gradient_penalty(self, real_images, fake_images):
        """WGAN-GP (Gulrajani et al., 2017, eq. 3): (|grad D(x_hat)| - 1)^2 on random
        interpolates x_hat = real + u (fake - real), u ~ U(0, 1) per sample."""
        n, mine = _global_batch(ops.shape(real_images)[0])
        u = keras.random.uniform((n, 1, 1, 1), seed=self.seed_generator)[mine]
        x_hat = real_images + u * (fake_images - real_images)
        norms = ops.sqrt(squared_input_gradients(self.d, x_hat) + 1e-12)
        return ops.mean(ops.square(norms - 1.0))

    def lazy_r1(self, real_images):
        """R1 (Mescheder et al. 2018, eq. 9; the paper's FFHQ runs): gamma/2 E|grad D(real)|^2,
        pulling D flat around the real images. Lazy (StyleGAN2, section 3.1): computed on every
        r1_every-th D step only, weighted by r1_every, so it costs 1/r1_every of the work."""
        gamma, every = self.config.r1_gamma, self.config.r1_every

        def penalty():
            return 0.5 * gamma * every * ops.mean(squared_input_gradients(self.d, real_images))
        return lazily(self.d_optimizer, every, penalty)

    def lazy_fine_style(self, w, images, noise):
        """A penalty where the grid's columns change too little. For pairs of this batch's
        samples (a, b): the image of a with b's fine slots (from self.grid_split on: what a grid
        column gives) must differ from a's image, in mean absolute pixels, by at least
        fine_style_ratio times as much as a's image with b's coarse slots (what a row gives)
        does. Lazy, as R1: on every fine_style_every-th G step, weighted by it. Measured, and
        not kept: the columns then change the digit rather than the hand (docs/results.md, "A
        penalty on grid columns that change too little")."""
        c, k = self.config, self.grid_split

        def penalty():
            half = batch_size_of(w) // 2
            w_a, w_b, own = w[:half], w[half: 2 * half], ops.cast(images[:half], "float32")

            def change(w_mix):
                mixed = self.synthesis([w_mix, noise[:half]], training=True)
                return ops.mean(ops.abs(ops.cast(mixed, "float32") - own), axis=(1, 2, 3))
            column = change(ops.concatenate([w_a[:, :k], w_b[:, k:]], axis=1))
            row = ops.stop_gradient(change(ops.concatenate([w_b[:, :k], w_a[:, k:]], axis=1)))
            short = ops.relu(c.fine_style_ratio - column / (row + 1e-3))
            return c.fine_style_weight * c.fine_style_every * ops.mean(short)
        return lazily(self.g_optimizer, c.fine_style_every, penalty)

    def lazy_hand(self, w, images, noise, features=None):
        """A penalty where a grid column does not give its hand (the issue "Mixing that means
        'this digit, in that hand'"). For pairs of this batch's samples (r, c): the mix of r's
        coarse slots (before self.grid_split: a grid row) and c's fine ones (a grid column)
        should have c's stroke width; the squared difference, with c's own image's width a
        fixed target, so the gradient goes through the mix alone. Width alone: at the default
        grid's split the columns give only to_image's style, a per-pixel conv, which can thicken
        or thin a stroke but not lean it. MNIST only (light ink on dark). Lazy, as R1: on every
        hand_every-th G step, weighted by it.
        features: the last feature map of G's pass that made `images`, from
        self.synthesis_and_features, which exists where a column gives to_image's style alone.
        The mix's style blocks then read r's own slots and r's own noise, so they are r's
        feature map: only to_image runs again, and the penalty's gradient joins G's loss's in
        one backward pass through the blocks."""
        c, k = self.config, self.grid_split
        if features is not None and self.synthesis_and_features is None:
            raise ValueError("lazy_hand: features serve only where a grid column gives "
                             "to_image's style alone")

        def penalty():
            half = batch_size_of(w) // 2
            if features is None:
                w_mix = ops.concatenate([w[:half, :k], w[half: 2 * half, k:]], axis=1)
                mixed = self.synthesis([w_mix, noise[:half]], training=True)
            else:  # r's feature map, c's style of to_image
                mixed = self.image_from_features(features[:half], w[half: 2 * half, k])
            mixed = ops.cast(mixed, "float32")
            fine_width = ops.stop_gradient(soft_stroke_width(images[half: 2 * half]))
            miss = ops.square(soft_stroke_width(mixed) - fine_width)
            return c.hand_weight * c.hand_every * ops.mean(miss)
        return lazily(self.g_optimizer, c.hand_every, penalty)

    def image_from_features(self, features, w_last):
        """The synthesis's last layers on its last feature map: to_image_mod with w_last (the
        last slot of w, [n, w_dim]), to_image's conv, the tanh."""
        x = self.synthesis.get_layer("to_image_mod")((features, w_last))
        x = self.synthesis.get_layer("to_image")(x)
        return self.synthesis.get_layer("to_image_tanh")(x)

    def update_w_avg(self, w):
        """Moving average of w over the batch and the style layers (for truncation)."""
        w_mean = ops.mean(ops.cast(w, "float32"), axis=(0, 1))
        context = tf.distribute.get_replica_context()
        if context is not None and context.num_replicas_in_sync > 1:  # every replica's w
            w_mean = context.all_reduce("MEAN", w_mean)
        w_avg = self.mapping.w_avg
        w_avg.assign(w_mean + self.config.w_avg_beta * (w_avg - w_mean))

    def update_ema(self):
        """G smoothing (ProGAN, section A.1; the paper's results use it): every weight of g_ema
        moves a share (1 - beta) towards G's after each G step; w_avg is copied."""
        for ema_var, var in zip(self.g_ema.weights, self.g.weights):
            if var.trainable:
                ema_var.assign(var + self.config.ema_beta * (ema_var - var))
            else:
                ema_var.assign(var)
