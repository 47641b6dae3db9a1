"""The supervisor under torchrun: real processes, real signals, nothing it started outlives it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from scene2world.supervisor import COMMAND_ALONE_S, PARENT_LOST_GRACE_S, supervised_argv
from tests.conftest import process_alive

pytestmark = pytest.mark.timeout(60)

# a command that starts a "rank" in a session of its own (as torchrun does), writes both pids and,
# per argv[1]: exits 3 at once ("exit"), or waits; argv[2] "ignore" makes both ignore SIGTERM
COMMAND = textwrap.dedent(
    """
    import signal, subprocess, sys, time
    out, mode, on_term = sys.argv[1], sys.argv[2], sys.argv[3]
    rank_code = "import signal, time\\n"
    if on_term == "ignore":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        rank_code += "signal.signal(signal.SIGTERM, signal.SIG_IGN)\\n"
    if on_term == "note":
        def noted(signum, frame):
            open(out + ".term", "w").write(str(signum))
            sys.exit(1)
        signal.signal(signal.SIGTERM, noted)
    rank = subprocess.Popen([sys.executable, "-c", rank_code + "time.sleep(60)"], start_new_session=True)
    import os
    open(out + ".tmp", "w").write(f"{os.getpid()} {rank.pid}")
    os.replace(out + ".tmp", out)
    if mode == "exit":
        sys.exit(3)
    time.sleep(60)
    """
)


def _pids(path: Path, timeout_s: float = 30) -> list[int]:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        assert time.monotonic() < deadline, "the command did not start"
        time.sleep(0.05)
    return [int(p) for p in path.read_text().split()]


def _gone_within(pids: list[int], seconds: float) -> float:
    t0 = time.monotonic()
    while any(process_alive(p) for p in pids):
        assert time.monotonic() - t0 < seconds, (
            f"still running after {seconds} s: {[p for p in pids if process_alive(p)]}"
        )
        time.sleep(0.05)
    return time.monotonic() - t0


def test_what_the_command_leaves_behind_is_killed_and_its_exit_status_kept(tmp_path):
    out = tmp_path / "pids"
    done = subprocess.run(
        supervised_argv([sys.executable, "-c", COMMAND, str(out), "exit", "-"], grace_s=20), timeout=30
    )
    assert done.returncode == 3
    command, rank = _pids(out)
    _gone_within([command, rank], 5)  # the orphaned rank came to the supervisor, which killed it


def test_a_stop_reaches_the_command_and_what_ignores_it_is_killed_after_the_grace(tmp_path):
    out = tmp_path / "pids"
    proc = subprocess.Popen(supervised_argv([sys.executable, "-c", COMMAND, str(out), "wait", "note"], grace_s=1))
    try:
        command, rank = _pids(out)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 1  # the command's own exit status
        assert (tmp_path / "pids.term").read_text() == str(int(signal.SIGTERM))
        _gone_within([command, rank], 5)  # the rank did not get the signal: the grace ran out for it
    finally:
        proc.kill()


def test_a_command_that_outlives_all_it_started_after_a_stop_is_killed_before_the_grace(tmp_path):
    # torchrun's agent once hung in its own shutdown after its ranks were gone: not for the whole grace
    code = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "open(sys.argv[1], 'w').close()\n"
        "time.sleep(60)\n"
    )
    started = tmp_path / "started"
    proc = subprocess.Popen(supervised_argv([sys.executable, "-c", code, str(started)], grace_s=40))
    try:
        deadline = time.monotonic() + 30
        while not started.exists():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=COMMAND_ALONE_S + 8) == -signal.SIGKILL
    finally:
        proc.kill()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_a_killed_parent_leaves_nothing_running_even_what_ignores_sigterm(tmp_path):
    out = tmp_path / "pids"
    # the parent: a process that starts the supervised command and waits, as the launcher does
    parent_code = (
        "import subprocess, sys\n"
        f"sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r})\n"
        "from scene2world.supervisor import supervised_argv\n"
        f"argv = supervised_argv([sys.executable, '-c', {COMMAND!r}, {str(out)!r}, 'wait', 'ignore'], grace_s=20)\n"
        "subprocess.run(argv)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", parent_code])
    try:
        command, rank = _pids(out)
        supervisor = int(Path(f"/proc/{command}/stat").read_text().rsplit(")", 1)[1].split()[1])
        assert process_alive(supervisor) and supervisor != parent.pid
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(timeout=10)
        # the launcher's 20 s grace does not apply: its parent is gone, so only PARENT_LOST_GRACE_S
        took = _gone_within([supervisor, command, rank], PARENT_LOST_GRACE_S + 5)
        print(f"gone {took:.1f} s after the parent was killed")
    finally:
        parent.kill()
        for pid in _pids(out):
            if process_alive(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGSEGV])
def test_a_command_killed_by_a_signal_is_reported_killed_by_it(sig):
    done = subprocess.run(
        supervised_argv([sys.executable, "-c", f"import os; os.kill(os.getpid(), {int(sig)})"], grace_s=1),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == -sig, done.stderr
    assert "Traceback" not in done.stderr


def test_a_command_that_cannot_start_exits_127_with_a_message(tmp_path):
    done = subprocess.run(
        supervised_argv([str(tmp_path / "no-such-program")], grace_s=1), capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 127
    assert "no-such-program" in done.stderr
