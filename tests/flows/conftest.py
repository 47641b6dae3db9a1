"""Real Prefect processes for the flow tests: a server on 127.0.0.1, and a process work pool with
`prefect deploy --all` and a worker (one of each per test module)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO

POOL = "scene2world"  # the work pool prefect.yaml names


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(proc: subprocess.Popen, timeout: float = 20) -> None:
    """SIGTERM a process started in its own session (its whole group), SIGKILL after ``timeout``."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


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
    stop(proc)
    log.close()


@dataclass
class Stack:
    """A server, the `scene2world` process pool with prefect.yaml deployed, and a worker polling it."""

    api: str
    env: dict[str, str]
    tmp: Path
    worker_log: Path

    def prefect(self, *args: str, timeout: float = 500, cwd: Path | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "prefect", *args],
            env=self.env,
            cwd=cwd or self.tmp,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def get(self, path: str) -> dict:
        return httpx.get(f"{self.api}{path}", timeout=10).json()

    def post(self, path: str, body: dict) -> list | dict:
        return httpx.post(f"{self.api}{path}", json=body, timeout=10).json()


def client_env(api: str, tmp: Path) -> dict[str, str]:
    """Environment of a Prefect client process (CLI, worker, served flows) talking to ``api``."""
    env = {
        **os.environ,
        "PREFECT_API_URL": api,
        "PREFECT_HOME": str(tmp / "client-home"),
        "PREFECT_RESULTS_LOCAL_STORAGE_PATH": str(tmp / "results"),
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        "PREFECT_RUNNER_POLL_FREQUENCY": "1",
        "PREFECT_CLI_PROMPT": "false",
        "PREFECT_LOGGING_LEVEL": "INFO",
    }
    env.pop("SCENE2WORLD_HOME", None)  # the pull step finds the checkout by itself
    return env


@pytest.fixture(scope="module")
def stack(prefect_server, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("stack")
    env = client_env(prefect_server, tmp)
    st = Stack(prefect_server, env, tmp, tmp / "worker.log")
    made = st.prefect("work-pool", "create", POOL, "--type", "process", timeout=120)
    assert made.returncode == 0, made.stdout + made.stderr
    deployed = st.prefect("--no-prompt", "deploy", "--all", cwd=REPO, timeout=180)
    assert deployed.returncode == 0, deployed.stdout[-3000:] + deployed.stderr[-3000:]
    log = open(st.worker_log, "w")  # noqa: SIM115 - closed in teardown
    worker = subprocess.Popen(  # started outside the checkout: the pull step must find it
        [sys.executable, "-m", "prefect", "worker", "start", "--pool", POOL],
        env=env,
        cwd=tmp,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    yield st
    stop(worker)  # workers first, while the server is up (docs/prefect.md)
    log.close()
