"""The paper's levers that train.py's presets switch: D without BatchNorm, minibatch std, lazy
R1, G's moving average, the mapping net's learning rate, a styled to_image."""
import keras
import numpy as np
import pytest
import tensorflow as tf

import config as config_lib
import losses
import paper_layers
import stylegan
import checkpoints
from conftest import tiny_gan
from test_training import images_dataset


def test_a_styled_to_image_adds_a_last_slot_that_only_changes_the_image_through_to_image():
    model = tiny_gan(styled_to_image=True)
    assert model.n_style == 4 and stylegan.style_sizes(model.g) == [7, 14, 28, 28]
    assert stylegan.crossover_at(model.g, 28) == 3  # rows: every style block | columns: to_image
    rng = np.random.default_rng(0)
    z, other = (rng.normal(size=(2, 8)).astype("float32") for _ in range(2))
    noise = rng.normal(size=(2, 28, 28)).astype("float32")
    ada_mod = model.synthesis.get_layer("to_image_mod")
    ada_mod.y.kernel.assign(0.5 * np.ones_like(ada_mod.y.kernel))  # zeros at init: make it act
    same = model.g.predict([stylegan.repeat_z(z, 4), noise], verbose=0)
    swapped = stylegan.mix_styles(z, other, stylegan.slots_before(3, 4))  # to_image's from other
    last_slot_swapped = model.g.predict([swapped, noise], verbose=0)
    assert not np.allclose(same, last_slot_swapped, atol=1e-4)
    ada_mod.y.kernel.assign(np.zeros_like(ada_mod.y.kernel))  # now the last slot has no say
    ada_mod.y.bias.assign(np.zeros_like(ada_mod.y.bias))
    same = model.g.predict([stylegan.repeat_z(z, 4), noise], verbose=0)
    last_slot_swapped = model.g.predict([swapped, noise], verbose=0)
    assert np.allclose(same, last_slot_swapped, atol=1e-6)


def test_the_discriminator_options_drop_batchnorm_and_add_a_std_channel():
    tutorial = stylegan.build_discriminator()
    paper = stylegan.build_discriminator(batchnorm=False, minibatch_std=True)
    is_bn = lambda layer: isinstance(layer, keras.layers.BatchNormalization)
    assert sum(map(is_bn, tutorial.layers)) == 2
    assert not any(map(is_bn, paper.layers))
    assert paper.get_layer("minibatch_std").output.shape[-1] == 129  # 128 features + std


def test_minibatch_std_is_zero_for_identical_samples_and_shared_within_a_group():
    layer = paper_layers.MinibatchStd(group_size=4)
    same = np.ones((8, 3, 3, 2), "float32")
    assert np.allclose(layer(same)[..., -1], 0.0, atol=1e-3)
    x = np.random.default_rng(0).normal(size=(8, 3, 3, 2)).astype("float32")
    std = np.asarray(layer(x)[..., -1])
    assert np.all(std > 0.1)
    # groups of 4 take samples i, i + 2, i + 4, i + 6: samples 0 and 2 share their number
    assert np.allclose(std[0], std[2]) and not np.allclose(std[0], std[1])
    expected = np.sqrt(x[[0, 2, 4, 6]].var(axis=0) + 1e-8).mean()
    assert np.isclose(std[0, 0, 0], expected, rtol=1e-4)


def test_lazy_r1_is_gamma_half_times_every_times_squared_gradient_only_when_due():
    model = tiny_gan(r1_gamma=2.0, d_batchnorm=False, shared_optimizer=False)
    every = losses.R1_EVERY
    for layer in model.d.layers:  # no Dropout, so that two passes of D give the same gradient
        if isinstance(layer, keras.layers.Dropout):
            layer.rate = 0.0
    real = tf.constant(np.random.default_rng(0).uniform(-1, 1, (4, 28, 28, 1)), "float32")
    with tf.GradientTape() as tape:
        tape.watch(real)
        score_sum = tf.reduce_sum(model.d(real, training=True))
    squared = np.sum(np.square(tape.gradient(score_sum, real)), axis=(1, 2, 3))
    assert np.all(squared > 0)
    np.testing.assert_allclose(losses.squared_input_gradients(model.d, real), squared, rtol=1e-5)
    due = float(losses.lazy_r1(model, real))  # iterations 0: due
    assert np.isclose(due, 0.5 * 2.0 * every * squared.mean(), rtol=1e-5)
    for iterations in (1, every - 1):
        model.d_optimizer.iterations.assign(iterations)
        assert float(losses.lazy_r1(model, real)) == 0.0
    model.d_optimizer.iterations.assign(every)
    assert np.isclose(float(losses.lazy_r1(model, real)), due, rtol=1e-5)


@pytest.mark.slow
def test_the_moving_average_follows_g_by_the_formula_and_is_what_we_sample():
    model = tiny_gan(ema_beta=0.5)
    for ema_var, var in zip(model.g_ema.weights, model.g.weights):  # starts as a copy
        np.testing.assert_array_equal(ema_var, var)
    before = [np.asarray(v).copy() for v in model.g_ema.weights]
    model.fit(images_dataset(32), epochs=1, verbose=0, shuffle=False)  # one step
    after = [np.asarray(v) for v in model.g_ema.weights]
    for b, a, var in zip(before, after, model.g.weights):
        if var.trainable:
            np.testing.assert_allclose(a, 0.5 * b + 0.5 * np.asarray(var), atol=1e-6)
    assert model.sampling_generator is model.g_ema
    assert not model.g_ema.trainable_variables  # never trained, only averaged
    changed = [not np.allclose(b, a) for b, a in zip(before, after)]
    assert any(changed)


@pytest.mark.slow
def test_a_checkpoint_keeps_the_moving_average_and_load_generator_picks_it(tmp_path):
    model = tiny_gan(ema_beta=0.9)
    model.fit(images_dataset(64), epochs=1, verbose=0, shuffle=False)
    meta = checkpoints.save_checkpoint(model, tmp_path, 1, [{"epoch": 1}])
    picked = checkpoints.load_generator(checkpoint=meta)
    raw = checkpoints.load_generator(checkpoint=meta, raw=True)
    for a, b in zip(model.g_ema.weights, picked.weights, strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(model.g.weights, raw.weights, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not all(np.array_equal(a, b) for a, b in zip(raw.weights, picked.weights))


@pytest.mark.slow
def test_the_mapping_net_learns_at_the_multiple_of_gs_rate_with_gs_one_optimizer():
    slow, plain = (tiny_gan(lr=0.002, mapping_lr_mult=mult) for mult in (0.01, 1))
    for model in (slow, plain):
        model.before = [np.asarray(v).copy() for v in model.mapping.trainable_variables]
        model.fit(images_dataset(64), epochs=1, verbose=0, shuffle=False)  # two G steps
    # the layer's effective weights (stored weights times lr_mult) moved about lr_mult * lr:
    # Adam moves a stored weight by about lr per step whatever its scale
    dense = slow.mapping.f[0]
    moved = np.abs(np.asarray(dense.kernel) - slow.before[0]).max() * dense.lr_mult
    assert 0 < moved < 0.002 * 0.01 * 3
    plain_moved = np.abs(np.asarray(plain.mapping.f[0].kernel) - plain.before[0]).max()
    assert 0.002 * 0.5 < plain_moved < 0.002 * 3
    # one optimizer for all of G (the tutorial's is D's too: two updates in each of 2 steps)
    assert slow.g_optimizer.iterations.numpy() == 4


def test_the_mapping_nets_stored_weights_are_divided_by_its_multiplier():
    x = np.random.default_rng(0).normal(size=(16, 32)).astype("float32")
    plain, slow = paper_layers.ScaledDense(64), paper_layers.ScaledDense(64, lr_mult=0.01)
    plain.build(x.shape), slow.build(x.shape)
    assert np.isclose(np.std(slow.kernel) * 0.01, np.std(plain.kernel), rtol=0.1)  # glorot
    slow.kernel.assign(np.asarray(plain.kernel) / 0.01)
    slow.bias.assign(np.full(64, 0.5 / 0.01, "float32"))
    plain.bias.assign(np.full(64, 0.5, "float32"))
    np.testing.assert_allclose(slow(x), plain(x), rtol=1e-4, atol=1e-5)  # the same function


@pytest.mark.slow
@pytest.mark.parametrize("recipe", [
    dict(d_batchnorm=False, minibatch_std=True, r1_gamma=1.0, ema_beta=0.99, mapping_lr_mult=0.1,
         styled_to_image=True, hand_weight=0.1, init="small", shared_optimizer=False,
         step="same_fakes", mixing="crossover"),
    dict(d_batchnorm=False, r1_gamma=1.0, hand_weight=0.1, hand_coarse_size=14,
         styled_to_image=True, shared_optimizer=False, step="g_first")])
def test_every_lever_together_trains_compiled_with_finite_losses(recipe):
    keras.utils.set_random_seed(0)
    model = tiny_gan(**recipe)
    history = model.fit(images_dataset(128), epochs=1, verbose=0, shuffle=False)
    assert np.all(np.isfinite(history.history["d_loss"] + history.history["g_loss"]))
    z = np.random.default_rng(0).normal(size=(2, model.n_style, 8)).astype("float32")
    assert np.all(np.abs(stylegan.generate(model.sampling_generator, z, seed=0)) <= 1)


def test_the_settings_a_recipe_does_not_read_are_named():
    tutorial, default = config_lib.PRESETS["tutorial"], config_lib.PRESETS["stylegan"]
    assert set(config_lib.unused(tutorial)) == {"mixing_prob", "hand_coarse_size"}
    assert set(config_lib.unused(default)) == set()
    folder = config_lib.from_dict({**config_lib.to_dict(default), **config_lib.MNIST_ONLY,
                                   "dataset": "faces", "image_size": 64})
    assert set(config_lib.unused(folder)) == {"d_filters", "d_kernel", "d_dropout",
                                              "d_batchnorm", "hand_coarse_size"}
