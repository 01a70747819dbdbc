"""mnist_ds: where MNIST is looked for, the shipped full MNIST, clear errors, the tf.data pipeline."""
import numpy as np
import pytest

import mnist_ds


def write_npz(path, **arrays):
    np.savez(path, **arrays)
    return path


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No MNIST_PATH, no Keras cache and no download, as on a machine without internet."""
    monkeypatch.delenv("MNIST_PATH", raising=False)
    monkeypatch.setattr(mnist_ds, "KERAS_CACHE", tmp_path / "no-cache" / "mnist.npz")

    def no_download():
        raise OSError("no internet")

    monkeypatch.setattr(mnist_ds, "_download", no_download)


def test_without_data_the_shipped_full_mnist_is_used(offline):
    (x_train, y_train), (x_test, y_test) = mnist_ds.load_mnist()
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert x_train.dtype == np.uint8
    assert np.bincount(y_train)[[0, 1, 9]].tolist() == [5923, 6742, 5949]  # MNIST's own counts


def test_a_damaged_shipped_file_is_refused_in_one_line(offline, monkeypatch, tmp_path):
    damaged = tmp_path / "mnist.npz"
    data = bytearray(mnist_ds.SHIPPED_PATH.read_bytes())
    data[len(data) // 2] ^= 1  # one bit: the zip may still read, the checksum does not
    damaged.write_bytes(bytes(data))
    monkeypatch.setattr(mnist_ds, "SHIPPED_PATH", damaged)
    with pytest.raises(mnist_ds.DataError) as error:
        mnist_ds.load_mnist()
    assert "damaged" in str(error.value) and "git checkout" in str(error.value)
    assert "\n" not in str(error.value)


def test_without_the_shipped_file_keras_download_is_tried_then_a_clear_error(offline,
                                                                          monkeypatch, tmp_path):
    monkeypatch.setattr(mnist_ds, "SHIPPED_PATH", tmp_path / "gone.npz")
    tried = []
    monkeypatch.setattr(mnist_ds, "_download", lambda: tried.append(1) or 1 / 0)
    with pytest.raises(mnist_ds.DataError, match="no MNIST found"):
        mnist_ds.load_mnist()
    assert tried


def test_the_given_path_then_mnist_path_are_used(offline, monkeypatch, tmp_path):
    images = np.full((3, 28, 28), 7, np.uint8)
    given = write_npz(tmp_path / "given.npz", x_train=images)
    env = write_npz(tmp_path / "env.npz", x_train=images[:2])
    monkeypatch.setenv("MNIST_PATH", str(env))
    assert len(mnist_ds.load_mnist(given)[0][0]) == 3
    assert len(mnist_ds.load_mnist()[0][0]) == 2


def test_the_keras_cache_comes_before_the_shipped_file(offline, monkeypatch, tmp_path):
    cache = write_npz(tmp_path / "mnist.npz", x_train=np.zeros((5, 28, 28), np.uint8))
    monkeypatch.setattr(mnist_ds, "KERAS_CACHE", cache)
    assert len(mnist_ds.load_mnist()[0][0]) == 5


@pytest.mark.parametrize("arrays, message", [
    (None, "does not exist"),
    ("not a zip", "not a readable .npz"),
    ({"images": np.zeros((2, 28, 28), np.uint8)}, "has no x_train array"),
    ({"x_train": np.zeros((2, 32, 32), np.uint8)}, "has shape (2, 32, 32)"),
    ({"x_train": np.zeros((2, 28, 28), np.float64)}, "has dtype float64"),
    ({"x_train": np.zeros((0, 28, 28), np.uint8)}, "holds no images"),
])
def test_a_bad_data_file_gives_one_line_naming_file_and_problem(tmp_path, arrays, message):
    path = tmp_path / "mnist.npz"
    if isinstance(arrays, str):
        path.write_text(arrays)
    elif arrays is not None:
        write_npz(path, **arrays)
    with pytest.raises(mnist_ds.DataError) as error:
        mnist_ds.load_mnist(path)
    text = str(error.value)
    assert message in text and str(path) in text and "\n" not in text


def test_dataset_scales_to_tanh_range_and_drops_the_partial_batch():
    images = np.stack([np.full((28, 28), v, np.uint8) for v in (0, 255, 51, 102, 153)])
    dataset, steps = mnist_ds.make_dataset(images, batch_size=2, seed=0)
    batches = list(dataset)
    assert steps == 2
    assert len(batches) == 2 and all(b.shape == (2, 28, 28, 1) for b in batches)
    values = np.concatenate([np.unique(b) for b in batches])
    assert values.min() >= -1.0 and values.max() <= 1.0
    expected = np.array([0, 255, 51, 102, 153]) / 127.5 - 1  # -1, 1, -0.6, -0.2, 0.2
    assert np.all(np.isclose(values[:, None], expected).any(axis=1))


def test_steps_per_execution_cuts_each_epoch_to_whole_groups_of_the_same_order():
    order = lambda multiple: [list(b.numpy()) for b in mnist_ds.epoch_order(
        50, 5, seed=1, first_epoch=0, epochs=2, steps_multiple=multiple)]
    whole, grouped = order(1), order(4)  # 10 batches an epoch, cut to 8
    assert grouped == whole[:8] + whole[10:18]  # each epoch's first 8, in the same order
    images = np.zeros((50, 28, 28), np.uint8)
    assert mnist_ds.make_dataset(images, 5, steps_multiple=4)[1] == 8
    with pytest.raises(mnist_ds.DataError, match="epoch of 10 steps is shorter than "
                                                 "--steps-per-execution 16"):
        mnist_ds.make_dataset(images, 5, steps_multiple=16)


def test_a_batch_larger_than_the_data_is_refused():
    with pytest.raises(mnist_ds.DataError, match="batch size 64 is larger than the 10"):
        mnist_ds.make_dataset(np.zeros((10, 28, 28), np.uint8), batch_size=64)


def test_the_tutorials_shuffle_buffer_draws_from_the_next_images_and_resumes_the_same_order():
    def order(first_epoch, shuffle_buffer):  # 3 epochs of 100 indices in batches of 10
        return [b.numpy() for b in mnist_ds.epoch_order(100, 10, 3, first_epoch, 3,
                                                         shuffle_buffer)]

    local = order(0, 16)
    assert sorted(np.concatenate(local[:10])) == list(range(100))  # each image once an epoch
    assert local[0].max() < 16 + 10  # the first batch: from the first 25 images in file order
    assert not np.array_equal(np.concatenate(local[:10]), np.concatenate(local[10:20]))
    for a, b in zip(local, order(0, 16), strict=True):  # the same order again
        np.testing.assert_array_equal(a, b)
    for a, b in zip(local[10:], order(1, 16), strict=True):  # and from epoch 2 on, resumed
        np.testing.assert_array_equal(a, b)
    assert order(0, 0)[0].max() >= 26  # a full permutation draws from every image at once
