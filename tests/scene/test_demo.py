from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest

from scene2world.scene.clipgt_writer import write_clipgt
from scene2world.scene.demo import DEMO_CLIP_ID, build_demo_scene, demo_ego_keyframes
from scene2world.scene.load import load_scene
from scene2world.scene.model import DEFAULT_CAMERA_NAMES, ObjectType

from .helpers import REPO, assert_cameras_equal, assert_maps_equal, assert_tracks_equal

pytestmark = pytest.mark.timeout(60)

EXAMPLE = REPO / "assets" / "example" / DEMO_CLIP_ID


@pytest.fixture(scope="module")
def demo():
    return build_demo_scene()


def test_demo_content(demo):
    assert demo.clip_id == DEMO_CLIP_ID and demo.num_frames == 151
    assert demo.frame_timestamps_us[:4].tolist() == [1000000000, 1000033333, 1000066666, 1000100000]
    np.testing.assert_allclose(demo.world_SE3_rig[0], np.eye(4), atol=1e-12)  # first ego frame at the origin
    travelled = np.linalg.norm(np.diff(demo.world_SE3_rig[:, :3, 3], axis=0), axis=1).sum()
    assert 49.5 < travelled < 50.5  # 10 m/s for 5 s
    yaw_end = np.degrees(np.arctan2(demo.world_SE3_rig[-1, 1, 0], demo.world_SE3_rig[-1, 0, 0]))
    assert 25 < yaw_end < 32  # a left curve
    assert list(demo.cameras) == list(DEFAULT_CAMERA_NAMES)
    types = {ln.lane_type for ln in demo.map.lane_lines}
    assert {
        "WHITE SOLID_SINGLE",
        "WHITE LONG_DASHED_SINGLE",
        "YELLOW SOLID_GROUP",
        "WHITE SHORT_DASHED_SINGLE",
    } <= types
    m = demo.map
    assert len(m.road_boundaries) == 2 and len(m.crosswalks) == 1 and len(m.wait_lines) == 1
    assert len(m.poles) >= 2 and len(m.traffic_signs) == 1 and len(m.traffic_lights) >= 1
    assert all(p.closed for p in m.crosswalks + m.road_markings)
    assert {t.object_type for t in demo.tracks} == {ObjectType.CAR, ObjectType.TRUCK, ObjectType.PEDESTRIAN,
                                                     ObjectType.CYCLIST}  # fmt: skip
    assert all(len(t.timestamps_us) == 51 and np.all(np.diff(t.timestamps_us) == 100_000) for t in demo.tracks)
    assert np.abs(np.stack([p[:3, 3] for p in demo_ego_keyframes()[1]])).max() < 100  # small coordinates
    for k in (0, 75, 150):
        assert len(demo.objects_at_frame(k)) == 5


def test_demo_is_deterministic(demo):
    again = build_demo_scene()
    assert again.content_digest() == demo.content_digest()


def test_bundled_example_matches_the_builder(demo):
    files = sorted(EXAMPLE.iterdir())
    assert sum(f.stat().st_size for f in files) < 2 * 1024 * 1024
    scene = load_scene(EXAMPLE)
    assert scene.clip_id == DEMO_CLIP_ID and scene.source_format == "clipgt"
    np.testing.assert_array_equal(scene.frame_timestamps_us, demo.frame_timestamps_us)
    np.testing.assert_allclose(scene.world_SE3_rig, demo.world_SE3_rig, atol=1e-9)
    assert_cameras_equal(scene.cameras, demo.cameras)
    assert_maps_equal(scene.map, demo.map)
    assert_tracks_equal(scene.tracks, demo.tracks)
    ego = pq.read_table(EXAMPLE / f"{DEMO_CLIP_ID}.egomotion_estimate.parquet")
    assert ego.num_rows == 51  # 10 Hz
    calib = pq.read_table(EXAMPLE / f"{DEMO_CLIP_ID}.calibration_estimate.parquet").to_pylist()[0]
    names = [s["name"] for s in json.loads(calib["calibration_estimate"]["rig_json"])["rig"]["sensors"]]
    assert "camera:front:tele:30fov" in names and "camera:front:wide:120fov" in names and len(names) == 7


def test_rewriting_gives_identical_bytes(demo, tmp_path):
    write_clipgt(demo, tmp_path, ego_stride=3)
    for f in sorted(EXAMPLE.iterdir()):
        assert (tmp_path / f.name).read_bytes() == f.read_bytes(), f.name


def test_make_example_script(tmp_path):
    out = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "make_example.py"), str(tmp_path)],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    assert out.stdout.strip().splitlines()[-1] == str(tmp_path / DEMO_CLIP_ID)
    assert sorted(p.name for p in (tmp_path / DEMO_CLIP_ID).iterdir()) == sorted(p.name for p in EXAMPLE.iterdir())
