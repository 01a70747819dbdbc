"""A hostile user's inputs, by kind: special files, paths that cannot be inspected, sizes that
would not fit, labels and outputs that cannot be trusted, a folder of images that changes. Each
gives one line `error: ...` (exit 2 before any work, 1 where work was done), never a traceback,
a hang or a lost file."""
import faulthandler
import json
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

import evaluate
import folder_ds
import generate
import mnist_ds
import train as train_cli
from config import PRESETS
from conftest import SAMPLE

LONG_NAME = "x" * 300  # longer than any file system's name limit (255)


@pytest.fixture(autouse=True)
def no_hang():
    """A test that blocks (a pipe opened for reading) fails the whole run after 120 s with a
    traceback of where it hung, instead of hanging CI."""
    faulthandler.dump_traceback_later(120, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


def one_line_error(capsys):
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


def fifo(path):
    os.mkfifo(path)
    return path


def test_a_pipe_as_data_is_refused_without_opening_it(tmp_path, capsys):
    pipe = fifo(tmp_path / "mnist.npz")
    assert train_cli.main(["--data", str(pipe), "--out", str(tmp_path / "run")]) == 2
    assert "is not a regular file" in one_line_error(capsys)
    assert not (tmp_path / "run").exists()


def test_a_pipe_in_an_image_folder_is_skipped_and_counted(tmp_path):
    from PIL import Image

    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "a.png")
    fifo(tmp_path / "b.png")
    readable, unreadable = folder_ds.find_images(tmp_path)
    assert readable == [str(tmp_path / "a.png")] and unreadable == [tmp_path / "b.png"]


def png_declaring(width, height):
    """A tiny PNG whose header declares width x height pixels (a decompression bomb's header)."""
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b""))


def test_an_image_declaring_too_many_pixels_is_skipped_before_decoding(tmp_path):
    from PIL import Image

    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "small.png")
    (tmp_path / "bomb.png").write_bytes(png_declaring(100_000, 100_000))
    readable, unreadable = folder_ds.find_images(tmp_path)
    assert readable == [str(tmp_path / "small.png")] and unreadable == [tmp_path / "bomb.png"]


@pytest.mark.parametrize("make_out, cause", [
    (lambda tmp: tmp / LONG_NAME / "run", "File name too long"),
    (lambda tmp: tmp / "loop" / "run", "Too many levels of symbolic links"),
])
def test_an_out_path_that_cannot_be_inspected_gives_one_line(tmp_path, capsys, monkeypatch,
                                                             make_out, cause):
    monkeypatch.setenv("MNIST_PATH", str(SAMPLE))
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    out = make_out(tmp_path)
    assert train_cli.main(["--limit", "64", "--out", str(out)]) == 2
    err = one_line_error(capsys)
    assert str(out) in err and cause in err


@pytest.mark.parametrize("flag", ["--data", "--dataset"])
def test_a_loop_of_links_as_data_gives_one_line(tmp_path, capsys, flag):
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    assert train_cli.main([flag, str(tmp_path / "loop"), "--out", str(tmp_path / "run")]) == 2
    assert "loop" in one_line_error(capsys)


def test_the_data_lookup_skips_a_place_it_cannot_read_and_says_so(monkeypatch, capsys):
    monkeypatch.delenv("MNIST_PATH", raising=False)
    monkeypatch.setattr(mnist_ds, "KERAS_CACHE", Path("/tmp") / LONG_NAME / "mnist.npz")
    assert mnist_ds.locate_mnist() == mnist_ds.SHIPPED_PATH
    err = capsys.readouterr().err
    assert "note: skipping" in err and "File name too long" in err


def npz_declaring(path, shape):
    """An npz whose x_train header declares `shape` uint8 while it holds a few bytes."""
    import zipfile

    header = np.lib.format.header_data_from_array_1_0(np.zeros((1, 28, 28), np.uint8))
    header["shape"] = shape
    with zipfile.ZipFile(path, "w") as archive:
        with archive.open("x_train.npy", "w") as f:
            np.lib.format.write_array_header_1_0(f, header)
            f.write(b"\0" * 784)
    return path


def test_an_npz_declaring_a_billion_images_is_refused_before_allocating(tmp_path, capsys):
    data = npz_declaring(tmp_path / "huge.npz", (10 ** 9, 28, 28))
    assert train_cli.main(["--data", str(data), "--out", str(tmp_path / "run")]) == 2
    assert "declares shape (1000000000, 28, 28)" in one_line_error(capsys)


@pytest.mark.parametrize("flags", [
    ["interpolate", "--seeds", "1,2", "--steps", str(10 ** 9)],
    ["noise", "--show", str(10 ** 6), "--draws", str(10 ** 6)],
    ["mix", "--rows", ",".join(map(str, range(100))), "--cols", ",".join(map(str, range(100)))],
    ["truncation", "--seeds", ",".join(map(str, range(1000)))],
])
def test_generate_refuses_counts_that_would_not_fit_before_loading(tmp_path, capsys, flags):
    # the model does not exist: the count must be refused before it is looked for
    assert generate.main(["--model", str(tmp_path / "none.keras"), *flags, "--out",
                          str(tmp_path / ("f.gif" if flags[0] == "interpolate" else "f.png"))]) == 2
    assert "does not exist" not in one_line_error(capsys)


@pytest.mark.parametrize("labels, message", [
    (lambda y: y + 20, "y_test holds labels outside 0..9 (20..29)"),
    (lambda y: y[:-5], "y_test must hold one whole-number label per image (500)"),
    (lambda y: y.astype("float32"), "y_test must hold one whole-number label per image"),
])
def test_evaluate_refuses_labels_it_cannot_trust(tmp_path, capsys, labels, message):
    from conftest import tiny_gan

    tiny_gan().g.save(tmp_path / "g.keras")
    with np.load(SAMPLE) as npz:
        arrays = dict(npz)
    arrays["y_test"] = labels(arrays["y_test"])
    np.savez(tmp_path / "bad.npz", **arrays)
    assert evaluate.main(["--model", str(tmp_path / "g.keras"), "--data", str(tmp_path / "bad.npz"),
                          "--json", str(tmp_path / "e.json")]) == 2
    assert message in one_line_error(capsys)
    assert not (tmp_path / "e.json").exists()


def test_evaluate_s_json_is_strict_json():
    result = {"fid": 5.0, "width_r": float("nan"), "rows": [float("inf"), 1.0]}
    text = json.dumps(evaluate.finite_or_null(result), allow_nan=False)
    assert json.loads(text) == {"fid": 5.0, "width_r": None, "rows": [None, 1.0]}


def test_a_saved_model_folder_as_model_is_named_as_such(tmp_path, capsys):
    (tmp_path / "generator_savedmodel").mkdir()
    assert generate.main(["--model", str(tmp_path / "generator_savedmodel"), "mix", "--out",
                          str(tmp_path / "mix.png")]) == 2
    assert "is a folder (a SavedModel?)" in one_line_error(capsys)


@pytest.fixture
def image_folder(tmp_path):
    from PIL import Image

    folder = tmp_path / "faces"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(16):
        Image.fromarray(rng.integers(0, 255, (40, 40, 3), np.uint8)).save(folder / f"{i}.png")
    return folder


def test_an_out_inside_the_image_folder_is_refused_before_it_is_made(image_folder, capsys):
    out = image_folder / "run"
    assert train_cli.main(["--dataset", str(image_folder), "--image-size", "32", "--batch-size",
                           "8", "--out", str(out)]) == 2
    assert "lies inside --dataset" in one_line_error(capsys)
    assert not out.exists()


def test_a_moved_image_folder_is_given_anew_on_resume(tmp_path, image_folder):
    saved = PRESETS["stylegan"].__class__(**{
        **PRESETS["tutorial"].__dict__, "dataset": str(tmp_path / "gone"), "image_size": 32,
        "hand_weight": 0.0})
    args = lambda *flags: train_cli.parse_args(["--resume", *flags])
    with pytest.raises(train_cli.UserError, match="is gone: give the folder's new place"):
        train_cli.resolve_config(args(), saved)
    moved = train_cli.resolve_config(args("--dataset", str(image_folder)), saved)
    assert moved.dataset == str(image_folder)


def test_images_removed_during_training_stop_the_run_with_one_line(image_folder, tmp_path,
                                                                   capsys, monkeypatch):
    found = folder_ds.load_folder

    def then_removed(root, verbose=True):  # found at the start, gone by the time it is read
        paths = found(root, verbose)
        Path(paths[-1]).unlink()
        return paths
    monkeypatch.setattr(train_cli, "load_folder", then_removed)
    code = train_cli.main(["--dataset", str(image_folder), "--image-size", "32", "--filters",
                           "8", "--latent-dim", "8", "--batch-size", "8", "--epochs", "1",
                           "--out", str(tmp_path / "run")])
    assert code == 1
    assert "could no longer be read" in one_line_error(capsys)


# -- checkpoints chosen and pruned by the run's lineage, never by their names alone
def run_folder_with_a_stranger(tmp_path):
    """A run (id "ours") with checkpoints of epochs 1 and 2, and two of another run ("theirs",
    another seed) copied in under higher numbers, 5 and 6, the second continuing the first."""
    import checkpoints
    from conftest import tiny_gan

    ours, theirs = tiny_gan(), tiny_gan(seed=1)
    folder = tmp_path / "checkpoints"
    checkpoints.write_run_file(tmp_path, "ours", ours.config)
    rows = [{"epoch": e, "d_loss": 0.5, "g_loss": 0.7} for e in range(1, 7)]
    for epoch in (1, 2):
        checkpoints.save_checkpoint(ours, folder, epoch, rows[:epoch], run="ours")
    for epoch in (5, 6):
        checkpoints.save_checkpoint(theirs, folder, epoch, rows[:epoch], run="theirs")
    return ours, folder, rows


def test_resume_never_chooses_another_runs_checkpoint_however_new(tmp_path, capsys):
    import checkpoints

    _, folder, _ = run_folder_with_a_stranger(tmp_path)
    chosen = checkpoints.newest_good_checkpoint(folder, checkpoints.read_run_file(tmp_path))
    assert chosen.path.name == "ckpt-0002.json" and chosen.meta["run"] == "ours"
    err = capsys.readouterr().err
    assert "ckpt-0006.json is not a checkpoint of this run" in err and "ckpt-0005.json" in err


def test_pruning_keeps_the_run_s_newest_and_leaves_a_stranger_alone(tmp_path, capsys):
    import checkpoints

    ours, folder, rows = run_folder_with_a_stranger(tmp_path)
    written = checkpoints.save_checkpoint(ours, folder, 3, rows[:3], run="ours")
    checkpoints.prune_checkpoints(folder, 1, written)  # --keep 1
    names = [p.name for p in checkpoints.list_checkpoints(folder)]
    assert names == ["ckpt-0003.json", "ckpt-0005.json", "ckpt-0006.json"]  # ours just written
    assert "ckpt-0005.json is not a checkpoint of this run" in capsys.readouterr().err


def test_a_stranger_under_the_name_the_run_writes_is_moved_aside_not_written_over(tmp_path,
                                                                                  capsys):
    import checkpoints

    ours, folder, rows = run_folder_with_a_stranger(tmp_path)
    theirs = (folder / "ckpt-0005.json").read_bytes()
    written = checkpoints.save_checkpoint(ours, folder, 5, rows[:5], run="ours")
    assert checkpoints.read_checkpoint(written)[0]["run"] == "ours"
    assert (folder / "foreign-ckpt-0005.json").read_bytes() == theirs
    assert (folder / "foreign-ckpt-0005.weights.h5").is_file()
    assert "moved aside as foreign-ckpt-0005.json" in capsys.readouterr().err


def test_without_run_json_the_newest_chain_decides_and_says_so(tmp_path, capsys):
    import checkpoints

    _, folder, _ = run_folder_with_a_stranger(tmp_path)
    (tmp_path / checkpoints.RUN_FILE).unlink()
    assert checkpoints.read_run_file(tmp_path) is checkpoints.UNKNOWN
    assert "run.json is missing or damaged" in capsys.readouterr().err


@pytest.mark.parametrize("script", ["generate", "evaluate"])
def test_an_output_path_too_long_to_inspect_gives_one_line(tmp_path, capsys, script):
    out = tmp_path / LONG_NAME / "f.png"
    flags = ["mix", "--out", str(out)] if script == "generate" else ["--json", str(out)]
    main = generate.main if script == "generate" else evaluate.main
    assert main(["--model", str(tmp_path / "g.keras"), *flags]) == 2
    one_line_error(capsys)


def test_moving_aside_never_writes_over_a_file_already_there(tmp_path):
    import checkpoints

    ours, folder, rows = run_folder_with_a_stranger(tmp_path)
    (folder / "foreign-ckpt-0005.json").write_text("precious")  # the user's, or a stranger's
    (folder / "foreign-ckpt-0005.weights.h5").write_text("precious too")
    theirs = (folder / "ckpt-0005.json").read_bytes()
    checkpoints.save_checkpoint(ours, folder, 5, rows[:5], run="ours")
    assert (folder / "foreign-ckpt-0005.json").read_text() == "precious"
    assert (folder / "foreign-ckpt-0005.weights.h5").read_text() == "precious too"
    assert (folder / "foreign-2-ckpt-0005.json").read_bytes() == theirs


def test_a_lone_weights_file_or_a_damaged_own_checkpoint_is_moved_aside(tmp_path):
    import checkpoints

    ours, folder, rows = run_folder_with_a_stranger(tmp_path)
    (folder / "ckpt-0003.weights.h5").write_text("lonely")  # no json beside it
    checkpoints.save_checkpoint(ours, folder, 3, rows[:3], run="ours")
    assert (folder / "foreign-ckpt-0003.weights.h5").read_text() == "lonely"
    damaged = folder / "ckpt-0002.weights.h5"
    data = bytearray(damaged.read_bytes())
    data[len(data) // 2] ^= 255
    damaged.write_bytes(bytes(data))  # the run's own, damaged: not replaced, not pruned
    checkpoints.save_checkpoint(ours, folder, 2, rows[:2], run="ours")
    assert (folder / "foreign-ckpt-0002.weights.h5").read_bytes() == bytes(data)
    written = checkpoints.save_checkpoint(ours, folder, 4, rows[:4], run="ours")
    checkpoints.prune_checkpoints(folder, 1, written)
    assert (folder / "foreign-ckpt-0002.weights.h5").is_file()
