"""Frame cost of the page at week 50 and week 10,000: does drawing grow with the run?

The page keeps each chart series downsampled by pixel column and extends it by the new
weeks only (viz/live.vue, ``buckets``), so a frame should cost the same at any length.
This grows the series the browser holds to a given week (a random walk from the run's
own values, as the frames would append them), then times ``draw()`` over frames that
each add one week, as playing does: the median is the cost of a frame.

Usage:  python benchmarks/viz_frames.py [--url http://127.0.0.1:8765/]
(starts its own `solara run viz/app.py` unless --url is given; writes
benchmarks/results/viz_frames.json). The page's own tests call :func:`frame_cost`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"

GROW = """(week) => {
  const dv = document.querySelector('.dv-live').__dv, st = dv.st;
  window.__dvGrow = (to) => {
    for (let w = st.weeks.length; w <= to; w++) {
      st.weeks.push(w);
      for (const arr of Object.values(st.values)) {
        const last = arr.length ? arr[arr.length - 1][1] : null;
        arr.push([w, last == null ? null : Math.max(0, last * (1 + 0.02 * (Math.random() - 0.5)))]);
      }
    }
    st.week = to;
  };
  window.__dvGrow(week);
  st.dirty = true;
  dv.draw();  // the first frame at this length (the axis may have grown: a rebuild)
}"""

DRAW = """([week, frames]) => {
  const dv = document.querySelector('.dv-live').__dv, st = dv.st;
  const total = [], charts = [];
  for (let i = 1; i <= frames; i++) {
    window.__dvGrow(week + i);  // one more week per frame, as playing appends them
    st.dirty = true;
    const t0 = performance.now();
    dv.draw();
    total.push(performance.now() - t0);
    charts.push(st.timing.charts);
  }
  const panel = dv.cfg.panels.find((p) => p.id === 'strength');
  const box = document.querySelector('[data-chart="strength"]');
  const f = dv.frameOf(panel, box.clientWidth, box.clientHeight);
  const points = dv.project(st.values[panel.series[0].key], f).length;
  return { total: total, charts: charts, points: points, width: box.clientWidth };
}"""


def frame_cost(page, week: int, frames: int = 60) -> dict:
    """Median ms per frame at ``week`` (the page must show a run at week 0), and points drawn.

    The series are grown first and the garbage of growing them is left a second to be
    collected, so the timed frames measure drawing, not the benchmark's own allocation.
    """
    page.evaluate(GROW, week)
    page.wait_for_timeout(1_000)
    out = page.evaluate(DRAW, [week, frames])
    return {
        "week": week,
        "median ms per frame": round(statistics.median(out["total"]), 2),
        "median ms for the charts": round(statistics.median(out["charts"]), 2),
        "points in one series": out["points"],
        "chart width px": out["width"],
    }


def _server() -> tuple[subprocess.Popen, str]:
    port = 8799
    command = [sys.executable, "-m", "solara", "run", str(ROOT / "viz" / "app.py"), "--port",
               str(port), "--production", "--no-open"]  # fmt: skip
    env = os.environ | {"SOLARA_TELEMETRY_MIXPANEL_ENABLE": "false"}
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}/"
    for _ in range(300):
        try:
            urllib.request.urlopen(url, timeout=2)
            return process, url
        except OSError:
            time.sleep(0.3)
    process.kill()
    raise SystemExit("the page server did not start in 90 s")


def main() -> None:
    """Measure in headless Chromium; print and save the figures."""
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running page server (default: start one)")
    args = parser.parse_args()
    process, url = (None, args.url) if args.url else _server()
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--headless"])
            results = []
            for week in (50, 2_000, 10_000):
                page = browser.new_page(viewport={"width": 1440, "height": 1000})
                page.goto(url)
                page.wait_for_function("() => +document.querySelector('.dv-live')?.dataset.frames > 0",
                                       timeout=90_000)  # fmt: skip
                results.append(frame_cost(page, week))
                page.close()
            browser.close()
    finally:
        if process is not None:
            process.kill()
    figures = {"load average (1 min)": round(os.getloadavg()[0], 1), "frames": results}
    print(json.dumps(figures, indent=2))
    (ROOT / "benchmarks" / "results" / "viz_frames.json").write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
