"""Output folders: one contract for every command that writes.

``run``, ``sweep``, ``doses``, ``reproduce``, ``calibrate``, ``optimize`` and
``sensitivity`` write into a folder named by ``--out``. Before any work starts the folder
is checked and claimed, so a problem costs one line and no computing:

* a path that is a file, or a folder that cannot be read or written, is refused;
* a folder holding another command's output is refused, naming that command (a run into
  a sweep's folder would overwrite its summary.csv; a calibration into a finished run's
  folder would mix two experiments), and so is a folder of unrelated files;
* a folder another running command holds is refused (two runs into one folder would
  silently lose one); the hold is a ``filelock`` lock on ``OUT/.lock``, portable and
  freed by the operating system when the holder dies, even by SIGKILL;
* ``--resume`` therefore only ever continues the same command's own output.

A command that runs another inside its folder (``sensitivity`` runs a sweep there) holds
the folder once: the inner claim by the same process is the outer one.
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
COMMANDS = ("run", "sweep", "doses", "reproduce", "calibrate", "optimize", "sensitivity")
# Folders written before the marker existed: a file only one command writes (in this
# order: a sensitivity folder also holds a sweep's files, an optimisation a manifest).
LEGACY = {
    "sobol.csv": "sensitivity",
    "doses.csv": "doses",
    "REPORT.md": "reproduce",
    "abc.db": "calibrate",
    "screen.json": "calibrate",
    "posterior.parquet": "calibrate",
    "checkpoint.pkl": "optimize",
    "pareto.parquet": "optimize",
    "run.json": "run",
    "summary.csv": "sweep",
    "manifest.json": "sweep",
}
_held: dict[Path, str] = {}  # folders this process holds, and for which command


def kind_of(folder: Path) -> str | None:
    """The command whose output ``folder`` holds; '' for an empty one, None for other files."""
    marker = folder / MARKER
    if marker.is_file():
        try:
            return str(json.loads(marker.read_text())["kind"])
        except (ValueError, KeyError, TypeError):
            return None
    visible = [p for p in folder.iterdir() if not p.name.startswith(".")]
    if not visible:
        return ""
    for main_file, kind in LEGACY.items():
        if (folder / main_file).is_file():
            return kind
    return None


def check(out: Path, kind: str, option: str = "--out") -> None:
    """Refuse, with one line, a path that is a file or a folder of another command's."""
    out = Path(out)
    if out.resolve() in _held:
        return
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
            f"{option}: {out} holds other files (not `defection {kind}` output); use a new "
            "or empty folder"
        )
    if found and found != kind:
        raise ValueError(
            f"{option}: {out} holds the output of `defection {found}`, not of "
            f"`defection {kind}`; use another folder"
        )


@contextmanager
def claim(out: Path, kind: str, option: str = "--out") -> Iterator[Path]:
    """Check, create and lock ``out`` for the duration of the block.

    If the block fails before writing anything, a folder created here is removed again,
    so a refused or failed command leaves nothing behind.
    """
    out = Path(out)
    key = out.resolve()
    if key in _held:  # a command running another in its own folder
        yield out
        return
    check(out, kind, option)
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
        lock = FileLock(out / LOCK, timeout=0)
        lock.acquire()
    except Timeout:
        raise ValueError(
            f"{option}: {out} is in use by another running command; wait for it or use "
            "another folder"
        ) from None
    except OSError as error:
        _forget(out, created)
        reason = error.strerror or type(error).__name__
        raise ValueError(f"{option}: cannot write to {out} ({reason})") from None
    _held[key] = kind
    try:
        check_again(out, kind, option)
        (out / MARKER).write_text(json.dumps({"kind": kind}))
        yield out
    except BaseException:
        _held.pop(key, None)
        lock.release()
        _forget(out, created)
        raise
    _held.pop(key, None)
    lock.release()


def check_again(out: Path, kind: str, option: str) -> None:
    """The check once more, now that the folder is ours (another command may have won)."""
    _held.pop(out.resolve(), None)
    try:
        check(out, kind, option)
    finally:
        _held[out.resolve()] = kind


def _forget(out: Path, created: bool) -> None:
    """Remove a folder this command created if it holds nothing but its own bookkeeping."""
    if not created or not out.is_dir():
        return
    if all(p.name in (MARKER, LOCK) for p in out.iterdir()):
        shutil.rmtree(out, ignore_errors=True)
