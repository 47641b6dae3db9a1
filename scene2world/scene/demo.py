"""The bundled example scene: 5 s of driving on a left curve, fully deterministic.

Layout (FLU world, first ego pose at the origin, heading +x): a constant-curvature road
(radius 100 m, turning left) described by arc length ``s`` along the ego lane centre and a
lateral offset ``d`` (positive to the left). The ego drives at 10 m/s in the right lane
(d = 0) for 5 s; ego and objects are sampled at 10 Hz from t = 1 000 000 000 µs, so the
30 fps timeline has 151 frames.

Content: five lane lines (WHITE SOLID_SINGLE edge lines, WHITE LONG_DASHED_SINGLE between our
lanes, a YELLOW SOLID_GROUP double centre line, WHITE SHORT_DASHED_SINGLE between the oncoming
lanes), a WHITE DOT_DASHED_SINGLE merge marking, two curbs, one lane (two rails), a crosswalk
and a forward arrow as closed rings (first vertex repeated), a stop line, three poles, a speed-
limit sign, two traffic lights (no state: ClipGT cannot store one), and a leading car, an
oncoming car, an overtaking truck, a cyclist on the shoulder and a pedestrian on the crosswalk.
Cameras: NVIDIA's 7-camera rig (:func:`scene2world.scene.defaults.nvidia_rig`).
"""

from __future__ import annotations

import numpy as np

from scene2world.scene.defaults import nvidia_rig
from scene2world.scene.interpolation import interpolate_poses
from scene2world.scene.model import (
    Cuboid,
    LaneLine,
    MapElements,
    ObjectType,
    Polygon,
    Polyline,
    Scene,
    Track,
    TrafficLight,
)
from scene2world.typing import NDArrayFloat, NDArrayInt

__all__ = [
    "DEMO_CLIP_ID",
    "build_demo_scene",
    "demo_ego_keyframes",
]

DEMO_CLIP_ID = "s2w_demo_curve_0001"
T0_US = 1_000_000_000
DURATION_S = 5.0
KEYFRAME_HZ = 10
RADIUS_M = 100.0
EGO_SPEED_MPS = 10.0
LANE_WIDTH_M = 3.6


def _road_xyz(s_m: NDArrayFloat, d_m: NDArrayFloat | float, z_m: NDArrayFloat | float = 0.0) -> NDArrayFloat:
    """(N, 3) world points at arc length ``s_m`` and left offset ``d_m`` on the curve."""
    s = np.asarray(s_m, dtype=np.float64)
    d = np.broadcast_to(np.asarray(d_m, dtype=np.float64), s.shape)
    phi = s / RADIUS_M
    r = RADIUS_M - d
    return np.stack([r * np.sin(phi), RADIUS_M - r * np.cos(phi), np.broadcast_to(z_m, s.shape)], axis=-1)


def _yaw_quats(yaw_rad: NDArrayFloat) -> NDArrayFloat:
    """(N, 4) xyzw quaternions of rotations about +z."""
    yaw = np.asarray(yaw_rad, dtype=np.float64)
    return np.stack([np.zeros_like(yaw), np.zeros_like(yaw), np.sin(yaw / 2), np.cos(yaw / 2)], axis=-1)


def _keyframe_times() -> NDArrayInt:
    n = int(DURATION_S * KEYFRAME_HZ) + 1
    return T0_US + np.arange(n, dtype=np.int64) * (1_000_000 // KEYFRAME_HZ)


def demo_ego_keyframes() -> tuple[NDArrayInt, NDArrayFloat]:
    """The 10 Hz ego keyframes: (K,) µs and (K, 4, 4) rig->world poses (K = 51)."""
    ts = _keyframe_times()
    s = (EGO_SPEED_MPS * (ts - T0_US) / 1e6).astype(np.float64)
    poses = np.tile(np.eye(4), (len(ts), 1, 1))
    yaw = s / RADIUS_M
    poses[:, :3, 3] = _road_xyz(s, 0.0)
    poses[:, 0, 0], poses[:, 0, 1] = np.cos(yaw), -np.sin(yaw)
    poses[:, 1, 0], poses[:, 1, 1] = np.sin(yaw), np.cos(yaw)
    return ts, poses


def _line(d: float, s0: float = -40.0, s1: float = 160.0, step: float = 4.0, z: float = 0.0) -> NDArrayFloat:
    s = np.arange(s0, s1 + step / 2, step)
    return _road_xyz(s, d, z)


def _ring(s0: float, s1: float, d0: float, d1: float) -> NDArrayFloat:
    """A closed quadrilateral ring (5 vertices, the first repeated) on the road surface."""
    corners = _road_xyz(np.array([s0, s1, s1, s0]), np.array([d0, d0, d1, d1]))
    return np.vstack([corners, corners[:1]])


def _box(s: float, d: float, z: float, lwh: tuple[float, float, float], yaw_offset: float = 0.0) -> NDArrayFloat:
    pose = np.eye(4)
    yaw = s / RADIUS_M + yaw_offset
    pose[:3, :3] = [[np.cos(yaw), -np.sin(yaw), 0], [np.sin(yaw), np.cos(yaw), 0], [0, 0, 1]]
    pose[:3, 3] = _road_xyz(np.array([s]), d, z)[0]
    return pose


def _map() -> MapElements:
    w = LANE_WIDTH_M
    lane_lines = (
        LaneLine(_line(-w / 2), lane_type="WHITE SOLID_SINGLE"),
        LaneLine(_line(w / 2), lane_type="WHITE LONG_DASHED_SINGLE"),
        LaneLine(_line(1.5 * w), lane_type="YELLOW SOLID_GROUP"),
        LaneLine(_line(2.5 * w), lane_type="WHITE SHORT_DASHED_SINGLE"),
        LaneLine(_line(3.5 * w), lane_type="WHITE SOLID_SINGLE"),
        LaneLine(_line(-w / 2 - 0.3, s0=90.0, s1=130.0, step=2.0), lane_type="WHITE DOT_DASHED_SINGLE"),
    )
    boundaries = (
        Polyline(_line(-w / 2 - 1.2, z=0.15), category="tall_curb"),
        Polyline(_line(3.5 * w + 1.2, z=0.15), category="tall_curb"),
    )
    lanes = (Polyline(_line(w / 2), category="left_rail"), Polyline(_line(-w / 2), category="right_rail"))
    poles = tuple(
        Polyline(np.vstack([_road_xyz(np.array([s]), d, 0.0), _road_xyz(np.array([s]), d, 7.0)]), category=c)
        for s, d, c in ((20.0, -4.5, "LIGHT"), (60.0, -4.5, "SIGN"), (76.0, 3.5 * w + 2.0, "LIGHT"))
    )
    crosswalk = Polygon(_ring(70.0, 74.0, -w / 2 - 1.2, 3.5 * w + 1.2), category="PEDESTRIAN")
    arrow = Polygon(_ring(30.0, 33.0, -0.3, 0.3), category="ROI_POLYGON_DIRECTION_PAINT_FORWARD")
    wait_line = Polyline(_road_xyz(np.array([67.0, 67.0]), np.array([-w / 2, 1.5 * w])), category="STOP")
    sign = Cuboid(
        _box(60.0, -4.5, 2.6, (0.1, 0.8, 0.8), np.pi),
        np.array([0.1, 0.8, 0.8]),
        "TRAFFIC_SIGN_REGULATORY_R2_SPEED_LIMIT",
    )
    lights = tuple(
        TrafficLight(
            _box(76.0, d, 6.0, (0.6, 0.6, 1.0), np.pi), np.array([0.6, 0.6, 1.0]), "traffic_light", feature_id=""
        )
        for d in (0.0, w)
    )
    return MapElements(
        lane_lines=lane_lines,
        lanes=lanes,
        road_boundaries=boundaries,
        wait_lines=(wait_line,),
        poles=poles,
        crosswalks=(crosswalk,),
        road_markings=(arrow,),
        traffic_signs=(sign,),
        traffic_lights=lights,
    )


def _track(
    track_id: str,
    object_type: ObjectType,
    s: NDArrayFloat,
    d: NDArrayFloat | float,
    lwh: tuple[float, float, float],
    yaw_offset: NDArrayFloat | float = 0.0,
) -> Track:
    ts = _keyframe_times()
    s = np.broadcast_to(np.asarray(s, dtype=np.float64), ts.shape)
    centers = _road_xyz(s, d, lwh[2] / 2)
    return Track(
        track_id=track_id,
        object_type=object_type,
        timestamps_us=ts,
        centers_world=centers,
        lwh_m=np.tile(lwh, (len(ts), 1)),
        quats_xyzw=_yaw_quats(s / RADIUS_M + yaw_offset),
        max_extrapolation_us=500_000,
    )


def _tracks() -> tuple[Track, ...]:
    t = (_keyframe_times() - T0_US) / 1e6
    w = LANE_WIDTH_M
    tracks = [
        _track("car_lead", ObjectType.CAR, 14.0 + 8.0 * t, 0.0, (4.5, 2.0, 1.6)),
        _track("car_oncoming", ObjectType.CAR, 95.0 - 12.0 * t, 2 * w, (4.6, 1.9, 1.5), np.pi),
        _track("truck_overtaking", ObjectType.TRUCK, -14.0 + 12.5 * t, w, (10.0, 2.6, 3.4)),
        _track("cyclist_shoulder", ObjectType.CYCLIST, 24.0 + 4.5 * t, -w / 2 - 0.6, (1.8, 0.6, 1.7)),
        _track("pedestrian_crossing", ObjectType.PEDESTRIAN, np.full_like(t, 72.0), 3.5 * w + 0.5 - 1.4 * t,
               (0.6, 0.6, 1.8), -np.pi / 2),
    ]  # fmt: skip
    return tuple(sorted(tracks, key=lambda tr: tr.track_id))


def build_demo_scene() -> Scene:
    """The bundled example as a :class:`Scene` (``source_format="clipgt"``, 151 frames, 7 cameras)."""
    from scene2world.scene.clipgt import frame_timeline

    key_ts, key_poses = demo_ego_keyframes()
    frames = frame_timeline(int(key_ts[0]), int(key_ts[-1]))
    quats = np.stack([_yaw_quats(np.arctan2(p[1, 0], p[0, 0])) for p in key_poses])
    world_SE3_rig = interpolate_poses(key_ts, key_poses[:, :3, 3], quats, frames)
    return Scene(
        clip_id=DEMO_CLIP_ID,
        source_format="clipgt",
        frame_timestamps_us=frames,
        world_SE3_rig=world_SE3_rig,
        cameras=nvidia_rig(),
        map=_map(),
        tracks=_tracks(),
        metadata={"description": "scene2world demo: 5 s left curve, 7-camera NVIDIA rig"},
    )
