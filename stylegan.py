"""StyleGAN "multi-style mixing" on MNIST, in TensorFlow 2 / Keras 3.

Read it next to the tutorial (`StyleGAN 混合多风格`, section 秀代码 "show the code") and the paper
(Karras et al., 2019, "A Style-Based Generator Architecture for Generative Adversarial Networks").
The parts come in the tutorial's order: its three plug-ins AdaNorm, AdaMod and AddNoise, the
mapping net Map, the Style block, the generator, the discriminator; then style mixing, the
`StyleGAN` model that trains them, and the helpers that draw from a trained generator. The
layout is the tutorial's, which draws the block as in StyleGAN2's figure 2(c):

    z [n, n_style, latent] --Map--> w [n, n_style, w_dim]        (one z per style slot)

    const 7x7x128 -> AddNoise -> AdaNorm -> Style(64, no upsampling)  7x7   <- w[:, 0], noise
                                         -> Style(64)                14x14 <- w[:, 1], noise
                                         -> Style(64)                28x28 <- w[:, 2], noise
                                         [-> AdaMod               28x28 <- w[:, 3]]
                                         -> Conv 5x5 -> tanh  =  image 28x28x1

    Style block: AdaMod(x, w) -> [UpSampling2D] -> Conv3x3 -> AdaNorm -> LeakyReLU -> AddNoise

The bracketed AdaMod (a style on to_image, as StyleGAN2 styles its toRGB layers) is the default
recipe's, not the tutorial's; the paper's other parts are in paper_layers.py, the losses in
losses.py. Because every style layer reads its own slot of z, style mixing is only a choice of
which z sits in which slot (`mix_styles`).
"""
import math

import keras
import tensorflow as tf
from keras import layers, ops

import losses
from config import MNIST_SIZE
from paper_layers import (PACKAGE, BilinearUpSampling2D, MinibatchStd, architecture,
                          build_deep_discriminator, dense)

IMG_SHAPE = (28, 28, 1)  # MNIST
W_AVG_BETA = 0.995  # decay of w_avg, the mean w that truncation pulls towards (NVlabs')


# ---------------------------------------------------------------------------------------------
# The three plug-ins of the synthesis net (tutorial: AdaNorm, AdaMod, AddNoise)
# ---------------------------------------------------------------------------------------------
@keras.saving.register_keras_serializable(package=PACKAGE)
class AdaNorm(layers.Layer):
    """The "norm" of figure 2(c): pulls every feature map of every sample back to zero mean and
    unit variance over its height and width (instance normalisation, no learned affine)."""

    def __init__(self, epsilon=1e-5, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = epsilon  # keeps the division finite on a flat feature map

    def call(self, x):
        mean, variance = ops.moments(x, axes=[1, 2], keepdims=True)
        return (x - mean) * ops.rsqrt(variance + self.epsilon)

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package=PACKAGE)
class FusedAdaNorm(AdaNorm):
    """AdaNorm's numbers (tests/test_layers.py holds them equal), as one fused op, which the
    generator uses: the formula's statistics and their gradient are a dozen small ops, this is
    one, 0-3% faster a training step (`benchmarks/bench_train.py --ways compiled,formula`,
    docs/speed.md), and the numbers both presets were measured with. Batch normalisation of a
    batch of one image whose channels are every (sample, channel) pair computes exactly
    AdaNorm's statistics, in float32 also under mixed precision."""

    def call(self, x):
        n, (height, width, c) = ops.shape(x)[0], x.shape[1:]
        one_image = tf.reshape(tf.transpose(x, [1, 2, 0, 3]), [1, height, width, n * c])
        # training mode: the statistics of this input (no running averages, so none given);
        # scale 1 and offset 0: no learned affine
        y = tf.raw_ops.FusedBatchNormV3(
            x=one_image, scale=tf.ones([n * c]), offset=tf.zeros([n * c]), mean=tf.zeros([0]),
            variance=tf.zeros([0]), epsilon=self.epsilon, is_training=True)[0]
        return tf.transpose(tf.reshape(y, [height, width, n, c]), [2, 0, 1, 3])


@keras.saving.register_keras_serializable(package=PACKAGE)
class AdaMod(layers.Layer):
    """The "A" of the paper: a Dense layer turns w into a per-channel scale y_s and bias y_b that
    modulate the feature map x: `(1 + y_s) * x + y_b` (the 1 makes a zero y the identity).

    kernel_init: "normal" starts the Dense kernel as N(0, 1), the tutorial's ("this kernel is
    important": each channel's scale then differs clearly from style to style), or
    "glorot_uniform", Keras' default.
    """

    def __init__(self, kernel_init="normal", **kwargs):
        super().__init__(**kwargs)
        self.kernel_init = kernel_init

    def build(self, input_shape):
        x_shape, w_shape = input_shape
        self.channels = x_shape[-1]
        start = (keras.initializers.RandomNormal(0.0, 1.0) if self.kernel_init == "normal"
                 else self.kernel_init)
        # [y_s, y_b] for each channel
        self.y = dense(2 * self.channels, dtype=self.dtype_policy, name="y",
                       kernel_initializer=start)
        self.y.build(w_shape)

    def call(self, inputs):
        x, w = inputs
        y = ops.reshape(self.y(w), [-1, 2, 1, 1, self.channels])
        return (1.0 + y[:, 0]) * x + y[:, 1]

    def get_config(self):
        return {**super().get_config(), "kernel_init": self.kernel_init}


@keras.saving.register_keras_serializable(package=PACKAGE)
class AddNoise(layers.Layer):
    """The "B" of the paper: a learned per-channel scale times a noise image. The tutorial feeds
    one full-size noise image to every layer and crops it to the feature map's height and width.

    init_std: the scales start as N(0, init_std): the tutorial's 1 ("large initial noise"), or
    0 for zeros, the paper's, where the network learns how much noise each channel wants.
    """

    def __init__(self, init_std=1.0, **kwargs):
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


# ---------------------------------------------------------------------------------------------
# The mapping net and the style block
# ---------------------------------------------------------------------------------------------
@keras.saving.register_keras_serializable(package=PACKAGE)
class Map(layers.Layer):
    """The mapping net z -> w: a few Dense layers, applied to every style slot of z.

    The tutorial found that a non-linearity between the Dense layers made MNIST results worse, so
    the default is linear; `activation="leaky_relu"` puts it back to test that open question.
    lr_mult < 1 makes the net learn that much slower than the rest of G (the paper: 0.01).
    The layer also keeps `w_avg`, the running mean of w seen in training (updated by
    `StyleGAN.update_w_avg`), which the truncation trick pulls towards at inference.
    """

    def __init__(self, size=128, num_layers=2, activation="linear", lr_mult=1.0, **kwargs):
        super().__init__(**kwargs)
        self.size = size  # width of w
        self.num_layers = num_layers
        self.activation = activation  # "linear" (the tutorial's choice) or "leaky_relu"
        self.lr_mult = lr_mult  # learning rate of these layers / G's
        self.f = [dense(size, lr_mult, activation=activation, name=f"dense_{i}")
                  for i in range(num_layers)]

    def build(self, input_shape):
        shape = input_shape
        for layer in self.f:
            layer.build(shape)
            shape = (*shape[:-1], self.size)
        self.w_avg = self.add_weight(
            shape=(self.size,), initializer="zeros", trainable=False, name="w_avg")

    def call(self, z):
        w = z
        for layer in self.f:
            w = layer(w)
        return w

    def truncate(self, w, psi):
        """Truncation trick (paper, section 3.2 / appendix B): `w_avg + psi * (w - w_avg)`."""
        w_avg = ops.cast(self.w_avg, w.dtype)
        return w_avg + psi * (w - w_avg)

    def get_config(self):
        return {**super().get_config(), "size": self.size, "num_layers": self.num_layers,
                "activation": self.activation, "lr_mult": self.lr_mult}


@keras.saving.register_keras_serializable(package=PACKAGE)
class Style(layers.Layer):
    """One synthesis block: AdaMod -> [UpSampling2D] -> Conv3x3 -> AdaNorm -> LeakyReLU ->
    AddNoise. Takes `(x, w, noise)` where w is this block's slot of w, [n, w_dim].
    leaky_slope: the tutorial's 0.3 (Keras' default) or the paper's 0.2; noise_init_std and
    mod_init: how AddNoise and AdaMod start (see those)."""

    def __init__(self, filters, upsampling=True, leaky_slope=0.3, noise_init_std=1.0,
                 mod_init="normal", **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.upsampling = upsampling
        self.leaky_slope, self.noise_init_std, self.mod_init = leaky_slope, noise_init_std, mod_init
        self.ada_mod = AdaMod(mod_init, name="ada_mod")
        self.up = BilinearUpSampling2D() if upsampling else None
        self.conv = layers.Conv2D(filters, 3, padding="same", name="conv")
        self.ada_norm = FusedAdaNorm(name="ada_norm")
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
                "leaky_slope": self.leaky_slope, "noise_init_std": self.noise_init_std,
                "mod_init": self.mod_init}


@keras.saving.register_keras_serializable(package=PACKAGE)
class Const(layers.Layer):
    """The learned constant image the style layers reshape ("the clay", 黏土), repeated for
    every sample of the batch. Not ones: AdaNorm would turn a flat map into 0.

    init "glorot_uniform": the tutorial's constant is a Dense(7*7*128, use_bias=False) applied to
    an input of ones, which is this weight exactly, started as that Dense's Keras-default kernel:
    U(-a, a), a = sqrt(6 / (1 + 7*7*128)). "normal": N(0, 0.05).
    """

    def __init__(self, shape=(7, 7, 128), init="glorot_uniform", **kwargs):
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


def batch_size_of(tensor):
    """The batch size as a Python int where the trace knows it (a batch of fixed size): XLA
    needs the sizes of slices, and of the tiles their gradients make, at compile time."""
    return tensor.shape[0] if tensor.shape[0] is not None else ops.shape(tensor)[0]


# ---------------------------------------------------------------------------------------------
# Generator and discriminator
# ---------------------------------------------------------------------------------------------
def build_generator(latent_dim=100, n_style=3, w_dim=128, filters=64, const_channels=128,
                    mapping_layers=2, mapping_activation="linear", img_shape=IMG_SHAPE,
                    upsample=None, styled_to_image=False, mapping_lr_mult=1.0,
                    const_init="glorot_uniform", **style_options):
    """z [n, n_style, latent_dim] and noise [n, H, W] -> image [n, H, W, C] in [-1, 1]: a Keras
    model of two parts, `map` (z -> w) and `synthesis` (w, noise -> image), so truncation can
    work on w at inference.

    By default the first style block works at the constant's size without upsampling and each
    later one doubles the size: n_style = 3 gives 7 -> 14 -> 28 as in the tutorial. `upsample`
    (one bool per style block) says otherwise; `filters`: one width for every block, or a list
    with one per block. styled_to_image: the last of the n_style slots modulates to_image's
    input, the others feed the style blocks. mapping_lr_mult: the mapping net's learning rate as
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
                                 upsample, styled_to_image, const_init, style_options)
    z = keras.Input((n_style, latent_dim), name="z")
    noise = keras.Input(img_shape[:2], name="noise")
    w = Map(w_dim, mapping_layers, mapping_activation, mapping_lr_mult, name="map")(z)
    return keras.Model([z, noise], synthesis([w, noise]), name="generator")


def _build_synthesis(n_style, w_dim, filters, const_channels, base, img_shape, upsample,
                     styled_to_image, const_init, style_options):
    """The synthesis net g: w [n, n_style, w_dim] and noise [n, H, W] -> image."""
    w = keras.Input((n_style, w_dim), name="w")
    noise_ = keras.Input(img_shape[:2], name="noise")
    noise = layers.Reshape((*img_shape[:2], 1))(noise_)
    const = Const((base, base, const_channels), const_init, name="const")(w)
    x = AddNoise(style_options.get("noise_init_std", 1.0), name="const_noise")((const, noise))
    x = FusedAdaNorm(name="const_norm")(x)
    blocks = len(upsample)
    widths = filters if isinstance(filters, (list, tuple)) else [filters] * blocks
    for i in range(blocks):  # 7^2, 14^2, 28^2
        w_i = StyleSlot(i, name=f"w_{i}")(w)
        x = Style(widths[i], upsample[i], name=f"style_{i}", **style_options)((x, w_i, noise))
    if styled_to_image:  # the finest style: scales and shifts the channels to_image combines
        w_last = StyleSlot(blocks, name=f"w_{blocks}")(w)
        x = AdaMod(style_options.get("mod_init", "normal"), name="to_image_mod")((x, w_last))
    # The conv in the compute dtype: with one output channel oneDNN's float32 kernel is slow
    # (docs/speed.md). The tanh and the image in float32 under mixed precision too (Keras'
    # advice for a model's last layer).
    x = layers.Conv2D(img_shape[-1], 5, padding="same", name="to_image")(x)
    o = layers.Activation("tanh", dtype="float32", name="to_image_tanh")(x)
    return keras.Model([w, noise_], o, name="synthesis")


def build_discriminator(img_shape=IMG_SHAPE, batchnorm=True, minibatch_std=False, filters=64,
                        kernel_size=4, leaky_slope=0.3, dropout=0.3):
    """The tutorial's discriminator: "no different from earlier networks" (与以前的网络没什么差别),
    the mnist_uni_disc_cnn of its gan_cnn.py: two strided convs, `filters` then 2 * filters
    wide, each followed by BatchNorm, LeakyReLU and Dropout (the tutorial's rate: 0.3), then
    one Dense logit.

    batchnorm=False drops its BatchNormalization layers (the paper's D has none, and R1 wants
    each sample's gradient alone); minibatch_std=True adds the paper's minibatch standard
    deviation channel before the last layer, so D can see a batch that lacks variety; dropout=0
    leaves the Dropout layers out (the paper's D has none), so D holds no random state.
    """
    norm = (lambda: [layers.BatchNormalization()]) if batchnorm else (lambda: [])
    drop = (lambda: [layers.Dropout(dropout)]) if dropout else (lambda: [])
    return keras.Sequential([
        keras.Input(img_shape),
        layers.Conv2D(filters, kernel_size, strides=2, padding="same"),
        *norm(),
        layers.LeakyReLU(leaky_slope),
        *drop(),
        layers.Conv2D(2 * filters, kernel_size, strides=2, padding="same"),
        *norm(),
        layers.LeakyReLU(leaky_slope),
        *drop(),
        *([MinibatchStd(name="minibatch_std")] if minibatch_std else []),
        layers.Flatten(),
        layers.Dense(1, dtype="float32"),  # a logit: real > 0 > fake; float32 for the loss
    ], name="discriminator")


# ---------------------------------------------------------------------------------------------
# Style mixing: which source gives each style slot
# ---------------------------------------------------------------------------------------------
def mix_styles(a, b, from_a):
    """The style mix of a and b: the slots where `from_a` is True from a, the others from b.

    a, b: stacks of z or w, [n, n_style, d] (or codes [n, d], given to every slot);
    from_a: booleans [n_style] for the whole batch, or [n, n_style] one row per sample
    (`slots_before(crossover)` for the paper's coarse/fine split). Training, the grid,
    generate.py, evaluate.py and the hand penalty all mix through here.
    """
    from_a = ops.convert_to_tensor(from_a, "bool")
    n_style = from_a.shape[-1]
    a, b = ops.convert_to_tensor(a), ops.convert_to_tensor(b)
    if len(a.shape) == 2:  # one code per sample: the same on every slot
        a, b = (ops.repeat(x[:, None], n_style, axis=1) for x in (a, b))
    return ops.where(ops.reshape(from_a, (-1, n_style, 1)), a, b)


def slots_before(crossover, n_style):
    """from_a for a crossover: slots < crossover from the first source (the coarse styles),
    the rest from the second. crossover: an int, or ints [n] (one per sample); n_style
    means "the first source everywhere"."""
    crossover = ops.reshape(ops.convert_to_tensor(crossover, "int32"), [-1, 1])
    return ops.arange(n_style, dtype="int32")[None, :] < crossover  # [n or 1, n_style]


def repeat_z(z, n_style):
    """One z [n, latent] on every style slot: [n, n_style, latent] (no mixing)."""
    return ops.repeat(ops.convert_to_tensor(z, "float32")[:, None], n_style, axis=1)


def style_sizes(generator):
    """The output height of every style slot, in order: 7, 14, 28 for the tutorial's net
    (and 28 for to_image's modulation where the generator has one)."""
    synthesis = generator.get_layer("synthesis")
    blocks = [layer for layer in synthesis.layers if layer.name.startswith("style_")]
    sizes = [block.output.shape[1] for block in blocks]
    return sizes + [sizes[-1]] * (generator.input[0].shape[1] - len(blocks))


COARSE_SIZE = 28  # the default recipe's split: every style block coarse, to_image's style fine


def crossover_at(generator, coarse_size=COARSE_SIZE):
    """Where coarse styles end: the style slots working at coarse_size pixels or less (at least
    one, and one left for the fine source). The tutorial's 3 slots: 7 -> 7x7 | 14x14, 28x28;
    14 -> 7x7, 14x14 | 28x28. With a styled to_image (the default recipe), 28 gives the coarse
    source every style block and the fine one to_image's style alone."""
    sizes = style_sizes(generator)
    coarse = sum(size <= coarse_size for size in sizes)
    return min(max(1, coarse), max(1, len(sizes) - 1))


# ---------------------------------------------------------------------------------------------
# The GAN that trains them (keras-io's GAN examples' shape)
# ---------------------------------------------------------------------------------------------
@keras.saving.register_keras_serializable(package=PACKAGE)
class StyleGAN(keras.Model):
    """G and D trained with style-mixing regularisation (paper, section 3.1). The networks come
    in built (`build_networks`), `config` sets the recipe, `generator_ema` follows G's moving
    average. `compile()`, then `fit(images)` runs the step compiled (or with XLA)."""

    def __init__(self, generator, discriminator, config, generator_ema=None, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        self.g, self.d, self.g_ema = generator, discriminator, generator_ema
        self.mapping = generator.get_layer("map")
        self.synthesis = generator.get_layer("synthesis")
        self.n_style, self.latent_dim = generator.input[0].shape[1:]  # z [n, n_style, latent]
        self.img_shape = tuple(generator.output.shape[1:])
        self.hand_split = crossover_at(generator, config.hand_coarse_size)
        self.synthesis_and_features = losses.synthesis_and_features(self)  # or None
        # every call of the compiled step advances this state, so every step draws anew
        self.seed_generator = keras.random.SeedGenerator(config.seed)
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
        self.built = True  # g and d are functional models, built already

    @property
    def sampling_generator(self):  # for pictures and export: G's moving average where it exists
        return self.g if self.g_ema is None else self.g_ema

    @property
    def metrics(self):  # listed here, Keras resets them each epoch: the bar shows epoch means
        return [self.d_loss_tracker, self.g_loss_tracker]

    def compile(self, **kwargs):
        """Adam (beta_1 0) for D and one for G, or the tutorial's single Adam for both
        (config.shared_optimizer). Under mixed_float16 the optimizer scales the loss."""
        super().compile(**kwargs)
        adam = lambda: keras.optimizers.Adam(self.config.lr, 0.0, self.config.beta_2)
        self.d_optimizer = adam()
        self.g_optimizer = self.d_optimizer if self.config.shared_optimizer else adam()
        if self.dtype_policy.name == "mixed_float16":  # a shared one: one scale for G and D
            scaled = {}
            wrap = lambda o: scaled.setdefault(id(o), keras.optimizers.LossScaleOptimizer(o))
            self.d_optimizer, self.g_optimizer = wrap(self.d_optimizer), wrap(self.g_optimizer)
        # the optimizers' slots now: fit makes them lazily, MirroredStrategy can't inside the
        # step, and a checkpoint must hold and load them whole
        shared = self.g_optimizer is self.d_optimizer
        g_variables = self.g.trainable_variables
        self.d_optimizer.build(self.d.trainable_variables + (g_variables if shared else []))
        if not shared:
            self.g_optimizer.build(g_variables)

    def draw(self, random, shape, *args):
        """A keras.random draw from the model's seed (numpy would be frozen when traced); under
        tf.distribute each replica draws for the global batch and keeps its own share."""
        n, mine = _global_batch(shape[0])
        return random((n, *shape[1:]), *args, seed=self.seed_generator)[mine]

    def draw_inputs(self, n):
        """G's training inputs: z [n, n_style, latent] from two codes mixed as config.mixing
        says, and noise [n, H, W]."""
        z1, z2 = (self.draw(keras.random.normal, (n, self.latent_dim)) for _ in range(2))
        if self.config.mixing == "random_slots":  # the tutorial's: random slots, per step
            from_z1 = keras.random.randint((self.n_style,), 0, 2, seed=self.seed_generator) == 0
        else:  # the paper's: per sample, with probability mixing_prob, a random crossover
            k = self.draw(keras.random.randint, (n,), 1, max(self.n_style, 2))
            mixed = self.draw(keras.random.uniform, (n,)) < self.config.mixing_prob
            from_z1 = slots_before(ops.where(mixed, k, self.n_style), self.n_style)
        noise = self.draw(keras.random.normal, (n, *self.img_shape[:2]))
        return mix_styles(z1, z2, from_z1), noise

    def train_step(self, real_images):
        """One D update and one G update. The tutorial's order (step g_first): G's update on
        twice the real batch, then D's on the real batch and half of G's images. same_fakes: G
        makes one batch of fakes, D learns from it, then G from the updated D's verdict on it."""
        n = ops.shape(real_images)[0]
        if self.config.step == "g_first":  # G's update, then D's (d_update) on half its fakes
            g_loss, fakes, _ = self.g_update(2 * n)
            d_loss = self.d_update(real_images, fakes[:n])
        else:  # G's pass makes the fakes, D's update (d_update) runs on them inside g_update,
            g_loss, _, d_loss = self.g_update(n, real_images)  # then G's on the same fakes
        if self.g_ema is not None:
            self.update_ema()
        self.d_loss_tracker.update_state(d_loss)
        self.g_loss_tracker.update_state(g_loss)
        logs = {m.name: m.result() for m in self.metrics}
        if _multi_worker():  # Keras 3 averages a log over workers along axis 0: give it one
            logs = {name: ops.reshape(value, (1,)) for name, value in logs.items()}
        return logs

    def d_update(self, real_images, fake_images):
        """The discriminator learns to tell real images from generated ones."""
        with tf.GradientTape() as tape:
            d_loss = losses.discriminator_loss(self, real_images, fake_images)
            penalty = losses.lazy_r1(self, real_images) if self.config.r1_gamma else 0.0
            scaled_loss = self.d_optimizer.scale_loss((d_loss + penalty) / _replicas())
        grads = tape.gradient(scaled_loss, self.d.trainable_variables)
        self.d_optimizer.apply_gradients(zip(grads, self.d.trainable_variables))
        return d_loss

    def g_update(self, n, real_images=None):
        """The generator learns to fool the discriminator; returns its loss, its images (made
        before its update) and, given real_images (step same_fakes), D's loss: D first learns
        from them and these images, and G's loss is the updated D's verdict on the same images
        (G's forward pass serves both updates, as in PyTorch's DCGAN example)."""
        z, noise = self.draw_inputs(n)
        d_loss = None
        with tf.GradientTape() as tape:
            w = self.mapping(z, training=True)
            images, features = self.synthesize(w, noise)
            if real_images is not None:
                with tape.stop_recording():  # D's update is no part of G's gradient
                    d_loss = self.d_update(real_images, images)
            g_loss = losses.generator_loss(self, self.d(images, training=False))
            penalty = (losses.lazy_hand(self, w, images, noise, features)
                       if self.config.hand_weight else 0.0)
            scaled_loss = self.g_optimizer.scale_loss((g_loss + penalty) / _replicas())
        grads = tape.gradient(scaled_loss, self.g.trainable_variables)
        self.g_optimizer.apply_gradients(zip(grads, self.g.trainable_variables))
        self.update_w_avg(w)
        return g_loss, images, d_loss

    def synthesize(self, w, noise):
        """(images, their last feature map for the hand penalty, or None)."""
        if self.synthesis_and_features is None:
            return self.synthesis([w, noise], training=True), None
        return self.synthesis_and_features([w, noise], training=True)

    def update_w_avg(self, w):
        """Moving average of w over the batch and the style slots (for truncation)."""
        w_mean = ops.mean(ops.cast(w, "float32"), axis=(0, 1))
        context = tf.distribute.get_replica_context()
        if context is not None and context.num_replicas_in_sync > 1:  # every replica's w
            w_mean = context.all_reduce("MEAN", w_mean)
        w_avg = self.mapping.w_avg
        w_avg.assign(w_mean + W_AVG_BETA * (w_avg - w_mean))

    def update_ema(self):
        """G smoothing (ProGAN, section A.1): every weight of g_ema moves a share (1 - beta)
        towards G's after each G update; w_avg is copied."""
        for ema_var, var in zip(self.g_ema.weights, self.g.weights):
            if var.trainable:
                ema_var.assign(var + self.config.ema_beta * (ema_var - var))
            else:
                ema_var.assign(var)

    def call(self, inputs, training=False):  # the model is its generator
        return self.g(inputs, training=training)

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        """Nothing to build: all is built before fit (Keras 3's build here fails across the
        workers of MultiWorkerMirroredStrategy: keras-team/keras#20585)."""


def _global_batch(batch_size):
    """(global batch size, this replica's slice of it); without a strategy: (batch_size, all)."""
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return batch_size, slice(None)
    start = context.replica_id_in_sync_group * batch_size
    return batch_size * context.num_replicas_in_sync, slice(start, start + batch_size)


def _replicas():
    """Replicas training in sync (1 without tf.distribute): gradients are summed over them, so
    each replica's mean loss is divided by their number."""
    return tf.distribute.get_strategy().num_replicas_in_sync


def _multi_worker():
    return isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy)


# ---------------------------------------------------------------------------------------------
# The networks a config describes
# ---------------------------------------------------------------------------------------------
INITS = {  # config.init: how AddNoise, AdaMod and the constant start
    "tutorial": dict(noise_init_std=1.0, mod_init="normal", const_init="glorot_uniform"),
    "small": dict(noise_init_std=0.0, mod_init="glorot_uniform", const_init="normal"),
}


def build_networks(config):
    """(generator, discriminator, generator_ema) for a config.Config: the tutorial's 28x28
    networks for MNIST, the grown ones for a folder of images; generator_ema (a second
    generator for G's moving average) is None when config.ema_beta is 0."""
    img_shape = (config.image_size, config.image_size, config.channels)
    generator, generator_ema = generator_of(config), None
    if config.ema_beta:  # G's moving average starts as a copy of G and is never trained
        generator_ema = generator_of(config)
        generator_ema.set_weights(generator.get_weights())
        generator_ema.trainable = False
    if config.image_size == MNIST_SIZE:
        discriminator = build_discriminator(
            img_shape, batchnorm=config.d_batchnorm, minibatch_std=config.minibatch_std,
            filters=config.d_filters, kernel_size=config.d_kernel,
            leaky_slope=config.leaky_slope, dropout=config.d_dropout)
    else:
        discriminator = build_deep_discriminator(
            img_shape, filters=config.filters, minibatch_std=config.minibatch_std,
            leaky_slope=config.leaky_slope)
    return generator, discriminator, generator_ema


def generator_of(config):
    """A new generator for a config.Config, under the dtype policy set before the call."""
    arch = architecture(config.image_size, config.filters, config.styled_to_image)
    init = INITS[config.init]
    return build_generator(config.latent_dim, arch["n_style"], config.w_dim, arch["filters"],
                           arch["const_channels"], config.mapping_layers,
                           config.mapping_activation,
                           (config.image_size, config.image_size, config.channels),
                           arch["upsample"], config.styled_to_image, config.mapping_lr_mult,
                           init["const_init"], leaky_slope=config.leaky_slope,
                           noise_init_std=init["noise_init_std"], mod_init=init["mod_init"])


def float32_copy(generator, config):
    """The generator with the same weights, computing in float32: what train.py exports, so that
    a generator.keras trained in mixed precision runs at full speed on a machine without
    bfloat16 or float16 units (the weights are float32 under every policy)."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float32")
    try:
        copy = generator_of(config)
    finally:
        keras.config.set_dtype_policy(previous)
    copy.set_weights(generator.get_weights())
    return copy


def make_gan(config, jit_compile=False):
    """The StyleGAN a config describes, compiled with its optimizers (under the dtype policy
    set before the call)."""
    generator, discriminator, generator_ema = build_networks(config)
    gan = StyleGAN(generator, discriminator, config, generator_ema)
    gan.compile(jit_compile=jit_compile, steps_per_execution=config.steps_per_execution)
    return gan


# ---------------------------------------------------------------------------------------------
# Drawing from a trained generator (a StyleGAN's `g`, or an exported generator.keras)
# ---------------------------------------------------------------------------------------------
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
