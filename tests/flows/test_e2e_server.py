"""End to end against a real `prefect server` on 127.0.0.1: the CLI runs the flow through it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import EXAMPLE, REPO

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory):
    home = tmp_path_factory.mktemp("server-home")
    port = _free_port()
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_LOGGING_LEVEL": "WARNING",
    }
    env.pop("PREFECT_API_URL", None)
    log = open(home / "server.log", "w")  # noqa: SIM115 - closed in teardown
    proc = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port), "--no-ui"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    api = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + 90
    while True:
        try:
            if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"prefect server did not start: {(home / 'server.log').read_text()[-2000:]}")
        time.sleep(0.5)
    yield api
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
    log.close()


def _run_cli(api: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PREFECT_API_URL": api,
        "PREFECT_HOME": str(tmp_path / "client-home"),
        "PREFECT_RESULTS_LOCAL_STORAGE_PATH": str(tmp_path / "results"),
    }
    return subprocess.run(
        [
            sys.executable, "-m", "scene2world.cli", "run",
            "--config", str(REPO / "configs" / "default.yaml"),
            "--set", f"download.source={EXAMPLE}",
            "--set", f"data_root={tmp_path / 'data'}",
            "--set", f"runs_dir={tmp_path / 'runs'}",
            "--set", "name=e2e",
            "--set", "render.cameras=[camera_front_wide_120fov]",
            "--set", "render.frames='0:90'",
            "--set", "render.msaa=1",
            "--set", "render.preset=ultrafast",
            "--set", "package.archive=none",
        ],
        env=env, capture_output=True, text=True, timeout=500, cwd=tmp_path,
    )  # fmt: skip


def _task_states(api: str) -> list[tuple[str, str]]:
    runs = httpx.post(f"{api}/task_runs/filter", json={"sort": "EXPECTED_START_TIME_ASC"}, timeout=10).json()
    return [(r["name"], r["state"]["name"]) for r in runs]


def test_cli_run_through_a_real_server_then_all_cached(prefect_server, tmp_path):
    first = _run_cli(prefect_server, tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    manifest = Path(first.stdout.strip().splitlines()[-1])
    assert manifest.is_file() and manifest.name == "manifest.json"

    flows = httpx.post(f"{prefect_server}/flow_runs/filter", json={}, timeout=10).json()
    assert [f["state"]["name"] for f in flows] == ["Completed"] * 2  # the pipeline and its render sub-flow
    states = _task_states(prefect_server)
    assert sorted(s for _, s in states) == ["Completed"] * 7, states  # 4 steps, plan, camera, the sub-flow's
    names = {n for n, _ in states}
    assert {"plan-s2w_demo_curve_0001", "render-s2w_demo_curve_0001-camera_front_wide_120fov"} <= names
    count = len(states)

    second = _run_cli(prefect_server, tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    assert second.stdout.strip().splitlines()[-1] == str(manifest)
    assert "every step was a cache hit" in second.stderr
    states = _task_states(prefect_server)[count:]  # the render step is a hit as a whole: nothing mapped
    assert [s for _, s in states] == ["Cached"] * 4, states
