"""Install the browser files of Solara's page into Solara's local cache, from the npm registry.

Solara's page loads its front end (the Vuetify app, RequireJS, Font Awesome) through
Solara's CDN proxy, which fetches each file from a public CDN on first use and caches it
under ``<venv>/share/solara/cdn``. Here no network is reachable but the package
registries, so that first fetch fails and the page stays blank. This puts the same npm
packages, at the exact versions Solara's page template names, into that cache with
``npm pack`` — once, at install time, never while the app or its tests run.

Usage: ``python -m isk_defection.viz.assets`` (install what is missing) or ``--check`` (exit 1 and
name what is missing).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import ipyvue
import solara.server
import solara.server.settings

PINNED = re.compile(r"\{\{cdn\}\}/((?:@[\w.-]+/)?[\w.-]+@\d+\.\d+\.\d+)/")


def cache_dir() -> Path:
    """Where Solara's CDN proxy looks for files before fetching them."""
    return Path(solara.server.settings.assets.proxy_cache_dir)


def required() -> list[str]:
    """The ``name@version`` npm packages the page loads, for the installed Solara and ipyvue."""
    template = Path(solara.server.__file__).parent / "templates" / "solara.html.j2"
    vuetify_app = (
        "solara-vuetify3-app@" if ipyvue.__version__.startswith("3") else "solara-vuetify-app@"
    )
    names = sorted(set(PINNED.findall(template.read_text())))
    names = [n for n in names if "solara-vuetify" not in n or vuetify_app in n]
    fontawesome = solara.server.settings.assets.fontawesome_path.strip("/").split("/")[0]
    return [*names, fontawesome]


def missing(root: Path) -> list[str]:
    """The required packages not yet unpacked under ``root``."""
    return [name for name in required() if not (root / name / "package.json").exists()]


def install(names: list[str], root: Path) -> None:
    """``npm pack`` each package and unpack it to ``root/name@version`` (the CDN's layout)."""
    with tempfile.TemporaryDirectory() as scratch:
        result = subprocess.run(
            ["npm", "pack", "--json", *names],
            cwd=scratch,
            capture_output=True,
            text=True,
            check=True,
        )
        for packed in json.loads(result.stdout):
            target = root / f"{packed['name']}@{packed['version']}"
            with tarfile.open(Path(scratch) / packed["filename"]) as tar:
                for member in tar.getmembers():
                    if member.isfile() and member.name.startswith("package/"):
                        member.name = member.name.removeprefix("package/")
                        tar.extract(member, target, filter="data")
            print(f"installed {target}")


def main(argv: list[str] | None = None) -> int:
    """Install the missing packages, or with ``--check`` only report them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report missing files")
    args = parser.parse_args(argv)
    root = cache_dir()
    absent = missing(root)
    if args.check:
        for name in absent:
            print(f"missing {root / name} (run: python -m isk_defection.viz.assets)")
        return 1 if absent else 0
    if absent:
        install(absent, root)
    return 0


if __name__ == "__main__":
    sys.exit(main())
