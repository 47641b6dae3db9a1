"""What a user sees in Prefect after a pipeline run, read back through the Prefect client: the
per-clip-and-camera task runs, progress artifacts that moved, the markdown summary, our logs."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from scene2world.config import load_config
from scene2world.flows.pipeline import run_pipeline
from tests.conftest import EXAMPLE

FRONT = "camera_front_wide_120fov"


async def _read(prefix: str) -> dict[str, Any]:
    """The flow runs named ``prefix*`` and every task run, artifact and log of the test server (newest first)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName
    from prefect.client.schemas.sorting import ArtifactSort, LogSort, TaskRunSort

    async with get_client() as client:
        runs = await client.read_flow_runs(flow_run_filter=FlowRunFilter(name=FlowRunFilterName(like_=prefix)))
        tasks = await client.read_task_runs(sort=TaskRunSort.EXPECTED_START_TIME_DESC, limit=200)
        artifacts = await client.read_artifacts(sort=ArtifactSort.CREATED_DESC, limit=200)
        logs = await client.read_logs(sort=LogSort.TIMESTAMP_DESC, limit=200)
    return {"runs": runs, "artifacts": artifacts, "tasks": tasks, "logs": logs}


@pytest.mark.timeout(600)
def test_task_runs_progress_summary_and_logs_reach_prefect(prefect_harness, tmp_path):
    cfg = load_config(
        None,
        [
            f"download.source={EXAMPLE}",
            f"data_root={tmp_path / 'data'}",
            f"runs_dir={tmp_path / 'runs'}",
            "name=artifacts",
            f"render.cameras=[{FRONT}]",
            "render.frames='0:90'",
            "render.msaa=1",
            "render.preset=ultrafast",
            "infer.nproc_per_node=1",
            "package.archive=none",
        ],
    )
    summary = run_pipeline(cfg)
    seen = asyncio.run(_read("artifacts-"))
    (run,) = seen["runs"]  # named after the config and the UTC time
    assert run.name.startswith("artifacts-20")

    names: dict[str, str] = {}
    for t in seen["tasks"]:
        names.setdefault(t.name, t.state.name if t.state else "?")
    assert names[f"render-s2w_demo_curve_0001-{FRONT}"] == "Completed"
    assert names["plan-s2w_demo_curve_0001"] == "Completed"

    by_key: dict[str, Any] = {}
    for a in seen["artifacts"]:
        by_key.setdefault(a.key, a)
    for key in ("scene2world-render-progress", "scene2world-infer-progress"):
        progress = by_key[key]
        assert progress.type == "progress"
        assert progress.data == 100
        assert progress.updated > progress.created, f"{key} never moved after it was created"
    assert "camera-frames" in (by_key["scene2world-render-progress"].description or "")
    assert "samples 1/1" in (by_key["scene2world-infer-progress"].description or "")

    markdown = by_key["scene2world-summary"]
    assert markdown.type == "markdown"
    text = str(markdown.data)
    assert "| s2w_demo_curve_0001 | 1 | 1 | 0 | 90 | 1 | 1 | 0 |" in text
    assert summary["run_dir"] in text
    assert "![contact sheet](data:image/jpeg;base64," in text

    messages = [log.message for log in seen["logs"]]
    assert any("render: 1 camera video(s) rendered, 0 reused" in m for m in messages), messages[:20]
