"""Optional extras: which commands need which install, said in one line when one is missing.

The core install runs, sweeps, serves the app and reproduces the claims at the defaults.
Calibration, optimisation, sensitivity analysis, scenario discovery and Dask clusters
bring large libraries, so they come as extras (``pip install 'isk-defection[calibrate]'``)
declared in pyproject.toml. A command checks its extra before it writes anything, so a
missing one ends as bad input does: one line, exit 2.
"""

from __future__ import annotations

import importlib.util
from typing import Any

# extra -> the import names it provides (pyproject.toml's [project.optional-dependencies])
EXTRAS: dict[str, tuple[str, ...]] = {
    "calibrate": ("pyabc", "sklearn", "SALib"),
    "optimize": ("pymoo", "ema_workbench"),
    "analysis": ("SALib", "ema_workbench"),
    "dask": ("dask", "distributed"),
}


class MissingExtraError(ValueError):
    """A command's optional libraries are not installed (exit 2, like bad input)."""


def missing(extra: str) -> list[str]:
    """The import names of ``extra`` that cannot be found in this environment."""
    return [name for name in EXTRAS[extra] if importlib.util.find_spec(name) is None]


def require(extra: str, what: str) -> None:
    """Raise a one-line :class:`MissingExtraError` when ``what`` lacks its ``extra``."""
    absent = missing(extra)
    if absent:
        raise MissingExtraError(
            f"{what}: needs the [{extra}] extra ({', '.join(absent)} not installed): "
            f"pip install 'isk-defection[{extra}]'"
        )


# what a command needs beyond the core install, read from its parsed arguments
COMMAND_EXTRAS: dict[str, str] = {
    "calibrate": "calibrate",
    "optimize": "optimize",
    "sensitivity": "analysis",
}


def check_command(args: Any) -> None:
    """Refuse, in one line, a ``defection`` command whose extra is missing (before it writes).

    ``args`` is the parsed command line: its ``command``, and the options that reach for
    an extra (``--posterior`` on reproduce needs PRIM; ``--scheduler`` and
    ``--local-cluster`` need Dask).
    """
    command = getattr(args, "command", None)
    if command in COMMAND_EXTRAS:
        require(COMMAND_EXTRAS[command], f"defection {command}")
    if command == "reproduce" and getattr(args, "posterior", None):
        require("analysis", "reproduce --posterior (scenario discovery by PRIM)")
    if getattr(args, "scheduler", None) or getattr(args, "local_cluster", False):
        require("dask", "--scheduler / --local-cluster")
