"""Shared builders, hypothesis strategies and comparisons for the scene tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from scene2world.scene.clipgt import frame_timeline
from scene2world.scene.defaults import nvidia_rig
from scene2world.scene.interpolation import interpolate_poses, quat_xyzw_to_matrix
from scene2world.scene.model import (
    DEFAULT_CAMERA_NAMES,
    CameraSpec,
    Cuboid,
    FThetaIntrinsics,
    LaneLine,
    MapElements,
    ObjectType,
    Polygon,
    Polyline,
    Scene,
    Track,
    TrafficLight,
)
from scene2world.scene.rig import rig_SE3_cam_from_nominal

REPO = Path(__file__).resolve().parents[2]
_LOCAL_CLIP = REPO / "tests" / "data" / "cdd_rdshq_example" / "clip"
RDSHQ_CLIP = _LOCAL_CLIP

LANE_TYPES = (
    "WHITE SOLID_SINGLE",
    "WHITE LONG_DASHED_SINGLE",
    "YELLOW SOLID_GROUP",
    "WHITE SHORT_DASHED_SINGLE",
    "YELLOW DOT_SOLID_SINGLE",
    "WHITE DASHED_SINGLE",
    "OTHER",
)


def pose(t=(0.0, 0.0, 0.0), yaw_deg: float = 0.0) -> np.ndarray:
    out = np.eye(4)
    out[:3, :3] = Rotation.from_euler("z", yaw_deg, degrees=True).as_matrix()
    out[:3, 3] = t
    return out


def yaw_quat(yaw_deg: float) -> list[float]:
    return list(Rotation.from_euler("z", yaw_deg, degrees=True).as_quat())


def small_scene(clip_id: str = "s2w_test_small", frames: int = 31, t0: int = 1_000_000_000) -> Scene:
    """An S1-like scene: static-ish ego driving forward, one of every map element, 3 tracks at 10 Hz."""
    key_ts = t0 + np.arange(0, (frames - 1) // 3 + 1) * 100_000
    key_pos = np.stack([np.arange(len(key_ts)) * 1.0, np.zeros(len(key_ts)), np.zeros(len(key_ts))], axis=1)
    key_q = np.array([yaw_quat(2.0 * k) for k in range(len(key_ts))])
    ts = frame_timeline(int(key_ts[0]), int(key_ts[-1]))
    xs = np.linspace(2, 100, 11)

    def line(y, z=0.0):
        return np.stack([xs, np.full_like(xs, y), np.full_like(xs, z)], axis=1)

    ring = np.array([[40, -14, 0], [44, -14, 0], [44, 14, 0], [40, 14, 0], [40, -14, 0]], dtype=float)
    m = MapElements(
        lane_lines=tuple(LaneLine(line(y), lane_type=t) for y, t in zip((1.8, -1.8, 5.4, -5.4), LANE_TYPES)),
        lanes=(Polyline(line(0.0), "left_rail"), Polyline(line(-3.6), "right_rail")),
        road_boundaries=(Polyline(line(16, 0.15), "tall_curb"), Polyline(line(-16, 0.15), "tall_curb")),
        wait_lines=(Polyline([[38, -14, 0], [38, 14, 0]], "STOP"),),
        poles=(Polyline([[30, 17, 0], [30, 17, 7]], "LIGHT"), Polyline([[30, -17, 0]], "TREE")),
        crosswalks=(Polygon(ring, "PEDESTRIAN"),),
        road_markings=(Polygon([[22, -0.5, 0], [25, -0.5, 0], [25, 0.5, 0], [22, 0.5, 0]], "ARROW"),),
        traffic_signs=(Cuboid(pose((30, -17, 5.5), 180), [0.3, 0.9, 0.9], "TRAFFIC_SIGN_REGULATORY_R1_STOP"),),
        traffic_lights=(TrafficLight(pose((45, 3, 6), 180), [0.6, 0.6, 1.0], "traffic_light"),),
        intersection_areas=(Polygon([[50, -10, 0], [60, -10, 0], [60, 10, 0]], "INTERSECTION"),),
        road_islands=(Polygon([[70, -1, 0], [75, -1, 0], [75, 1, 0], [70, 1, 0], [70, -1, 0]], "ISLAND"),),
    )

    def track(track_id, object_type, ts_, x, y, z, lwh, yaws):
        n = len(ts_)
        centers = np.stack([np.broadcast_to(v, n) for v in (x, y, z)], axis=1)
        quats = np.array([yaw_quat(a) for a in np.broadcast_to(yaws, n)])
        return Track(track_id, object_type, ts_, centers, np.tile(lwh, (n, 1)), quats)

    kt = np.arange(len(key_ts), dtype=float)
    tracks = (
        track("a_car", ObjectType.CAR, key_ts, 15 + kt, 0.0, 0.8, [4.5, 2, 1.6], 0.0),
        track("b_ped", ObjectType.PEDESTRIAN, key_ts[1:], 12.0, -7 + kt[1:] / 8, 0.9, [0.6, 0.6, 1.8], 90 + 3 * kt[1:]),
        track("c_truck", ObjectType.TRUCK, key_ts[:4], 35 - 2 * kt[:4], -3.6, 1.7, [10, 2.6, 3.4], 180.0),
    )
    return Scene(
        clip_id=clip_id,
        source_format="clipgt",
        frame_timestamps_us=ts,
        world_SE3_rig=interpolate_poses(key_ts, key_pos, key_q, ts),
        cameras=nvidia_rig(),
        map=m,
        tracks=tracks,
    )


# ------------------------------------------------------------------------------ hypothesis strategies

finite = st.floats(-200.0, 200.0, allow_nan=False, width=64)
points = st.lists(st.tuples(finite, finite, st.floats(-5.0, 10.0)), min_size=1, max_size=6)
text = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789", max_size=12)
unit_quats = st.tuples(*[st.floats(-1, 1)] * 4).filter(lambda q: np.linalg.norm(q) > 0.1)


@st.composite
def cuboid_args(draw):
    q = np.array(draw(unit_quats))
    m = np.eye(4)
    m[:3, :3] = quat_xyzw_to_matrix(q)[0]
    m[:3, 3] = [draw(finite), draw(finite), draw(st.floats(0, 10))]
    lwh = [draw(st.floats(0.05, 20)) for _ in range(3)]
    return m, lwh, draw(text)


@st.composite
def map_elements(draw, *, light_states: bool = False, num_frames: int = 0):
    def many(strategy, n=3):
        return tuple(draw(st.lists(strategy, max_size=n)))

    lights = []
    for m, lwh, _ in many(cuboid_args()):
        states = ()
        if light_states and num_frames:
            states = tuple(draw(st.lists(st.sampled_from(["red", "green", "yellow", "unknown", "off"]),
                                         min_size=num_frames, max_size=num_frames)))  # fmt: skip
        fid = f"light_{len(lights)}" if light_states else ""
        lights.append(TrafficLight(m, lwh, "traffic_light", feature_id=fid, states=states))
    return MapElements(
        lane_lines=many(st.builds(lambda p, t: LaneLine(p, lane_type=t), points, st.sampled_from(LANE_TYPES))),
        lanes=many(st.builds(Polyline, points, st.sampled_from(["left_rail", "right_rail"]))),
        road_boundaries=many(st.builds(Polyline, points, text)),
        wait_lines=many(st.builds(Polyline, points, text)),
        poles=many(st.builds(Polyline, points, text)),
        crosswalks=many(st.builds(Polygon, points, text)),
        road_markings=many(st.builds(Polygon, points, text)),
        traffic_signs=many(st.builds(lambda a: Cuboid(*a), cuboid_args())),
        traffic_lights=tuple(lights),
        intersection_areas=many(st.builds(Polygon, points, text)),
        road_islands=many(st.builds(Polygon, points, text)),
    )


@st.composite
def cameras(draw):
    names = draw(st.lists(st.sampled_from(DEFAULT_CAMERA_NAMES), min_size=1, max_size=3, unique=True))
    out = {}
    for name in names:
        bw = draw(st.booleans())
        if bw:
            poly = [0.0, draw(st.floats(2e-4, 2e-3)), draw(st.floats(0, 1e-9)), 0.0, 0.0, 0.0]
        else:
            poly = [0.0, draw(st.floats(500, 4000)), draw(st.floats(0, 50)), 0.0, 0.0, 0.0]
        w, h = draw(st.sampled_from([(1920, 1080), (3848, 2168), (1280, 720)]))
        intr = FThetaIntrinsics(
            cx_px=draw(st.floats(0.4 * w, 0.6 * w)),
            cy_px=draw(st.floats(0.4 * h, 0.6 * h)),
            width_px=w,
            height_px=h,
            poly_coeffs=poly,
            is_bw_poly=bw,
            linear_cde=[draw(st.floats(0.99, 1.01)), draw(st.floats(-0.01, 0.01)), draw(st.floats(-0.01, 0.01))],
        )
        t = [draw(st.floats(-3, 3)) for _ in range(3)]
        rpy = [draw(st.floats(-30, 30)), draw(st.floats(-30, 30)), draw(st.floats(-180, 180))]
        out[name] = CameraSpec(name, intr, rig_SE3_cam_from_nominal(t, rpy))
    return out


@st.composite
def tracks(draw, t0: int, t1: int):
    n = draw(st.integers(0, 4))
    out = []
    for i in range(n):
        k = draw(st.integers(2, 6))
        ts = sorted(draw(st.lists(st.integers(t0 - 300_000, t1 + 300_000), min_size=k, max_size=k, unique=True)))
        out.append(
            Track(
                track_id=f"track_{i:02d}_{draw(text)}",
                object_type=draw(st.sampled_from(list(ObjectType))),
                timestamps_us=ts,
                centers_world=[[draw(finite), draw(finite), draw(st.floats(0, 3))] for _ in range(k)],
                lwh_m=[[draw(st.floats(0.1, 15)) for _ in range(3)] for _ in range(k)],
                quats_xyzw=[draw(unit_quats) for _ in range(k)],
            )
        )
    return tuple(sorted(out, key=lambda t: t.track_id))


@st.composite
def scenes(draw, *, light_states: bool = False):
    t0 = draw(st.integers(0, 2_000_000_000_000))
    k = draw(st.integers(1, 8))
    gaps = draw(st.lists(st.integers(20_000, 300_000), min_size=k - 1, max_size=k - 1))
    key_ts = t0 + np.concatenate([[0], np.cumsum(gaps)]).astype(np.int64)
    key_pos = [[draw(finite), draw(finite), draw(st.floats(-2, 2))] for _ in range(k)]
    key_q = [draw(unit_quats) for _ in range(k)]
    ts = frame_timeline(int(key_ts[0]), int(key_ts[-1]))
    return Scene(
        clip_id=draw(st.from_regex(r"[a-z][a-z0-9_]{2,12}", fullmatch=True)),
        source_format="clipgt",
        frame_timestamps_us=ts,
        world_SE3_rig=interpolate_poses(key_ts, key_pos, key_q, ts),
        cameras=draw(cameras()),
        map=draw(map_elements(light_states=light_states, num_frames=len(ts))),
        tracks=draw(tracks(int(key_ts[0]), int(key_ts[-1]))),
    )


# ---------------------------------------------------------------------------------------- comparison


def _rot_close(a, b, atol):
    np.testing.assert_allclose(np.asarray(a)[..., :3, :3], np.asarray(b)[..., :3, :3], atol=atol)


def assert_cameras_equal(a: dict, b: dict, atol: float = 1e-9) -> None:
    assert sorted(a) == sorted(b)
    for name in a:
        ia, ib = a[name].intrinsics, b[name].intrinsics
        assert (ia.cx_px, ia.cy_px, ia.width_px, ia.height_px, ia.is_bw_poly) == (
            ib.cx_px, ib.cy_px, ib.width_px, ib.height_px, ib.is_bw_poly)  # fmt: skip
        np.testing.assert_array_equal(ia.poly_coeffs, ib.poly_coeffs)
        np.testing.assert_array_equal(ia.linear_cde, ib.linear_cde)
        np.testing.assert_allclose(a[name].rig_SE3_cam, b[name].rig_SE3_cam, atol=atol)


def assert_maps_equal(
    a: MapElements, b: MapElements, atol: float = 1e-9, *, light_states: bool = False, skip: tuple[str, ...] = ()
) -> None:
    for field in ("lane_lines", "lanes", "road_boundaries", "wait_lines", "poles", "crosswalks", "road_markings",
                  "intersection_areas", "road_islands"):  # fmt: skip
        if field in skip:
            continue
        xa, xb = getattr(a, field), getattr(b, field)
        assert len(xa) == len(xb), field
        for ea, eb in zip(xa, xb):
            np.testing.assert_allclose(ea.points_world, eb.points_world, atol=atol, err_msg=field)
            assert ea.category == eb.category, field
            if field == "lane_lines":
                assert ea.lane_type == eb.lane_type
    for field in ("traffic_signs", "traffic_lights"):
        xa, xb = getattr(a, field), getattr(b, field)
        assert len(xa) == len(xb), field
        for ea, eb in zip(xa, xb):
            np.testing.assert_allclose(ea.world_SE3_obj, eb.world_SE3_obj, atol=atol, err_msg=field)
            np.testing.assert_allclose(ea.lwh_m, eb.lwh_m, atol=atol)
            if light_states and field == "traffic_lights":
                assert ea.states == eb.states


def assert_tracks_equal(a, b, atol: float = 1e-9) -> None:
    assert [t.track_id for t in a] == [t.track_id for t in b]
    for ta, tb in zip(a, b):
        assert ta.object_type == tb.object_type
        np.testing.assert_array_equal(ta.timestamps_us, tb.timestamps_us)
        np.testing.assert_allclose(ta.centers_world, tb.centers_world, atol=atol)
        np.testing.assert_allclose(ta.lwh_m, tb.lwh_m, atol=atol)
        _rot_close(
            np.stack([np.pad(quat_xyzw_to_matrix(ta.quats_xyzw), ((0, 0), (0, 1), (0, 1)))]),
            np.stack([np.pad(quat_xyzw_to_matrix(tb.quats_xyzw), ((0, 0), (0, 1), (0, 1)))]),
            atol,
        )
        assert ta.max_extrapolation_us == tb.max_extrapolation_us


def assert_frame_geometry_equal(a: Scene, b: Scene, atol: float = 1e-6, frames=None) -> None:
    """Same per-frame camera poses and objects, frame by frame (timestamps may differ)."""
    assert a.num_frames == b.num_frames
    assert sorted(a.cameras) == sorted(b.cameras)
    for name in a.cameras:
        np.testing.assert_allclose(a.world_SE3_cam(name), b.world_SE3_cam(name), atol=atol, err_msg=name)
    for k in range(a.num_frames) if frames is None else frames:
        oa, ob = a.objects_at_frame(k), b.objects_at_frame(k)
        assert oa.track_ids == ob.track_ids, k
        assert oa.object_types == ob.object_types
        np.testing.assert_allclose(oa.world_SE3_obj, ob.world_SE3_obj, atol=atol, err_msg=f"frame {k}")
        np.testing.assert_allclose(oa.lwh_m, ob.lwh_m, atol=atol)
