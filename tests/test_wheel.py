"""The wheel as a packager and a Mesa user get it: installed outside the clone, core only.

The wheel is built with ``pip wheel``, installed with its core dependencies (pinned by
requirements.lock, taken from uv's cache) into a fresh virtual environment of its own
(no system site-packages: the clone is not importable there), and used from a folder
that holds its own ``model.py``, ``agents.py`` and ``viz.py`` (the usual Mesa layout),
which must not shadow the package. Then ``defection run``, ``defection sweep`` on the
shipped example spec (found through importlib.resources), the import a Mesa user writes,
and ``defection app``, whose page loads and plays one week in Chromium.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
UV = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
CHROMIUM = "/usr/bin/chromium"
SHADOWS = ("model", "agents", "viz", "experiments")  # a user's own modules of these names

pytestmark = pytest.mark.skipif(UV is None, reason="uv (the [test] extra) installs the wheel")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The project's wheel, built outside the clone."""
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-q", "-w", str(dist)],
        check=True,
        timeout=300,
    )
    (built,) = dist.glob("isk_defection-*.whl")
    return built


@pytest.fixture(scope="module")
def env(wheel, tmp_path_factory) -> dict:
    """A fresh environment with the wheel and its core dependencies, and a user's folder."""
    where = tmp_path_factory.mktemp("installed")
    assert ROOT not in where.parents
    venv = where / "venv"
    subprocess.run([UV, "venv", "-q", "--python", sys.executable, str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [UV, "pip", "install", "-q", "--python", str(python), str(wheel)]
        + ["-c", str(ROOT / "requirements.lock")],
        check=True,
        timeout=600,
    )
    # the page's browser files: the same npm packages `python -m isk_defection.viz.assets`
    # puts in Solara's cache; copied from this environment rather than fetched again
    from isk_defection.viz.assets import cache_dir

    cdn = venv / "share" / "solara" / "cdn"
    cdn.parent.mkdir(parents=True)
    shutil.copytree(cache_dir(), cdn)
    user = where / "my-mesa-project"
    user.mkdir()
    for name in SHADOWS:
        (user / f"{name}.py").write_text(f'raise ImportError("the user\'s own {name}.py ran")\n')
    variables = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL"))}
    variables |= {"PATH": f"{venv / 'bin'}:{os.environ['PATH']}", "PYTHONNOUSERSITE": "1"}
    return {"venv": venv, "python": python, "user": user, "env": variables}


def call(env: dict, *command: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """``command`` run in the user's folder with the installed environment first on PATH."""
    return subprocess.run(
        command, cwd=env["user"], env=env["env"], capture_output=True, text=True, timeout=timeout
    )


def package_files(env: dict) -> set[Path]:
    site = next((env["venv"] / "lib").glob("python3*/site-packages/isk_defection"))
    return {p for p in site.rglob("*") if "__pycache__" not in p.parts}


def test_the_wheel_is_one_package_with_its_data(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"isk_defection"}  # no generic top-level model/, viz/ ... to clash
    for data in ("viz/live.vue", "experiments/specs/example.toml"):
        assert f"isk_defection/{data}" in names


def test_the_installed_package_is_not_the_clone_and_not_the_users_model(env):
    result = call(
        env,
        str(env["python"]),
        "-c",
        "import isk_defection.model as m; from isk_defection.model import DefectionModel; "
        "print(m.__file__); print(DefectionModel(population=100, rng=1).p.population)",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    location, population = result.stdout.split()
    assert Path(location).is_relative_to(env["venv"]) and population == "100"


def test_run_and_the_shipped_example_sweep_write_to_the_users_folder(env):
    before = package_files(env)
    ran = call(env, "defection", "run", "--steps", "3", "--out", "out/run", "-q")
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert any((env["user"] / "out" / "run").iterdir())
    spec = call(
        env,
        str(env["python"]),
        "-c",
        "import importlib.resources as r; "
        "print(r.files('isk_defection.experiments.specs') / 'example.toml')",
    ).stdout.strip()
    assert Path(spec).is_relative_to(env["venv"])
    swept = call(env, "defection", "sweep", spec, "--out", "out/sweep", "-q")
    assert swept.returncode == 0, swept.stderr[-2000:]
    summary = (env["user"] / "out" / "sweep" / "summary.csv").read_text().splitlines()
    assert len(summary) == 1 + 4 * 3 * 2  # a header and every design point of the spec
    assert package_files(env) == before  # nothing written into the installed package


def test_a_command_of_a_missing_extra_says_which_to_install(env):
    result = call(env, "defection", "optimize", "x.toml", "--quick")
    assert result.returncode == 2
    assert result.stderr.strip().endswith("pip install 'isk-defection[optimize]'")
    assert len(result.stderr.strip().splitlines()) == 1


def test_the_app_loads_and_plays_a_week_in_chromium(env):
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        ["defection", "app", "--port", str(port)],
        cwd=env["user"],
        env=env["env"] | {"DEFECTION_DISCONNECT_GRACE": "3"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.time() + 90
        while True:
            assert server.poll() is None, server.stdout.read() if server.stdout else ""
            assert time.time() < deadline, "the app did not start in 90 s"
            try:
                with urllib.request.urlopen(url, timeout=5):
                    break
            except OSError:
                time.sleep(0.3)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"]
            )
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("response", lambda r: r.status >= 400 and errors.append(f"{r.status} {r.url}"))
            page.goto(url)
            drawn = "() => {{ const e = document.querySelector('.dv-live'); return e && +e.dataset.frames > 0 && e.dataset.week === '{}'; }}"
            page.wait_for_function(drawn.format(0), timeout=60_000)
            page.get_by_role("button", name="Step").click()
            page.wait_for_function(drawn.format(1), timeout=30_000)
            assert page.locator(".status-week .dv-value").inner_text() == "1"
            assert errors == []
            browser.close()
    finally:
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
