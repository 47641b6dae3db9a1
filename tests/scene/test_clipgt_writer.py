from __future__ import annotations

import dataclasses
import json
import tempfile
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings

from scene2world.errors import SceneError
from scene2world.scene.clipgt import FRAME_TIMESTAMPS_SUFFIX, load_clipgt
from scene2world.scene.clipgt_writer import write_clipgt
from scene2world.scene.model import Polygon, Scene

from .helpers import assert_cameras_equal, assert_maps_equal, assert_tracks_equal, scenes, small_scene

pytestmark = pytest.mark.timeout(60)


def _round_trip(scene: Scene, **kwargs) -> Scene:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / scene.clip_id
        write_clipgt(scene, folder, **kwargs)
        return load_clipgt(folder)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(scenes())
def test_round_trip_property(scene):
    back = _round_trip(scene)
    assert back.clip_id == scene.clip_id and back.source_format == "clipgt"
    np.testing.assert_array_equal(back.frame_timestamps_us, scene.frame_timestamps_us)
    np.testing.assert_allclose(back.world_SE3_rig, scene.world_SE3_rig, atol=1e-9)
    assert_cameras_equal(back.cameras, scene.cameras)
    assert_maps_equal(back.map, scene.map)
    assert_tracks_equal(back.tracks, scene.tracks)


def test_round_trip_small_scene_ego_at_10_hz():
    scene = small_scene()
    with tempfile.TemporaryDirectory() as tmp:
        write_clipgt(scene, tmp, ego_stride=3)
        ego = pq.read_table(Path(tmp) / f"{scene.clip_id}.egomotion_estimate.parquet")
        assert ego.num_rows == 11  # 31 frames at 30 fps -> 11 rows at 10 Hz
        assert not (Path(tmp) / f"{scene.clip_id}{FRAME_TIMESTAMPS_SUFFIX}").exists()
        back = load_clipgt(tmp)
    np.testing.assert_array_equal(back.frame_timestamps_us, scene.frame_timestamps_us)
    np.testing.assert_allclose(back.world_SE3_rig, scene.world_SE3_rig, atol=1e-9)
    assert_tracks_equal(back.tracks, scene.tracks)


def test_frame_timestamp_json_written_when_the_30fps_rule_would_lose_frames():
    base = small_scene()
    ts = base.frame_timestamps_us[0] + (np.arange(30) * 1_000_000) // 30  # last frame at +966 666 µs
    scene = dataclasses.replace(base, frame_timestamps_us=ts, world_SE3_rig=base.world_SE3_rig[:30])
    with tempfile.TemporaryDirectory() as tmp:
        files = write_clipgt(scene, tmp)
        path = Path(tmp) / f"{scene.clip_id}{FRAME_TIMESTAMPS_SUFFIX}"
        assert path in files
        assert [e["timestamp"] for e in json.loads(path.read_text())] == scene.frame_timestamps_us.tolist()
        assert load_clipgt(tmp).num_frames == 30
        write_clipgt(scene, tmp, frame_timestamps="never")
        path.unlink()
        assert load_clipgt(tmp).num_frames == 29


def test_explicit_ego_keyframes_and_float32():
    scene = small_scene()
    idx = np.arange(0, scene.num_frames, 3)
    keyframes = (scene.frame_timestamps_us[idx], scene.world_SE3_rig[idx])
    with tempfile.TemporaryDirectory() as tmp:
        write_clipgt(scene, tmp, ego_keyframes=keyframes, float_type="float32")
        schema = pq.read_schema(Path(tmp) / f"{scene.clip_id}.obstacle.parquet")
        assert str(schema.field("obstacle").type.field("center").type) == "struct<x: float, y: float, z: float>"
        back = load_clipgt(tmp)
    np.testing.assert_allclose(back.world_SE3_rig, scene.world_SE3_rig, atol=1e-5)
    assert_maps_equal(back.map, scene.map, atol=1e-5)


def test_polygon_rings_written_as_stored():
    scene = small_scene()
    assert scene.map.crosswalks[0].closed and not scene.map.road_markings[0].closed
    back = _round_trip(scene)
    assert back.map.crosswalks[0].closed
    assert not back.map.road_markings[0].closed
    assert isinstance(back.map.crosswalks[0], Polygon)


def test_single_point_pole_kept_and_light_states_dropped():
    scene = small_scene()
    back = _round_trip(scene)
    assert back.map.poles[1].points_world.shape == (1, 3)
    assert back.map.traffic_lights[0].states == ()


def test_writer_refuses_direct_camera_poses():
    scene = small_scene()
    direct = Scene(
        clip_id="d",
        source_format="rdshq",
        frame_timestamps_us=scene.frame_timestamps_us,
        world_SE3_rig=scene.world_SE3_rig,
        cameras=scene.cameras,
        world_SE3_cam_direct={"camera_front_wide_120fov": scene.world_SE3_cam("camera_front_wide_120fov")},
    )
    with tempfile.TemporaryDirectory() as tmp, pytest.raises(SceneError, match="per-camera poses"):
        write_clipgt(direct, tmp)


@pytest.mark.parametrize("kwargs", [{"ego_stride": 0}, {"float_type": "float16"}])
def test_writer_bad_options(kwargs, tmp_path):
    with pytest.raises(SceneError):
        write_clipgt(small_scene(), tmp_path, **kwargs)
