"""How much memory a command may still use: the least of every limit that applies.

Physical memory is only one limit. A container's memory cap (the cgroup's, v1 or v2)
and an address-space limit (``ulimit -v``, ``RLIMIT_AS``) stop a process long before
the machine runs out: a run that passed a check of ``/proc/meminfo`` alone died with
``MemoryError`` half way. Each limit is read here, and a check reports the one that
binds, with the size needed, before anything starts.
"""

from __future__ import annotations

import resource
from dataclasses import dataclass
from pathlib import Path

UNLIMITED = 2**60  # cgroup v1 writes "no limit" as a number near 2**63
CGROUP = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class Room:
    """Bytes a new allocation may take: shared by all processes, and per process."""

    shared: int | None  # physical memory and the cgroup's cap (all workers together)
    shared_limit: str  # which of them binds, in words
    per_process: int | None  # the address-space limit (each worker has its own)


def room() -> Room:
    """The memory this command's processes may still allocate (None: not known)."""
    shared = [(r, name) for r, name in ((_meminfo(), "physical memory"),
                                        (_cgroup_room(), "the container's memory limit"))
              if r is not None]  # fmt: skip
    least = min(shared, default=(None, ""))
    return Room(least[0], least[1], _address_space_room())


def available_memory() -> int | None:
    """Bytes one process may still allocate now: the least of every limit, None if unknown."""
    here = room()
    known = [r for r in (here.shared, here.per_process) if r is not None]
    return min(known) if known else None


def check_need(need: int, what: str, option: str, remedy: str, processes: int = 1) -> None:
    """Refuse, in one line, work needing ``need`` bytes in each of ``processes`` processes."""
    here = room()
    if here.per_process is not None and need > 0.8 * here.per_process:
        raise ValueError(
            f"{option}: {what} needs about {_gb(need)}, {_gb(here.per_process)} left under "
            f"the address-space limit (ulimit -v); {remedy}"
        )
    if here.shared is not None and need * processes > 0.8 * here.shared:
        at_once = f" ({processes} at once)" if processes > 1 else ""
        raise ValueError(
            f"{option}: {what} needs about {_gb(need * processes)}{at_once}, "
            f"{_gb(here.shared)} available ({here.shared_limit}); {remedy}"
        )


def _gb(size: int) -> str:
    return f"{size / 1e9:,.1f} GB"


def _meminfo() -> int | None:
    """MemAvailable from /proc/meminfo (Linux)."""
    try:
        with open("/proc/meminfo") as info:
            for line in info:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _address_space_room() -> int | None:
    """RLIMIT_AS less this process's size (its workers start about as large)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return None
    return max(soft - _own_size(), 0)


def _own_size() -> int:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _cgroup_room() -> int | None:
    """The tightest cgroup memory cap less its use, over this process's cgroup and parents."""
    rooms = [r for folder in _cgroup_folders() if (r := _folder_room(folder)) is not None]
    return min(rooms, default=None)


def _cgroup_folders() -> list[Path]:
    """Folders of this process's memory cgroup (v2 unified, v1 memory) and their parents."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":
            base = CGROUP
        elif "memory" in controllers.split(","):
            base = CGROUP / "memory"
        else:
            continue
        folder = base / path.lstrip("/")
        while True:  # the cgroup, its parents, and the mount's root (a container's own)
            found.append(folder)
            if folder == base:
                break
            folder = folder.parent
    return [f for f in dict.fromkeys(found) if f.is_dir()]


def _folder_room(folder: Path) -> int | None:
    """One cgroup's cap less its use (page cache that can be dropped counts as free)."""
    for limit_file, usage_file, cache_key in (
        ("memory.max", "memory.current", "inactive_file"),  # v2
        ("memory.limit_in_bytes", "memory.usage_in_bytes", "total_inactive_file"),  # v1
    ):
        limit = _number(folder / limit_file)
        if limit is None:
            continue
        if limit >= UNLIMITED:
            return None
        usage = _number(folder / usage_file) or 0
        return max(limit - usage + _stat(folder / "memory.stat", cache_key), 0)
    return None


def _number(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    if text == "max":
        return UNLIMITED
    return int(text) if text.isdigit() else None


def _stat(path: Path, key: str) -> int:
    try:
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key and value.strip().isdigit():
                return int(value)
    except OSError:
        pass
    return 0


__all__ = ["Room", "available_memory", "check_need", "room"]
