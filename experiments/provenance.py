"""Where a result came from: package version, commit of this project, Python, platform, command.

Every run.json and sweep manifest carries this record so that a published figure can be
traced to the code and environment that made it. The commit is that of *this* project:
git is asked only when the project's own folder is the top of a git work tree (a copy
installed inside another repository must not record that repository's HEAD); an
installed copy falls back to the commit pip recorded in its ``direct_url.json``.
"""

from __future__ import annotations

import json
import platform
import shlex
import subprocess
import sys
from functools import cache
from importlib.metadata import PackageNotFoundError, distribution, version
from pathlib import Path
from typing import Any

DISTRIBUTION = "isk-defection"
ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("mesa", "numpy", "scipy", "pandas", "pyarrow", "solara", "distributed", "SALib")


def package_version() -> str:
    """The installed distribution's version (pyproject.toml), or 'unknown' if not installed."""
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return "unknown"


def versions() -> dict[str, str]:
    """Versions of this package and of the libraries that shape its results."""
    found = {DISTRIBUTION: package_version()}
    for package in PACKAGES:
        try:
            found[package] = version(package)
        except PackageNotFoundError:  # optional extras (Dask, SALib) may be absent
            continue
    return found


def _git(*args: str) -> str:
    done = subprocess.run(
        ["git", *args], capture_output=True, text=True, check=True, cwd=ROOT, timeout=10
    )
    return done.stdout.strip()


@cache
def git_state() -> dict[str, Any]:
    """The commit of this project, and whether tracked files differ from it (then it is not enough).

    Cached: the answer cannot change while one command runs, and a sweep asks twice.
    """
    try:
        top = Path(_git("rev-parse", "--show-toplevel")).resolve()
        if top == ROOT:
            commit = _git("rev-parse", "HEAD")
            changes = _git("status", "--porcelain", "--untracked-files=no")
            return {"commit": commit, "uncommitted_changes": bool(changes)}
    except (OSError, subprocess.SubprocessError):
        pass
    return {"commit": _installed_commit(), "uncommitted_changes": None}


def _installed_commit() -> str | None:
    """The commit pip installed from (PEP 610 direct_url.json), if it was a VCS install."""
    try:
        text = distribution(DISTRIBUTION).read_text("direct_url.json")
    except PackageNotFoundError:
        return None
    if not text:
        return None
    return json.loads(text).get("vcs_info", {}).get("commit_id")


def provenance(argv: list[str] | None = None) -> dict[str, Any]:
    """The provenance record written into run.json and sweep manifests."""
    command = ["defection", *argv] if argv is not None else sys.argv
    return {
        "package": DISTRIBUTION,
        "version": package_version(),
        **git_state(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "command": shlex.join(str(part) for part in command),
        "versions": versions(),
    }


def version_line() -> str:
    """What ``defection --version`` prints: version, and the commit when known."""
    state = git_state()
    commit = state["commit"]
    suffix = ""
    if commit:
        dirty = " with uncommitted changes" if state["uncommitted_changes"] else ""
        suffix = f" (commit {commit[:12]}{dirty})"
    return f"defection {package_version()}{suffix}"
