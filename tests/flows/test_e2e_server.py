"""End to end against a real `prefect server` on 127.0.0.1: the CLI runs the flow through it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import EXAMPLE, REPO

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]


def _run_cli(api: str, tmp_path: Path, source: Path = EXAMPLE) -> subprocess.CompletedProcess:
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
            "--set", f"download.source={source}",
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


def test_cli_user_error_reads_once_and_the_server_keeps_prefects_lines(prefect_server, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    run = _run_cli(prefect_server, tmp_path, source=empty)
    assert run.returncode == 2, run.stderr[-3000:]
    lines = run.stderr.strip().splitlines()
    assert [line for line in lines if "no clip found" in line] == [lines[-1]]  # the CLI's line, once
    assert lines[-1].startswith(f"scene2world run: error: {empty}: no clip found")

    flows = httpx.post(f"{prefect_server}/flow_runs/filter", json={}, timeout=10).json()
    failed = [f for f in flows if f["state"]["name"] == "Failed"]
    assert len(failed) == 1 and "no clip found" in failed[0]["state"]["message"]
    logs = httpx.post(
        f"{prefect_server}/logs/filter", json={"logs": {"flow_run_id": {"any_": [failed[0]["id"]]}}}, timeout=10
    ).json()
    assert any("DatasetError" in log["message"] and log["level"] >= 40 for log in logs), logs  # the UI has them
