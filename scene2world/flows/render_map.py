"""The render step mapped over clips and cameras, as a sub-flow on a chosen task runner.

One ``plan-<clip>`` task per clip (load it, key its cameras), then one ``render-<clip>-<camera>``
task per camera, each cached in Prefect under its per-camera key. A clip that fails fails its
own tasks; the other clips' cameras still render and stay published in the per-camera cache,
and the sub-flow then fails naming every failed clip. The task runner is ``render.task_runner``:
``local`` (threads handing cameras to this machine's render processes,
:mod:`scene2world.renderer.pool`) or ``dask`` (prefect-dask's ``DaskTaskRunner`` on
``render.dask_address``, or on a local cluster). See docs/scale-out.md.
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.futures import PrefectFuture, wait
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from scene2world.config import RenderConfig
from scene2world.errors import ConfigError, RenderError
from scene2world.renderer import step as render_step
from scene2world.tasks.caching import output_is_valid
from scene2world.tasks.progress import RenderProgressArtifact
from scene2world.tasks.steps import camera_target, render_camera_task, render_plan_task

WAIT_S = 1.0
"""How often the flow wakes to update the progress artifact while cameras render."""


def processes_of(cfg: RenderConfig) -> int:
    """Render processes on this machine for the ``local`` runner (``render.workers``, 0 = one per core)."""
    from scene2world.renderer.pool import default_processes

    return cfg.workers or default_processes()


def task_runner_for(cfg: RenderConfig) -> TaskRunner[Any]:
    """The task runner ``render.task_runner`` names; ConfigError when the dask extra is missing."""
    if cfg.task_runner == "local":
        return ThreadPoolTaskRunner(max_workers=processes_of(cfg))
    try:
        from prefect_dask import DaskTaskRunner
    except ImportError as e:
        raise ConfigError(
            "render.task_runner: `dask` needs the dask extra (pip install 'scene2world[dask]'), "
            f"not installed here ({e})"
        ) from e
    if cfg.dask_address:
        return DaskTaskRunner(address=cfg.dask_address)
    local = {"n_workers": processes_of(cfg), "threads_per_worker": 1, "processes": True, "dashboard_address": None}
    return DaskTaskRunner(cluster_kwargs=local)


def _error_of(future: PrefectFuture[Any]) -> str | None:
    future.wait()  # settles the future's final state (before it, ``state`` may still read RUNNING)
    state = future.state
    if state.is_completed():
        return None
    try:
        state.result(raise_on_failure=True)
    except BaseException as e:
        return str(e) or type(e).__name__
    return f"ended {state.name}"


def _run_name() -> str:
    """``render-<first 10 hex digits of the download's key>``: which dataset content it rendered."""
    from prefect.runtime import flow_run

    download = flow_run.parameters.get("download") or {}
    return f"render-{str(download.get('cache_key', 'dataset'))[:10]}"


@flow(name="scene2world-render", flow_run_name=_run_name, validate_parameters=False)
def render_clips(cfg: RenderConfig, download: dict[str, Any], data_root: Path) -> dict[str, Any]:
    """Plan every clip, render every (clip, camera) not already cached, and return what the render
    step's assembly needs: the plans, which cameras were rendered, and the time spent."""
    logger = get_run_logger()
    t0 = time.perf_counter()
    source = render_step.resolve_input(Path(download["manifest"]))
    planned = {
        clip.clip_id: render_plan_task.with_options(task_run_name=f"plan-{clip.clip_id}").submit(
            cfg, {"clip_id": clip.clip_id, "format": clip.format, "path": str(clip.path)}, source.origin
        )
        for clip in source.clips
    }
    wait(list(planned.values()))
    failed: dict[str, str] = {}
    plans: list[render_step.ClipPlan] = []
    for clip_id, future in planned.items():
        if (error := _error_of(future)) is not None:
            failed[clip_id] = error
        else:
            plans.append(render_step.ClipPlan.from_dict(future.result()))
    render_step.check_plans(cfg, plans)

    totals = {(p.clip_id, cam): p.frames[1] - p.frames[0] for p in plans for cam in p.cameras}
    rendered: dict[str, dict[str, bool]] = {p.clip_id: {} for p in plans}
    with ExitStack() as stack:
        if cfg.task_runner == "local":
            from scene2world.renderer.pool import active_pool

            stack.enter_context(active_pool(processes_of(cfg)))
        tracker = stack.enter_context(RenderProgressArtifact(totals))
        futures: dict[PrefectFuture[Any], tuple[str, str]] = {}
        for plan in plans:
            for cam in plan.cameras:
                inputs: dict[str, Any] = {"cfg": cfg, "plan": plan.to_dict(), "camera": cam, "data_root": data_root}
                # None (not False) keeps PREFECT_TASKS_REFRESH_CACHE working; True when the output is gone
                refresh: Any = None if output_is_valid(camera_target, inputs) else True
                task = render_camera_task.with_options(
                    task_run_name=f"render-{plan.clip_id}-{cam}", refresh_cache=refresh
                )
                futures[task.submit(**inputs)] = (plan.clip_id, cam)
        pending = set(futures)
        while pending:
            done, pending_now = wait(list(pending), timeout=WAIT_S)
            for future in done:
                clip_id, cam = futures[future]
                if (error := _error_of(future)) is not None:
                    failed.setdefault(clip_id, f"camera {cam}: {error}")
                    continue
                result = future.result()
                cached = future.state.name == "Cached"
                rendered[clip_id][cam] = bool(result["rendered"]) and not cached
                tracker.frames.finished(clip_id, cam)
            pending = set(pending_now)
            tracker.flush()
    if failed:
        for clip_id, error in failed.items():
            logger.error("render: clip %s failed: %s", clip_id, error)
        ok = len(source.clips) - len(failed)
        raise RenderError(
            f"render: {len(failed)} of {len(source.clips)} clip(s) failed "
            f"({'; '.join(f'{c}: {e}' for c, e in failed.items())}); the cameras of the other {ok} "
            "are kept in the per-camera cache and are reused by the next run"
        )
    n = sum(len(v) for v in rendered.values())
    fresh = sum(sum(v.values()) for v in rendered.values())
    logger.info("render: %d camera(s) of %d clip(s): %d rendered, %d reused", n, len(plans), fresh, n - fresh)
    return {"plans": [p.to_dict() for p in plans], "rendered": rendered, "seconds": time.perf_counter() - t0}
