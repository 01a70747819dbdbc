"""The paper's parts that the tutorial leaves out (Karras et al., 2019, and ProGAN before it).

stylegan.py holds the tutorial's network; the default recipe adds the first two of these to it:
- `ScaledDense`: a Dense layer with its own learning-rate multiplier (the mapping net learns
  100x slower than the rest of G, as the paper's);
- `MinibatchStd`: D's minibatch standard deviation channel;
- `BilinearUpSampling2D`: the tutorial's bilinear upsampling (both recipes), the same numbers
  faster under mixed precision.
For a folder of images (the tutorial's last part, faces), `architecture` grows the style blocks
from a 4x4 constant and `build_deep_discriminator` mirrors them.
"""
import math

import keras
import tensorflow as tf
from keras import layers, ops

from config import FOLDER_SIZES, MNIST_SIZE

PACKAGE = "stylegan"  # registered name prefix, so a saved generator reloads after `import stylegan`


@keras.saving.register_keras_serializable(package=PACKAGE)
class ScaledDense(layers.Dense):
    """A Dense layer that learns `lr_mult` times as fast as the others under the same optimizer
    (NVlabs' FullyConnectedLayer(lr_multiplier)): its weights start as Keras' glorot_uniform
    divided by lr_mult and are multiplied by lr_mult at every call. Adam's step does not depend
    on a weight's scale, so the stored weight moves as far as any other, and the weight in use
    lr_mult times as far. The paper's mapping net: lr_mult 0.01."""

    def __init__(self, units, lr_mult=1.0, **kwargs):
        start = keras.initializers.VarianceScaling(1.0 / lr_mult ** 2, "fan_avg", "uniform")
        kwargs.setdefault("kernel_initializer", start)
        super().__init__(units, **kwargs)
        self.lr_mult = lr_mult

    def call(self, inputs):
        y = ops.matmul(inputs, self.kernel * self.lr_mult)
        return self.activation(y + self.bias * self.lr_mult if self.use_bias else y)

    def get_config(self):
        return {**super().get_config(), "lr_mult": self.lr_mult}


def dense(units, lr_mult=1.0, **kwargs):
    """keras.layers.Dense, or ScaledDense where lr_mult is not 1."""
    if lr_mult != 1.0:
        return ScaledDense(units, lr_mult, **kwargs)
    return layers.Dense(units, **kwargs)


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


class BilinearUpSampling2D(layers.UpSampling2D):
    """Keras' `UpSampling2D(2, interpolation="bilinear")` (the tutorial's), the same numbers
    faster under mixed precision. For a bfloat16 or float16 input tf.image.resize computes in
    float32 and clips the result to the input dtype's range before casting it back. A bilinear
    mix of the input's own values cannot leave that range, so the clip changes nothing, yet it
    and its gradient are five elementwise ops on the largest feature map (docs/speed.md). This
    calls the same resize op (half-pixel centres) and casts, without the clip. Channels last,
    height and width known (as every feature map of the generator)."""

    def __init__(self, **kwargs):
        super().__init__(**{**kwargs, "size": 2, "interpolation": "bilinear",
                            "data_format": "channels_last"})

    def call(self, x):
        height, width = x.shape[1], x.shape[2]
        y = tf.raw_ops.ResizeBilinear(images=x, size=[2 * height, 2 * width],
                                      half_pixel_centers=True)
        return ops.cast(y, x.dtype)


FOLDER_MAX_FILTERS = 256  # a folder run's widths double towards 4x4, up to this


def architecture(image_size=MNIST_SIZE, filters=64, styled_to_image=False):
    """Style layers and widths for an image size.

    28 (MNIST): the tutorial's 7 -> 14 -> 28, `filters` in every block, a 7x7x128 constant.
    32..256 (a power of two): a 4x4 constant and one style block per doubling up to image_size
    (the tutorial's faces), `filters` wide at full resolution and twice as wide at each halving
    down to 4x4, at most FOLDER_MAX_FILTERS.
    styled_to_image: one more style slot, an AdaMod on the last feature map before to_image
    (StyleGAN2 modulates its toRGB layers so).
    Returns n_style (every slot of w), the width and whether it upsamples for every style block,
    the constant's channels.
    """
    if image_size == MNIST_SIZE:
        widths, const_channels = [filters] * 3, 128
    elif image_size in FOLDER_SIZES:
        sizes = [4 * 2 ** i for i in range(int(math.log2(image_size)) - 1)]  # 4, .., image_size
        widths = [min(FOLDER_MAX_FILTERS, filters * image_size // size) for size in sizes]
        const_channels = widths[0]
    else:
        raise ValueError(f"image size {image_size} is not supported: use 28 (MNIST) or one of "
                         f"{', '.join(map(str, FOLDER_SIZES))}")
    return {"n_style": len(widths) + int(styled_to_image), "filters": widths,
            "upsample": [i > 0 for i in range(len(widths))], "const_channels": const_channels}


def build_deep_discriminator(img_shape, filters=64, minibatch_std=False, leaky_slope=0.2):
    """For 32..256 px images: a strided Conv3x3 + LeakyReLU per halving down to 4x4, widths
    mirroring the generator's; no BatchNorm, so a gradient penalty sees each sample alone."""
    size = img_shape[0]
    stack = [keras.Input(img_shape), layers.Conv2D(filters, 3, padding="same"),
             layers.LeakyReLU(leaky_slope)]
    while size > 4:
        size //= 2
        stack += [layers.Conv2D(min(FOLDER_MAX_FILTERS, filters * img_shape[0] // size), 3,
                                strides=2, padding="same"), layers.LeakyReLU(leaky_slope)]
    stack += [*([MinibatchStd(name="minibatch_std")] if minibatch_std else []),
              layers.Flatten(), layers.Dense(1, dtype="float32")]
    return keras.Sequential(stack, name="discriminator")
