"""The compiled train_step: fresh random draws each call, both networks learn, exact resume."""
import json
from unittest import mock

import keras
import numpy as np
import pytest
import tensorflow as tf

import config as config_lib
import stylegan
import utils
from conftest import Recorder, tiny_gan


def images_dataset(n=128, batch_size=32):
    x = np.random.default_rng(0).uniform(-1, 1, (n, 28, 28, 1)).astype("float32")
    return tf.data.Dataset.from_tensor_slices(x).batch(batch_size, drop_remainder=True)


def test_every_call_of_the_compiled_draw_gives_new_crossovers(tiny_model):
    draw = tf.function(tiny_model.draw_crossover)  # traced once, as fit traces train_step
    first, second = np.asarray(draw(64)), np.asarray(draw(64))
    assert not np.array_equal(first, second)
    assert set(first) | set(second) <= {1, 2, 3}  # k in [1, n_style), or n_style for no mixing
    assert {1, 2} <= set(first) | set(second)


def test_mixing_prob_decides_how_many_samples_are_mixed():
    never, always = (tiny_gan(mixing="crossover", mixing_prob=p, seed=1) for p in (0.0, 1.0))
    assert np.all(np.asarray(never.draw_crossover(256)) == 3)
    assert np.all(np.asarray(always.draw_crossover(256)) < 3)
    z, noise = always.draw_inputs(256)
    assert z.shape == (256, 3, 8) and noise.shape == (256, 28, 28)
    assert np.all(np.asarray(z[:, 0] != z[:, 2]))  # mixed: first and last layer differ


def test_mixing_coarse_size_mixes_every_sample_at_the_grid_s_split():
    model = tiny_gan(mixing="crossover", mixing_prob=1.0, mixing_coarse_size=14)
    assert np.all(np.asarray(model.draw_crossover(64)) == 2)  # z1 on 7x7 and 14x14, z2 on 28x28
    z = np.asarray(model.draw_inputs(64)[0])
    assert np.all(z[:, 0] == z[:, 1]) and np.all(z[:, 1] != z[:, 2])
    seldom = tiny_gan(mixing="crossover", mixing_prob=0.25, mixing_coarse_size=7)
    k = np.asarray(seldom.draw_crossover(256))
    assert set(k) == {1, 3} and 0.1 < np.mean(k == 1) < 0.4  # at the split, or not mixed


@pytest.mark.parametrize("settings", [
    {}, dict(step="d_first", shared_optimizer=False),
    dict(step="same_fakes", shared_optimizer=False, d_steps=2)])
def test_a_few_compiled_steps_change_both_networks_and_keep_losses_finite(settings):
    model = tiny_gan(**settings)
    g_before = [w.copy() for w in model.g.get_weights()]
    d_before = [w.copy() for w in model.d.get_weights()]
    history = model.fit(images_dataset(), epochs=2, verbose=0, shuffle=False)  # 8 steps
    for key in ("d_loss", "g_loss"):
        assert np.all(np.isfinite(history.history[key]))
    changed = lambda before, after: any(not np.allclose(b, a) for b, a in zip(before, after))
    assert changed(g_before, model.g.get_weights())
    assert changed(d_before, model.d.get_weights())
    assert np.abs(np.asarray(model.mapping.w_avg)).sum() > 0  # w_avg tracked in training
    if model.config.shared_optimizer:  # the tutorial's one Adam: both updates count
        assert model.g_optimizer is model.d_optimizer
        assert model.g_optimizer.iterations.numpy() == 16
    else:
        assert model.g_optimizer.iterations.numpy() == 8  # one G update per step
        assert model.d_optimizer.iterations.numpy() == 8 * model.config.d_steps  # d_steps D's


def test_the_same_fakes_step_makes_g_s_images_once_for_d_s_update_then_g_s_against_the_new_d():
    model = tiny_gan(step="same_fakes", shared_optimizer=False, mixing="crossover")
    n = 4
    real = np.random.default_rng(0).uniform(-1, 1, (n, 28, 28, 1)).astype("float32")
    d_before = [np.array(v) for v in model.d.trainable_variables]
    recorder = Recorder(model.d)
    object.__setattr__(model, "d", recorder)  # plain attribute: Keras does not track it
    logs = model.train_step(tf.constant(real))  # eager, so that every call of D is seen
    (d_images, d_mode, d_logits), (g_images, g_mode, g_logits) = recorder.calls
    np.testing.assert_array_equal(d_images[:n], real)  # D's update: the real batch and
    np.testing.assert_array_equal(d_images[n:], g_images)  # the very images G is scored on
    assert d_mode is True and g_mode is False and g_images.shape[0] == n
    assert any(not np.array_equal(a, b) for a, b in zip(d_before, recorder.d.trainable_variables))
    # G's images were scored by D after its update (G's update leaves D as it is)
    np.testing.assert_allclose(g_logits, recorder.d(g_images, training=False), rtol=1e-5)
    bce = keras.losses.BinaryCrossentropy(from_logits=True)
    labels = np.concatenate([np.ones((n, 1)), np.zeros((n, 1))])
    assert np.isclose(float(logs["d_loss"]), float(bce(labels, d_logits)), rtol=1e-5)
    assert np.isclose(float(logs["g_loss"]), float(bce(np.ones((n, 1)), g_logits)), rtol=1e-5)
    assert model.d_optimizer.iterations.numpy() == model.g_optimizer.iterations.numpy() == 1


def test_reported_losses_are_epoch_means_not_the_last_batch(tiny_model):
    history = tiny_model.fit(images_dataset(), epochs=1, verbose=0, shuffle=False)
    tracker = tiny_model.d_loss_tracker
    assert tracker.count.numpy() == 4  # averaged over the epoch's 4 steps
    assert np.isclose(history.history["d_loss"][0], tracker.result().numpy())


def test_a_checkpoint_restores_weights_optimizer_state_and_random_state(tiny_model, tmp_path):
    tiny_model.fit(images_dataset(), epochs=1, verbose=0, shuffle=False)
    path = utils.save_checkpoint(tiny_model, tmp_path, 1, [{"epoch": 1}])
    meta, config = utils.read_checkpoint(path)
    assert meta["epoch"] == 1 and config == tiny_model.config
    restored = tiny_gan(seed=99)
    utils.load_checkpoint(restored, path, meta)
    for saved, loaded in [(tiny_model.g.weights, restored.g.weights),
                          (tiny_model.d.weights, restored.d.weights),
                          (tiny_model.g_optimizer.variables, restored.g_optimizer.variables),
                          (tiny_model.d_optimizer.variables, restored.d_optimizer.variables)]:
        for a, b in zip(saved, loaded, strict=True):
            np.testing.assert_array_equal(a, b)
    assert restored.g_optimizer.iterations.numpy() == 8  # shared: G's and D's update, 4 steps
    # the same random state: the next training draws are the same as the original run's
    np.testing.assert_array_equal(restored.draw_crossover(32), tiny_model.draw_crossover(32))


def as_written_by_format(model, path, version, interrupted=False, rename=None):
    """A checkpoint rewritten as format 2 or 3 code wrote it: an `interrupted_at` field for an
    epoch cut short (it had no mid-epoch step), the random state of the training draws only."""
    meta = json.loads(path.read_text())
    del meta["step"], meta["running_losses"]
    meta.update(format=version, interrupted_at=[meta["epoch"] + 1, 3] if interrupted else None,
                rng_state=np.asarray(model.seed_generator.state).tolist())
    meta["sha256"] = utils.digest(meta, utils.weights_of(path))
    path.write_text(json.dumps(meta))
    if rename:
        utils.weights_of(path).rename(utils.weights_of(rename))
        path = path.rename(rename)
    return path, meta


def test_a_format_2_checkpoint_reads_back_with_the_values_the_code_had_then(tmp_path):
    model = tiny_gan(**config_lib.BEFORE_FIELD_EXISTED)  # as format-2 code built it
    path = utils.save_checkpoint(model, tmp_path, 1, [{"epoch": 1}])
    meta = json.loads(path.read_text())
    for name in config_lib.BEFORE_FIELD_EXISTED:  # as it was written then, before these fields
        del meta["config"][name]
    path.write_text(json.dumps(meta))
    path, _ = as_written_by_format(model, path, 2)
    meta, config = utils.read_checkpoint(path)
    assert config == model.config
    # what the code did before these fields existed
    assert config.step == "d_first" and config.mixing == "crossover" and config.leaky_slope == 0.2
    assert not config.shared_optimizer and (config.d_filters, config.d_kernel) == (32, 5)
    restored = stylegan.make_gan(config)
    utils.load_checkpoint(restored, path, meta)
    for a, b in zip(model.g.weights, restored.g.weights, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(restored.seed_generator.state, model.seed_generator.state)


def saved_without_fields(model, folder, *names):
    """A checkpoint of `model` as the code wrote it before the config fields `names` existed
    (its digest over the json as then)."""
    path = utils.save_checkpoint(model, folder, 1, [{"epoch": 1}])
    meta = json.loads(path.read_text())
    for name in names:
        del meta["config"][name]
    meta["sha256"] = utils.digest(meta, utils.weights_of(path))
    path.write_text(json.dumps(meta))
    return path


def test_a_checkpoint_from_before_the_hand_penalty_reads_it_as_off_not_as_todays_default(
        tmp_path):
    model = tiny_gan(shared_optimizer=False)  # no penalty: as every run before the field
    path = saved_without_fields(model, tmp_path, "hand_weight", "hand_every")
    _, config = utils.read_checkpoint(path)
    assert config.hand_weight == 0.0 < config_lib.PRESETS["stylegan"].hand_weight
    assert config == model.config


def test_a_checkpoint_from_before_d_dropout_reads_the_tutorials_dropout_and_loads(tmp_path):
    model = tiny_gan()  # the tutorial's D, with its two Dropout(0.3) layers
    path = saved_without_fields(model, tmp_path, "d_dropout")
    meta, config = utils.read_checkpoint(path)
    # Config's default, the tutorial's, not today's preset's
    assert config.d_dropout == 0.3 != config_lib.PRESETS["stylegan"].d_dropout
    assert config == model.config
    restored = stylegan.make_gan(config)
    utils.load_checkpoint(restored, path, meta)
    for a, b in zip(model.d.weights + utils.seed_states(model),
                    restored.d.weights + utils.seed_states(restored), strict=True):
        np.testing.assert_array_equal(a, b)  # the Dropout layers' random states too


def test_evaluate_pys_json_beside_a_checkpoint_is_not_listed_as_one(tiny_model, tmp_path):
    path = utils.save_checkpoint(tiny_model, tmp_path, 1, [{"epoch": 1}])
    (tmp_path / "ckpt-0001.eval.json").write_text("{}")  # as evaluate.py writes it
    assert utils.list_checkpoints(tmp_path) == [path]
    assert utils.list_checkpoints(tmp_path, with_weights=False) == [path]  # --resume's check


def test_a_format_3_interrupted_checkpoint_resumes_its_epoch_from_the_start(tiny_model,
                                                                           tmp_path):
    path = utils.save_checkpoint(tiny_model, tmp_path, 1, [{"epoch": 1}])
    path, _ = as_written_by_format(tiny_model, path, 3, interrupted=True,
                                   rename=tmp_path / "ckpt-0001-interrupted.json")
    meta, _ = utils.read_checkpoint(path)
    assert (meta["epoch"], meta["step"], meta["interrupted"]) == (1, 0, True)
    assert utils.list_checkpoints(tmp_path) == [path]
    utils.save_checkpoint(tiny_model, tmp_path, 1, [{"epoch": 1}])
    names = [p.name for p in utils.list_checkpoints(tmp_path)]
    assert names == ["ckpt-0001.json", "ckpt-0001-interrupted.json"]  # written after it
    saved = utils.save_checkpoint(tiny_model, tmp_path, 1, [{"epoch": 1}], step=2)
    utils.prune_checkpoints(tmp_path, 3, saved)
    assert [p.name for p in utils.list_checkpoints(tmp_path)] == ["ckpt-0001.json",
                                                                  "ckpt-0001-step000002.json"]


@pytest.mark.parametrize("policy, compute", [("mixed_bfloat16", "bfloat16"),
                                             ("mixed_float16", "float16")])
def test_mixed_precision_trains_with_finite_losses_and_float32_images(policy, compute):
    keras.mixed_precision.set_dtype_policy(policy)
    try:
        model = tiny_gan(mapping_lr_mult=0.01)  # one G optimizer: float16 loss scaling works
        history = model.fit(images_dataset(64), epochs=1, verbose=0, shuffle=False)
        z = np.random.default_rng(0).normal(size=(2, 3, 8)).astype("float32")
        images = stylegan.generate(model.sampling_generator, z, seed=0)
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    synthesis = model.g.get_layer("synthesis")
    assert synthesis.get_layer("style_1").compute_dtype == compute
    # to_image's conv computes in the low precision too; its tanh, the image, in float32
    assert synthesis.get_layer("to_image").compute_dtype == compute
    assert synthesis.output.dtype == "float32"
    loss_scaled = isinstance(model.g_optimizer, keras.optimizers.LossScaleOptimizer)
    assert loss_scaled == (policy == "mixed_float16")  # float16 gradients need loss scaling
    assert np.all(np.isfinite(history.history["g_loss"] + history.history["d_loss"]))
    assert images.dtype == np.float32 and np.all(np.abs(images) <= 1)


def test_the_fine_style_penalty_is_the_shortfall_of_a_column_s_change_against_a_row_s():
    model = tiny_gan(fine_style_weight=2.0, fine_style_ratio=5.0, fine_style_every=3,
                     shared_optimizer=False)
    assert model.grid_split == 1  # the tutorial's grid: rows give the 7x7 slot
    z, noise = model.draw_inputs(8)
    w = model.mapping(z)
    images = model.synthesis([w, noise])
    own, w_, noise_ = np.asarray(images[:4]), np.asarray(w), np.asarray(noise[:4])
    image = lambda w_mix: np.asarray(model.synthesis([w_mix, noise_]))
    column = image(np.concatenate([w_[:4, :1], w_[4:, 1:]], axis=1))  # b's fine slots into a
    row = image(np.concatenate([w_[4:, :1], w_[:4, 1:]], axis=1))  # b's coarse slot into a
    change = lambda mixed: np.abs(mixed - own).mean(axis=(1, 2, 3))
    expected = 2.0 * 3 * np.maximum(5.0 - change(column) / (change(row) + 1e-3), 0).mean()
    assert expected > 0
    np.testing.assert_allclose(model.lazy_fine_style(w, images, noise), expected, rtol=1e-4)
    model.g_optimizer.iterations.assign(1)  # lazy: not on this step
    assert float(model.lazy_fine_style(w, images, noise)) == 0.0


def test_the_soft_stroke_width_is_evaluate_s_width_on_ink_and_paper_images():
    import evaluate
    bar = -np.ones((1, 28, 28), "float32")
    bar[0, 4:24, 10:13] = 1.0  # 3 x 20: 2 * 60 / 46
    digits = np.where(np.random.default_rng(0).random((6, 28, 28)) > 0.7, 1.0, -1.0)
    for images in (bar, digits.astype("float32")):
        soft = np.asarray(stylegan.soft_stroke_width(images[..., None], sharpness=100.0))
        np.testing.assert_allclose(soft, evaluate.hand(images)[0], rtol=1e-3)
    np.testing.assert_allclose(evaluate.hand(bar)[0], 120 / 46)


def test_the_hand_penalty_is_the_squared_miss_of_the_mix_s_width_against_the_fine_source_s():
    model = tiny_gan(hand_weight=2.0, hand_every=3, shared_optimizer=False)
    assert model.grid_split == 1  # the tutorial's grid: rows give the 7x7 slot
    z, noise = model.draw_inputs(8)
    w = model.mapping(z)
    images = model.synthesis([w, noise])
    w_, noise_ = np.asarray(w), np.asarray(noise[:4])
    mixed = model.synthesis([np.concatenate([w_[:4, :1], w_[4:, 1:]], axis=1), noise_])
    width = lambda x: np.asarray(stylegan.soft_stroke_width(x))
    expected = 2.0 * 3 * np.mean((width(mixed) - width(images[4:])) ** 2)
    assert expected > 0
    np.testing.assert_allclose(model.lazy_hand(w, images, noise), expected, rtol=1e-4)
    model.g_optimizer.iterations.assign(1)  # lazy: not on this step
    assert float(model.lazy_hand(w, images, noise)) == 0.0


def test_the_hand_penalty_reuses_g_s_blocks_where_a_column_gives_to_image_s_style_alone():
    import tensorflow as tf
    model = tiny_gan(hand_weight=2.0, hand_every=1, styled_to_image=True, grid_coarse_size=28,
                     shared_optimizer=False)
    assert model.grid_split == model.n_style - 1  # the default's grid: columns give to_image's
    tutorial_grid = tiny_gan(hand_weight=2.0, shared_optimizer=False)  # columns give 2 blocks
    assert tutorial_grid.synthesis_and_features is None  # so its mix runs them itself
    z, noise = model.draw_inputs(8)
    results = []
    for shortcut in (False, True):  # the mix made whole, and from G's own last feature map
        with tf.GradientTape() as tape:
            w = model.mapping(z)
            images, features = model.synthesis_and_features([w, noise])
            penalty = model.lazy_hand(w, images, noise, features if shortcut else None)
        grads = tape.gradient(penalty, model.g.trainable_variables)
        results.append((float(penalty), [np.asarray(g) for g in grads if g is not None]))
    (full, full_grads), (short, short_grads) = results
    assert full > 0
    np.testing.assert_allclose(short, full, rtol=1e-5)
    assert len(short_grads) == len(full_grads) > 10  # the blocks' weights too, not to_image's alone
    for a, b in zip(short_grads, full_grads):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("grid_coarse_size, synthesis_calls", [(28, 0), (7, 2)])
def test_g_s_step_runs_the_synthesis_twice_for_the_hand_penalty_only_where_columns_give_blocks(
        grid_coarse_size, synthesis_calls):
    model = tiny_gan(hand_weight=1.0, hand_every=1, styled_to_image=True, shared_optimizer=False,
                     grid_coarse_size=grid_coarse_size, step="same_fakes", mixing="crossover")
    real = next(iter(images_dataset(n=8, batch_size=8)))
    # 28: columns give to_image's style alone, and G's pass gives the mix its feature map;
    # 7: columns give two blocks too, so the mix runs the synthesis itself, after G's own pass
    with mock.patch.object(model.synthesis, "call", wraps=model.synthesis.call) as call:
        model.train_step(real)
    assert call.call_count == synthesis_calls
    assert (model.synthesis_and_features is None) == (synthesis_calls > 0)


@pytest.mark.parametrize("penalty, network", [
    (dict(fine_style_weight=100.0, fine_style_ratio=10.0), {}),
    (dict(hand_weight=100.0), {}),
    (dict(hand_weight=100.0), dict(styled_to_image=True, grid_coarse_size=28)),  # G's blocks reused
])
def test_a_pair_penalty_reaches_g_s_update_and_not_d_s(penalty, network):
    settings = dict(fine_style_every=1, hand_every=1, shared_optimizer=False,
                    step="same_fakes", mixing="crossover", **network)
    plain, pushed = tiny_gan(**settings), tiny_gan(**penalty, **settings)
    for model in (plain, pushed):  # one compiled step each, the same draws
        history = model.fit(images_dataset(n=32), epochs=1, verbose=0, shuffle=False)
        assert np.all(np.isfinite(history.history["g_loss"]))
    same = lambda a, b: all(np.allclose(x, y, atol=1e-6) for x, y in
                            zip(a.get_weights(), b.get_weights()))
    assert same(plain.d, pushed.d) and not same(plain.g, pushed.g)
