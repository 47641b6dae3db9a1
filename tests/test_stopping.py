"""SIGTERM turned into an exception once, in a real child process that gets real signals."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time

import pytest

pytestmark = pytest.mark.timeout(120)

CHILD = textwrap.dedent(
    """
    import os, signal, sys, time
    from scene2world.stopping import Stopped, exit_with_status, sigterm_raises

    mode = sys.argv[1]
    if mode == "foreign":
        signal.signal(signal.SIGTERM, lambda s, f: print("foreign handler", flush=True))
    exception = exit_with_status if mode == "exit" else Stopped
    try:
        with sigterm_raises(exception):
            try:
                print("ready", flush=True)
                deadline = time.monotonic() + (3 if mode == "foreign" else 30)
                while time.monotonic() < deadline:
                    time.sleep(0.05)
                print("not stopped", flush=True)
            finally:
                if mode == "stopped":
                    os.kill(os.getpid(), signal.SIGTERM)  # a second SIGTERM during the cleanup: ignored
                    time.sleep(0.5)
                    print("cleanup done", flush=True)
    except Stopped as e:
        print(f"{e}; handler restored: {signal.getsignal(signal.SIGTERM) == signal.SIG_DFL}", flush=True)
    """
)


def run_child(mode: str) -> tuple[int, list[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, mode], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    if mode == "foreign":
        time.sleep(1.0)
        proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    return proc.returncode, ["ready", *out.splitlines()]


def test_first_sigterm_raises_stopped_and_a_second_cannot_interrupt_the_cleanup():
    rc, lines = run_child("stopped")
    assert rc == 0, lines
    assert lines[1:] == ["cleanup done", "stopped by SIGTERM; handler restored: True"]


def test_exit_with_status_ends_a_plain_script_with_143():
    rc, lines = run_child("exit")
    assert rc == 128 + signal.SIGTERM and lines == ["ready"]


def test_a_handler_someone_else_installed_is_kept():
    rc, lines = run_child("foreign")
    assert rc == 0 and lines[1:] == ["foreign handler", "foreign handler", "not stopped"], lines


SWALLOWED = textwrap.dedent(
    """
    import gc, os, signal, sys, time
    from scene2world.stopping import Stopped, check, stops_raise

    # Python's Ctrl-C handler, as in a terminal (a background job starts with SIGINT ignored)
    signal.signal(signal.SIGINT, signal.default_int_handler)

    class Garbage:  # a cycle whose __del__ runs when the collector does: exceptions there are only printed
        def __init__(self):
            self.me = self

        def __del__(self):
            if sys.argv[1] == "in-del":
                os.kill(os.getpid(), signal.SIGINT)  # handled (and raised) inside this __del__
                for _ in range(1000):
                    pass

    def work():
        Garbage()
        gc.collect()
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            check()
            time.sleep(0.01)
        print("not stopped", flush=True)

    if sys.argv[2] == "stops_raise":
        try:
            with stops_raise():
                work()
        except Stopped as e:
            print(f"{e}; Ctrl-C handler restored: {signal.getsignal(signal.SIGINT) is signal.default_int_handler}")
    else:
        work()
    """
)


@pytest.mark.parametrize("guard", ["stops_raise", "none"])
def test_a_ctrl_c_swallowed_by_a_del_still_stops_a_loop_under_stops_raise(guard):
    out = subprocess.run([sys.executable, "-c", SWALLOWED, "in-del", guard], capture_output=True, text=True, timeout=60)
    assert "Exception ignored" in out.stderr  # Python swallowed the KeyboardInterrupt
    if guard == "stops_raise":
        assert out.stdout.splitlines() == ["stopped by SIGINT; Ctrl-C handler restored: True"], out
    else:  # without the guard the loop never learns of it: what render_clip did in a plain script
        assert out.stdout.splitlines() == ["not stopped"], out


def test_stops_raise_keeps_a_handler_someone_else_installed():
    code = textwrap.dedent(
        """
        import signal
        from scene2world.stopping import stops_raise
        mine = lambda s, f: None
        signal.signal(signal.SIGINT, mine)
        with stops_raise():
            print(signal.getsignal(signal.SIGINT) is mine)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "True", out
