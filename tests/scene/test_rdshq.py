from __future__ import annotations

import collections
import io
import json
import logging
import tarfile
from pathlib import Path

import numpy as np
import pytest

from scene2world.errors import SceneError
from scene2world.scene.defaults import nvidia_rig
from scene2world.scene.model import ObjectType, Scene, Track
from scene2world.scene.rdshq import load_rdshq, rdshq_clip_id
from scene2world.scene.rdshq_writer import write_rdshq

from .helpers import (
    RDSHQ_CLIP,
    assert_cameras_equal,
    assert_frame_geometry_equal,
    assert_maps_equal,
    pose,
    small_scene,
    yaw_quat,
)

pytestmark = pytest.mark.timeout(60)

RDSHQ_LACKS = ("intersection_areas", "road_islands")  # no RDS-HQ label store for these
REAL_ID = "2d23a1f4-c269-46aa-8e7d-1bb595d1e421_2445376400000_2445396400000"


@pytest.fixture(scope="module")
def real(request):
    if not RDSHQ_CLIP.is_dir():
        pytest.skip(f"{RDSHQ_CLIP} not available")
    return RDSHQ_CLIP


def test_real_clip_loads_with_warning_for_missing_pose(real, caplog):
    with caplog.at_level(logging.WARNING, logger="scene2world.scene.rdshq"):
        scene = load_rdshq(real)
    assert any("has no pose/ tar" in r.getMessage() and "NVIDIA_RIG_TABLE" in r.getMessage() for r in caplog.records)
    assert scene.clip_id == REAL_ID and scene.source_format == "rdshq"
    assert scene.num_frames == 300
    assert scene.frame_timestamps_us[:4].tolist() == [0, 33333, 66667, 100000]
    m = scene.map
    counts = {f: len(getattr(m, f)) for f in ("lane_lines", "road_boundaries", "traffic_signs", "wait_lines", "poles",
                                              "crosswalks", "road_markings", "traffic_lights", "lanes")}  # fmt: skip
    assert counts == {"lane_lines": 85, "road_boundaries": 93, "traffic_signs": 29, "wait_lines": 34, "poles": 28,
                      "crosswalks": 1, "road_markings": 6, "traffic_lights": 0, "lanes": 688}  # fmt: skip
    assert collections.Counter(ln.lane_type for ln in m.lane_lines) == {
        "WHITE LONG_DASHED_SINGLE": 37,
        "WHITE SOLID_SINGLE": 22,
        "YELLOW SOLID_SINGLE": 11,
        "YELLOW SOLID_GROUP": 9,
        "WHITE SHORT_DASHED_SINGLE": 5,
        "YELLOW LONG_DASHED_SINGLE": 1,
    }
    assert sum(ln.points_world.shape[0] for ln in m.lane_lines) == 869
    assert collections.Counter(w.category for w in m.wait_lines) == {"STOP": 8, "UNKNOWN": 26}
    assert m.crosswalks[0].points_world.shape == (14, 3)
    assert scene.tracks == () and scene.world_SE3_cam_direct == {}
    # no pose tar: NVIDIA's multiview_example1 extrinsics, not identity
    rig = nvidia_rig()
    assert sorted(scene.cameras) == sorted(rig)
    for name, cam in scene.cameras.items():
        np.testing.assert_array_equal(cam.rig_SE3_cam, rig[name].rig_SE3_cam)
    np.testing.assert_allclose(scene.world_SE3_rig[0], np.eye(4), atol=1e-6)
    assert 100 < np.linalg.norm(scene.world_SE3_rig[-1, :3, 3]) < 106  # drives ~103 m
    signs = np.stack([s.lwh_m for s in m.traffic_signs])
    assert np.all(signs > 0) and np.all(signs < 10)
    assert all(np.isclose(np.linalg.det(s.world_SE3_obj[:3, :3]), 1.0) for s in m.traffic_signs)


def test_real_clip_id_and_camera_selection(real):
    assert rdshq_clip_id(real) == REAL_ID
    scene = load_rdshq(real, cameras=["camera:front:wide:120fov"])
    assert list(scene.cameras) == ["camera_front_wide_120fov"]
    with pytest.raises(SceneError, match="no camera 'camera_top'"):
        load_rdshq(real, cameras=["camera_top"])


def test_round_trip_per_frame_geometry(tmp_path):
    scene = small_scene()
    write_rdshq(scene, tmp_path, object_stride=3)
    back = load_rdshq(tmp_path)
    assert back.clip_id == scene.clip_id and back.num_frames == scene.num_frames
    assert back.frame_timestamps_us.tolist() == [round(k * 1e6 / 30) for k in range(scene.num_frames)]
    assert_cameras_equal(back.cameras, scene.cameras, atol=1e-9)
    assert_maps_equal(back.map, scene.map, atol=1e-9, skip=RDSHQ_LACKS)
    # objects are labelled every 3rd frame at the tracks' 10 Hz keyframes, without extrapolation
    a_car = scene.tracks[0]  # spans the whole clip
    for k in range(scene.num_frames):
        oa = scene.objects_at_frame(k)
        ob = back.objects_at_frame(k)
        i, j = oa.track_ids.index("a_car"), ob.track_ids.index("a_car")
        np.testing.assert_allclose(ob.world_SE3_obj[j], oa.world_SE3_obj[i], atol=1e-4)  # 1 µs clock rounding
    assert all(t.max_extrapolation_us == 0 for t in back.tracks)
    assert back.tracks[0].object_type is a_car.object_type


def test_round_trip_every_frame_equals_where_defined(tmp_path):
    scene = small_scene()
    write_rdshq(scene, tmp_path, object_stride=1, vertices_as_dicts=True)
    back = load_rdshq(tmp_path)
    assert_maps_equal(back.map, scene.map, atol=1e-9, skip=RDSHQ_LACKS)
    assert_frame_geometry_equal(scene, back, atol=1e-9)


def test_direct_mode_without_vehicle_pose(tmp_path):
    scene = small_scene()
    write_rdshq(scene, tmp_path, write_vehicle_pose=False)
    back = load_rdshq(tmp_path)
    assert sorted(back.world_SE3_cam_direct) == sorted(scene.cameras)
    for name in scene.cameras:
        np.testing.assert_allclose(back.world_SE3_cam(name), scene.world_SE3_cam(name), atol=1e-9)
    # the rig is placed at the front camera; extrinsics are consistent at frame 0
    np.testing.assert_allclose(
        back.world_SE3_rig[0] @ back.cameras["camera_rear_tele_30fov"].rig_SE3_cam,
        scene.world_SE3_cam("camera_rear_tele_30fov")[0],
        atol=1e-9,
    )


def test_missing_pose_and_intrinsics_fall_back_to_nvidia_rig(tmp_path, caplog):
    write_rdshq(small_scene(), tmp_path, write_pose=False, write_intrinsics=False)
    with caplog.at_level(logging.WARNING):
        back = load_rdshq(tmp_path)
    text = " ".join(r.getMessage() for r in caplog.records)
    assert "no pose/ tar" in text and "default f-theta intrinsics" in text
    assert_cameras_equal(back.cameras, nvidia_rig())


def _scene_with_tracks(tracks):
    base = small_scene()
    return Scene(base.clip_id, "clipgt", base.frame_timestamps_us, base.world_SE3_rig, base.cameras, tracks=tracks)


def test_static_objects_are_averaged_and_single_frame_tracks_kept(tmp_path):
    base = small_scene()
    ts = base.frame_timestamps_us[[0, 3, 6]]
    still = {"is_moving": False, "max_extrapolation_us": 0}
    centers = [[10, 0, 0.8], [10.2, 0.1, 0.8], [9.8, -0.1, 0.8]]
    lwh = [[4, 2, 1.5], [4.2, 2, 1.5], [3.8, 2, 1.5]]
    parked = Track("parked", ObjectType.CAR, ts, centers, lwh, [yaw_quat(a) for a in (-4, 0, 4)], **still)
    flipped = Track("flipped", ObjectType.OTHER, ts, [[0, 5, 0.5]] * 3, [[1, 1, 1]] * 3,
                    [yaw_quat(a) for a in (0, 2, 180)], **still)  # fmt: skip
    single = Track(
        "single",
        ObjectType.PEDESTRIAN,
        ts[1:2],
        [[3, 3, 0.9]],
        [[0.6, 0.6, 1.8]],
        [yaw_quat(90)],
        max_extrapolation_us=0,
    )
    write_rdshq(_scene_with_tracks((parked, flipped, single)), tmp_path)
    back = {t.track_id: t for t in load_rdshq(tmp_path).tracks}
    p = back["parked"]
    assert not p.is_moving
    np.testing.assert_allclose(p.centers_world, [[10, 0, 0.8]] * 3, atol=1e-9)
    np.testing.assert_allclose(p.lwh_m, [[4, 2, 1.5]] * 3, atol=1e-9)
    np.testing.assert_allclose(p.quats_xyzw, [[0, 0, 0, 1]] * 3, atol=1e-9)
    f = back["flipped"]  # the 180° outlier is left out of the mean heading
    np.testing.assert_allclose(f.quats_xyzw[0], yaw_quat(1), atol=1e-6)
    s = back["single"]
    assert len(s.timestamps_us) == 1
    scene = load_rdshq(tmp_path)
    assert "single" in scene.objects_at_frame(3).track_ids
    assert "single" not in scene.objects_at_frame(4).track_ids


def test_traffic_light_states_including_off(tmp_path):
    base = small_scene(frames=7)
    light = base.map.traffic_lights[0]
    states = ("red", "off", "green", "yellow", "unknown", "red", "red")[: base.num_frames]
    from scene2world.scene.model import MapElements, TrafficLight

    m = MapElements(traffic_lights=(TrafficLight(light.world_SE3_obj, light.lwh_m, "traffic_light", "fid-1", states),
                                    TrafficLight(pose((1, 1, 1)), [1, 1, 1], "traffic_light")))  # fmt: skip
    scene = Scene(base.clip_id, "clipgt", base.frame_timestamps_us, base.world_SE3_rig, base.cameras, map=m)
    write_rdshq(scene, tmp_path)
    back = load_rdshq(tmp_path)
    assert back.map.traffic_lights[0].states == states
    assert back.map.traffic_lights[0].feature_id == "fid-1"
    assert back.map.traffic_lights[1].states == ()
    # odd strings -> unknown, short lists padded
    status = tmp_path / "3d_traffic_lights_status" / f"{scene.clip_id}.tar"
    _rewrite(status, {"aggregated_states.json": json.dumps(
        {"traffic_light_states": [{"feature_id": "fid-1", "state": ["RED", "blinking"]}]}).encode()})  # fmt: skip
    states = load_rdshq(tmp_path).map.traffic_lights[0].states
    assert states == ("red", "unknown") + ("unknown",) * (scene.num_frames - 2)


def _rewrite(path: Path, members: dict[str, bytes], clip: str | None = None) -> None:
    clip = clip or path.stem
    with tarfile.open(path, "w") as tar:
        for key, data in members.items():
            info = tarfile.TarInfo(f"{clip}.{key}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


@pytest.mark.parametrize("folder", ["vehicle_pose", "3d_lanelines", "all_object_info", "ftheta_intrinsic"])
@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_corrupt_or_truncated_tars(tmp_path, folder, damage):
    scene = small_scene()
    write_rdshq(scene, tmp_path)
    path = tmp_path / folder / f"{scene.clip_id}.tar"
    data = path.read_bytes()
    path.write_bytes(data[:700] if damage == "truncate" else b"\x00garbage" * 300)
    with pytest.raises(SceneError, match=rf"{folder}/{scene.clip_id}.tar"):
        load_rdshq(tmp_path)


def test_bad_members(tmp_path):
    scene = small_scene()
    write_rdshq(scene, tmp_path)
    clip = scene.clip_id

    def npy(arr):
        buf = io.BytesIO()
        np.save(buf, arr)
        return buf.getvalue()

    intr = tmp_path / "ftheta_intrinsic" / f"{clip}.tar"
    _rewrite(intr, {"ftheta_intrinsic.camera_front_wide_120fov.npy": npy(np.zeros(5))})
    with pytest.raises(SceneError, match=r"ftheta_intrinsic.camera_front_wide_120fov.npy` must be 11 or 14"):
        load_rdshq(tmp_path)
    bad_poly = np.array([960, 540, 1920, 1080, 0, 1e-3, -1e-6, 0, 0, 0, 1.0])
    _rewrite(intr, {"ftheta_intrinsic.camera_front_wide_120fov.npy": npy(bad_poly)})
    with pytest.raises(SceneError, match="not increasing"):
        load_rdshq(tmp_path)
    _rewrite(intr, {"ftheta_intrinsic.camera_front_wide_120fov.npy": b"\x93NUMPY broken"})
    with pytest.raises(SceneError, match=r"not a valid .npy"):
        load_rdshq(tmp_path)
    intr.unlink()
    vp = tmp_path / "vehicle_pose" / f"{clip}.tar"
    _rewrite(vp, {"000000.vehicle_pose.npy": npy(np.eye(3))})
    with pytest.raises(SceneError, match=r"must be a \(4, 4\) pose"):
        load_rdshq(tmp_path)
    nan_pose = np.eye(4)
    nan_pose[0, 3] = np.nan
    _rewrite(vp, {"000000.vehicle_pose.npy": npy(nan_pose)})
    with pytest.raises(SceneError, match="NaN"):
        load_rdshq(tmp_path)
    _rewrite(vp, {"000000.vehicle_pose.npy": npy(np.eye(4)), "000001.vehicle_pose.npy": npy(np.eye(4))})
    objs = tmp_path / "all_object_info" / f"{clip}.tar"
    _rewrite(objs, {"000000.all_object_info.json": b'{"a": {"object_lwh": [1, 1, 1]}}'})
    with pytest.raises(SceneError, match="needs object_to_world"):
        load_rdshq(tmp_path)
    _rewrite(objs, {"000000.all_object_info.json": b"[1, 2"})
    with pytest.raises(SceneError, match="not valid JSON"):
        load_rdshq(tmp_path)
    objs.unlink()
    store = tmp_path / "3d_traffic_signs" / f"{clip}.tar"
    label = {"labelData": {"shape3d": {"cuboid3d": {"vertices": [[0, 0, 0]] * 3}}}}
    _rewrite(store, {"traffic_signs.json": json.dumps({"labels": [label]}).encode()})
    with pytest.raises(SceneError, match="needs 8 vertices"):
        load_rdshq(tmp_path)
    _rewrite(store, {"traffic_signs.json": b'{"labels": 3}'})
    with pytest.raises(SceneError, match="`labels` list"):
        load_rdshq(tmp_path)
    store.unlink()
    lines = tmp_path / "3d_lanelines" / f"{clip}.tar"
    label = {"labelData": {"shape3d": {"polyline3d": {"vertices": [[0, 0, "x"]]}}}}
    _rewrite(lines, {"lanelines.json": json.dumps({"labels": [label]}).encode()})
    with pytest.raises(SceneError, match="vertices"):
        load_rdshq(tmp_path)


def test_no_pose_folders(tmp_path):
    (tmp_path / "3d_lanes").mkdir()
    with pytest.raises(SceneError, match="no RDS-HQ clip"):
        load_rdshq(tmp_path)
