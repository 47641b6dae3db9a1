"""Stop signals to a real ``scene2world run`` in each phase: everything stops, nothing half-written is kept.

The matrix: SIGINT to the process group (Ctrl-C in a terminal), SIGTERM and SIGKILL to the
CLI process alone; during the download (a slow HTTP server on 127.0.0.1 holds it), the render
and the inference (2 gloo ranks). Every process the run started is tracked by pid and start
time (torchrun ranks and the Prefect server included) and must be gone within 10 s. A run that
survives to exit says 130/143 and leaves its flow run Crashed or Cancelled in Prefect's
database. No output folder is published half-written, and a final re-run is correct.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from scene2world import cache
from scene2world.inference.launcher import ProcessTree
from scene2world.manifest import read_manifest
from tests.conftest import EXAMPLE, REPO

CLEAN_WITHIN_S = 10.0
PHASE_TIMEOUT_S = 120.0
CAMERA = "camera_front_wide_120fov"
TIMES: dict[str, float] = {}


class TrickleServer:
    """Serves one zip at ~5 KiB/s on 127.0.0.1, so a download lasts long enough to be stopped."""

    def __init__(self, body: bytes) -> None:
        self.requested = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                server.requested.set()
                self.send_response(200)
                self.send_header("Content-Type", "application/zip")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    for i in range(0, len(body), 1024):
                        self.wfile.write(body[i : i + 1024])
                        self.wfile.flush()
                        time.sleep(0.2)
                except OSError:
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/example.zip"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _zip_of(folder: Path) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(folder.parent).as_posix())
    return buf.getvalue()


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Iterator[dict[str, object]]:
    """A data root, the slow HTTP source, and one Prefect server that the render and infer cases
    share (each download case starts its own, so that server's end is tested in every case)."""
    from scene2world.prefect_server import start_server

    root = tmp_path_factory.mktemp("signals")
    server = TrickleServer(_zip_of(EXAMPLE))
    shared_home = root / "shared-home"
    shared_home.mkdir()
    # the database named explicitly: a session-wide Prefect test harness (other test files) would
    # otherwise hand this server its own database through the current settings
    database = f"sqlite+aiosqlite:///{shared_home / 'prefect.db'}"
    with start_server(
        90, {"PREFECT_HOME": str(shared_home), "PREFECT_SERVER_DATABASE_CONNECTION_URL": database}
    ) as api_url:
        yield {"root": root, "url": server.url, "server": server, "api_url": api_url, "shared_home": shared_home}
    server.close()


def _argv(root: Path, source: str) -> list[str]:
    sets = [
        f"data_root={root / 'data'}",
        f"runs_dir={root / 'runs'}",
        f"download.source={source}",
        f"render.cameras=[{CAMERA}]",
        "render.frames='0:90'",
        "render.msaa=1",
        "render.preset=ultrafast",
        "package.archive=none",
    ]
    return [sys.executable, "-m", "scene2world.cli", "run", *[a for s in sets for a in ("--set", s)]]


def _env(world: dict[str, object], shared: bool) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "PREFECT_HOME": str(_home(world, shared))}
    if shared:
        env["PREFECT_API_URL"] = str(world["api_url"])
    return env


def _home(world: dict[str, object], shared: bool) -> Path:
    return Path(world["shared_home"]) if shared else Path(world["root"]) / "prefect-home"  # type: ignore[arg-type]


def _cmdlines(tree: ProcessTree) -> list[bytes]:
    out = []
    for pid in tree.alive():
        with contextlib.suppress(OSError):
            out.append(Path(f"/proc/{pid}/cmdline").read_bytes())
    return out


def _in_phase(phase: str, root: Path, world: dict[str, object]) -> Callable[[ProcessTree], bool]:
    if phase == "download":
        return lambda tree: world["server"].requested.is_set()  # type: ignore[attr-defined]
    if phase == "render":
        return lambda tree: (
            any((root / "data" / "render-cameras").glob(".*.staging-*"))
            or any((root / "data" / "render").glob(".*.staging-*"))
        )
    return lambda tree: sum(_is_rank(c) for c in _cmdlines(tree)) >= 2


def _is_rank(cmdline: bytes) -> bool:
    """A preview-worker rank (not the supervisor or torchrun's agent, whose argv name it too)."""
    return b"preview_worker" in cmdline and b"torch.distributed.run" not in cmdline


def _flow_state(home: Path) -> str:
    with sqlite3.connect(home / "prefect.db") as db:
        row = db.execute(
            "select state_type from flow_run where parent_task_run_id is null order by created desc limit 1"
        ).fetchone()
    return str(row[0])


def _published_outputs_are_whole(root: Path) -> None:
    for manifest in (root / "data").glob("*/*/manifest.json"):
        key = read_manifest(manifest).cache_key
        assert cache.lookup(manifest.parent, key) is not None, manifest
    assert not (root / "runs").exists() or not any((root / "runs").glob("*/manifest.json"))


pytestmark = pytest.mark.e2e

CASES = [
    (phase, sig, target)
    for phase in ("download", "render", "infer")
    for sig, target in ((signal.SIGINT, "group"), (signal.SIGTERM, "parent"), (signal.SIGKILL, "parent"))
]


@pytest.mark.timeout(300)
@pytest.mark.parametrize(("phase", "sig", "target"), CASES, ids=[f"{p}-{s.name}-{t}" for p, s, t in CASES])
def test_a_stopped_run_leaves_no_process_and_nothing_half_written(world, phase, sig, target):
    root: Path = world["root"]  # type: ignore[assignment]
    world["server"].requested.clear()  # type: ignore[attr-defined]
    # make the phase happen: the step outputs and the per-camera / per-sample caches behind them
    steps = ("render", "render-cameras", "infer", "infer-samples") if phase == "render" else ("infer", "infer-samples")
    for step in steps:
        shutil.rmtree(root / "data" / step, ignore_errors=True)
    source = str(world["url"]) if phase == "download" else str(EXAMPLE)
    shared = phase != "download"
    proc = subprocess.Popen(
        _argv(root, source),
        env=_env(world, shared),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own group: SIGINT to it is a terminal's Ctrl-C
    )
    tree = ProcessTree(proc.pid)
    reached = _in_phase(phase, root, world)
    try:
        deadline = time.monotonic() + PHASE_TIMEOUT_S
        while not reached(tree):
            tree.refresh()
            assert proc.poll() is None, f"exited ({proc.returncode}) before the {phase}: {proc.stderr.read()[-3000:]}"  # type: ignore[union-attr]
            assert time.monotonic() < deadline, f"the {phase} did not start"
            time.sleep(0.05)
        time.sleep(1.0)
        tree.refresh()
        assert tree.alive() or phase == "render", "the run should have child processes (server, ranks)"
        t0 = time.monotonic()
        if target == "group":
            os.killpg(proc.pid, sig)
        else:
            os.kill(proc.pid, sig)
        left: list[bytes] = []
        while (proc.poll() is None or tree.alive()) and time.monotonic() - t0 < CLEAN_WITHIN_S + 20:
            tree.refresh()
            if not left and time.monotonic() - t0 > CLEAN_WITHIN_S:
                left = _cmdlines(tree)  # what outlived the limit, for the failure message
            time.sleep(0.05)
        took = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        tree.refresh()
        for pid in tree.alive():
            os.kill(pid, signal.SIGKILL)
    stderr = proc.stderr.read()  # type: ignore[union-attr]
    TIMES[f"{phase:8s} {sig.name:7s} to {target}"] = took
    print(f"\n{phase:8s} {sig.name:7s} to {target:6s}: clean after {took:.1f} s (exit {proc.returncode})")
    survivors = [c.replace(b"\0", b" ").decode(errors="replace") for c in left]
    assert took < CLEAN_WITHIN_S, f"processes left after {took:.1f} s: {survivors}"
    if sig == signal.SIGKILL:
        assert proc.returncode == -signal.SIGKILL
    else:
        assert proc.returncode == 128 + sig, stderr[-3000:]
        assert f"stopped by {sig.name}" in stderr.splitlines()[-1]
        assert "Traceback" not in stderr, stderr[-3000:]
        assert _flow_state(_home(world, shared)) in ("CRASHED", "CANCELLED"), stderr[-3000:]
        assert not list((root / "data").glob("*/.*.staging-*")), "a stopped run left a staging folder"
    _published_outputs_are_whole(root)


@pytest.mark.timeout(300)
def test_a_run_after_the_stopped_ones_is_correct(world):
    root: Path = world["root"]  # type: ignore[assignment]
    env = _env(world, shared=True)
    done = subprocess.run(_argv(root, str(EXAMPLE)), env=env, capture_output=True, text=True, timeout=280)
    assert done.returncode == 0, done.stderr[-3000:]
    run_dir = Path(done.stdout.strip().splitlines()[-1]).parent
    verify = subprocess.run(
        [sys.executable, "-m", "scene2world.cli", "verify", str(run_dir)], env=env, capture_output=True
    )
    assert verify.returncode == 0, verify.stderr
    for published in (root / "data").glob("*/*/manifest.json"):  # killed runs' staging of these outputs is gone
        folder = published.parent
        assert not list(folder.parent.glob(f".{folder.name}.staging-*")), folder
    if TIMES:
        print("\nseconds from the signal to a clean state:")
        for case, seconds in TIMES.items():
            print(f"  {case}: {seconds:.1f}")
