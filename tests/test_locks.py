"""The per-output lock: a second holder waits for the first, a killed holder never blocks anyone."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scene2world.locks import lock_path, output_lock
from tests.conftest import REPO

HOLD = """
import sys, time
from pathlib import Path
from scene2world.locks import output_lock
with output_lock(Path(sys.argv[1])):
    Path(sys.argv[2]).write_text("held")
    time.sleep(float(sys.argv[3]))
    Path(sys.argv[2]).write_text("released")
"""


def _holder(out: Path, flag: Path, seconds: float) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(out), str(flag), str(seconds)], cwd=REPO)
    deadline = time.monotonic() + 60
    while not flag.exists():
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    return proc


@pytest.mark.timeout(120)
def test_a_second_holder_waits_for_the_first(tmp_path):
    out = tmp_path / "render" / "abc"
    proc = _holder(out, tmp_path / "flag", 2.0)
    waited: list[Path] = []
    with output_lock(out, on_wait=waited.append):
        assert (tmp_path / "flag").read_text() == "released"  # got the lock only once the first holder was done
    assert proc.wait(timeout=30) == 0
    assert waited == [lock_path(out)]
    assert lock_path(out) == tmp_path / ".locks" / "render-abc.lock"  # the step folder holds only outputs
    assert lock_path(tmp_path / "runs" / "r") == tmp_path / "runs" / ".locks" / "r.lock"


@pytest.mark.timeout(120)
def test_a_killed_holder_releases_the_lock(tmp_path):
    out = tmp_path / "infer" / "abc"
    proc = _holder(out, tmp_path / "flag", 600)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    waited: list[Path] = []
    with output_lock(out, on_wait=waited.append):
        pass
    assert waited == []  # the kernel dropped the dead holder's lock
