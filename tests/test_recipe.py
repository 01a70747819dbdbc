"""The paper's levers that train.py's presets switch: two convs per resolution, D without
BatchNorm, minibatch std, lazy R1, G's moving average, the mapping net's learning rate, a styled
to_image, equalised learning rates."""
import keras
import numpy as np
import pytest
import tensorflow as tf

import config as config_lib
import stylegan
import utils
import visual
from conftest import tiny_gan
from test_training import images_dataset


def test_two_convs_per_block_give_six_style_layers_two_at_each_size():
    arch = stylegan.architecture(28, filters=8, convs_per_block=2)
    assert arch["n_style"] == 6
    assert arch["upsample"] == [False, False, True, False, True, False]  # 7, 7, 14, 14, 28, 28
    g = stylegan.build_generator(8, arch["n_style"], 16, arch["filters"], 8,
                                 upsample=arch["upsample"])
    synthesis = g.get_layer("synthesis")
    sizes = [synthesis.get_layer(f"style_{i}").output.shape[1] for i in range(6)]
    assert sizes == [7, 7, 14, 14, 28, 28]
    z = np.random.default_rng(0).normal(size=(2, 6, 8)).astype("float32")
    assert stylegan.generate(g, z, seed=0).shape == (2, 28, 28, 1)


def test_a_styled_to_image_adds_a_last_slot_that_only_changes_the_image_through_to_image():
    model = tiny_gan(styled_to_image=True)
    assert model.n_style == 4 and visual.style_sizes(model.g) == [7, 14, 28, 28]
    assert visual.grid_crossover(model.g, 28) == 3  # rows: every style block | columns: to_image
    rng = np.random.default_rng(0)
    z, other = (rng.normal(size=(2, 8)).astype("float32") for _ in range(2))
    noise = rng.normal(size=(2, 28, 28)).astype("float32")
    ada_mod = model.synthesis.get_layer("to_image_mod")
    ada_mod.y.kernel.assign(0.5 * np.ones_like(ada_mod.y.kernel))  # zeros at init: make it act
    same = model.g.predict([stylegan.repeat_z(z, 4), noise], verbose=0)
    last_slot_swapped = model.g.predict([stylegan.mix_z(z, other, 3, 4), noise], verbose=0)
    assert not np.allclose(same, last_slot_swapped, atol=1e-4)
    ada_mod.y.kernel.assign(np.zeros_like(ada_mod.y.kernel))  # now the last slot has no say
    ada_mod.y.bias.assign(np.zeros_like(ada_mod.y.bias))
    same = model.g.predict([stylegan.repeat_z(z, 4), noise], verbose=0)
    last_slot_swapped = model.g.predict([stylegan.mix_z(z, other, 3, 4), noise], verbose=0)
    assert np.allclose(same, last_slot_swapped, atol=1e-6)


def test_equalized_layers_start_at_unit_scale_and_multiply_by_hes_constant_at_every_call():
    x = np.random.default_rng(0).normal(size=(4, 6, 6, 3)).astype("float32")
    equal = stylegan.EqualizedConv2D(5, 3, padding="same")
    plain = keras.layers.Conv2D(5, 3, padding="same")
    equal.build(x.shape), plain.build(x.shape)
    assert 0.8 < np.std(equal.kernel) < 1.2  # N(0, 1): the scale lives in the forward pass
    scale = np.sqrt(2.0 / (3 * 3 * 3))
    plain.kernel.assign(np.asarray(equal.kernel) * scale)
    assert np.allclose(equal(x), plain(x), atol=1e-5)
    dense = stylegan.ScaledDense(4, equalized=True, gain=1.0)
    flat = x.reshape(4, -1)
    out = dense(flat)  # builds it
    expected = flat @ np.asarray(dense.kernel) / np.sqrt(flat.shape[1]) + np.asarray(dense.bias)
    assert np.allclose(out, expected, atol=1e-4)


def test_an_equalized_generator_saves_and_reloads_with_the_same_output(tmp_path):
    model = tiny_gan(equalized_lr=True)
    assert isinstance(model.synthesis.get_layer("to_image"), stylegan.EqualizedConv2D)
    z = np.random.default_rng(0).normal(size=(2, 3, 8)).astype("float32")
    noise = np.zeros((2, 28, 28), "float32")
    model.g.save(tmp_path / "g.keras")
    again = keras.saving.load_model(tmp_path / "g.keras")
    assert np.allclose(stylegan.generate(model.g, z, noise), stylegan.generate(again, z, noise))


def test_the_discriminator_options_drop_batchnorm_and_add_a_std_channel():
    tutorial = stylegan.build_discriminator()
    paper = stylegan.build_discriminator(batchnorm=False, minibatch_std=True)
    is_bn = lambda layer: isinstance(layer, keras.layers.BatchNormalization)
    assert sum(map(is_bn, tutorial.layers)) == 2
    assert not any(map(is_bn, paper.layers))
    assert paper.get_layer("minibatch_std").output.shape[-1] == 129  # 128 features + std


def test_minibatch_std_is_zero_for_identical_samples_and_shared_within_a_group():
    layer = stylegan.MinibatchStd(group_size=4)
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
    model = tiny_gan(r1_gamma=2.0, r1_every=4, d_batchnorm=False, shared_optimizer=False)
    for layer in model.d.layers:  # no Dropout, so that two passes of D give the same gradient
        if isinstance(layer, keras.layers.Dropout):
            layer.rate = 0.0
    real = tf.constant(np.random.default_rng(0).uniform(-1, 1, (4, 28, 28, 1)), "float32")
    with tf.GradientTape() as tape:
        tape.watch(real)
        score_sum = tf.reduce_sum(model.d(real, training=True))
    squared = np.sum(np.square(tape.gradient(score_sum, real)), axis=(1, 2, 3))
    assert np.all(squared > 0)
    np.testing.assert_allclose(stylegan.squared_input_gradients(model.d, real), squared, rtol=1e-5)
    due = float(model.lazy_r1(real))  # iterations 0: due
    assert np.isclose(due, 0.5 * 2.0 * 4 * squared.mean(), rtol=1e-5)
    model.d_optimizer.iterations.assign(1)
    assert float(model.lazy_r1(real)) == 0.0


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


def test_a_checkpoint_keeps_the_moving_average_and_load_generator_picks_it(tmp_path):
    model = tiny_gan(ema_beta=0.9)
    model.fit(images_dataset(64), epochs=1, verbose=0, shuffle=False)
    meta = utils.save_checkpoint(model, tmp_path, 1, [{"epoch": 1}])
    picked = utils.load_generator(checkpoint=meta)
    raw = utils.load_generator(checkpoint=meta, raw=True)
    for a, b in zip(model.g_ema.weights, picked.weights, strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(model.g.weights, raw.weights, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not all(np.array_equal(a, b) for a, b in zip(raw.weights, picked.weights))


def test_the_mapping_net_learns_at_the_multiple_of_gs_rate_with_gs_one_optimizer():
    slow, plain = (tiny_gan(g_lr=0.002, d_lr=0.002, mapping_lr_mult=mult) for mult in (0.01, 1))
    for model in (slow, plain):
        model.before = [np.asarray(v).copy() for v in model.mapping.trainable_variables]
        model.fit(images_dataset(64), epochs=1, verbose=0, shuffle=False)  # two G steps
    # the layer's effective weights (stored weights times lr_mult) moved about lr_mult * lr:
    # Adam moves a stored weight by about lr per step whatever its scale
    dense = slow.mapping.f[0]
    moved = np.abs(np.asarray(dense.kernel) - slow.before[0]).max() * dense.kernel_scale
    assert 0 < moved < 0.002 * 0.01 * 3
    plain_moved = np.abs(np.asarray(plain.mapping.f[0].kernel) - plain.before[0]).max()
    assert 0.002 * 0.5 < plain_moved < 0.002 * 3
    # one optimizer for all of G (the tutorial's is D's too: two updates in each of 2 steps)
    assert slow.g_optimizer.iterations.numpy() == 4


def test_the_mapping_nets_stored_weights_are_divided_by_its_multiplier():
    x = np.random.default_rng(0).normal(size=(16, 32)).astype("float32")
    plain, slow = stylegan.ScaledDense(64), stylegan.ScaledDense(64, lr_mult=0.01)
    plain.build(x.shape), slow.build(x.shape)
    assert np.isclose(np.std(slow.kernel) * 0.01, np.std(plain.kernel), rtol=0.1)  # glorot
    slow.kernel.assign(np.asarray(plain.kernel) / 0.01)
    slow.bias.assign(np.full(64, 0.5 / 0.01, "float32"))
    plain.bias.assign(np.full(64, 0.5, "float32"))
    np.testing.assert_allclose(slow(x), plain(x), rtol=1e-4, atol=1e-5)  # the same function


@pytest.mark.parametrize("recipe", [
    dict(convs_per_block=2, d_batchnorm=False, minibatch_std=True, r1_gamma=1.0, r1_every=2,
         ema_beta=0.99, mapping_lr_mult=0.1, styled_to_image=True, equalized_lr=True,
         shared_optimizer=False, step="d_first", mixing="crossover")])
def test_every_lever_together_trains_compiled_with_finite_losses(recipe):
    keras.utils.set_random_seed(0)
    model = tiny_gan(**recipe)
    history = model.fit(images_dataset(128), epochs=1, verbose=0, shuffle=False)
    assert np.all(np.isfinite(history.history["d_loss"] + history.history["g_loss"]))
    z = np.random.default_rng(0).normal(size=(2, model.n_style, 8)).astype("float32")
    assert np.all(np.abs(stylegan.generate(model.sampling_generator, z, seed=0)) <= 1)


def test_the_lazy_penalties_are_those_on_each_counted_by_its_own_networks_updates():
    default = config_lib.PRESETS["stylegan"]
    assert config_lib.lazy_penalties(default) == {"r1_gamma": ("d", 16), "hand_weight": ("g", 4)}
    fine = config_lib.from_dict({**config_lib.to_dict(default), "hand_weight": 0.0,
                                 "r1_gamma": 0.0, "fine_style_weight": 1.0,
                                 "fine_style_every": 3})
    assert config_lib.lazy_penalties(fine) == {"fine_style_weight": ("g", 3)}
    assert config_lib.lazy_penalties(config_lib.PRESETS["tutorial"]) == {}
