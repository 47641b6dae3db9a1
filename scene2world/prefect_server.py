"""A temporary Prefect API server that a terminal's Ctrl-C cannot kill before the flow is told.

Without ``PREFECT_API_URL`` Prefect starts its own temporary server as a child in the
caller's process group: Ctrl-C in a terminal reaches it at the same moment as the flow, the
flow then cannot record its end and retries the dead API for minutes (docs/processes.md).
:func:`api_server` starts the same kind of server itself, but in a session of its own and
set to die with this process (:mod:`scene2world.lifeline`), points Prefect at it for the
duration, and stops it (SIGTERM, then SIGKILL) once the flow has recorded how it ended.
With ``PREFECT_API_URL`` set, the user's server is used and nothing is started.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

from scene2world.errors import Scene2WorldError
from scene2world.lifeline import guarded_argv

HEALTH_POLL_S = 0.1
STOP_WAIT_S = 5.0
DRAIN_WAIT_S = 5.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _healthy(url: str) -> bool:
    import httpx

    try:
        return httpx.get(f"{url}/health", timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def server_argv(port: int) -> list[str]:
    """The uvicorn command serving Prefect's API app (no UI) on 127.0.0.1:``port``."""
    import prefect

    return [
        sys.executable, "-m", "uvicorn", "--app-dir", str(Path(prefect.__file__).parent.parent),
        "--factory", "prefect.server.api.server:create_app", "--host", "127.0.0.1", "--port", str(port),
        "--log-level", "error", "--lifespan", "on",
    ]  # fmt: skip


def stop_server(proc: subprocess.Popen[bytes], wait_s: float = STOP_WAIT_S) -> None:
    """SIGTERM the server's process group, then SIGKILL it after ``wait_s`` seconds."""
    for sig, wait in ((signal.SIGTERM, wait_s), (signal.SIGKILL, wait_s)):
        if proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=wait)


@contextlib.contextmanager
def start_server(timeout_s: float, extra_env: Mapping[str, str] | None = None) -> Iterator[str]:
    """Start a Prefect API server in its own session; yield its API URL; stop it on the way out.

    It runs with this process's Prefect settings (``PREFECT_HOME`` and so its database), updated
    by ``extra_env``.
    """
    from prefect.settings import get_current_settings

    env = {
        **os.environ,
        **get_current_settings().to_environment_variables(exclude_unset=True),
        "PREFECT_UI_ENABLED": "0",
        "PREFECT__SERVER_EPHEMERAL": "1",
        "PREFECT__SERVER_FINAL": "1",
        **(extra_env or {}),
    }
    env.pop("PREFECT_API_URL", None)
    port = _free_port()
    url = f"http://127.0.0.1:{port}/api"
    proc = subprocess.Popen(
        guarded_argv(server_argv(port)),
        env=env,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + timeout_s
        while not _healthy(url):
            if proc.poll() is not None:
                raise Scene2WorldError(
                    f"the temporary Prefect server exited with status {proc.returncode} before answering; "
                    "check PREFECT_HOME, or start one with `prefect server start` and set PREFECT_API_URL"
                )
            if time.monotonic() > deadline:
                raise Scene2WorldError(
                    f"the temporary Prefect server did not answer within {timeout_s:g} s; raise "
                    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS or set PREFECT_API_URL"
                )
            time.sleep(HEALTH_POLL_S)
        yield url
    finally:
        stop_server(proc)


@contextlib.contextmanager
def api_server() -> Iterator[str | None]:
    """Prefect pointed at a usable API for the duration: the user's (yields None) or our own."""
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS,
        temporary_settings,
    )

    if PREFECT_API_URL.value():
        yield None
        return
    with start_server(float(PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value())) as url:
        os.environ["PREFECT_API_URL"] = url  # for anything that reads settings afresh
        try:
            with temporary_settings({PREFECT_API_URL: url}):
                try:
                    yield url
                finally:
                    drain_to_api()
        finally:
            os.environ.pop("PREFECT_API_URL", None)


def drain_to_api(timeout_s: float = DRAIN_WAIT_S) -> None:
    """Send the logs and events Prefect still holds before the server they go to is stopped."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for worker in (APILogWorker, EventsWorker):
        with contextlib.suppress(Exception):
            worker.drain_all(timeout=timeout_s)
