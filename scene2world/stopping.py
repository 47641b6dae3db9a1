"""Signals that stop a command: SIGINT and SIGTERM become an exception, the exit code says which.

The CLI installs :func:`signals_raise` around a command. The first SIGINT or SIGTERM raises
:class:`Stopped` (a ``KeyboardInterrupt``, so every ``finally`` and every handler of Ctrl-C
runs its cleanup); later ones while cleaning up are only noted, so a second Ctrl-C cannot
interrupt the cleanup half-way. :func:`exit_code` gives the shell's ``128 + signal number``
(130 for SIGINT, 143 for SIGTERM) once a command has been stopped.

An exception raised by a signal handler can be swallowed: Prefect replaces the SIGTERM handler
during a flow, and libraries that import optional modules inside ``except BaseException``
(trimesh does) eat whatever arrives during that import (docs/processes.md). So the arrival of
a stop signal is also recorded apart from any handler, through Python's signal wake-up file
descriptor, and long loops call :func:`check` to raise :class:`Stopped` themselves.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Stopped(KeyboardInterrupt):
    """Raised in the main thread when a stop signal arrives; ``signum`` names it."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped by {signal_name(signum)}")
        self.signum = signum


_received: list[int] = []
"""Stop signals seen since :func:`signals_raise` was entered, first first (handler or wake-up fd)."""


def received() -> int | None:
    """The first stop signal received since :func:`signals_raise` was entered, or None."""
    return _received[0] if _received else None


def check() -> None:
    """Raise :class:`Stopped` when a stop signal has arrived (for loops that must not outlive one)."""
    signum = received()
    if signum is not None:
        raise Stopped(signum)


def signal_name(signum: int) -> str:
    """The name of a signal number, e.g. ``SIGINT`` for 2."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def exit_code(signum: int) -> int:
    """The exit status a shell reports for a process stopped by ``signum``: 128 + its number."""
    return 128 + int(signum)


def _note(signum: int) -> bool:
    """Record ``signum``; True the first time a stop signal is recorded."""
    first = not _received
    if signum not in _received or first:
        _received.append(signum)
    return first


def note_stop(signum: int, _frame: Any = None) -> None:
    """A signal handler that only records ``signum``: the work stops at its next :func:`check`, a
    safe point, instead of being interrupted wherever it is (a half-done import, docs/processes.md)."""
    _note(signum)


def _handler(signum: int, _frame: Any) -> None:
    raised_before = getattr(_handler, "raised", False)
    _note(signum)
    if not raised_before:
        _handler.raised = True  # type: ignore[attr-defined]
        raise Stopped(signum)
    print(f"scene2world: {signal_name(signum)} again; still stopping cleanly", file=sys.stderr)


def _watch(read_fd: int) -> None:
    """Wake-up fd reader thread: record every stop signal whatever handler runs for it."""
    try:
        while data := os.read(read_fd, 64):
            for signum in data:
                if signum in STOP_SIGNALS:
                    _note(signum)
    except OSError:
        pass
    finally:
        os.close(read_fd)


@contextlib.contextmanager
def signals_raise() -> Iterator[None]:
    """While inside (main thread only), SIGINT and SIGTERM raise :class:`Stopped` once and are recorded."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _received.clear()
    _handler.raised = False  # type: ignore[attr-defined]
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    previous_fd = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    threading.Thread(target=_watch, args=(read_fd,), name="s2w-stop-signals", daemon=True).start()
    previous = {sig: signal.signal(sig, _handler) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        signal.set_wakeup_fd(previous_fd)
        os.close(write_fd)  # the reader sees EOF and ends


@contextlib.contextmanager
def sigint_blocked() -> Iterator[None]:
    """SIGINT blocked in this thread while inside: for starting child processes. A child keeps the
    thread's signal mask across exec, so it starts with SIGINT blocked and can unblock it once its
    own handler is set: a Ctrl-C cannot land in its imports (docs/processes.md). A Ctrl-C that
    arrives meanwhile reaches this process when the block ends."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


@contextlib.contextmanager
def stops_raise() -> Iterator[None]:
    """For library loops that call :func:`check`: :func:`signals_raise` where the process has Python's
    own stop handling (a plain script: Ctrl-C is ``default_int_handler``, SIGTERM is default), else
    :func:`sigterm_raises` (the CLI's handlers, or a Prefect flow run's, stay as they are).

    Python's own Ctrl-C raises from whatever the main thread runs when it is handled, and can be
    swallowed there (a ``__del__`` or weakref callback run by the garbage collector prints
    "Exception ignored" and goes on): recorded here, the stop still reaches :func:`check`.
    """
    plain = signal.getsignal(signal.SIGINT) is signal.default_int_handler and signal.getsignal(signal.SIGTERM) in (
        signal.SIG_DFL,
        None,
    )
    with signals_raise() if plain else sigterm_raises():
        yield


def exit_with_status(signum: int) -> SystemExit:
    """``SystemExit(128 + signum)``: with :func:`sigterm_raises`, a plain script ends with the shell's 143."""
    return SystemExit(exit_code(signum))


@contextlib.contextmanager
def sigterm_raises(exception: Callable[[int], BaseException] = Stopped) -> Iterator[None]:
    """While inside (main thread only), the first SIGTERM raises ``exception(signum)``; later ones are ignored.

    For work that must clean up when SIGTERM arrives in a process that has no handler of its own:
    the exception unwinds through every ``finally``, and a second SIGTERM cannot interrupt that
    cleanup half-way. A handler someone else installed is kept as it is: the CLI's
    (:func:`signals_raise`), or a Prefect flow run's, which turns SIGTERM into its own exception and
    ends the run ``Cancelled``. ``exception`` is :class:`Stopped` by default (what the CLI reports
    as "stopped by SIGTERM"); :func:`exit_with_status` ends a plain script with status 143.
    """
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) not in (
        signal.SIG_DFL,
        None,
    ):
        yield
        return
    raised = False

    def handler(signum: int, _frame: Any) -> None:
        nonlocal raised
        if not raised:
            raised = True
            raise exception(signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
