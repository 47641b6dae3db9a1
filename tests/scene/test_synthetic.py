"""The synthetic reference scenes (docs/world_scenario.md) S1, S2 and the 7-camera S1."""

from __future__ import annotations

import numpy as np
import pytest

from scene2world.errors import SceneError
from scene2world.scene.model import DEFAULT_CAMERA_NAMES, ObjectType
from scene2world.scene.synthetic import build_s1, build_s1_7cam, build_s2

pytestmark = pytest.mark.timeout(60)


def test_s1_contents() -> None:
    s = build_s1()
    assert (s.source_format, s.num_frames, s.frame_timestamps_us.tolist()) == ("synthetic", 2, [0, 33333])
    assert list(s.cameras) == ["camera_front_wide_120fov"]
    np.testing.assert_allclose(s.world_SE3_rig, np.repeat(np.eye(4)[None], 2, axis=0))
    np.testing.assert_allclose(s.world_SE3_cam("camera_front_wide_120fov")[0][:3, 3], [1.7, 0, 1.45])
    m = s.map
    assert [ln.lane_type for ln in m.lane_lines][:3] == [
        "WHITE LONG_DASHED_SINGLE",
        "WHITE SOLID_SINGLE",
        "YELLOW SOLID_GROUP",
    ]
    assert len(m.lane_lines) == 8 and all(len(ln.points_world) == 11 for ln in m.lane_lines)
    assert len(m.road_boundaries) == 2 and m.road_boundaries[0].points_world[0, 2] == 0.15
    assert m.crosswalks[0].closed and m.road_markings[0].closed
    assert m.traffic_lights[0].states[:2] == ("red", "green") and m.traffic_lights[1].states == ()
    objects = s.objects_at_frame(0)
    assert objects.track_ids == ("0", "1", "2", "3", "4", "5")
    assert objects.object_types[2] is ObjectType.TRUCK
    np.testing.assert_allclose(objects.lwh_m[2], [10, 2.6, 3.4])
    np.testing.assert_allclose(objects.world_SE3_obj[1][:2, 0], [-1, 0], atol=1e-12)  # yaw 180°


def test_s2_differences() -> None:
    s1, s2 = build_s1(), build_s2()
    assert s2.map.lane_lines[0].points_world[0, 0] == -30 and len(s2.map.lane_lines[0].points_world) == 14
    cw = s2.map.crosswalks[0].points_world
    assert (cw[:, 0].min(), cw[:, 0].max()) == (8, 11)
    assert sorted(cw[:4, 2].tolist()) == [-0.02, 0.0, 0.0, 0.02]
    rm = s2.map.road_markings[0].points_world
    assert (rm[:, 0].min(), rm[:, 0].max()) == (5, 6.5)
    np.testing.assert_allclose(s1.map.road_boundaries[0].points_world, s2.map.road_boundaries[0].points_world)


def test_s1_7cam() -> None:
    s = build_s1_7cam()
    assert s.num_frames == 60 and set(s.cameras) == set(DEFAULT_CAMERA_NAMES)
    assert len(s.objects_at_frame(1)) == 6 and len(s.objects_at_frame(59)) == 0
    assert s.map.traffic_lights[0].states[59] == "unknown"
    with pytest.raises(SceneError):
        build_s1_7cam(1)
