"""The render step's cache: per-camera reuse, and nothing published when rendering fails midway."""

from __future__ import annotations

import pytest

from scene2world.config import RenderConfig
from scene2world.renderer import render as render_module
from scene2world.renderer.step import parse_frames, resolve_input, run_render
from tests.conftest import EXAMPLE

FAST = {"frames": "0:3", "msaa": 1, "preset": "ultrafast", "png": True}


def test_per_camera_cache_reuses_unchanged_cameras(tmp_path):
    source = resolve_input(EXAMPLE)
    one = RenderConfig(cameras=["camera_front_wide_120fov"], **FAST)
    first = run_render(one, source, data_root=tmp_path)
    assert first.manifest.stats == {"rendered_cameras": 1, "reused_cameras": 0}
    two = RenderConfig(cameras=["camera_front_wide_120fov", "camera_rear_tele_30fov"], **FAST)
    second = run_render(two, source, data_root=tmp_path)
    assert second.manifest.stats == {"rendered_cameras": 1, "reused_cameras": 1}
    again = run_render(two, source, data_root=tmp_path)
    assert again.cache_hit


def test_failure_midway_publishes_nothing(tmp_path, monkeypatch):
    real = render_module.render_clip

    def half_then_fail(scene, out_dir, **kwargs):
        real(scene, out_dir, **{**kwargs, "cameras": kwargs["cameras"][:1]})
        raise RuntimeError("GPU fell off the bus")

    monkeypatch.setattr(render_module, "render_clip", half_then_fail)
    cfg = RenderConfig(cameras=["camera_front_wide_120fov", "camera_cross_left_120fov"], **FAST)
    with pytest.raises(RuntimeError, match="fell off"):
        run_render(cfg, resolve_input(EXAMPLE), data_root=tmp_path)
    leftovers = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert leftovers == []


def test_parse_frames():
    assert parse_frames(None) is None
    assert parse_frames("5:") == (5, None)
    assert parse_frames(":7") == (0, 7)
    with pytest.raises(Exception, match="END must be greater"):
        parse_frames("9:3")


def test_changing_one_cameras_calibration_rerenders_that_camera_only(tmp_path):
    import dataclasses

    from scene2world.scene.clipgt_writer import write_clipgt
    from scene2world.scene.demo import build_demo_scene

    scene = build_demo_scene()
    write_clipgt(scene, tmp_path / "a" / scene.clip_id, ego_stride=3)
    cams = ["camera_front_wide_120fov", "camera_cross_left_120fov"]
    cfg = RenderConfig(cameras=cams, **FAST)
    data = tmp_path / "data"
    first = run_render(cfg, resolve_input(tmp_path / "a"), data_root=data)
    assert first.manifest.stats["rendered_cameras"] == 2

    cam = scene.cameras["camera_cross_left_120fov"]
    moved = cam.rig_SE3_cam.copy()
    moved[2, 3] += 0.25  # the cross-left camera remounted 25 cm higher
    cameras = {**scene.cameras, cam.name: dataclasses.replace(cam, rig_SE3_cam=moved)}
    write_clipgt(dataclasses.replace(scene, cameras=cameras), tmp_path / "b" / scene.clip_id, ego_stride=3)
    again = run_render(cfg, resolve_input(tmp_path / "b"), data_root=data)
    assert again.manifest.stats == {"rendered_cameras": 1, "reused_cameras": 1}
    before = {f.path: f.sha256 for f in first.manifest.files}
    after = {f.path: f.sha256 for f in again.manifest.files}

    def frames_of(files: dict[str, str], camera: str) -> dict[str, str]:
        return {p: h for p, h in files.items() if p.startswith(f"{scene.clip_id}/{camera}/")}

    moved_before, moved_after = frames_of(before, cam.name), frames_of(after, cam.name)
    assert len(moved_before) == 3 and moved_before.keys() == moved_after.keys()
    assert all(moved_before[p] != moved_after[p] for p in moved_before), "the remounted camera's frames did not change"
    kept = frames_of(after, cams[0])
    assert len(kept) == 3 and kept == frames_of(before, cams[0])
