"""What every command prints while it works: progress bars and informational lines.

Progress bars only on a terminal; ``-q`` or ``TQDM_DISABLE`` turn them off, so that no
carriage-return progress lines reach a log file or a pipe. ``-q`` also silences the
informational lines (``wrote ...``); errors always reach stderr.
"""

from __future__ import annotations

import argparse
import os


def progress(args: argparse.Namespace) -> bool | None:
    """False with -q or TQDM_DISABLE; otherwise None: a bar only when stderr is a terminal."""
    if getattr(args, "quiet", False):
        return False
    if os.environ.get("TQDM_DISABLE", "").strip().lower() not in ("", "0", "false", "no"):
        return False
    return None


def say(args: argparse.Namespace, text: str) -> None:
    """An informational line on stdout, unless -q."""
    if not getattr(args, "quiet", False):
        print(text, flush=True)
