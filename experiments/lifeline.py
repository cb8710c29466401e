"""No worker outlives its command: processes end with the process that started them.

A command's workers (the sweep's pool, pyabc's samplers, the calibration's predictive
runs) would otherwise keep running, or wait forever for work, once the command is
killed, SIGKILL included, when nothing is left to run its clean-up. On Linux the
kernel can do it: ``PR_SET_PDEATHSIG`` asks for SIGKILL when the parent dies.
"""

from __future__ import annotations

import os
import signal
import sys

PR_SET_PDEATHSIG = 1  # prctl option: a signal for this process when its parent dies


_forking: list[int] = []  # the pid of the process that is forking (see forks_die_with_parent)


def die_with_parent(parent: int | None = None) -> None:
    """Make this process end when its parent (pid ``parent``) does, even by SIGKILL.

    Linux: the kernel sends SIGKILL on the parent's death (``PR_SET_PDEATHSIG``); the
    parent may have died already before this call, hence the check after. Elsewhere
    nothing happens (the sweep's workers also watch their parent's sentinel).
    """
    import ctypes

    if not sys.platform.startswith("linux"):
        return
    parent = os.getppid() if parent is None else parent
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:
        os._exit(1)


def forks_die_with_parent() -> None:
    """Every process forked from this one from now on ends with its parent (see above).

    Once per process: a command's entry point calls it before it starts any workers.
    """
    if _forking:
        return
    _forking.append(os.getpid())
    os.register_at_fork(
        before=lambda: _forking.__setitem__(0, os.getpid()),
        after_in_child=lambda: die_with_parent(_forking[0]),
    )
