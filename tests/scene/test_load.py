from __future__ import annotations

import logging

import numpy as np
import pytest

from scene2world.errors import SceneError
from scene2world.scene.clipgt_writer import write_clipgt
from scene2world.scene.discover import ClipRef
from scene2world.scene.load import load_scene
from scene2world.scene.model import Scene
from scene2world.scene.rdshq_writer import write_rdshq
from scene2world.scene.synthetic import build_s1, build_s2

from .helpers import RDSHQ_CLIP, assert_frame_geometry_equal, assert_maps_equal, small_scene

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize("build", [small_scene, build_s1, build_s2], ids=["small", "S1", "S2"])
def test_scene_as_clipgt_and_as_rdshq_has_the_same_per_frame_geometry(build, tmp_path):
    scene: Scene = build()
    write_clipgt(scene, tmp_path / "gt")
    write_rdshq(scene, tmp_path / "rds", object_stride=1)
    gt = load_scene(tmp_path / "gt")
    rds = load_scene(tmp_path / "rds")
    assert (gt.source_format, rds.source_format) == ("clipgt", "rdshq")
    # ClipGT keeps absolute timestamps (floor), RDS-HQ numbers frames (round): at most 1 µs apart
    assert np.abs(gt.frame_timestamps_us - scene.frame_timestamps_us).max() == 0
    assert np.abs(rds.frame_timestamps_us - (scene.frame_timestamps_us - scene.frame_timestamps_us[0])).max() <= 1
    # per-frame camera poses and objects; both equal the source scene where its tracks are defined
    assert_frame_geometry_equal(gt, rds, atol=1e-4)
    assert_frame_geometry_equal(scene, rds, atol=1e-4)
    assert_maps_equal(gt.map, rds.map, skip=("intersection_areas", "road_islands"))
    assert_maps_equal(scene.map, rds.map, light_states=True, skip=("intersection_areas", "road_islands"))
    assert all(light.states == () for light in gt.map.traffic_lights)  # ClipGT has no light state


def test_load_scene_dispatch_and_inputs(tmp_path):
    scene = small_scene()
    write_clipgt(scene, tmp_path / "tree" / "a" / scene.clip_id)
    write_rdshq(small_scene("rds_clip"), tmp_path / "tree" / "b")
    folder = tmp_path / "tree" / "a" / scene.clip_id
    assert load_scene(folder).source_format == "clipgt"
    assert load_scene(folder / f"{scene.clip_id}.lane_line.parquet").clip_id == scene.clip_id
    assert load_scene(ClipRef(scene.clip_id, "clipgt", folder)).clip_id == scene.clip_id
    assert load_scene(tmp_path / "tree" / "b").source_format == "rdshq"
    assert load_scene(tmp_path / "tree", clip_id="rds_clip").clip_id == "rds_clip"
    assert load_scene(tmp_path / "tree" / "a").clip_id == scene.clip_id  # the only clip below
    with pytest.raises(SceneError, match="2 clips found, pass clip_id"):
        load_scene(tmp_path / "tree")
    with pytest.raises(SceneError, match="no clip 'zzz' found"):
        load_scene(tmp_path / "tree", clip_id="zzz")
    with pytest.raises(SceneError, match="no such file or folder"):
        load_scene(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SceneError, match="no ClipGT or RDS-HQ clip found"):
        load_scene(tmp_path / "empty")


def test_load_scene_cameras(tmp_path):
    write_clipgt(small_scene(), tmp_path)
    scene = load_scene(tmp_path, cameras=["camera_front_wide_120fov", "camera:cross:left:120fov"])
    assert list(scene.cameras) == ["camera_front_wide_120fov", "camera_cross_left_120fov"]
    with pytest.raises(SceneError, match=r"no camera 'camera_front_fisheye' in the rig; it has \["):
        load_scene(tmp_path, cameras=["camera_front_fisheye"])


def test_load_real_rdshq(caplog):
    if not RDSHQ_CLIP.is_dir():
        pytest.skip("real clip not available")
    with caplog.at_level(logging.WARNING):
        scene = load_scene(RDSHQ_CLIP.parent, cameras=["camera_front_wide_120fov"])
    assert scene.source_format == "rdshq" and scene.num_frames == 300 and len(scene.map.lane_lines) == 85
