"""`--preset tutorial` is the tutorial's code: its networks weight for weight, its step, its one
Adam, its mixing, its initialisations; and the default preset's networks as measured."""
import dataclasses

import keras
import numpy as np
import tensorflow as tf

import stylegan
from config import PRESETS
from conftest import Recorder, tiny_gan

# The tutorial's networks, as Keras' summary counts them (every weight, trainable or not)
TUTORIAL_D = [("Conv2D", 1_088), ("BatchNormalization", 256), ("Conv2D", 131_200),
              ("BatchNormalization", 512), ("Dense", 6_273)]  # 139,329
TUTORIAL_G = {"const": 6_272, "const_noise": 128, "style_0": 106_880, "style_1": 53_504,
              "style_2": 53_504, "to_image": 1_601}  # + the mapping net's 29,440 = 251,329
# The default recipe's (measured: docs/results.md): D 96/192 wide, 5x5, no BatchNorm or
# Dropout, a minibatch std channel; G with a 3-layer mapping net and a styled to_image
# D: 5x5 convs 1 -> 96 -> 192, the logit on 7x7x(192 + the minibatch std channel): 472,946
DEFAULT_D = [("Conv2D", 2_496), ("Conv2D", 460_992), ("Dense", 9_458)]
# G's style blocks at 48 filters (the tutorial's: 64), a style on to_image
DEFAULT_G = {"const": 6_272, "const_noise": 128, "style_0": 88_416, "style_1": 33_216,
             "style_2": 33_216, "to_image_mod": 12_384, "to_image": 1_201}  # + mapping 45,952


def d_layers(discriminator):
    return [(type(layer).__name__, layer.count_params()) for layer in discriminator.layers
            if layer.count_params()]


def synthesis_layers(generator):
    return {layer.name: layer.count_params()
            for layer in generator.get_layer("synthesis").layers if layer.count_params()}


def trainable(model):
    return sum(int(np.prod(v.shape)) for v in model.trainable_variables)


def test_the_tutorial_presets_networks_have_the_tutorials_weights_layer_by_layer():
    g, d, g_ema = stylegan.build_networks(PRESETS["tutorial"])
    assert d_layers(d) == TUTORIAL_D and d.count_params() == 139_329
    assert synthesis_layers(g) == TUTORIAL_G
    mapping = g.get_layer("map")
    assert len(mapping.f) == 2 and trainable(mapping) == 29_440  # Dense(128), Dense(128)
    # 251,329 trained weights; w_avg (128, never trained) is for truncation at inference only
    assert trainable(g) == 251_329 and g.count_params() == 251_329 + 128
    assert g_ema is None


def test_the_default_presets_networks_are_the_ones_measured():
    g, d, g_ema = stylegan.build_networks(PRESETS["stylegan"])
    assert d_layers(d) == DEFAULT_D
    assert not [layer for layer in d.layers if isinstance(layer, keras.layers.Dropout)]
    assert synthesis_layers(g) == DEFAULT_G
    assert len(g.get_layer("map").f) == 3 and trainable(g) == 220_785
    assert trainable(g_ema) == 0 and g_ema.count_params() == g.count_params()


def leaky_slopes(model):
    found = []
    for layer in model._flatten_layers():
        if isinstance(layer, keras.layers.LeakyReLU):
            found.append(layer.negative_slope)
    return set(found)


def test_the_tutorial_starts_from_its_initialisations_and_slopes():
    keras.utils.set_random_seed(0)
    g, d, _ = stylegan.build_networks(PRESETS["tutorial"])
    synthesis = g.get_layer("synthesis")
    noise_scales = np.concatenate([np.ravel(layer.noise_scale) for layer in
                                   synthesis._flatten_layers() if isinstance(layer,
                                                                             stylegan.AddNoise)])
    assert len(noise_scales) == 128 + 3 * 64 and 0.85 < noise_scales.std() < 1.15  # N(0, 1)
    mod_kernels = np.concatenate([np.ravel(layer.y.kernel) for layer in
                                  synthesis._flatten_layers() if isinstance(layer,
                                                                            stylegan.AdaMod)])
    assert 0.95 < mod_kernels.std() < 1.05  # N(0, 1), "this kernel is important"
    const = np.asarray(synthesis.get_layer("const").const)
    limit = np.sqrt(6 / (1 + 7 * 7 * 128))  # Keras' glorot_uniform of a Dense(6272) on ones
    assert np.abs(const).max() <= limit and np.abs(const).max() > 0.95 * limit
    assert leaky_slopes(synthesis) == leaky_slopes(d) == {0.3}  # Keras' default LeakyReLU

    g, d, _ = stylegan.build_networks(PRESETS["stylegan"])
    synthesis = g.get_layer("synthesis")
    assert not np.any(synthesis.get_layer("style_0").add_noise.noise_scale)  # zeros
    assert leaky_slopes(synthesis) == leaky_slopes(d) == {0.2}


def test_the_tutorials_discriminator_layer_by_layer():
    _, d, _ = stylegan.build_networks(PRESETS["tutorial"])
    kinds = [type(layer).__name__ for layer in d.layers]
    assert kinds == ["Conv2D", "BatchNormalization", "LeakyReLU", "Dropout"] * 2 + [
        "Flatten", "Dense"]
    convs = [layer for layer in d.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [(c.filters, c.kernel_size, c.strides, c.padding) for c in convs] == [
        (64, (4, 4), (2, 2), "same"), (128, (4, 4), (2, 2), "same")]
    assert {layer.rate for layer in d.layers if isinstance(layer, keras.layers.Dropout)} == {0.3}


def test_d_dropout_0_leaves_the_discriminators_dropout_out_and_keeps_its_weights():
    keras.utils.set_random_seed(0)
    images = tf.random.normal((4, 28, 28, 1))
    for rate in (0.3, 0.0):
        d = stylegan.build_networks(dataclasses.replace(PRESETS["tutorial"], d_dropout=rate))[1]
        dropouts = [layer for layer in d.layers if isinstance(layer, keras.layers.Dropout)]
        assert len(dropouts) == (2 if rate else 0)
        assert d.count_params() == 139_329  # Dropout has no weights
        # in training, only Dropout makes two passes over the same images differ
        same = np.allclose(d(images, training=True), d(images, training=True))
        assert same == (rate == 0.0)


def test_a_style_block_computes_the_tutorials_formula():
    """AdaMod -> Conv3x3 -> AdaNorm -> LeakyReLU(0.3) -> AddNoise, written out with the block's
    own weights (the 7x7 block: no upsampling)."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 7, 7, 5)).astype("float32")
    w = rng.normal(size=(2, 6)).astype("float32")
    noise = rng.normal(size=(2, 28, 28, 1)).astype("float32")
    block = stylegan.Style(4, upsampling=False, leaky_slope=0.3, noise_init_std=1.0,
                           mod_init="normal")
    out = np.asarray(block((x, w, noise)))
    y = (w @ np.asarray(block.ada_mod.y.kernel) + np.asarray(block.ada_mod.y.bias))
    y = y.reshape(2, 2, 1, 1, 5)
    h = (y[:, 0] + 1) * x + y[:, 1]
    h = np.asarray(tf.nn.conv2d(h, block.conv.kernel, 1, "SAME")) + np.asarray(block.conv.bias)
    h = (h - h.mean(axis=(1, 2), keepdims=True)) / np.sqrt(h.var(axis=(1, 2), keepdims=True)
                                                           + 1e-5)
    h = np.where(h > 0, h, 0.3 * h)
    h = h + np.asarray(block.add_noise.noise_scale) * noise[:, :7, :7]
    np.testing.assert_allclose(out, h, atol=1e-4)


def test_the_tutorial_presets_adam_data_epochs_and_grid():
    tutorial = PRESETS["tutorial"]
    model = tiny_gan()
    adam = model.g_optimizer
    assert np.isclose(float(adam.learning_rate), 0.001)  # Adam(0.001, beta_1=0.), and Keras'
    assert (adam.beta_1, adam.beta_2, adam.epsilon) == (0.0, 0.999, 1e-7)  # defaults for the rest
    assert (tutorial.batch_size, tutorial.epochs, tutorial.precision) == (32, 20, "float32")
    assert (tutorial.shuffle_buffer, 60_000 // tutorial.batch_size) == (1024, 1875)
    assert stylegan.crossover_at(model.g, tutorial.grid_coarse_size) == 1  # z1 on 7x7 only
    assert tutorial.grid_noise == "zeros"


def test_the_tutorial_step_updates_g_on_2n_images_then_d_on_n_real_and_the_first_n_of_them():
    model = tiny_gan()
    n = 4
    real = np.random.default_rng(0).uniform(-1, 1, (n, 28, 28, 1)).astype("float32")
    recorder = Recorder(model.d)
    object.__setattr__(model, "d", recorder)  # plain attribute: Keras does not track it
    logs = model.train_step(tf.constant(real))  # eager, so that every call of D is seen
    (g_images, g_mode, g_logits), (d_images, d_mode, d_logits) = recorder.calls
    assert g_images.shape[0] == 2 * n and g_mode is False  # D in inference mode
    assert d_mode is True and d_images.shape[0] == 2 * n  # one batch of both:
    np.testing.assert_array_equal(d_images[:n], real)  # the real batch, then
    np.testing.assert_array_equal(d_images[n:], g_images[:n])  # G's first n images, made in
    # G's step, before its update; labels 1 for the real digits and 0 for the fakes
    bce = keras.losses.BinaryCrossentropy(from_logits=True)
    labels = np.concatenate([np.ones((n, 1)), np.zeros((n, 1))])
    assert np.isclose(float(logs["d_loss"]), float(bce(labels, d_logits)), rtol=1e-5)
    assert np.isclose(float(logs["g_loss"]), float(bce(np.ones((2 * n, 1)), g_logits)),
                      rtol=1e-5)  # G's images labelled real
    assert model.g_optimizer is model.d_optimizer and model.g_optimizer.iterations.numpy() == 2


def test_the_tutorial_mixing_picks_z1_or_z2_per_slot_anew_at_every_compiled_step():
    model = tiny_gan()
    draw = tf.function(lambda: model.draw_inputs(16)[0])  # traced once, as fit traces the step
    patterns, firsts = set(), []
    for _ in range(24):
        z = np.asarray(draw())
        same_as_slot_0 = np.all(z == z[:, :1], axis=-1)  # [n, 3]: which slots hold slot 0's z
        assert np.all(same_as_slot_0 == same_as_slot_0[0])  # one choice for the whole batch
        assert not np.array_equal(z[0, 0], z[1, 0])  # each sample its own z codes
        patterns.add(tuple(same_as_slot_0[0]))
        firsts.append(z[0, 0])
    # z1 z1 z1 / z1 z1 z2 / z1 z2 z1 / z1 z2 z2 (and their swaps): every one comes up
    assert patterns == {(True, True, True), (True, True, False), (True, False, True),
                        (True, False, False)}
    assert len({tuple(first) for first in firsts}) == 24  # fresh z codes at every step
