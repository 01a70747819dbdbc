"""The tutorial's plug-ins (AdaNorm, AdaMod, AddNoise, Map) and the generator they make."""
import numpy as np
import pytest

import paper_layers
import stylegan
from conftest import mix

rng = np.random.default_rng(0)


def test_ada_norm_gives_zero_mean_unit_variance_per_sample_and_channel():
    x = rng.normal(3.0, 5.0, (4, 7, 7, 6)).astype("float32") * np.arange(1, 7)
    y = np.asarray(stylegan.AdaNorm()(x))
    np.testing.assert_allclose(y.mean(axis=(1, 2)), 0.0, atol=1e-4)
    np.testing.assert_allclose(y.var(axis=(1, 2)), 1.0, atol=1e-3)


def test_the_fused_ada_norm_and_its_gradient_are_the_tutorial_formulas():
    import tensorflow as tf  # the fused op's gradient against the formula's, by autodiff
    x = tf.constant(rng.normal(3.0, 5.0, (3, 7, 7, 4)).astype("float32"))
    weights = tf.constant(rng.normal(size=(3, 7, 7, 4)).astype("float32"))

    def formula(x):  # the tutorial's AdaNorm, in TensorFlow's own ops
        mean, variance = tf.nn.moments(x, axes=[1, 2], keepdims=True)
        return (x - mean) * tf.math.rsqrt(variance + 1e-5)
    results = []
    for norm in (stylegan.FusedAdaNorm(), stylegan.AdaNorm(), formula):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = norm(x)
            loss = tf.reduce_sum(weights * y)
        results.append((np.asarray(y), np.asarray(tape.gradient(loss, x))))
    (fused, fused_grad), (y, grad), (y_formula, grad_formula) = results
    np.testing.assert_array_equal(y, y_formula)  # AdaNorm is the formula
    np.testing.assert_array_equal(grad, grad_formula)
    np.testing.assert_allclose(fused, y_formula, atol=1e-5)
    np.testing.assert_allclose(fused_grad, grad_formula, atol=1e-5)
    assert np.abs(grad).max() > 1e-3  # a real gradient, not zeros on both sides


def test_the_generator_normalises_with_the_fused_form():
    g = stylegan.build_generator(latent_dim=8, w_dim=16, filters=8)
    norms = [layer for layer in g.get_layer("synthesis")._flatten_layers()
             if isinstance(layer, stylegan.AdaNorm)]
    assert len(norms) == 4 and all(isinstance(n, stylegan.FusedAdaNorm) for n in norms)


@pytest.mark.parametrize("policy, tolerance", [("float32", 1e-5), ("mixed_bfloat16", 3e-2),
                                               ("mixed_float16", 5e-3)])
def test_the_fused_ada_norm_is_the_formula_in_each_precision_compiled_by_xla_for_any_batch(
        policy, tolerance):
    import tensorflow as tf
    layer = stylegan.FusedAdaNorm(dtype=policy)
    spec = tf.TensorSpec([None, 7, 7, 4], layer.compute_dtype)  # the batch unknown when traced
    compiled = tf.function(layer, jit_compile=True, input_signature=[spec])
    x = rng.normal(3.0, 5.0, (3, 7, 7, 4))
    for batch in (1, 3):
        inputs = tf.cast(x[:batch], layer.compute_dtype)
        y = compiled(inputs)
        rounded = np.asarray(tf.cast(inputs, "float64"))  # the formula on the same numbers
        mean = rounded.mean(axis=(1, 2), keepdims=True)
        variance = rounded.var(axis=(1, 2), keepdims=True)
        assert y.dtype == layer.compute_dtype
        np.testing.assert_allclose(np.asarray(tf.cast(y, "float64")),
                                   (rounded - mean) / np.sqrt(variance + 1e-5), atol=tolerance)


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16", "mixed_float16"])
def test_bilinear_upsampling_is_keras_own_bit_for_bit_without_its_clip(policy):
    import keras
    import tensorflow as tf
    ours = paper_layers.BilinearUpSampling2D(dtype=policy)
    x = tf.cast(rng.normal(0.0, 3.0, (2, 7, 7, 3)), ours.compute_dtype)
    weights = tf.constant(rng.normal(size=(2, 14, 14, 3)).astype("float32"))
    results = []
    for layer in (ours, keras.layers.UpSampling2D(2, interpolation="bilinear", dtype=policy)):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x)
            loss = tf.reduce_sum(weights * tf.cast(y, "float32"))
        assert y.dtype == ours.compute_dtype
        results.append([np.asarray(tf.cast(t, "float32")) for t in (y, tape.gradient(loss, x))])
    (y, grad), (y_keras, grad_keras) = results
    np.testing.assert_array_equal(y, y_keras)
    np.testing.assert_array_equal(grad, grad_keras)
    assert np.abs(grad).max() > 1e-3
    # the reason for the layer: no clip (Minimum, Maximum) in its graph, nor in its gradient's

    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = ours(x)
        return tape.gradient(y, x)
    graph = tf.function(step).get_concrete_function(tf.TensorSpec(x.shape, x.dtype)).graph
    assert not {"Minimum", "Maximum"} & {op.type for op in graph.get_operations()}


@pytest.mark.parametrize("jit", [False, True])
def test_bilinear_upsampling_doubles_the_size_under_xla_and_with_an_unknown_batch(jit):
    import tensorflow as tf
    layer = paper_layers.BilinearUpSampling2D()
    spec = tf.TensorSpec([None, 7, 7, 2], "float32")
    compiled = tf.function(layer, jit_compile=jit, input_signature=[spec])
    x = rng.normal(size=(3, 7, 7, 2)).astype("float32")
    y = np.asarray(compiled(x))
    assert y.shape == (3, 14, 14, 2)
    # half-pixel centres: an output pixel inside the image is 3/4 its own input, 1/4 the next
    np.testing.assert_allclose(y[:, 1, 1], (9 * x[:, 0, 0] + 3 * x[:, 0, 1] + 3 * x[:, 1, 0]
                                            + x[:, 1, 1]) / 16, atol=1e-5)


def test_ada_mod_scales_and_shifts_each_channel_by_what_w_says():
    x = rng.normal(size=(2, 4, 4, 3)).astype("float32")
    w = rng.normal(size=(2, 5)).astype("float32")
    layer = stylegan.AdaMod()
    layer((x, w))
    kernel = rng.normal(size=(5, 6)).astype("float32")
    bias = rng.normal(size=(6,)).astype("float32")
    layer.y.set_weights([kernel, bias])
    y = w @ kernel + bias  # [n, 2 * channels]: scales then biases
    expected = (1 + y[:, None, None, :3]) * x + y[:, None, None, 3:]
    np.testing.assert_allclose(layer((x, w)), expected, rtol=1e-5, atol=1e-5)
    # a different w gives a different modulation of the same feature map
    assert not np.allclose(layer((x, w)), layer((x, w[::-1])))


def test_add_noise_crops_the_noise_to_the_feature_map_and_scales_it_per_channel():
    x = np.ones((2, 7, 7, 3), "float32")
    noise = rng.normal(size=(2, 28, 28, 1)).astype("float32")
    layer = stylegan.AddNoise()
    layer((x, noise))
    layer.noise_scale.assign([0.0, 1.0, -2.0])
    out = np.asarray(layer((x, noise)))
    for c, scale in enumerate([0.0, 1.0, -2.0]):
        np.testing.assert_allclose(out[..., c], 1 + scale * noise[:, :7, :7, 0], rtol=1e-6)


@pytest.mark.parametrize("activation, linear", [("linear", True), ("leaky_relu", False)])
def test_map_is_linear_by_default_and_leaky_relu_makes_it_non_linear(activation, linear):
    mapping = stylegan.Map(size=16, num_layers=3, activation=activation)
    z1, z2 = rng.normal(size=(2, 8, 3, 10)).astype("float32")
    zero = np.zeros_like(z1)
    # an affine map f satisfies f(a + b) = f(a) + f(b) - f(0)
    additive = np.allclose(mapping(z1 + z2), mapping(z1) + mapping(z2) - mapping(zero), atol=1e-4)
    assert additive == linear
    assert mapping(z1).shape == (8, 3, 16)


def test_generator_makes_28x28_images_in_tanh_range():
    g = stylegan.build_generator(latent_dim=8, w_dim=16, filters=8)
    z = rng.normal(size=(5, 3, 8)).astype("float32")
    noise = rng.normal(size=(5, 28, 28)).astype("float32")
    images = np.asarray(g([z, noise]))
    assert images.shape == (5, 28, 28, 1)
    assert np.all(np.abs(images) <= 1.0)
    assert images.std() > 0  # not a constant image


def test_generator_rejects_a_depth_that_does_not_fit_28_pixels():
    with pytest.raises(ValueError, match="n_style=4"):
        stylegan.build_generator(n_style=4)


def test_mix_styles_takes_the_first_source_below_the_crossover_and_the_second_from_it_on():
    z1, z2 = np.zeros((2, 4), "float32"), np.ones((2, 4), "float32")
    stack = np.asarray(stylegan.mix_styles(z1, z2, stylegan.slots_before([1, 3], 3)))
    assert stack.shape == (2, 3, 4)
    np.testing.assert_array_equal(stack[:, :, 0], [[0, 1, 1], [0, 0, 0]])
    # any set of slots, for the whole batch: slot 1 from the first source
    w1, w2 = np.zeros((2, 3, 4), "float32"), np.ones((2, 3, 4), "float32")
    stack = np.asarray(stylegan.mix_styles(w1, w2, [False, True, False]))
    np.testing.assert_array_equal(stack[:, :, 0], [[1, 0, 1], [1, 0, 1]])


def test_a_mix_is_the_generator_on_the_explicit_layer_stack(tiny_model):
    z1, z2 = rng.normal(size=(2, 4, 8)).astype("float32")
    noise = rng.normal(size=(4, 28, 28)).astype("float32")
    mixed = mix(tiny_model, z1, z2, 1, noise)
    explicit = np.stack([z1, z2, z2], axis=1)  # layer 0 from z1, layers 1 and 2 from z2
    np.testing.assert_allclose(mixed, tiny_model.g([explicit, noise]), atol=1e-5)
    # only the coarse source changes: the image changes
    other_coarse = mix(tiny_model, z1[::-1], z2, 1, noise)
    assert np.abs(other_coarse - mixed).max() > 1e-3


def test_truncation_pulls_every_image_to_the_average_w(tiny_model):
    tiny_model.mapping.w_avg.assign(rng.normal(size=16).astype("float32"))
    z = rng.normal(size=(3, 3, 8)).astype("float32")
    noise = np.repeat(rng.normal(size=(1, 28, 28)).astype("float32"), 3, axis=0)
    untruncated = stylegan.generate(tiny_model.g, z, noise)
    np.testing.assert_allclose(untruncated, tiny_model.g([z, noise]), atol=1e-5)
    at_average = stylegan.generate(tiny_model.g, z, noise, truncation_psi=0.0)
    np.testing.assert_allclose(at_average[0], at_average[1], atol=1e-5)  # z no longer matters
    assert np.abs(untruncated[0] - untruncated[1]).max() > 1e-3
