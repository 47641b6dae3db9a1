"""The scene2world pipeline as one Prefect flow: download -> render -> infer -> package.

The flow only orchestrates: it resolves paths, calls the four tasks in order (each a cache
hit when its inputs did not change) and returns a summary of what ran and what was reused.
"""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact

from scene2world import __version__
from scene2world.config import (
    DownloadConfig,
    InferConfig,
    PackageConfig,
    PipelineConfig,
    RenderConfig,
)
from scene2world.tasks.caching import call_step
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


@flow(name="scene2world", flow_run_name="scene2world-{name}", log_prints=True, validate_parameters=True)
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

    states = {}
    states["download"] = call_step(download_task, download_key, cfg=cfg.download, datasets=cfg.datasets, data_root=root)
    d = states["download"].result()
    states["render"] = call_step(render_task, render_key, cfg=cfg.render, download=d, data_root=root)
    r = states["render"].result()
    states["infer"] = call_step(infer_task, infer_key, cfg=cfg.infer, render=r, data_root=root)
    i = states["infer"].result()
    states["package"] = call_step(
        package_task, package_key, cfg=cfg.package, render=r, infer=i, runs_dir=runs, name=cfg.name, info=info
    )
    p = states["package"].result()

    steps = []
    for step, state in states.items():
        result = state.result()
        cached = state.name == "Cached" or bool(result.get("cache_hit"))
        steps.append({"step": step, "status": "cached" if cached else "ran", "manifest": result["manifest"]})
        logger.info("%-8s %-6s %s", step, steps[-1]["status"], result["manifest"])
    create_table_artifact(key="scene2world-steps", table=steps, description=f"scene2world {cfg.name}")
    return {
        "name": cfg.name,
        "run_dir": str(Path(p["manifest"]).parent),
        "manifest": p["manifest"],
        "steps": steps,
        "versions": {"scene2world": __version__, "python": platform.python_version()},
    }


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
