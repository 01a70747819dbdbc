"""How fast does the explorer answer a slider? Times it in a real browser.

    python benchmarks/bench_explore.py             # the shipped generator, 20 moves of the split
    python benchmarks/bench_explore.py --screenshot docs/images/explorer.png

Starts `python explore.py` on a free port, opens it in the system's Chromium (Playwright drives
it headless), moves the split slider back and forth, and prints for each move the time from the
slider's new value to the new mix on the page: what a person waits for, the page's request, the
generator's work (the three images and the 36 of the grid) and the browser's drawing together.
Needs the explorer's extra (pip install -r requirements-explorer.txt) and Chromium (on Debian
or Ubuntu: apt-get install chromium; CHROMIUM=PATH names another binary).
`tests/test_explore.py` drives the page with the same functions.
"""
import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INSTALL_CHROMIUM = ("no Chromium for the explorer's browser test: install it (apt-get install "
                    "chromium) or set CHROMIUM to a Chromium binary")


def chromium():
    """The Chromium binary to drive: $CHROMIUM, or chromium / chromium-browser on the PATH."""
    found = os.environ.get("CHROMIUM") or shutil.which("chromium") or \
        shutil.which("chromium-browser")
    if not found or not os.access(found, os.X_OK):
        raise RuntimeError(INSTALL_CHROMIUM)
    return found


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_explorer(*flags, timeout=180):
    """`python explore.py FLAGS` on a free port, once its page answers: (process, url)."""
    port = free_port()
    process = subprocess.Popen([sys.executable, str(ROOT / "explore.py"), "--port", str(port),
                                *map(str, flags)], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    url, deadline = f"http://127.0.0.1:{port}/", time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"explore.py stopped: {process.stderr.read()[-2000:]}")
        try:
            urllib.request.urlopen(url, timeout=5)
            return process, url
        except OSError:
            if time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"explore.py did not answer at {url} in {timeout} s")
            time.sleep(0.5)


def open_page(playwright, url):
    """A headless Chromium page on the explorer, once its first mix is drawn."""
    browser = playwright.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
    page = browser.new_page(viewport={"width": 1280, "height": 1400})
    page.goto(url)
    page.wait_for_selector("#mix-image img", timeout=120_000)
    return browser, page


def image_src(page, elem_id):
    return page.locator(f"#{elem_id} img").get_attribute("src")


def move_and_wait(page, elem_id, value, watched="mix-image"):
    """Set a slider's value as a person drags it; the seconds until `watched` shows a new
    image."""
    before = image_src(page, watched)
    start = time.perf_counter()
    page.locator(f"#{elem_id} input[type=range]").fill(str(value))
    page.wait_for_function("([id, old]) => document.querySelector(`#${id} img`).src !== old",
                           arg=[watched, before], timeout=60_000)
    return time.perf_counter() - start


def draw_stroke(page, offsets=(0,)):
    """With the mouse, on the explorer's canvas: a slanted stroke down its middle, once for each
    sideways offset (pixels): several side by side make one thick stroke."""
    page.locator("#sketch button[aria-label=Brush]").click()
    box = page.locator("#sketch canvas").first.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    for offset in offsets:
        page.mouse.move(x + offset - 20, y - 100)
        page.mouse.down()
        for t in range(-100, 101, 10):
            page.mouse.move(x + offset + 0.2 * t, y + t)
        page.mouse.up()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--moves", type=int, default=20)
    p.add_argument("--screenshot", metavar="PNG",
                   help="first, a picture of the page as it opens (docs/images/explorer.png)")
    args = p.parse_args()
    from playwright.sync_api import sync_playwright

    process, url = start_explorer()
    try:
        with sync_playwright() as playwright:
            browser, page = open_page(playwright, url)
            if args.screenshot:
                page.screenshot(path=args.screenshot, full_page=True)
            move_and_wait(page, "split", 1)  # the page's first request: not timed
            times = [move_and_wait(page, "split", 2 + i % 2) for i in range(args.moves)]
            browser.close()
    finally:
        process.terminate()
        process.wait(timeout=30)
    print(f"split slider -> new mix on the page, {args.moves} moves: median "
          f"{1000 * statistics.median(times):.0f} ms, slowest {1000 * max(times):.0f} ms "
          f"({os.cpu_count()} CPU cores)")


if __name__ == "__main__":
    main()
