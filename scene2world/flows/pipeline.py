"""The scene2world pipeline as one Prefect flow: download -> render -> infer -> package.

The flow only orchestrates: it merges its parameters over a config file, calls the four tasks
in order (each a cache hit when its inputs did not change) and returns a summary of what ran
and what was reused.

No ``from __future__ import annotations`` here: a deployment pickles the flow by value, and
with string annotations the parameter models could not be resolved there (docs/prefect.md).
"""

import platform
import time
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.states import State

from scene2world import __version__
from scene2world.config import (
    DownloadConfig,
    InferConfig,
    PackageConfig,
    PipelineConfig,
    RenderConfig,
)
from scene2world.flows.hooks import install_user_error_filter, log_cancellation, run_name
from scene2world.flows.params import resolve_config
from scene2world.flows.render_map import render_clips, task_runner_for
from scene2world.manifest import read_manifest
from scene2world.packaging.run_folder import CONTACT_SHEET
from scene2world.summary import clip_rows, run_summary
from scene2world.tasks.caching import call_step, output_is_valid
from scene2world.tasks.run_logs import send_to_prefect
from scene2world.tasks.steps import (
    download_target,
    download_task,
    infer_target,
    infer_task,
    package_target,
    package_task,
    render_target,
    render_task,
)


@flow(
    name="scene2world",
    flow_run_name=run_name,
    log_prints=True,
    validate_parameters=True,
    on_cancellation=[log_cancellation],
)
def pipeline(
    config: str | None = None,
    name: str | None = None,
    data_root: str | None = None,
    runs_dir: str | None = None,
    datasets: dict[str, str] | None = None,
    download: DownloadConfig | None = None,
    render: RenderConfig | None = None,
    infer: InferConfig | None = None,
    package: PackageConfig | None = None,
) -> dict[str, Any]:
    """Download a scene dataset, render its control videos, run Cosmos (or the preview engine), package a run.

    Every parameter left empty comes from `config` (or the built-in defaults); a parameter that is
    given overrides the file key by key, e.g. `render={"frames": "0:90"}` keeps the file's other
    render settings. Each step is skipped when its cached output is intact.

    Args:
        config: Pipeline config YAML, relative to the scene2world checkout (e.g. configs/default.yaml);
            empty = built-in defaults.
        name: Run name (run folder names); empty = the config's.
        data_root: Cache and step outputs, relative to the checkout; empty = the config's.
        runs_dir: Packaged run folders, relative to the checkout; empty = the config's.
        datasets: Named dataset sources usable as download.source, added to the config's.
        download: Download settings to override (only the keys given).
        render: Render settings to override (only the keys given).
        infer: Inference settings to override (only the keys given).
        package: Packaging settings to override (only the keys given).
    """
    install_user_error_filter()
    cfg = resolve_config(
        config,
        name=name,
        data_root=data_root,
        runs_dir=runs_dir,
        datasets=datasets,
        download=download,
        render=render,
        infer=infer,
        package=package,
    )
    return run_steps(cfg)


def run_steps(cfg: PipelineConfig) -> dict[str, Any]:
    """The four steps in order for a resolved config (inside a flow run); returns the run summary."""
    logger = get_run_logger()
    root = Path(cfg.data_root).absolute()
    runs = Path(cfg.runs_dir).absolute()
    info = {"name": cfg.name, "source": cfg.download.source, "config": cfg.model_dump(mode="json")}

    send_to_prefect()
    states = {}
    seconds: dict[str, float] = {}
    t = time.perf_counter()
    states["download"] = call_step(
        download_task, download_target, cfg=cfg.download, datasets=cfg.datasets, data_root=root
    )
    d = states["download"].result()
    seconds["download"], t = time.perf_counter() - t, time.perf_counter()
    states["render"] = _render(cfg.render, d, root)
    r = states["render"].result()
    seconds["render"], t = time.perf_counter() - t, time.perf_counter()
    states["infer"] = call_step(infer_task, infer_target, cfg=cfg.infer, render=r, data_root=root)
    i = states["infer"].result()
    seconds["infer"], t = time.perf_counter() - t, time.perf_counter()
    states["package"] = call_step(
        package_task, package_target, cfg=cfg.package, render=r, infer=i, runs_dir=runs, name=cfg.name, info=info
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


def _render(cfg: RenderConfig, download: dict[str, Any], root: Path) -> "State[Any]":
    """The render step: a cache hit as a whole, or the clips x cameras mapped on the configured
    task runner (:mod:`scene2world.flows.render_map`) and then assembled into the step folder."""
    inputs = {"cfg": cfg, "download": download, "data_root": root}
    if output_is_valid(render_target, inputs):
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
        data_root=str(cfg.data_root),
        runs_dir=str(cfg.runs_dir),
        datasets=cfg.datasets,
        download=cfg.download,
        render=cfg.render,
        infer=cfg.infer,
        package=cfg.package,
    )
