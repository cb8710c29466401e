"""The page end to end: `solara run viz/app.py` on a free loopback port, driven in headless Chromium.

Debian's Chromium (/usr/bin/chromium) through Playwright's Python API; nothing is
downloaded while the tests run (the page's own front-end files come from Solara's local
cache, filled at install time by `python -m viz.assets`). A screenshot and the measured
steps per second go to results/viz-browser/.
"""

from __future__ import annotations

import base64
import io
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Page, expect, sync_playwright

from viz import assets
from viz.charts import ChartsPicture, y_limits

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "results" / "viz-browser"
CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
MODERATION_BLUE = (0x1F, 0x77, 0xB4)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    """The app under `solara run` on a free port; its log is checked for downloads."""
    absent = assets.missing(assets.cache_dir())
    assert not absent, f"front-end files missing {absent}: run `python -m viz.assets`"
    OUT.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log_path = OUT / "server.log"
    command = [sys.executable, "-m", "solara", "run", str(ROOT / "viz" / "app.py")]
    command += ["--host", "127.0.0.1", "--port", str(port), "--production", "--no-open"]
    env = os.environ | {"SOLARA_TELEMETRY_MIXPANEL_ENABLE": "false"}
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 90
    while True:
        assert process.poll() is None, log_path.read_text()
        assert time.time() < deadline, "solara did not start in 90 s"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    break
        except OSError:
            time.sleep(0.3)
    yield {"url": url, "log": log_path}
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


FAILURES: dict[int, list[str]] = {}  # per page: failed requests and console errors


def open_page(browser, server) -> Page:
    """A fresh browser context (a new visitor) with the page loaded and its status shown."""
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    page = context.new_page()
    failures = FAILURES.setdefault(id(page), [])
    page.on("response", lambda r: r.status >= 400 and failures.append(f"{r.status} {r.url}"))
    page.on("console", lambda m: m.type == "error" and failures.append(m.text))
    page.goto(server["url"])
    wait_week(page, 0, timeout=60_000)
    return page


@pytest.fixture
def page(browser, server):
    page = open_page(browser, server)
    yield page
    page.context.close()


def week(page: Page) -> int:
    return int(page.locator(".status-week").inner_text().split()[-1])


def wait_week(page: Page, expected: int, timeout: float = 15_000) -> None:
    pattern = re.compile(rf"^\s*Week\s*{expected}\s*$")
    expect(page.locator(".status-week")).to_have_text(pattern, timeout=timeout)


def step(page: Page, times: int = 1) -> None:
    start = week(page)
    for i in range(times):
        page.get_by_role("button", name="Step").click()
        wait_week(page, start + i + 1)


def chart_png(page: Page) -> Image.Image:
    """The charts image exactly as the server sent it."""
    encoded = (
        page.locator(".solara-image")
        .nth(1)
        .evaluate(
            """async img => {
            const blob = await (await fetch(img.src)).blob();
            return await new Promise(done => {
                const reader = new FileReader();
                reader.onload = () => done(reader.result.split(",")[1]);
                reader.readAsDataURL(blob);
            });
        }"""
        )
    )
    return Image.open(io.BytesIO(base64.b64decode(encoded))).convert("RGB")


def lever_line_values(image: Image.Image, at_week: float, x_max: float = 10.0) -> list[float]:
    """Values of the moderation line at ``at_week`` in the charts' lever panel, read from pixels."""
    picture = ChartsPicture()
    width, height = image.size
    box = picture.axes[-1].get_position()  # the lever panel, in figure fractions
    low, high = y_limits("unit", np.array([]))  # the lever panel's fixed limits
    column = round((box.x0 + box.width * at_week / x_max) * width)
    pixels = np.asarray(image)[:, column, :].astype(float)
    # An anti-aliased line pixel is the line colour mixed with the white background.
    ink = 255.0 - np.asarray(MODERATION_BLUE, dtype=float)
    share = (255.0 - pixels[:, 0]) / ink[0]
    mixed = np.abs(255.0 - share[:, None] * ink - pixels).max(axis=1)
    rows = np.flatnonzero((share > 0.5) & (mixed < 12))
    top, bottom = (1 - box.y1) * height, (1 - box.y0) * height
    rows = rows[(rows > top) & (rows < bottom)]
    return [round(float(low + (bottom - r) / (bottom - top) * (high - low)), 2) for r in rows]


def test_page_loads_with_its_charts(page, server):
    images = page.locator(".solara-image")
    expect(images).to_have_count(2)
    for i in range(2):
        assert images.nth(i).evaluate("img => img.complete && img.naturalWidth > 400")
    for label in ("Play", "Step", "Reset", "Release prisoners"):
        expect(page.get_by_role("button", name=label)).to_be_visible()
    expect(page.locator(".v-slider")).to_have_count(9)  # speed, population, seven levers
    expect(page.get_by_text("15 Aug 2021")).to_be_visible()
    assert FAILURES[id(page)] == []
    assert "Could not load URL" not in server["log"].read_text()  # nothing fetched from outside


def test_step_advances_the_week_counter(page):
    step(page, 3)
    expect(page.locator(".status-date")).to_contain_text("05 Sep 2021")
    page.screenshot(path=OUT / "page-after-3-steps.png", full_page=True)


def test_play_runs_fast_and_pause_stops(page):
    play = page.get_by_role("button", name="Play")
    play.click()
    expect(page.get_by_role("button", name="Pause")).to_be_visible()
    page.wait_for_function(
        "() => !/Week\\s*0$/.test(document.querySelector('.status-week').textContent.trim())"
    )
    first, started = week(page), time.perf_counter()
    page.wait_for_timeout(4_000)
    rate = (week(page) - first) / (time.perf_counter() - started)
    page.locator(".v-slider").first.locator("[role=slider]").press("End")  # full speed
    page.wait_for_timeout(500)
    first, started = week(page), time.perf_counter()
    page.wait_for_timeout(3_000)
    top_rate = (week(page) - first) / (time.perf_counter() - started)
    page.get_by_role("button", name="Pause").click()
    expect(page.get_by_role("button", name="Play")).to_be_visible()
    page.wait_for_timeout(500)
    stopped = week(page)
    page.wait_for_timeout(1_000)
    assert week(page) == stopped
    (OUT / "steps_per_second.txt").write_text(
        f"default speed (20 weeks/s): {rate:.1f} steps/s\nspeed 100: {top_rate:.1f} steps/s\n"
    )
    assert rate >= 10, f"{rate:.1f} steps/s at the default speed"
    assert top_rate >= rate


def test_moving_moderation_mid_run_acts_without_reset(page):
    step(page, 3)
    before = lever_line_values(chart_png(page), 2.5)
    assert before and all(v < 0.5 for v in before)  # baseline moderation is about 0.3
    track = page.locator(".lever-moderation .v-slider-track").bounding_box()
    page.mouse.click(track["x"] + 0.9 * track["width"], track["y"] + track["height"] / 2)
    expect(page.locator(".lever-moderation")).to_contain_text("0.90")
    assert week(page) == 3  # not reset
    step(page, 3)
    expect(page.get_by_text("scenario baseline · seed 42")).to_be_visible()
    after = lever_line_values(chart_png(page), 5.5)
    assert any(abs(v - 0.9) < 0.03 for v in after), after  # the moderation line is now at 0.9
    assert lever_line_values(chart_png(page), 2.5) == before  # and its history is kept


def test_two_visitors_run_independently(browser, server, page):
    other = open_page(browser, server)
    try:
        step(page, 3)
        page.locator(".lever-witch_hunt [role=slider]").press("Home")
        expect(page.locator(".lever-witch_hunt")).to_contain_text("0.00")
        other.reload()
        expect(other.locator(".status-week")).to_contain_text("0", timeout=60_000)
        assert week(other) == 0
        expect(other.locator(".lever-witch_hunt")).to_contain_text("0.60")
        step(other)
        assert week(page) == 3 and week(other) == 1
    finally:
        other.context.close()


def test_invalid_seed_shows_an_error_and_the_page_keeps_working(page):
    step(page, 2)
    seed = page.get_by_label("Seed")
    seed.fill("abc")
    expect(page.get_by_text("seed: must be a whole number").first).to_be_visible()
    page.get_by_role("button", name="Reset").click()
    expect(page.locator(".run-error")).to_contain_text("Reset refused")
    assert week(page) == 2  # the current run goes on
    step(page)
    seed.fill("7")
    page.get_by_role("button", name="Reset").click()
    expect(page.get_by_text("seed 7")).to_be_visible()
    wait_week(page, 0)
    expect(page.locator(".run-error")).to_have_count(0)
    assert FAILURES[id(page)] == []
