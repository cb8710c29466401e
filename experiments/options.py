"""Command-line option types shared by every command: bounded, finite, said in words.

Each converter refuses a bad value with ``must be ...`` so that the command line's error
is one line naming the option and what it allows (exit status 2), before anything starts.
"""

from __future__ import annotations

import argparse
import difflib
import math
from collections.abc import Callable, Sequence

MAX_WORKERS = 1024


def integer(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: a whole number in [low, high], said in words when it is not."""

    def convert(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            raise argparse.ArgumentTypeError(
                f"must be an integer in [{low:,}, {high:,}] (got {text!r})"
            )
        return value

    return convert


def number(low: float, high: float, *, open_low: bool = False) -> Callable[[str], float]:
    """An argparse type: a finite number in [low, high] (or (low, high] with ``open_low``)."""
    bracket = "(" if open_low else "["

    def convert(text: str) -> float:
        try:
            value = float(text.strip())
        except ValueError:
            value = math.nan
        inside = (low < value if open_low else low <= value) and value <= high
        if not math.isfinite(value) or not inside:
            raise argparse.ArgumentTypeError(
                f"must be a finite number in {bracket}{low:g}, {high:g}] (got {text!r})"
            )
        return value

    return convert


def choice(name: str, choices: Sequence[str]) -> Callable[[str], str]:
    """An argparse type: one of ``choices``, with a suggestion for a near miss."""

    def convert(text: str) -> str:
        if text not in choices:
            raise argparse.ArgumentTypeError(
                f"must be one of {', '.join(choices)} (got {text!r}){suggest(text, choices)}"
            )
        return text

    convert.__name__ = name
    return convert


def suggest(text: str, names: Sequence[str]) -> str:
    """``; did you mean X?`` for the closest name, or nothing."""
    close = difflib.get_close_matches(text, list(names), n=1)
    return f"; did you mean {close[0]}?" if close else ""


def add_engine_options(
    parser: argparse.ArgumentParser, what: str = "sweep", retry: bool = False
) -> None:
    """--workers, --scheduler, --local-cluster, --resume (and --retry-failed)."""
    parser.add_argument(
        "--workers",
        type=integer(1, MAX_WORKERS),
        help="worker processes, local or --local-cluster (default: all cores)",
    )
    parser.add_argument("--scheduler", help="run on an existing Dask cluster: tcp://HOST:PORT")
    parser.add_argument("--local-cluster", action="store_true", help="start a Dask LocalCluster")
    parser.add_argument(
        "--resume", action="store_true", help=f"continue an interrupted {what} in the same --out"
    )
    if retry:
        parser.add_argument(
            "--retry-failed",
            action="store_true",
            help="with --resume: run the runs that failed before again",
        )


def check_engine(args: argparse.Namespace) -> None:
    """Options that exclude each other, refused in one line before anything starts."""
    if getattr(args, "scheduler", None) and getattr(args, "local_cluster", False):
        raise ValueError(
            "--local-cluster: use either --local-cluster or --scheduler ADDRESS, not both"
        )
    if getattr(args, "retry_failed", False) and not getattr(args, "resume", False):
        raise ValueError("--retry-failed: only with --resume (it re-runs the failed runs)")
