"""Child processes that die with their parent, even when the parent is killed with SIGKILL.

Linux can send a process a chosen signal when its parent dies (``prctl(PR_SET_PDEATHSIG)``,
see docs/processes.md). The setting survives ``exec`` but not ``fork``, and it fires when the
*thread* that started the child ends, so it is only used for children whose starting thread
waits for them (render workers, the temporary Prefect server; torchrun runs under
:mod:`scene2world.supervisor`, which sets it too).

Two ways in:

* :func:`die_with_parent` — called first thing in a Python child we write (a render worker);
* :func:`guarded_argv` — wraps any command in a tiny ``python -c`` that sets the signal, checks
  the parent is still the one that started it, then ``exec``s the command (same pid, so process
  groups and pid bookkeeping are unchanged). ``preexec_fn`` is avoided: it is unsafe in a
  process with threads, and Prefect runs threads.

Elsewhere than Linux both are no-ops.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Sequence

PR_SET_PDEATHSIG = 1
"""``prctl`` option number from ``<linux/prctl.h>``."""

_WRAPPER = (
    "import ctypes,os,sys\n"
    "parent,sig=int(sys.argv[1]),int(sys.argv[2])\n"
    "ctypes.CDLL(None,use_errno=True).prctl(1,sig,0,0,0)\n"
    "if os.getppid()!=parent:os._exit(128+sig)\n"
    "os.execv(sys.argv[3],sys.argv[3:])\n"
)


def supported() -> bool:
    """True where the parent-death signal exists (Linux)."""
    return sys.platform.startswith("linux")


def die_with_parent(sig: int = signal.SIGTERM, parent: int | None = None) -> bool:
    """Ask Linux to send ``sig`` to this process when its parent dies; False where unsupported.

    With ``parent`` (the pid that started us), a parent already gone before the call is caught
    too: ``sig`` is sent at once.
    """
    if not supported():
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        return False
    if parent is not None and os.getppid() != parent:
        os.kill(os.getpid(), int(sig))
    return True


def watch_parent(
    parent: int, sig: int = signal.SIGTERM, interval_s: float = 0.25, grace_s: float = 3.0
) -> threading.Thread:
    """Send ``sig`` to this process as soon as ``parent`` is no longer its parent (a watchdog thread),
    and end it ``grace_s`` later if it is still there.

    For children whose starting thread may end before they do (a process pool's workers, started by
    whichever thread submits first), where the parent-death signal would fire too early. The signal
    lets the running work clean up (a render deletes its partial files); the hard exit covers a
    process pool worker, which would otherwise wait forever on a queue whose other end it holds.
    """

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval_s)
        os.kill(os.getpid(), int(sig))
        time.sleep(grace_s)
        os._exit(128 + int(sig))

    thread = threading.Thread(target=watch, name="s2w-parent-watch", daemon=True)
    thread.start()
    return thread


def guarded_argv(argv: Sequence[str], sig: int = signal.SIGTERM) -> list[str]:
    """``argv`` run so that it receives ``sig`` when this process dies (unchanged off Linux).

    The program must be an absolute path or found on ``PATH``; otherwise ``argv`` is returned
    unchanged, so starting it fails the usual way (``OSError``) in the caller.
    """
    argv = [str(a) for a in argv]
    if not supported() or not argv:
        return argv
    program = argv[0] if os.path.isabs(argv[0]) else shutil.which(argv[0])
    if program is None or not os.access(program, os.X_OK):
        return argv
    return [sys.executable, "-I", "-S", "-c", _WRAPPER, str(os.getpid()), str(int(sig)), program, *argv[1:]]
