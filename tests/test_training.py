"""The compiled train_step: fresh random draws each call, both networks learn, exact resume."""
import json
from unittest import mock

import keras
import numpy as np
import pytest
import tensorflow as tf

import losses
import stylegan
import checkpoints
from conftest import Recorder, tiny_gan


def images_dataset(n=128, batch_size=32):
    x = np.random.default_rng(0).uniform(-1, 1, (n, 28, 28, 1)).astype("float32")
    return tf.data.Dataset.from_tensor_slices(x).batch(batch_size, drop_remainder=True)


def crossovers(z):
    """Each sample's crossover in a z stack [n, n_style, latent]: the first slot that differs
    from slot 0 (n_style where every slot holds one z)."""
    differs = np.any(z != z[:, :1], axis=-1)  # [n, n_style]
    return np.where(differs.any(axis=1), differs.argmax(axis=1), z.shape[1])


def test_every_call_of_the_compiled_draw_gives_new_crossovers():
    model = tiny_gan(mixing="crossover", mixing_prob=0.9)
    draw = tf.function(lambda: model.draw_inputs(64)[0])  # traced once, as fit traces the step
    first, second = crossovers(np.asarray(draw())), crossovers(np.asarray(draw()))
    assert not np.array_equal(first, second)
    assert set(first) | set(second) <= {1, 2, 3}  # k in [1, n_style), or n_style for no mixing
    assert {1, 2, 3} <= set(first) | set(second)
    z = np.asarray(draw())  # and every slot from the crossover on holds the second z
    k = crossovers(z)
    for sample in np.flatnonzero(k < 3):
        assert np.all(z[sample, k[sample]:] == z[sample, k[sample]])


def test_mixing_prob_decides_how_many_samples_are_mixed():
    never, half, always = (tiny_gan(mixing="crossover", mixing_prob=p, seed=1)
                           for p in (0.0, 0.5, 1.0))
    assert np.all(crossovers(np.asarray(never.draw_inputs(256)[0])) == 3)
    assert np.all(crossovers(np.asarray(always.draw_inputs(256)[0])) < 3)
    assert 0.35 < np.mean(crossovers(np.asarray(half.draw_inputs(256)[0])) < 3) < 0.65
    z, noise = always.draw_inputs(256)
    assert z.shape == (256, 3, 8) and noise.shape == (256, 28, 28)


@pytest.mark.slow
@pytest.mark.parametrize("settings", [
    {}, dict(step="same_fakes", shared_optimizer=False, mixing="crossover")])
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
        assert model.d_optimizer.iterations.numpy() == 8  # and one D update


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


@pytest.mark.slow
def test_reported_losses_are_epoch_means_not_the_last_batch(tiny_model):
    history = tiny_model.fit(images_dataset(), epochs=1, verbose=0, shuffle=False)
    tracker = tiny_model.d_loss_tracker
    assert tracker.count.numpy() == 4  # averaged over the epoch's 4 steps
    assert np.isclose(history.history["d_loss"][0], tracker.result().numpy())


@pytest.mark.slow
def test_a_checkpoint_restores_weights_optimizer_state_and_random_state(tiny_model, tmp_path):
    tiny_model.fit(images_dataset(), epochs=1, verbose=0, shuffle=False)
    path = checkpoints.save_checkpoint(tiny_model, tmp_path, 1, [{"epoch": 1}])
    meta, config = checkpoints.read_checkpoint(path)
    assert meta["epoch"] == 1 and config == tiny_model.config
    restored = tiny_gan(seed=99)
    checkpoints.load_checkpoint(restored, path, meta)
    for saved, loaded in [(tiny_model.g.weights, restored.g.weights),
                          (tiny_model.d.weights, restored.d.weights),
                          (tiny_model.g_optimizer.variables, restored.g_optimizer.variables),
                          (tiny_model.d_optimizer.variables, restored.d_optimizer.variables)]:
        for a, b in zip(saved, loaded, strict=True):
            np.testing.assert_array_equal(a, b)
    assert restored.g_optimizer.iterations.numpy() == 8  # shared: G's and D's update, 4 steps
    # the same random state: the next training draws are the same as the original run's
    for a, b in zip(restored.draw_inputs(32), tiny_model.draw_inputs(32)):
        np.testing.assert_array_equal(a, b)


def test_a_checkpoint_of_another_format_is_refused_in_one_line(tiny_model, tmp_path):
    path = checkpoints.save_checkpoint(tiny_model, tmp_path, 1, [{"epoch": 1}])
    meta = json.loads(path.read_text())
    meta["format"] = 4  # as the code before this one wrote it
    meta["sha256"] = checkpoints.digest(meta, checkpoints.weights_of(path))
    path.write_text(json.dumps(meta))
    with pytest.raises(checkpoints.CheckpointError) as error:
        checkpoints.read_checkpoint(path)
    assert "another version of train.py (checkpoint format 4; this one reads 5)" in str(error.value)
    assert "\n" not in str(error.value)


def test_evaluate_pys_json_beside_a_checkpoint_is_not_listed_as_one(tiny_model, tmp_path):
    path = checkpoints.save_checkpoint(tiny_model, tmp_path, 1, [{"epoch": 1}])
    (tmp_path / "ckpt-0001.eval.json").write_text("{}")  # as evaluate.py writes it
    assert checkpoints.list_checkpoints(tmp_path) == [path]
    assert checkpoints.list_checkpoints(tmp_path, with_weights=False) == [path]  # --resume's check


@pytest.mark.slow
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


def test_the_soft_stroke_width_is_evaluate_s_width_on_ink_and_paper_images():
    import evaluate
    bar = -np.ones((1, 28, 28), "float32")
    bar[0, 4:24, 10:13] = 1.0  # 3 x 20: 2 * 60 / 46
    digits = np.where(np.random.default_rng(0).random((6, 28, 28)) > 0.7, 1.0, -1.0)
    for images in (bar, digits.astype("float32")):
        soft = np.asarray(losses.soft_stroke_width(images[..., None], sharpness=100.0))
        np.testing.assert_allclose(soft, evaluate.hand(images)[0], rtol=1e-3)
    np.testing.assert_allclose(evaluate.hand(bar)[0], 120 / 46)


def test_the_hand_penalty_is_the_squared_miss_of_the_mix_s_width_against_the_fine_source_s():
    model = tiny_gan(hand_weight=2.0, hand_coarse_size=7, shared_optimizer=False)
    assert model.hand_split == 1  # rows give the 7x7 slot, columns 14x14 and 28x28
    z, noise = model.draw_inputs(8)
    w = model.mapping(z)
    images = model.synthesis([w, noise])
    w_, noise_ = np.asarray(w), np.asarray(noise[:4])
    mixed = model.synthesis([np.concatenate([w_[:4, :1], w_[4:, 1:]], axis=1), noise_])
    width = lambda x: np.asarray(losses.soft_stroke_width(x))
    expected = 2.0 * losses.HAND_EVERY * np.mean((width(mixed) - width(images[4:])) ** 2)
    assert expected > 0
    np.testing.assert_allclose(losses.lazy_hand(model, w, images, noise), expected, rtol=1e-4)
    for iterations in (1, losses.HAND_EVERY - 1):  # lazy: not on these steps
        model.g_optimizer.iterations.assign(iterations)
        assert float(losses.lazy_hand(model, w, images, noise)) == 0.0


def test_the_hand_penalty_reuses_g_s_blocks_where_a_column_gives_to_image_s_style_alone():
    import tensorflow as tf
    model = tiny_gan(hand_weight=2.0, styled_to_image=True, shared_optimizer=False)
    assert model.hand_split == model.n_style - 1  # the default's: columns give to_image's style
    two_blocks = tiny_gan(hand_weight=2.0, hand_coarse_size=7, styled_to_image=True,
                          shared_optimizer=False)  # columns give 2 blocks and to_image's style
    assert two_blocks.synthesis_and_features is None  # so its mix runs them itself
    z, noise = model.draw_inputs(8)
    results = []
    for shortcut in (False, True):  # the mix made whole, and from G's own last feature map
        with tf.GradientTape() as tape:
            w = model.mapping(z)
            images, features = model.synthesis_and_features([w, noise])
            penalty = losses.lazy_hand(model, w, images, noise, features if shortcut else None)
        grads = tape.gradient(penalty, model.g.trainable_variables)
        results.append((float(penalty), [np.asarray(g) for g in grads if g is not None]))
    (full, full_grads), (short, short_grads) = results
    assert full > 0
    np.testing.assert_allclose(short, full, rtol=1e-5)
    assert len(short_grads) == len(full_grads) > 10  # the blocks' weights too, not to_image's alone
    for a, b in zip(short_grads, full_grads):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("hand_coarse_size, synthesis_calls", [(28, 0), (7, 2)])
def test_g_s_step_runs_the_synthesis_twice_for_the_hand_penalty_only_where_columns_give_blocks(
        hand_coarse_size, synthesis_calls):
    model = tiny_gan(hand_weight=1.0, styled_to_image=True, shared_optimizer=False,
                     hand_coarse_size=hand_coarse_size, step="same_fakes", mixing="crossover")
    real = next(iter(images_dataset(n=8, batch_size=8)))
    # 28: columns give to_image's style alone, and G's pass gives the mix its feature map;
    # 7: columns give two blocks too, so the mix runs the synthesis itself, after G's own pass
    with (mock.patch.object(model.synthesis, "call", wraps=model.synthesis.call) as call,
          mock.patch.object(losses, "HAND_EVERY", 1)):  # the penalty on this step
        model.train_step(real)
    assert call.call_count == synthesis_calls
    assert (model.synthesis_and_features is None) == (synthesis_calls > 0)


@pytest.mark.slow
@pytest.mark.parametrize("network", [
    dict(hand_coarse_size=7), dict(styled_to_image=True)])  # the latter reuses G's blocks
def test_the_hand_penalty_reaches_g_s_update_and_not_d_s(network):
    settings = dict(shared_optimizer=False, step="same_fakes", mixing="crossover", **network)
    plain, pushed = tiny_gan(**settings), tiny_gan(hand_weight=100.0, **settings)
    for model in (plain, pushed):  # one compiled step each (the first: the penalty's), the
        history = model.fit(images_dataset(n=32), epochs=1, verbose=0, shuffle=False)  # same draws
        assert np.all(np.isfinite(history.history["g_loss"]))
    same = lambda a, b: all(np.allclose(x, y, atol=1e-6) for x, y in
                            zip(a.get_weights(), b.get_weights()))
    assert same(plain.d, pushed.d) and not same(plain.g, pushed.g)
