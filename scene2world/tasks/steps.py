"""Thin Prefect tasks around the four step functions: cache policy, retries, tags, logging.

Each task takes a config model and the upstream step's summary (a small dict holding its
manifest path) and returns its own summary. No numpy, rendering or subprocess code here.

The ``*_target(inputs)`` functions give a task's (step key, output folder) for its cache policy
(:mod:`.caching`); the step key itself comes from the step module (``render_key``, ``infer_key``...).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from prefect import Task, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from scene2world import cache
from scene2world.config import DownloadConfig, InferConfig, PackageConfig, RenderConfig
from scene2world.datasets import step as download_step
from scene2world.inference import step as infer_step
from scene2world.manifest import read_manifest
from scene2world.packaging import step as package_step
from scene2world.renderer import step as render_step
from scene2world.tasks import progress
from scene2world.tasks.caching import StepKey

CACHE_EXPIRATION = timedelta(days=30)

P = ParamSpec("P")
R = TypeVar("R")


def cached_step(
    name: str, key_of: Callable[[dict[str, Any]], Any], tags: list[str], run_name: str | None = None
) -> Callable[[Callable[P, R]], Task[P, R]]:
    """Prefect's ``@task`` for a step whose output folder is its cache (docs/caching.md): the
    :class:`~scene2world.tasks.caching.StepKey` policy over ``key_of``, a JSON result kept
    ``CACHE_EXPIRATION``, the ``scene2world`` tag and ``tags``."""

    def decorate(fn: Callable[P, R]) -> Task[P, R]:
        return task(
            name=name,
            task_run_name=run_name,
            cache_policy=StepKey(key_of=key_of),
            tags=["scene2world", *tags],
            persist_result=True,
            result_serializer="json",
            cache_expiration=CACHE_EXPIRATION,
        )(fn)

    return decorate


def download_target(inputs: dict[str, Any]) -> tuple[str, Path] | None:
    """(Key, folder) of a local download; None for a remote source (asked each time: conditional GET)."""
    cfg = DownloadConfig.model_validate(inputs["cfg"])
    key = download_step.local_key(cfg, inputs["datasets"])
    if key is None:
        return None
    return key, cache.store_dir(Path(inputs["data_root"]), download_step.STEP, key)


def render_target(inputs: dict[str, Any]) -> tuple[str, Path]:
    """(Key, folder) of the render step: its settings and the download manifest's digest."""
    cfg = RenderConfig.model_validate(inputs["cfg"])
    upstream = read_manifest(Path(inputs["download"]["manifest"]))
    key = render_step.render_key(cfg, upstream.digest())
    return key, cache.store_dir(Path(inputs["data_root"]), render_step.STEP, key)


def infer_target(inputs: dict[str, Any]) -> tuple[str, Path]:
    """(Key, folder) of the infer step: its settings and the keys of its samples (prompts, seeds, control videos)."""
    cfg = InferConfig.model_validate(inputs["cfg"])
    key = infer_step.infer_key(cfg, Path(inputs["render"]["manifest"]))
    return key, cache.store_dir(Path(inputs["data_root"]), infer_step.STEP, key)


def package_target(inputs: dict[str, Any]) -> tuple[str, Path]:
    """(Key, run folder) of the package step: its settings and both upstream manifests."""
    cfg = PackageConfig.model_validate(inputs["cfg"])
    render = read_manifest(Path(inputs["render"]["manifest"]))
    infer = read_manifest(Path(inputs["infer"]["manifest"]))
    key = package_step.package_key(cfg, inputs["name"], render.digest(), infer.digest(), inputs["info"])
    return key, package_step.run_dir_for(Path(inputs["runs_dir"]), inputs["name"], key)


@cached_step("download", download_target, ["download"], run_name="download-{cfg.source}")
def download_task(cfg: DownloadConfig, datasets: dict[str, str], data_root: Path) -> dict[str, Any]:
    """Fetch or copy the dataset and discover its clips."""
    result = download_step.run_download(cfg, datasets=datasets, data_root=data_root)
    return _report(result)


def camera_target(inputs: dict[str, Any]) -> tuple[str, Path]:
    """(Key, folder) of one (clip, camera) render: the per-camera key its plan carries, and its cache folder."""
    key = inputs["plan"]["cameras"][inputs["camera"]]
    return key, render_step.camera_dir(Path(inputs["data_root"]), key)


@task(name="render-plan", tags=["scene2world", "render"], cache_policy=NO_CACHE, persist_result=False)
def render_plan_task(cfg: RenderConfig, clip: dict[str, str], origin: str | None) -> dict[str, Any]:
    """Load one clip and plan its cameras (their per-camera keys) and frames."""
    from scene2world.scene.discover import ClipRef

    ref = ClipRef(clip["clip_id"], clip["format"], Path(clip["path"]))  # type: ignore[arg-type]
    return render_step.plan_clip(cfg, ref, origin).to_dict()


@cached_step("render-camera", camera_target, ["render"])
def render_camera_task(cfg: RenderConfig, plan: dict[str, Any], camera: str, data_root: Path) -> dict[str, Any]:
    """Render one camera of one clip into the per-camera cache (in this machine's render pool when
    there is one, else in this process: a Dask worker)."""
    from scene2world.renderer.pool import current_pool

    clip = render_step.ClipPlan.from_dict(plan)
    pool = current_pool()
    tracker = progress.current_render()
    report = None if tracker is None else (lambda done, _total: tracker.camera(clip.clip_id, camera, done))
    outcome = render_step.render_camera(
        cfg,
        clip,
        camera,
        data_root=data_root,
        renderer=render_step.render_here if pool is None else pool.render,
        progress=report,
    )
    return outcome.to_dict()


@cached_step("render", render_target, ["render"], run_name="render-assemble")
def render_task(
    cfg: RenderConfig, download: dict[str, Any], data_root: Path, cameras: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The render step's output: the per-camera renders of ``cameras`` (what the mapped render
    returned) linked into one folder with its manifest; without them, every clip rendered here."""
    source = render_step.resolve_input(Path(download["manifest"]))
    if cameras is None:
        result = render_step.run_render(cfg, source, data_root=data_root)
    else:
        plans = [render_step.ClipPlan.from_dict(p) for p in cameras["plans"]]
        result = render_step.assemble(
            cfg, source, plans, cameras["rendered"], data_root=data_root, seconds=cameras["seconds"]
        )
    return _report(result)


@cached_step("infer", infer_target, ["infer", "gpu"], run_name="infer-{cfg.engine}")
def infer_task(cfg: InferConfig, render: dict[str, Any], data_root: Path) -> dict[str, Any]:
    """Run the Cosmos engine (or the preview engine) under torchrun on every clip."""
    logger = get_run_logger()
    with progress.InferProgressArtifact() as tracker:

        def log_line(line: str) -> None:
            logger.info("%s", line)
            tracker.line(line)

        result = infer_step.run_infer(cfg, Path(render["manifest"]), data_root=data_root, log_line=log_line)
    return _report(result)


@cached_step("package", package_target, ["package"], run_name="package-{name}")
def package_task(
    cfg: PackageConfig,
    render: dict[str, Any],
    infer: dict[str, Any],
    runs_dir: Path,
    name: str,
    info: dict[str, Any],
) -> dict[str, Any]:
    """Assemble the run folder, its manifest and archive."""
    result = package_step.run_package(
        cfg, Path(render["manifest"]), Path(infer["manifest"]), runs_dir=runs_dir, name=name, info=info
    )
    return _report(result)


def _report(result: cache.StepResult) -> dict[str, Any]:
    logger = get_run_logger()
    summary = result.summary()
    verb = "cache hit, nothing to do" if result.cache_hit else "done"
    logger.info("%s: %s -> %s", summary["step"], verb, summary["manifest"])
    return summary
