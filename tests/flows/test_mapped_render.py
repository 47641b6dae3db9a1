"""The render step mapped over clips x cameras in Prefect: same outputs as the plain step, only
changed clips re-rendered, a broken clip reported without losing the others, Dask, artifacts."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from prefect import flow

from scene2world.config import DownloadConfig, RenderConfig
from scene2world.manifest import read_manifest
from scene2world.renderer import step as render_step
from scene2world.scene.clipgt_writer import write_clipgt
from scene2world.scene.load import load_scene
from tests.conftest import EXAMPLE

FRONT = "camera_front_wide_120fov"
FAST: dict[str, Any] = {"frames": "0:4", "msaa": 1, "preset": "ultrafast"}


@flow(name="render-only")
def render_only(cfg: RenderConfig, dataset: Path, data_root: Path) -> dict[str, Any]:
    """download -> render of the pipeline (its own wiring), without inference."""
    from scene2world.flows.pipeline import _render
    from scene2world.tasks.steps import download_task

    d = download_task(DownloadConfig(source=str(dataset)), {}, data_root)
    state = _render(cfg, d, data_root)
    return {**state.result(), "state": state.name}


def write_clips(folder: Path, count: int, *, shift_m: dict[int, float] | None = None, front_only: tuple[int, ...] = ()):
    """``count`` variants of the bundled example (new clip ids); ``shift_m[i]`` moves clip i's ego
    path sideways; clips in ``front_only`` keep only the front wide camera."""
    base = load_scene(EXAMPLE)
    for i in range(count):
        scene = dataclasses.replace(base, clip_id=f"s2w_variant_{i:02d}")
        if (shift_m or {}).get(i):
            poses = scene.world_SE3_rig.copy()
            poses[:, 1, 3] += shift_m[i]  # type: ignore[index]
            scene = dataclasses.replace(scene, world_SE3_rig=poses)
        if i in front_only:
            scene = dataclasses.replace(scene, cameras={FRONT: scene.cameras[FRONT]})
        write_clipgt(scene, folder / scene.clip_id)
    return folder


def _task_runs(flow_run_name_prefix: str | None = None) -> dict[str, str]:
    """Every task run of the test server: name -> state name (latest run of each name)."""
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.sorting import TaskRunSort

    async def read():
        async with get_client() as client:
            runs = await client.read_task_runs(sort=TaskRunSort.EXPECTED_START_TIME_DESC, limit=200)
            return runs

    out: dict[str, str] = {}
    for run in asyncio.run(read()):
        out.setdefault(run.name, run.state.name if run.state else "?")
    return out


@pytest.mark.timeout(600)
def test_mapped_render_matches_the_plain_step_byte_for_byte(prefect_harness, tmp_path):
    cams = [FRONT, "camera_cross_left_120fov", "camera_rear_tele_30fov"]
    cfg = RenderConfig(cameras=cams, **FAST)
    mapped = render_only(cfg, EXAMPLE, tmp_path / "mapped")
    plain = render_step.run_render(cfg, render_step.resolve_input(EXAMPLE), data_root=tmp_path / "plain")
    a, b = read_manifest(Path(mapped["manifest"])), plain.manifest
    assert {f.path: f.sha256 for f in a.files} == {f.path: f.sha256 for f in b.files}
    assert len(a.files) == 3
    assert a.settings == b.settings
    assert a.data["clips"] == b.data["clips"]
    clip = a.data["clips"]["s2w_demo_curve_0001"]
    assert clip["rendered"] == cams and clip["reused"] == []
    # the same per-camera keys (cache folders) as the plain step
    camera_dirs = {p.name for p in (tmp_path / "mapped" / render_step.CAMERA_CACHE).iterdir()}
    assert camera_dirs == {p.name for p in (tmp_path / "plain" / render_step.CAMERA_CACHE).iterdir()}
    assert len(camera_dirs) == 3
    runs = _task_runs()
    assert {f"render-s2w_demo_curve_0001-{c}" for c in cams} <= set(runs)


@pytest.mark.timeout(600)
def test_only_the_changed_clip_is_rendered_again(prefect_harness, tmp_path):
    cfg = RenderConfig(cameras=[FRONT], **FAST)
    dataset = write_clips(tmp_path / "v1", 3)
    first = read_manifest(Path(render_only(cfg, dataset, tmp_path / "data")["manifest"]))
    assert first.stats == {"rendered_cameras": 3, "reused_cameras": 0}

    changed = write_clips(tmp_path / "v2", 3, shift_m={1: 0.5})  # clip 1's ego path moved 50 cm
    second = read_manifest(Path(render_only(cfg, changed, tmp_path / "data")["manifest"]))
    assert second.stats == {"rendered_cameras": 1, "reused_cameras": 2}
    clips = second.data["clips"]
    assert clips["s2w_variant_01"]["rendered"] == [FRONT]
    assert clips["s2w_variant_00"]["reused"] == [FRONT] and clips["s2w_variant_02"]["reused"] == [FRONT]
    runs = _task_runs()
    assert runs[f"render-s2w_variant_01-{FRONT}"] == "Completed"
    assert runs[f"render-s2w_variant_00-{FRONT}"] == "Cached"
    assert runs[f"render-s2w_variant_02-{FRONT}"] == "Cached"
    files = {f.path: f.sha256 for f in second.files}
    before = {f.path: f.sha256 for f in first.files}
    assert [p for p in files if files[p] != before[p]] == [f"s2w_variant_01/s2w_variant_01.{FRONT}.mp4"]

    # nothing changed: the render step is one cached task, no camera is mapped again
    again = render_only(cfg, changed, tmp_path / "data")
    assert again["state"] == "Cached"


@pytest.mark.timeout(600)
def test_a_broken_clip_fails_alone_and_the_others_stay_published(prefect_harness, tmp_path):
    from scene2world.errors import RenderError

    dataset = write_clips(tmp_path / "ds", 3, front_only=(0, 1, 2))
    ego = next((dataset / "s2w_variant_01").glob("*.egomotion_estimate.parquet"))
    ego.write_bytes(ego.read_bytes()[:300])  # truncated mid-file
    cfg = RenderConfig(**FAST)  # every clip's own rig: the front camera only
    with pytest.raises(RenderError, match=r"1 of 3 clip\(s\) failed \(s2w_variant_01: "):
        render_only(cfg, dataset, tmp_path / "data")
    assert not (tmp_path / "data" / render_step.STEP).exists() or not any((tmp_path / "data" / "render").iterdir())
    good = [
        render_step.plan_clip(cfg, ref)
        for ref in render_step.resolve_input(dataset).clips
        if ref.clip_id != "s2w_variant_01"
    ]
    for plan in good:
        key = plan.cameras[FRONT]
        assert render_step.cache.lookup(render_step.camera_dir(tmp_path / "data", key), key) is not None
    runs = _task_runs()
    assert runs["plan-s2w_variant_01"] == "Failed"
    assert runs[f"render-s2w_variant_00-{FRONT}"] == "Completed"


def test_a_named_camera_no_clip_has_is_an_error(tmp_path):
    from scene2world.errors import RenderError

    dataset = write_clips(tmp_path / "ds", 2, front_only=(0, 1))
    cfg = RenderConfig(cameras=[FRONT, "camera_rear_tele_30fov"], **FAST)
    with pytest.raises(
        RenderError, match=r"no clip has camera_rear_tele_30fov \(clips: s2w_variant_00, s2w_variant_01\)"
    ):
        render_step.run_render(cfg, render_step.resolve_input(dataset), data_root=tmp_path / "data")


def test_mixed_rigs_render_each_clips_own_cameras(tmp_path):
    dataset = write_clips(tmp_path / "ds", 2, front_only=(1,))
    cfg = RenderConfig(**{**FAST, "frames": "0:2"})
    plans = {p.clip_id: p for p in (render_step.plan_clip(cfg, c) for c in render_step.resolve_input(dataset).clips)}
    assert len(plans["s2w_variant_00"].cameras) == 7
    assert list(plans["s2w_variant_01"].cameras) == [FRONT]
    # a restriction keeps the cameras each clip has
    only = RenderConfig(**{**FAST, "cameras": [FRONT, "camera_rear_tele_30fov"]})
    restricted = [render_step.plan_clip(only, c) for c in render_step.resolve_input(dataset).clips]
    assert [list(p.cameras) for p in restricted] == [[FRONT, "camera_rear_tele_30fov"], [FRONT]]
    render_step.check_plans(only, restricted)


@pytest.mark.timeout(600)
def test_dask_local_cluster_gives_the_local_manifest(prefect_harness, tmp_path):
    from distributed import LocalCluster

    dataset = write_clips(tmp_path / "ds", 2, front_only=(0, 1))
    local = render_only(RenderConfig(**FAST), dataset, tmp_path / "local")
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        cfg = RenderConfig(**FAST, task_runner="dask", dask_address=cluster.scheduler_address)
        remote = render_only(cfg, dataset, tmp_path / "dask")
        workers = set(cluster.workers)
    assert len(workers) == 2
    a, b = read_manifest(Path(local["manifest"])), read_manifest(Path(remote["manifest"]))
    assert a.digest() == b.digest()
    assert b.stats == {"rendered_cameras": 2, "reused_cameras": 0}
