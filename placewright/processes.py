"""Two facts about processes that servers, workers and their supervisors need, in one place."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
from pathlib import Path

# prctl(2): the signal a process gets when its parent dies.
PR_SET_PDEATHSIG = 1


def process_alive(pid: int) -> bool:
    """Whether ``pid`` is a running process (a zombie, exited but not yet reaped, is not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat[stat.rfind(")") + 2] != "Z"
    return True


def signal_on_parent_death(sig: signal.Signals, parent: int) -> bool:
    """Ask the kernel to send ``sig`` to this process when its parent (pid ``parent``) dies, even by SIGKILL.

    Call it in the child (a ``preexec_fn``, or first thing in its main). Linux only: returns False
    elsewhere. If the parent is already gone (it died before the request took effect), the process
    exits at once, since no signal will come.
    """
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, sig)
    except (OSError, AttributeError):
        return False
    if os.getppid() != parent:
        os._exit(1)
    return True
