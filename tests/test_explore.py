"""explore.py: the views it draws are the project's mixes, its inputs are checked, its saves
write nothing over; and the page itself, driven in a real (headless) Chromium."""
import io

import numpy as np
import pytest
from PIL import Image

import evaluate
import explore
import stylegan
from checkpoints import load_generator
from utils import UserError, to_uint8

SEED_ROW, SEED_COL = 3, 8


@pytest.fixture(scope="module")
def mixer():
    return explore.Mixer(load_generator())  # the shipped generator


def expected_view(generator, row, col, crossover, noise_seed=0):
    """(row source, mix, column source) straight from stylegan.generate: z of each seed on
    every slot, the row's z on the slots before the crossover, generate.py's fixed noise."""
    n_style, latent = generator.input[0].shape[1:]
    z1, z2 = (np.random.default_rng(seed).standard_normal((1, latent), "float32")
              for seed in (row, col))
    z = np.concatenate([stylegan.repeat_z(z1, n_style),
                        stylegan.mix_styles(z1, z2, stylegan.slots_before(crossover, n_style)),
                        stylegan.repeat_z(z2, n_style)])
    noise = np.repeat(np.random.default_rng(noise_seed).standard_normal((1, 28, 28), "float32"),
                      3, axis=0)
    return to_uint8(stylegan.generate(generator, z, noise))


def test_a_view_is_the_projects_mix_of_its_two_seeds(mixer):
    for crossover in (1, 3):
        view = mixer.view(SEED_ROW, SEED_COL, list(range(crossover)))
        np.testing.assert_array_equal(
            np.stack(view), expected_view(mixer.ex.generator, SEED_ROW, SEED_COL, crossover))


def test_the_split_changes_the_mix_and_not_the_sources(mixer):
    coarse = mixer.view(SEED_ROW, SEED_COL, [0])
    most = mixer.view(SEED_ROW, SEED_COL, [0, 1, 2])
    assert not np.array_equal(coarse[1], most[1])
    np.testing.assert_array_equal(coarse[0], most[0])
    np.testing.assert_array_equal(coarse[2], most[2])
    nothing, everything = (mixer.view(SEED_ROW, SEED_COL, slots) for slots in ([], [0, 1, 2, 3]))
    np.testing.assert_array_equal(nothing[1], nothing[2])  # the column's z on every slot
    np.testing.assert_array_equal(everything[1], everything[0])


def test_noise_off_everywhere_is_noise_zeroed_and_the_scales_come_back(mixer):
    scales = {name: layer.noise_scale.numpy() for name, layer in mixer.noise_layers.items()}
    quiet = mixer.view(SEED_ROW, SEED_COL, [0], quiet=list(mixer.noise_layers))
    np.testing.assert_array_equal(np.stack(quiet),
                                  np.stack(mixer.view(SEED_ROW, SEED_COL, [0], mode="off")))
    assert not np.array_equal(quiet[1], mixer.view(SEED_ROW, SEED_COL, [0])[1])
    for name, layer in mixer.noise_layers.items():
        np.testing.assert_array_equal(layer.noise_scale.numpy(), scales[name])


def test_the_grid_holds_the_views_of_its_seeds(mixer):
    grid = mixer.grid([0, 1, 2])
    assert grid.shape == (6 * 28, 6 * 28)
    row, mix, col = mixer.view(explore.GRID_ROWS[1], explore.GRID_COLS[2], [0, 1, 2])
    cell = lambda r, c: grid[28 * r: 28 * (r + 1), 28 * c: 28 * (c + 1)]
    np.testing.assert_array_equal(cell(2, 3), mix)
    np.testing.assert_array_equal(cell(2, 0), row)
    np.testing.assert_array_equal(cell(0, 3), col)


def test_the_slots_are_named_by_what_they_style(mixer):
    assert mixer.slots == ["7x7", "14x14", "28x28", "to_image"]


@pytest.mark.parametrize("value", [-1, 2.5, None, float("nan"), 2.0 ** 64])
def test_a_seed_out_of_range_is_refused_with_what_to_give(value):
    with pytest.raises(UserError, match="give a whole number from 0"):
        explore.check_seed(value, "row seed")


def test_a_saved_view_is_named_after_its_settings_and_never_written_over(mixer, tmp_path):
    images = mixer.view(SEED_ROW, SEED_COL, [0, 1])
    name = explore.view_name(SEED_ROW, SEED_COL, mixer.slots, [0, 1], 0.7, "fixed", ())
    assert name == "explore-row3-col8-rows7x7,14x14-psi0.7-noisefixed.png"
    first = explore.save_view(images, tmp_path / "out", name)
    second = explore.save_view(images, tmp_path / "out", name)
    assert first.name == name and second.name == name.replace(".png", "-2.png")
    strip = np.asarray(Image.open(first))
    assert strip.shape == (28 * explore.ZOOM, 3 * 28 * explore.ZOOM)
    np.testing.assert_array_equal(strip[:: explore.ZOOM, 28 * explore.ZOOM:: explore.ZOOM][:, :28],
                                  images[1])


def test_a_view_is_never_saved_into_a_training_run(mixer, run_folder):
    with pytest.raises(UserError, match="training run"):
        explore.save_view(mixer.view(1, 2, [0]), run_folder / "figures", "x.png")
    assert not (run_folder / "figures").exists()


def test_the_measured_facts_follow_the_split(mixer):
    facts = explore.measured_facts(explore.SHIPPED_GENERATOR, [0, 1, 2], 4)
    assert "FID 6.04" in facts and "row's digit in 95%" in facts and "r 0.88" in facts
    assert "row's digit in 22%" in explore.measured_facts(explore.SHIPPED_GENERATOR, [0], 4)
    assert "no mix" in explore.measured_facts(explore.SHIPPED_GENERATOR, [], 4)


def test_a_model_without_measurements_says_how_to_make_them(tmp_path):
    facts = explore.measured_facts(tmp_path / "generator.keras", [0], 4)
    assert "python evaluate.py --model" in facts and "generator.eval.json" in facts


@pytest.mark.parametrize("flags, message", [
    (["--model", "README.md"], "not a saved generator"),
    (["--port", "0"], "--port 0"),
    (["--model", "models/generator.keras", "--outdir", "RUN/figures"], "training run"),
])
def test_bad_arguments_give_one_line_before_any_page(flags, message, run_folder, capsys,
                                                     monkeypatch):
    flags = [flag.replace("RUN", str(run_folder)) for flag in flags]
    monkeypatch.chdir(explore.Path(__file__).resolve().parent.parent)
    assert explore.main(flags) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err


def test_without_gradio_it_says_how_to_install_it(monkeypatch, capsys):
    monkeypatch.setattr(explore.importlib.util, "find_spec", lambda name: None)
    assert explore.main([]) == 2
    assert "pip install -r requirements-explorer.txt" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# The page in a real browser
# ---------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_the_page_in_a_browser_mixes_saves_and_refuses_bad_seeds(tmp_path):
    from benchmarks import bench_explore as browser_test

    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("no Playwright for the explorer's browser test: pip install -r "
                    "requirements-explorer.txt")
    try:
        browser_test.chromium()
    except RuntimeError as error:
        pytest.fail(str(error))
    generator = load_generator()
    process, url = browser_test.start_explorer("--outdir", tmp_path / "saved")
    try:
        with sync_playwright() as playwright:
            browser, page = browser_test.open_page(playwright, url)
            shown = lambda: np.asarray(Image.open(io.BytesIO(
                page.request.get(browser_test.image_src(page, "mix-image")).body())))
            mix_at = lambda k: explore.enlarged(expected_view(generator, SEED_ROW, SEED_COL,
                                                              k)[1])
            # the page opens at the grid's split: the rows give 7x7, 14x14 and 28x28
            np.testing.assert_array_equal(shown(), mix_at(3))
            browser_test.move_and_wait(page, "split", 1)  # the rows give 7x7 only
            np.testing.assert_array_equal(shown(), mix_at(1))
            assert "Row (seed 3) gives: 7x7. Column (seed 8) gives: 14x14, 28x28, to_image" \
                in page.locator("#gives").inner_text()
            assert "row's digit in 22%" in page.locator("#facts").inner_text()

            page.locator("#save button, button#save").first.click()
            page.wait_for_function("() => document.querySelector('#status').innerText"
                                   ".includes('Saved')", timeout=60_000)
            saved, = (tmp_path / "saved").iterdir()
            assert saved.name == "explore-row3-col8-rows7x7-psi1-noisefixed.png"

            # a thin stroke drawn with the mouse, then a thick one, each used as the column:
            # the mix (the row's 9, the column's to_image style) thickens with the drawing
            widths = []
            for offsets in ((0,), (-12, -6, 0, 6, 12)):
                if widths:
                    page.locator("#sketch button[aria-label='Clear canvas']").click()
                browser_test.draw_stroke(page, offsets)
                before = browser_test.image_src(page, "mix-image")
                page.locator("button#use-col").click()
                page.wait_for_function("(old) => document.querySelector('#mix-image img').src "
                                       "!== old", arg=before, timeout=60_000)
                assert "Column (your drawing)" in page.locator("#gives").inner_text()
                widths.append(evaluate.hand(shown()[None, ::explore.ZOOM, ::explore.ZOOM]
                                            / 127.5 - 1)[0][0])
            assert widths[1] > 1.2 * widths[0], widths
            page.locator("button#back").click()

            seed = page.locator("#row-seed input")
            seed.fill("-5")
            seed.press("Enter")
            page.wait_for_function("() => document.querySelector('#status').innerText"
                                   ".includes('give a whole number')", timeout=60_000)

            page.locator("#model textarea, #model input").first.fill("README.md")
            page.locator("button#load").click()
            page.wait_for_function("() => document.querySelector('#status').innerText"
                                   ".includes('not a saved generator')", timeout=60_000)
            assert "Traceback" not in page.content()
            page.screenshot(path=str(tmp_path / "explorer.png"), full_page=True)
            browser.close()
    finally:
        process.terminate()
        process.wait(timeout=30)
