"""A small process between scene2world and a command whose descendants must never outlive it (torchrun).

torchrun's agent starts every rank in a session of its own and stops them itself when it gets
SIGTERM. When the agent fails to (a signal that lands while it is still starting its ranks, an
agent that hangs in its own shutdown), ranks outlive everything and hold their GPUs. The
supervisor closes that gap (docs/processes.md, "torchrun under a supervisor"):

* it is set to receive SIGTERM when the process that started it dies (``PR_SET_PDEATHSIG``) and
  checks that this process is still there;
* it makes itself a *child subreaper* (``PR_SET_CHILD_SUBREAPER``): every orphan below it (ranks
  whose agent died, an encoder whose rank died) is re-parented to it instead of to init, so all
  that the command started can always be found by walking ``/proc`` down from it;
* it runs the command as its child and relays SIGTERM/SIGINT to it; ``grace_s`` seconds after a
  stop (``PARENT_LOST_GRACE_S`` when the stop is its parent's death) it SIGKILLs every descendant,
  and the command alone sooner, once it has outlived all it started by ``COMMAND_ALONE_S``;
* when the command ends, whatever it left behind is SIGKILLed, and the supervisor exits with the
  command's status (the same signal when the command was killed by one).

It is run as a script by path (``python -I -S supervisor.py …``): the standard library only, so it
starts in milliseconds and needs nothing from the environment it passes on. Linux only; elsewhere
:func:`supervised_argv` returns the command unchanged.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import time
from collections.abc import Sequence

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
"""``prctl`` option numbers from ``<linux/prctl.h>``."""

PARENT_LOST_GRACE_S = 3.0
"""Seconds the command gets to stop by itself once the process that started the supervisor died."""

COMMAND_ALONE_S = 2.0
"""Seconds the command may outlive everything it started, once stopping, before it is SIGKILLed:
torchrun's agent has nothing left to stop then, and under load it was seen to hang in its own
shutdown for more than 20 s (docs/processes.md)."""

_POLL_S = 0.05


def supervised_argv(argv: Sequence[str], grace_s: float) -> list[str]:
    """``argv`` run under a supervisor tied to this process (unchanged off Linux)."""
    argv = [str(a) for a in argv]
    if not sys.platform.startswith("linux") or not argv:
        return argv
    return [sys.executable, "-I", "-S", os.path.abspath(__file__), str(os.getpid()), str(grace_s), "--", *argv]


def descendants(root: int) -> list[int]:
    """Every live process below ``root`` in ``/proc`` (children, their children, …)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                raw = fh.read().decode(errors="replace")
            state, ppid = raw[raw.rfind(")") + 2 :].split()[:2]
        except (OSError, ValueError):
            continue
        if state != "Z":
            children.setdefault(int(ppid), []).append(int(entry))
    found: list[int] = []
    stack = [root]
    while stack:
        for child in children.get(stack.pop(), ()):
            found.append(child)
            stack.append(child)
    return found


def _kill_all(root: int) -> None:
    for _ in range(3):  # a process may fork while it is being killed: look again
        pids = descendants(root)
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(_POLL_S)


class _Supervisor:
    def __init__(self, parent: int, grace_s: float) -> None:
        self.parent = parent
        self.grace_s = grace_s
        self.child = 0
        self.deadline: float | None = None  # when descendants are SIGKILLed, once stopping

    def on_signal(self, signum: int, _frame: object) -> None:
        lost = os.getppid() != self.parent
        grace = min(self.grace_s, PARENT_LOST_GRACE_S) if lost else self.grace_s
        deadline = time.monotonic() + grace
        self.deadline = deadline if self.deadline is None else min(self.deadline, deadline)
        if self.child:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.child, signal.SIGTERM if lost else signum)

    def reap(self) -> int | None:
        """Reap every exited child (adopted orphans included); the command's wait status once it ended."""
        status = None
        while True:
            try:
                pid, code = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return status
            if pid == 0:
                return status
            if pid == self.child:
                status = code

    def run(self, argv: list[str]) -> int:
        me = os.getpid()
        # signals Python ignores (SIGPIPE) go back to their defaults in the command, as subprocess does
        self.child = os.posix_spawnp(argv[0], argv, dict(os.environ), setsigdef=(signal.SIGPIPE, signal.SIGXFSZ))
        if self.deadline is not None:  # stopped while it was being started
            os.kill(self.child, signal.SIGTERM)
        status: int | None = None
        alone_since: float | None = None
        while status is None:
            time.sleep(_POLL_S)
            status = self.reap()
            if status is None and self.deadline is not None:
                now = time.monotonic()
                if descendants(me) == [self.child]:
                    alone_since = now if alone_since is None else alone_since
                else:
                    alone_since = None
                if now >= self.deadline or (alone_since is not None and now - alone_since >= COMMAND_ALONE_S):
                    _kill_all(me)
        _kill_all(me)  # whatever the command left behind
        self.reap()
        return status


def main(args: Sequence[str]) -> None:
    """``<parent pid> <grace seconds> -- <command…>``: see the module docstring."""
    parent, grace_s, sep, *argv = args
    if sep != "--" or not argv:
        sys.exit(f"usage: {os.path.basename(__file__)} PARENT_PID GRACE_S -- COMMAND...")
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    if os.getppid() != int(parent):  # the parent died before the line above
        sys.exit(128 + int(signal.SIGTERM))
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    supervisor = _Supervisor(int(parent), float(grace_s))
    for stop in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop, supervisor.on_signal)
    try:
        status = supervisor.run(argv)
    except OSError as e:  # the command cannot be started: say it the way a shell would
        print(f"{argv[0]}: {e.strerror}", file=sys.stderr)
        sys.exit(127)
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig not in (signal.SIGKILL, signal.SIGSTOP):  # the two that cannot be caught keep their default
            signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
    sys.exit(os.waitstatus_to_exitcode(status))


if __name__ == "__main__":
    main(sys.argv[1:])
