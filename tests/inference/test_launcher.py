"""The torchrun launcher against real torchrun (2 ranks, gloo on CPU)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from scene2world.errors import InferenceError
from scene2world.inference.engines import passthrough_env
from scene2world.inference.launcher import TorchrunCommand, build_torchrun_argv, launch, rank_logs
from tests.conftest import process_alive

pytestmark = pytest.mark.timeout(60)

WORKER = textwrap.dedent(
    """
    import os, signal, sys, time
    from pathlib import Path
    import torch
    import torch.distributed as dist

    mode, pids = sys.argv[1], Path(sys.argv[2])
    if mode == "stubborn":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    (pids / str(rank)).write_text(str(os.getpid()))
    total = torch.tensor([float(rank + 1)])
    dist.all_reduce(total)
    print(f"rank {rank} sum {total.item():g}", flush=True)
    if mode == "fail" and rank == 1:
        raise RuntimeError("rank 1 exploded")
    if mode in ("hang", "stubborn"):
        print(f"rank {rank} ready", flush=True)
        while True:
            time.sleep(0.2)
    dist.barrier()
    dist.destroy_process_group()
    """
)


@pytest.fixture
def job(tmp_path: Path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    pids = tmp_path / "pids"
    pids.mkdir()

    def make(mode: str) -> TorchrunCommand:
        argv = build_torchrun_argv([str(script), mode, str(pids)], nproc=2, log_dir=tmp_path / "logs")
        env = passthrough_env() | {"PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
        return TorchrunCommand(argv=tuple(argv), env=env, cwd=tmp_path, log_dir=tmp_path / "logs")

    make.pids = pids  # type: ignore[attr-defined]
    make.script = script  # type: ignore[attr-defined]
    return make


def assert_no_survivor(job) -> None:
    """Neither the recorded rank pids nor anything running the worker script is alive."""
    pids = [int(p.read_text()) for p in job.pids.iterdir()]
    assert not [pid for pid in pids if process_alive(pid)]
    marker = str(job.script).encode()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            assert marker not in cmdline or not process_alive(int(entry.name)), f"pid {entry.name} survived"


def test_argv_and_dry_run(job, tmp_path):
    argv = build_torchrun_argv(["-m", "pkg.mod", "-i", "s.json"], nproc=4, python="py", rdzv_port=29123, run_id="r1")
    assert argv[:5] == ["py", "-m", "torch.distributed.run", "--nnodes=1", "--nproc-per-node=4"]
    assert "--rdzv-endpoint=127.0.0.1:29123" in argv and "--rdzv-id=r1" in argv and "--standalone" not in argv
    assert argv[-4:] == ["-m", "pkg.mod", "-i", "s.json"]
    cmd = job("ok")
    assert "--standalone" in cmd.argv and "--tee=3" in cmd.argv and f"--log-dir={tmp_path / 'logs'}" in cmd.argv
    result = launch(cmd, dry_run=True)
    assert result.dry_run and result.returncode is None
    assert "torch.distributed.run" in result.command and result.command.startswith(f"cd {tmp_path}")
    assert not (tmp_path / "logs").exists() and not list(job.pids.iterdir())
    with pytest.raises(InferenceError, match="`nproc_per_node` must be ≥ 1"):
        build_torchrun_argv(["x.py"], nproc=0)
    with pytest.raises(InferenceError, match="grace_s"):
        launch(cmd, grace_s=30)


def test_success_streams_every_rank(job, tmp_path):
    lines: list[str] = []
    result = launch(job("ok"), log=lines.append, timeout_s=50)
    assert result.returncode == 0 and not result.dry_run
    assert any(line.endswith("rank 0 sum 3") for line in lines)
    assert any(line.endswith("rank 1 sum 3") for line in lines)
    logs = rank_logs(tmp_path / "logs")
    assert sorted(logs) == [0, 1]
    assert "rank 1 sum 3" in next(p for p in logs[1] if p.name == "stdout.log").read_text()
    assert "rank 0 sum 3" in (tmp_path / "logs" / "torchrun.log").read_text()
    assert_no_survivor(job)


def test_failing_rank_raises_with_returncode_argv_and_tail(job):
    cmd = job("fail")
    with pytest.raises(InferenceError) as info:
        launch(cmd, timeout_s=50)
    err = info.value
    assert err.returncode == 1
    assert err.argv == list(cmd.argv)
    assert "RuntimeError: rank 1 exploded" in err.log_tail
    assert "rank 1 exploded" in str(err) and "exited with status 1" in str(err)
    assert_no_survivor(job)


def test_timeout_stops_the_whole_group(job):
    lines: list[str] = []
    t0 = time.monotonic()
    with pytest.raises(InferenceError, match="timed out after 12 s") as info:
        launch(job("hang"), log=lines.append, timeout_s=12, grace_s=5)
    assert time.monotonic() - t0 < 12 + 5 + 12
    assert len(list(job.pids.iterdir())) == 2, "ranks did not start before the timeout"
    assert info.value.returncode is not None and info.value.returncode != 0
    assert any("SIGTERM" in line for line in lines)
    assert_no_survivor(job)


def test_cancel_escalates_to_sigkill_for_ranks_ignoring_sigterm(job):
    ready: set[str] = set()

    def log(line: str) -> None:
        if line.endswith(" ready"):
            ready.add(line)
        if len(ready) == 2:
            raise KeyboardInterrupt

    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        launch(job("stubborn"), log=log, timeout_s=50, grace_s=2)
    assert len(ready) == 2
    assert time.monotonic() - t0 < 40
    assert_no_survivor(job)


def test_sigterm_to_the_launching_process(job, tmp_path):
    """A CLI process that gets SIGTERM stops torchrun and its ranks before it exits (143)."""
    cmd = job("hang")
    driver = tmp_path / "driver.py"
    driver.write_text(
        textwrap.dedent(
            f"""
            from pathlib import Path
            from scene2world.inference.launcher import TorchrunCommand, launch
            cmd = TorchrunCommand(argv={tuple(cmd.argv)!r}, env={dict(cmd.env)!r}, cwd=Path({str(tmp_path)!r}))
            launch(cmd, log=print, grace_s=5)
            """
        )
    )
    proc = subprocess.Popen([sys.executable, str(driver)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 40
        while len(list(job.pids.iterdir())) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(list(job.pids.iterdir())) == 2
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 128 + signal.SIGTERM
    finally:
        if proc.poll() is None:
            proc.kill()
    assert_no_survivor(job)


def test_a_failed_launch_names_the_failing_rank_and_keeps_its_logs(tmp_path):
    from scene2world import cache

    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    (tmp_path / "pids").mkdir()
    out_dir = tmp_path / "data" / "infer" / "k"
    env = passthrough_env() | {"PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    with pytest.raises(InferenceError) as info, cache.staging(out_dir) as tmp:
        argv = build_torchrun_argv([str(script), "fail", str(tmp_path / "pids")], nproc=2, log_dir=tmp / "logs")
        launch(TorchrunCommand(argv=tuple(argv), env=env, cwd=tmp_path, log_dir=tmp / "logs"), timeout_s=50)
    first_line = str(info.value).splitlines()[0]
    assert "rank 1: RuntimeError: rank 1 exploded" in first_line
    kept = next((tmp_path / "data" / "failed").glob("infer-*"))
    assert f"logs: {kept / 'logs'}" in first_line  # the message points where the logs are
    assert "rank 1 exploded" in (kept / "logs" / "torchrun.log").read_text()
    assert not list((tmp_path / "data" / "infer").iterdir())  # nothing published, staging gone


def test_failure_cause_prefers_a_real_error_over_killed_ranks():
    from scene2world.inference.launcher import failure_cause

    tail = [
        "[default0]:step 3",
        "[default1]:Traceback (most recent call last):",
        '[default1]:  File "w.py", line 3, in <module>',
        "[default1]:torch.OutOfMemoryError: CUDA out of memory",
        "[default0]:W1206 Sending process 12 closing signal SIGTERM",
        "  rank      : 0 (local_rank: 0)",
        "  exitcode  : -9 (pid: 12)",
    ]
    assert failure_cause(tail) == "rank 1: torch.OutOfMemoryError: CUDA out of memory"
    assert failure_cause(tail[:1] + tail[-2:]) == "rank      : 0 (local_rank: 0); exitcode  : -9 (pid: 12)"
    assert failure_cause(["hello"]) is None
    full = [
        "[default0]:BrokenPipeError: [Errno 32] Broken pipe",
        "[default0]:[rank0]: ffmpeg: /d/x.mp4: No space left on device",
    ]
    assert failure_cause(full) == "rank 0: ffmpeg: /d/x.mp4: No space left on device"


HEARTBEAT_WORKER = textwrap.dedent(
    """
    import os, signal, sys, time
    from pathlib import Path
    from scene2world.inference import heartbeat

    heartbeat.start()
    rank = int(os.environ["RANK"])
    (Path(sys.argv[1]) / str(rank)).write_text(str(os.getpid()))
    time.sleep(2.5)
    if rank == 1:
        os.kill(os.getpid(), signal.SIGSTOP)  # hung: neither output nor heartbeat from now on
    while True:
        time.sleep(0.2)
    """
)


def test_a_hung_rank_is_found_by_its_heartbeat_and_the_launch_stopped(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(HEARTBEAT_WORKER)
    pids = tmp_path / "pids"
    pids.mkdir()
    argv = build_torchrun_argv([str(script), str(pids)], nproc=2, log_dir=tmp_path / "logs")
    env = passthrough_env() | {"PYTHONUNBUFFERED": "1", "PYTHONPATH": str(Path(__file__).parents[2])}
    cmd = TorchrunCommand(argv=tuple(argv), env=env, cwd=tmp_path, log_dir=tmp_path / "logs")
    with pytest.raises(InferenceError, match=r"rank 1 sent no heartbeat for \d+ s"):
        launch(cmd, timeout_s=50, grace_s=2, hang_timeout_s=4)
    for pid_file in pids.iterdir():
        pid = int(pid_file.read_text())
        state = Path(f"/proc/{pid}/stat").read_text().split()[2] if Path(f"/proc/{pid}").exists() else "gone"
        assert state in ("gone", "Z"), f"rank {pid_file.name} (pid {pid}) is still {state}"


def test_stale_names_only_ranks_with_an_old_heartbeat(tmp_path):
    from scene2world.inference.heartbeat import stale

    (tmp_path / "0").touch()
    os.utime(tmp_path / "0", (time.time() - 100, time.time() - 100))
    assert set(stale(tmp_path, 50)) == {0}
    assert stale(tmp_path, 500) == {}
    assert stale(tmp_path / "none", 1) == {}
