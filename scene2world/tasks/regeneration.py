"""Thin Prefect tasks of the regeneration flow (the logic is in scene2world.regeneration)."""

from pathlib import Path
from typing import Any

from prefect import get_run_logger, task

from scene2world.config import DownloadConfig
from scene2world.regeneration.probe import Probe, probe_source


@task(name="probe-source", task_run_name="probe-{cfg.source}", tags=["scene2world", "download"])
def probe_task(cfg: DownloadConfig, datasets: dict[str, str], data_root: Path) -> Probe:
    """Ask the source whether it changed (one conditional GET for http sources)."""
    probe = probe_source(cfg, datasets, data_root)
    said = {True: "not modified (304)", False: "new content fetched", None: "local source hashed"}[probe.not_modified]
    get_run_logger().info("%s: %s, sha256 %s", probe.resolved, said, probe.content_sha256[:12])
    return probe


def probe_summary(probe: Probe) -> dict[str, Any]:
    """The probe as JSON-able fields."""
    return {"resolved": probe.resolved, "not_modified": probe.not_modified, "content_sha256": probe.content_sha256}
