"""Output folders: claimed before any work starts, never shared, never someone else's.

``defection run`` and ``defection sweep`` write into a folder named by ``--out``. Before
a simulation starts the folder is checked and claimed, so a problem costs one line and no
computing: a path that is a file or cannot be written, a folder holding another kind of
output (a run into a sweep's folder would overwrite its summary.csv) or unrelated files,
and a folder another running command holds (two runs into one folder would silently lose
one). The hold is a ``filelock`` lock on ``OUT/.lock``: portable, and freed by the
operating system when the holder dies, even by SIGKILL.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

MARKER = ".defection.json"  # says which command's output a folder holds
LOCK = ".lock"
KINDS = {"run": "run.json", "sweep": "manifest.json"}  # kind -> its main file


def kind_of(folder: Path) -> str | None:
    """'run' or 'sweep' for a folder of ours, '' for an empty one, None for anything else."""
    marker = folder / MARKER
    if marker.is_file():
        try:
            return str(json.loads(marker.read_text())["kind"])
        except (ValueError, KeyError, TypeError):
            return None
    visible = [p for p in folder.iterdir() if not p.name.startswith(".")]
    if not visible:
        return ""
    for kind, main_file in KINDS.items():  # folders written before the marker existed
        if (folder / main_file).is_file():
            return kind
    return None


def check(out: Path, kind: str, option: str = "--out") -> None:
    """Refuse, with one line, a path that is a file or a folder of another kind."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"{option}: {out} is a file, not a folder")
    if not out.is_dir():
        return
    try:
        found = kind_of(out)
    except PermissionError:
        raise ValueError(f"{option}: cannot read {out} (permission denied)") from None
    if found is None:
        raise ValueError(
            f"{option}: {out} holds other files (not a {kind}'s output); use a new or empty folder"
        )
    if found and found != kind:
        raise ValueError(
            f"{option}: {out} holds a {found}'s output, not a {kind}'s; use another folder"
        )


@contextmanager
def claim(out: Path, kind: str, option: str = "--out") -> Iterator[Path]:
    """Check, create and lock ``out`` for the duration of the block.

    If the block fails before writing anything, a folder created here is removed again,
    so a refused or failed command leaves nothing behind.
    """
    out = Path(out)
    check(out, kind, option)
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
        lock = FileLock(out / LOCK, timeout=0)
        lock.acquire()
    except Timeout:
        raise ValueError(f"{option}: {out} is in use by another running command") from None
    except OSError as error:
        _forget(out, created)
        reason = error.strerror or type(error).__name__
        raise ValueError(f"{option}: cannot write to {out} ({reason})") from None
    try:
        (out / MARKER).write_text(json.dumps({"kind": kind}))
        yield out
    except BaseException:
        lock.release()
        _forget(out, created)
        raise
    lock.release()


def _forget(out: Path, created: bool) -> None:
    """Remove a folder this command created if it holds nothing but its own bookkeeping."""
    if not created or not out.is_dir():
        return
    if all(p.name in (MARKER, LOCK) for p in out.iterdir()):
        shutil.rmtree(out, ignore_errors=True)
