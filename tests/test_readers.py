"""For the tutorial's readers: a quiet first run, the notebook run top to bottom, and the English
and Chinese READMEs giving the same commands."""
import json
import os
import re
import subprocess
import sys

import pytest

from conftest import ROOT, SAMPLE

NOTEBOOK = ROOT / "notebooks" / "stylegan_walkthrough.ipynb"
RUN_CELLS = """
import json, sys
cells = json.load(open(sys.argv[1]))["cells"]
namespace = {"__name__": "__main__"}
for i, cell in enumerate(cells):  # in order, in one namespace, as a kernel runs them
    if cell["cell_type"] == "code":
        exec(compile("".join(cell["source"]), f"<cell {i}>", "exec"), namespace)
"""


@pytest.mark.slow
def test_a_first_run_prints_no_tensorflow_chatter_and_says_what_it_trains(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    run = subprocess.run([sys.executable, str(ROOT / "train.py"), "--data", str(SAMPLE),
                          "--limit", "64", "--batch-size", "32", "--epochs", "2",
                          "--out", str(tmp_path / "run")], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    assert run.stderr == ""  # no cuInit error, no oneDNN or absl lines
    intro = run.stdout.splitlines()[:3]
    assert intro[0].startswith("Training StyleGAN (stylegan recipe") and str(SAMPLE) in intro[0]
    assert str(tmp_path / "run") in intro[1] and "the run's time is said" in intro[2]
    # timed from the 2nd step (the 1st compiles) to the 1st epoch's end: 2 of 4 steps left
    assert re.search(r"Measured \d+ ms a step: the 2 steps left take about \d+ s", run.stdout)


def stored_outputs(kind):
    """The notebook's stored outputs of one kind (an output type, or a MIME type in `data`)."""
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    return [output for cell in cells if cell["cell_type"] == "code" for output in cell["outputs"]
            if kind == output["output_type"] or kind in output.get("data", {})]


def test_the_notebook_is_stored_executed_top_to_bottom_with_its_pictures():
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    code = [cell for cell in cells if cell["cell_type"] == "code"]
    assert [cell["execution_count"] for cell in code] == list(range(1, len(code) + 1))
    # the shipped generator's grid, truncation, noise, and the grid after a few steps
    assert len(stored_outputs("image/png")) == 4
    assert not stored_outputs("error")
    assert not [o for o in stored_outputs("stream") if o["name"] == "stderr"]
    assert "Colab" in "".join(cells[0]["source"])


@pytest.mark.slow
def test_the_notebook_runs_top_to_bottom(tmp_path):
    env = {**os.environ, "NOTEBOOK_STEPS": "8", "MPLBACKEND": "Agg", "TMPDIR": str(tmp_path)}
    run = subprocess.run([sys.executable, "-c", RUN_CELLS, str(NOTEBOOK)], cwd=NOTEBOOK.parent,
                         env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Warning" not in run.stderr, run.stderr  # nothing a reader would take for a fault
    assert "rows give style slots 0..2 of 4, columns the rest" in run.stdout
    assert "AdaNorm: (2, 7, 7, 128) -> (2, 7, 7, 128) | each map's mean within 0.000 of 0, std 1.000" in run.stdout
    assert "Mapping net: z (2, 4, 100) -> (2, 4, 128)" in run.stdout
    assert "Style block: x (2, 7, 7, 128) -> (2, 14, 14, 64)" in run.stdout
    assert "losses after 8 steps" in run.stdout
    out, = tmp_path.glob("stylegan-notebook-*")
    assert {p.name for p in out.iterdir()} == {"truncation.png", "noise.png"}


def commands(readme):
    """The command lines of a README's bash blocks, without their comments."""
    blocks = re.findall(r"```bash\n(.*?)```", readme.read_text(), re.S)
    return sorted({line.split("  #")[0].strip() for block in blocks
                   for line in block.splitlines() if line.strip()})


def test_the_chinese_readme_is_linked_both_ways_and_gives_the_same_commands():
    english, chinese = ROOT / "README.md", ROOT / "README.zh-CN.md"
    assert "README.zh-CN.md" in english.read_text()[:1500]
    assert "README.md" in chinese.read_text()[:1500]
    assert commands(english) and commands(chinese) == commands(english)
