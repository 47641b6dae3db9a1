from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation, Slerp

from scene2world.errors import SceneError
from scene2world.scene.clipgt import frame_timeline
from scene2world.scene.interpolation import (
    interpolate_poses,
    matrix_to_quat_xyzw,
    objects_at_timestamp,
    quat_slerp,
    quat_xyzw_to_matrix,
    track_poses,
)
from scene2world.scene.model import ObjectType, Track

from .helpers import yaw_quat

pytestmark = pytest.mark.timeout(60)


def _yaw_deg(m: np.ndarray) -> np.ndarray:
    return np.degrees(np.arctan2(m[..., 1, 0], m[..., 0, 0]))


def test_frame_timeline_exact_nvidia_timestamps():
    ts = frame_timeline(1_000_000_000, 1_005_000_000)
    assert ts[:5].tolist() == [1000000000, 1000033333, 1000066666, 1000100000, 1000133333]
    assert len(ts) == 151 and ts[-1] == 1_005_000_000
    # the 20 s example: 601 frames
    assert len(frame_timeline(0, 20_000_000)) == 601
    # NVIDIA's int(Δt·30)+1: a last timestamp 1 µs short of a frame drops that frame
    assert len(frame_timeline(0, 66_666)) == 2
    assert len(frame_timeline(5, 5)) == 1


def test_frame_timeline_matches_float_formula():
    t0 = 2_445_376_400_000
    ts = frame_timeline(t0, t0 + 60_000_000)
    k = np.arange(len(ts))
    np.testing.assert_array_equal(ts, (t0 + k * (1e6 / 30)).astype(np.int64))


def test_ego_linear_and_slerp_inside():
    ts = [0, 100_000]
    pos = [[0, 0, 0], [1, 2, 0]]
    quats = [yaw_quat(0), yaw_quat(90)]
    out = interpolate_poses(ts, pos, quats, [0, 50_000, 100_000, 25_000])
    np.testing.assert_allclose(out[:, :3, 3], [[0, 0, 0], [0.5, 1, 0], [1, 2, 0], [0.25, 0.5, 0]], atol=1e-12)
    np.testing.assert_allclose(_yaw_deg(out), [0, 45, 90, 22.5], atol=1e-9)
    np.testing.assert_allclose(out[:, 3], [[0, 0, 0, 1]] * 4)


def test_ego_extrapolation_constant_velocity_and_angular_velocity():
    ts = [1_000_000_000, 1_000_100_000, 1_000_200_000]
    pos = [[0, 0, 0], [1, 0, 0], [3, 1, 0]]
    quats = [yaw_quat(0), yaw_quat(10), yaw_quat(15)]
    query = [999_900_000, 999_800_000, 1_000_300_000, 1_000_600_000]
    out = interpolate_poses(ts, pos, quats, query)
    # before: from the first two keyframes (-10°/0.1 s); after: from the last two (+5°/0.1 s)
    np.testing.assert_allclose(_yaw_deg(out), [-10, -20, 20, 35], atol=1e-9)
    np.testing.assert_allclose(out[:, :3, 3], [[-1, 0, 0], [-2, 0, 0], [5, 2, 0], [11, 5, 0]], atol=1e-9)


def test_ego_extrapolation_past_half_turn_keeps_rotating():
    out = interpolate_poses([0, 1_000_000], [[0, 0, 0]] * 2, [yaw_quat(0), yaw_quat(90)], [3_000_000, 5_000_000])
    np.testing.assert_allclose(_yaw_deg(out), [-90, 90], atol=1e-9)  # 270° and 450°


def test_ego_single_keyframe_is_held():
    out = interpolate_poses([5], [[1, 2, 3]], [yaw_quat(30)], [0, 5, 10])
    np.testing.assert_allclose(out[:, :3, 3], [[1, 2, 3]] * 3)
    np.testing.assert_allclose(_yaw_deg(out), [30] * 3)


@pytest.mark.parametrize(
    ("ts", "pos", "quats"),
    [([], [], []), ([0, 0], [[0, 0, 0]] * 2, [[0, 0, 0, 1]] * 2), ([0, 1], [[0, 0, 0]], [[0, 0, 0, 1]] * 2)],
)
def test_ego_bad_keyframes(ts, pos, quats):
    with pytest.raises(SceneError):
        interpolate_poses(ts, pos, quats, [0])


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.integers(1_000, 500_000), min_size=1, max_size=6),
    st.integers(0, 2**32 - 1),
    st.lists(st.floats(-1.0, 2.0), min_size=1, max_size=8),
)
def test_ego_matches_scipy_reference(gaps, seed, fractions):
    ts = np.concatenate([[0], np.cumsum(gaps)]).astype(np.int64)
    rots = Rotation.random(len(ts), random_state=seed)
    pos = np.random.default_rng(seed).normal(size=(len(ts), 3))
    query = (ts[0] + np.array(fractions) * (ts[-1] - ts[0])).astype(np.int64)
    out = interpolate_poses(ts, pos, rots.as_quat(), query)
    slerp = Slerp(ts, rots)
    for t, m in zip(query, out):
        if t < ts[0]:
            w = (rots[0].inv() * rots[1]).as_rotvec() / (ts[1] - ts[0])
            ref = rots[0] * Rotation.from_rotvec(w * (t - ts[0]))
        elif t > ts[-1]:
            w = (rots[-2].inv() * rots[-1]).as_rotvec() / (ts[-1] - ts[-2])
            ref = rots[-1] * Rotation.from_rotvec(w * (t - ts[-1]))
        else:
            ref = slerp([t])[0]
        np.testing.assert_allclose(m[:3, :3], ref.as_matrix(), atol=1e-9)
    ref_pos = np.stack([np.interp(query, ts, pos[:, i]) for i in range(3)], axis=1)
    inside = (query >= ts[0]) & (query <= ts[-1])
    np.testing.assert_allclose(out[inside, :3, 3], ref_pos[inside], atol=1e-9)


def _track(ts, xs, limit=500_000, yaws=None, lwh=None):
    n = len(ts)
    return Track(
        track_id="t",
        object_type=ObjectType.CAR,
        timestamps_us=ts,
        centers_world=[[x, 0, 0] for x in xs],
        lwh_m=lwh if lwh is not None else [[4, 2, 1.5]] * n,
        quats_xyzw=[yaw_quat(a) for a in (yaws if yaws is not None else [0] * n)],
        max_extrapolation_us=limit,
    )


def test_object_interpolation_hand_computed():
    tr = _track([0, 100_000, 300_000], [0, 1, 5], yaws=[0, 20, 60], lwh=[[4, 2, 1], [6, 2, 1], [6, 2, 1]])
    valid, poses, lwh = track_poses(tr, [0, 50_000, 100_000, 200_000, 300_000])
    assert valid.all()
    np.testing.assert_allclose(poses[:, 0, 3], [0, 0.5, 1, 3, 5])
    np.testing.assert_allclose(_yaw_deg(poses), [0, 10, 20, 40, 60], atol=1e-9)
    np.testing.assert_allclose(lwh[:, 0], [4, 5, 6, 6, 6])


def test_object_extrapolation_limit_clipgt():
    tr = _track([1_000_000, 1_100_000], [0, 1], yaws=[0, 10])
    query = [500_000, 499_999, 1_600_000, 1_600_001]
    valid, poses, lwh = track_poses(tr, query)
    assert valid.tolist() == [True, False, True, False]
    np.testing.assert_allclose(poses[[0, 2], 0, 3], [-5, 6], atol=1e-9)  # constant velocity
    np.testing.assert_allclose(_yaw_deg(poses[[0, 2]]), [-50, 60], atol=1e-9)  # constant angular velocity
    np.testing.assert_allclose(lwh[[0, 2]], [[4, 2, 1.5]] * 2)  # size held
    assert objects_at_timestamp([tr], 1_600_000).track_ids == ("t",)
    assert len(objects_at_timestamp([tr], 1_600_001)) == 0
    assert len(objects_at_timestamp([tr], 499_999)) == 0


def test_object_no_extrapolation_rdshq():
    tr = _track([0, 100_000], [0, 1], limit=0)
    assert len(objects_at_timestamp([tr], -1)) == 0
    assert len(objects_at_timestamp([tr], 100_001)) == 0
    fo = objects_at_timestamp([tr], 100_000)
    np.testing.assert_allclose(fo.world_SE3_obj[0, 0, 3], 1.0)


def test_single_observation_track_shown_at_its_time_only_without_extrapolation():
    tr = _track([100_000], [3], limit=0)
    assert len(objects_at_timestamp([tr], 100_000)) == 1
    assert len(objects_at_timestamp([tr], 100_001)) == 0
    held = _track([100_000], [3], limit=500_000)
    fo = objects_at_timestamp([held], 400_000)
    np.testing.assert_allclose(fo.world_SE3_obj[0, :3, 3], [3, 0, 0])


def test_objects_at_timestamp_order_shapes_and_empty():
    a = _track([0, 100_000], [0, 1])
    b = Track("b", "Pedestrian", [0, 100_000], [[0, 1, 0], [0, 2, 0]], [[1, 1, 2]] * 2, [[0, 0, 0, 1]] * 2)
    fo = objects_at_timestamp([b, a], 50_000)
    assert fo.track_ids == ("b", "t")
    assert fo.object_types == (ObjectType.PEDESTRIAN, ObjectType.CAR)
    assert fo.world_SE3_obj.shape == (2, 4, 4) and fo.lwh_m.shape == (2, 3)
    empty = objects_at_timestamp([], 0)
    assert len(empty) == 0 and empty.world_SE3_obj.shape == (0, 4, 4) and empty.lwh_m.shape == (0, 3)


def test_quaternion_helpers_round_trip_and_slerp_shortest_arc():
    m = Rotation.random(200, random_state=3).as_matrix()
    q = matrix_to_quat_xyzw(m)
    assert np.all(q[:, 3] >= 0)
    np.testing.assert_allclose(quat_xyzw_to_matrix(q), m, atol=1e-12)
    # q and -q are the same rotation: slerp takes the short way
    q0, q1 = np.array([yaw_quat(10)]), -np.array([yaw_quat(30)])
    np.testing.assert_allclose(_yaw_deg(quat_xyzw_to_matrix(quat_slerp(q0, q1, [0.5]))), [20], atol=1e-9)
    # N = 0 and N = 1
    assert quat_xyzw_to_matrix(np.zeros((0, 4))).shape == (0, 3, 3)
    assert matrix_to_quat_xyzw(np.eye(3)[None]).shape == (1, 4)


@settings(max_examples=30, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.lists(st.integers(-1_000_000, 3_000_000), min_size=1, max_size=5, unique=True),
            st.sampled_from([0, 100_000, 500_000]),
            st.integers(0, 2**32 - 1),
        ),
        max_size=6,
    ),
    st.lists(st.integers(-2_000_000, 4_000_000), min_size=1, max_size=5),
)
def test_objects_at_timestamp_matches_per_track_evaluation(specs, queries):
    tracks = []
    for n, (ts, limit, seed) in enumerate(specs):
        rng = np.random.default_rng(seed)
        k = len(ts)
        tracks.append(
            Track(
                f"{n}",
                ObjectType.CAR,
                sorted(ts),
                rng.normal(size=(k, 3)),
                rng.uniform(0.5, 5, (k, 3)),
                Rotation.random(k, random_state=seed).as_quat(),
                max_extrapolation_us=limit,
            )
        )
    tracks = tuple(tracks)
    for t in queries:
        fo = objects_at_timestamp(tracks, t)
        expected = []
        for tr in tracks:
            valid, poses, lwh = track_poses(tr, [t])
            if valid[0]:
                j = fo.track_ids.index(tr.track_id)
                np.testing.assert_allclose(fo.world_SE3_obj[j], poses[0], atol=1e-12)
                np.testing.assert_allclose(fo.lwh_m[j], lwh[0], atol=1e-12)
                expected.append(tr.track_id)
        assert fo.track_ids == tuple(expected)
