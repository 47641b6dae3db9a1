"""The scene2world pipeline as one Prefect flow: download -> render -> infer -> package.

The flow only orchestrates: it resolves paths, calls the four tasks in order (each a cache
hit when its inputs did not change) and returns a summary of what ran and what was reused.
"""

from __future__ import annotations

import platform
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from scene2world import __version__
from scene2world.config import (
    DownloadConfig,
    InferConfig,
    PackageConfig,
    PipelineConfig,
    RenderConfig,
)
from scene2world.flows.render_map import render_clips, task_runner_for
from scene2world.manifest import read_manifest
from scene2world.packaging.run_folder import CONTACT_SHEET
from scene2world.summary import clip_rows, run_summary
from scene2world.tasks.caching import call_step, output_is_valid
from scene2world.tasks.run_logs import send_to_prefect
from scene2world.tasks.steps import (
    download_key,
    download_task,
    infer_key,
    infer_task,
    package_key,
    package_task,
    render_key,
    render_task,
)


def _run_name() -> str:
    """``<config name>-<UTC time>``, e.g. ``nightly-20261206-171502``: runs told apart at a glance."""
    from prefect.runtime import flow_run

    name = flow_run.parameters.get("name", "scene2world")
    return f"{name}-{datetime.now(UTC):%Y%m%d-%H%M%S}"


@flow(name="scene2world", flow_run_name=_run_name, log_prints=True, validate_parameters=True)
def pipeline(
    name: str = "scene2world",
    data_root: Path = Path(".scene2world"),
    runs_dir: Path = Path("runs"),
    datasets: dict[str, str] | None = None,
    download: DownloadConfig = DownloadConfig(),  # noqa: B008 - pydantic defaults are the parameter schema
    render: RenderConfig = RenderConfig(),  # noqa: B008
    infer: InferConfig = InferConfig(),  # noqa: B008
    package: PackageConfig = PackageConfig(),  # noqa: B008
) -> dict[str, Any]:
    """Run the whole pipeline; each step is skipped when its cached output is intact."""
    logger = get_run_logger()
    cfg = PipelineConfig(
        name=name,
        data_root=data_root,
        runs_dir=runs_dir,
        datasets=datasets if datasets is not None else PipelineConfig().datasets,
        download=download,
        render=render,
        infer=infer,
        package=package,
    )
    root = Path(cfg.data_root).absolute()
    runs = Path(cfg.runs_dir).absolute()
    info = {"name": cfg.name, "source": cfg.download.source, "config": cfg.model_dump(mode="json")}

    send_to_prefect()
    states = {}
    seconds: dict[str, float] = {}
    t = time.perf_counter()
    states["download"] = call_step(download_task, download_key, cfg=cfg.download, datasets=cfg.datasets, data_root=root)
    d = states["download"].result()
    seconds["download"], t = time.perf_counter() - t, time.perf_counter()
    states["render"] = _render(cfg.render, d, root)
    r = states["render"].result()
    seconds["render"], t = time.perf_counter() - t, time.perf_counter()
    states["infer"] = call_step(infer_task, infer_key, cfg=cfg.infer, render=r, data_root=root)
    i = states["infer"].result()
    seconds["infer"], t = time.perf_counter() - t, time.perf_counter()
    states["package"] = call_step(
        package_task, package_key, cfg=cfg.package, render=r, infer=i, runs_dir=runs, name=cfg.name, info=info
    )
    p = states["package"].result()
    seconds["package"] = time.perf_counter() - t

    steps = []
    for step, state in states.items():
        result = state.result()
        cached = state.name == "Cached" or bool(result.get("cache_hit"))
        steps.append({"step": step, "status": "cached" if cached else "ran", "manifest": result["manifest"]})
        logger.info("%-8s %-6s %s", step, steps[-1]["status"], result["manifest"])
    create_table_artifact(key="scene2world-steps", table=steps, description=f"scene2world {cfg.name}")
    _summary_artifact(cfg.name, Path(p["manifest"]).parent, r, i, steps, seconds)
    return {
        "name": cfg.name,
        "run_dir": str(Path(p["manifest"]).parent),
        "manifest": p["manifest"],
        "steps": steps,
        "versions": {"scene2world": __version__, "python": platform.python_version()},
    }


def _render(cfg: RenderConfig, download: dict[str, Any], root: Path) -> Any:
    """The render step: a cache hit as a whole, or the clips x cameras mapped on the configured
    task runner (:mod:`scene2world.flows.render_map`) and then assembled into the step folder."""
    inputs = {"cfg": cfg, "download": download, "data_root": root}
    if output_is_valid(render_key, inputs):
        return render_task(**inputs, return_state=True)
    mapped = render_clips.with_options(task_runner=task_runner_for(cfg))(cfg, download, root)
    return render_task.with_options(refresh_cache=True)(**inputs, cameras=mapped, return_state=True)


def _summary_artifact(
    name: str,
    run_dir: Path,
    render: dict[str, Any],
    infer: dict[str, Any],
    steps: list[dict[str, Any]],
    seconds: dict[str, float],
) -> None:
    """The markdown summary of the run (per clip: rendered/reused, inferred/reused; the contact sheet)."""
    status = {s["step"]: s["status"] for s in steps}
    rows = clip_rows(
        read_manifest(Path(render["manifest"])),
        read_manifest(Path(infer["manifest"])),
        render_hit=status["render"] == "cached",
        infer_hit=status["infer"] == "cached",
    )
    table = [{**s, "seconds": seconds.get(s["step"], 0.0)} for s in steps]
    markdown = run_summary(name, run_dir, rows, table, run_dir / CONTACT_SHEET)
    create_markdown_artifact(markdown, key="scene2world-summary", description=f"scene2world run {name}")


def run_pipeline(cfg: PipelineConfig) -> dict[str, Any]:
    """Call the flow with a validated config (the CLI's entry)."""
    return pipeline(
        name=cfg.name,
        data_root=cfg.data_root,
        runs_dir=cfg.runs_dir,
        datasets=cfg.datasets,
        download=cfg.download,
        render=cfg.render,
        infer=cfg.infer,
        package=cfg.package,
    )
