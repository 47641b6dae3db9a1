"""The synthetic scenes S1 and S2 as :class:`Scene` values.

Their definition: docs/world_scenario.md, "Reference renders and the synthetic scenes".

NVIDIA's own renderer drew these scenes for the reference PNGs in ``tests/data/reference_renders/``; our
renderer is compared against them (tests/renderer/test_parity.py), and the loaders round-trip
them. Everything is in the FLU world; the ego stays at the origin.

Choices where the scene definition is terse (documented, not tuned on the images):

- Lane lines, road boundaries: straight along x, ``x = linspace(2, 100, 11)`` (S2 lane lines
  ``linspace(−30, 100, 14)``), z = 0 (road boundaries z = 0.15), in the order the definition lists them
  (+ side first for pairs).
- Crosswalk and road marking: rectangles stored as *closed* rings (first vertex repeated, so
  every edge is densified; docs/world_scenario.md, "How NVIDIA draws"), clockwise seen from
  above, starting at the near right
  corner: (x_min, −w), (x_min, +w), (x_max, +w), (x_max, −w). S2's "±0.02 m z-jitter on two
  polygon vertices": ring vertex 1 (x_min, +w) at z = +0.02 and vertex 3 (x_max, −w) at
  z = −0.02, in each polygon. The definition does not state the ring order, the jittered vertices or their
  signs; these are the ones the reference renders agree with (the FLU render fixes the jittered
  corners and signs, the ClipGT render, whose triangulation depends on the point order, the ring
  direction). One jittered vertex per polygon cannot be meant: NVIDIA's ClipGT path would then
  fill only half of the road marking, and none would crash it.
- Wait line from (38, +14) to (38, −14); poles from z = 0 up to 7; signs and lights unrotated,
  ``dims`` = (length, width, height).
- Boxes: tracks ``"0"``..``"5"`` in the definition's order, two equal keyframes (t = 0 and 33 333 µs),
  no extrapolation (absent at later frames, as in the 7-camera reference at frame 59).
- The +3 m traffic light is red at frame 0 and green at frame 1; the other has no state.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from scene2world.errors import SceneError
from scene2world.scene.model import (
    FRAME_PERIOD_US,
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
from scene2world.typing import NDArrayFloat, NDArrayInt

__all__ = ["DOC_FTHETA", "S1_LANE_TYPES", "build_s1", "build_s1_7cam", "build_s2", "doc_camera"]

DOC_FTHETA = FThetaIntrinsics(
    cx_px=1919.420,
    cy_px=1078.106,
    width_px=3848,
    height_px=2168,
    poly_coeffs=np.array([0.0, 0.000538, 2.356e-09, 1.907e-12, 1.204e-16, 0.0]),
    is_bw_poly=True,
)
"""The documentation's f-theta camera (3848x2168, backward polynomial); rescaled to 1280x720 at render."""

FRONT_WIDE = "camera_front_wide_120fov"

S1_LANE_TYPES: tuple[tuple[float, str], ...] = (
    (1.8, "WHITE LONG_DASHED_SINGLE"),
    (-1.8, "WHITE SOLID_SINGLE"),
    (5.4, "YELLOW SOLID_GROUP"),
    (-5.4, "WHITE SHORT_DASHED_SINGLE"),
    (9.0, "YELLOW DOT_SOLID_SINGLE"),
    (-9.0, "WHITE DOT_DASHED_SINGLE"),
    (12.6, "YELLOW SOLID_DASHED"),
    (-12.6, "WHITE DASHED_SINGLE"),  # not in NVIDIA's table -> drawn as OTHER (olive)
)
"""(lateral offset y in m, NVIDIA lane type) of S1's lane lines, in order."""

# (type, centre xyz m, lwh m, yaw deg)
_BOXES: tuple[tuple[ObjectType, tuple[float, float, float], tuple[float, float, float], float], ...] = (
    (ObjectType.CAR, (15.0, 0.0, 0.8), (4.5, 2.0, 1.6), 0.0),
    (ObjectType.CAR, (25.0, 3.6, 0.8), (4.5, 2.0, 1.6), 180.0),
    (ObjectType.TRUCK, (35.0, -3.6, 1.7), (10.0, 2.6, 3.4), 0.0),
    (ObjectType.PEDESTRIAN, (12.0, -7.0, 0.9), (0.6, 0.6, 1.8), 90.0),
    (ObjectType.CYCLIST, (18.0, 7.2, 0.9), (1.8, 0.6, 1.7), 0.0),
    (ObjectType.OTHER, (20.0, -11.0, 0.5), (1.0, 1.0, 1.0), 30.0),
)


def doc_camera() -> CameraSpec:
    """The documentation's f-theta front camera at t = (1.7, 0, 1.45) m, roll-pitch-yaw 0."""
    return CameraSpec(FRONT_WIDE, DOC_FTHETA, rig_SE3_cam_from_nominal((1.7, 0.0, 1.45), (0.0, 0.0, 0.0)))


def _pose(center: tuple[float, float, float], yaw_deg: float = 0.0) -> NDArrayFloat:
    out = np.eye(4)
    out[:3, :3] = Rotation.from_euler("z", yaw_deg, degrees=True).as_matrix()
    out[:3, 3] = center
    return out


def _line(x: NDArrayFloat, y: float, z: float = 0.0) -> NDArrayFloat:
    return np.stack([x, np.full_like(x, y), np.full_like(x, z)], axis=1)


def _rect_ring(x0: float, x1: float, half_width: float, jitter: bool) -> NDArrayFloat:
    """Closed clockwise ring (x0,−w) (x0,+w) (x1,+w) (x1,−w) (x0,−w); S2 jitter +0.02 on vertex 1, −0.02 on 3."""
    ring = np.array([[x0, -half_width, 0.0], [x0, half_width, 0.0], [x1, half_width, 0.0], [x1, -half_width, 0.0]])
    if jitter:
        ring[1, 2], ring[3, 2] = 0.02, -0.02
    return np.concatenate([ring, ring[:1]])


def _timestamps(num_frames: int) -> NDArrayInt:
    return np.round(np.arange(num_frames) * FRAME_PERIOD_US).astype(np.int64)


def _scene(
    clip_id: str,
    lane_x: NDArrayFloat,
    crosswalk_x: tuple[float, float],
    marking_x: tuple[float, float],
    jitter: bool,
    cameras: dict[str, CameraSpec],
    num_frames: int,
) -> Scene:
    x = np.linspace(2.0, 100.0, 11)
    light_states = ("red", "green") + ("unknown",) * (num_frames - 2)
    map_elements = MapElements(
        lane_lines=tuple(LaneLine(_line(lane_x, y), lane_type=t) for y, t in S1_LANE_TYPES),
        road_boundaries=(Polyline(_line(x, 16.0, 0.15)), Polyline(_line(x, -16.0, 0.15))),
        wait_lines=(Polyline(np.array([[38.0, 14.0, 0.0], [38.0, -14.0, 0.0]])),),
        poles=(
            Polyline(np.array([[30.0, 17.0, 0.0], [30.0, 17.0, 7.0]])),
            Polyline(np.array([[30.0, -17.0, 0.0], [30.0, -17.0, 7.0]])),
        ),
        crosswalks=(Polygon(_rect_ring(*crosswalk_x, 14.0, jitter), category="PEDESTRIAN"),),
        road_markings=(Polygon(_rect_ring(*marking_x, 0.5, jitter), category="ROI_POLYGON_TEXT_PAINT"),),
        traffic_signs=(
            Cuboid(_pose((30.0, -17.0, 5.5)), np.array([0.3, 0.9, 0.9]), category="TRAFFIC_SIGN_INFORMATION"),
        ),
        traffic_lights=(
            TrafficLight(
                _pose((45.0, 3.0, 6.0)), np.array([0.6, 0.6, 1.0]), "traffic_light", feature_id="0", states=light_states
            ),
            TrafficLight(_pose((45.0, -3.0, 6.0)), np.array([0.6, 0.6, 1.0]), "traffic_light", feature_id="1"),
        ),
    )
    key_ts = np.array([0, round(FRAME_PERIOD_US)], dtype=np.int64)
    tracks = []
    for i, (kind, center, lwh, yaw) in enumerate(_BOXES):
        quat = Rotation.from_euler("z", yaw, degrees=True).as_quat()  # x, y, z, w
        tracks.append(
            Track(
                track_id=str(i),
                object_type=kind,
                timestamps_us=key_ts,
                centers_world=np.array([center, center]),
                lwh_m=np.array([lwh, lwh]),
                quats_xyzw=np.array([quat, quat]),
                is_moving=False,
                max_extrapolation_us=0,
            )
        )
    return Scene(
        clip_id=clip_id,
        source_format="synthetic",
        frame_timestamps_us=_timestamps(num_frames),
        world_SE3_rig=np.repeat(np.eye(4)[None], num_frames, axis=0),
        cameras=cameras,
        map=map_elements,
        tracks=tuple(tracks),
        metadata={"description": f"synthetic reference scene {clip_id} (docs/world_scenario.md)"},
    )


def build_s1() -> Scene:
    """Scene S1: 8 lane-line types, boundaries, crosswalk at 40-44 m, signs, lights, 6 boxes; 2 frames."""
    return _scene(
        "synthetic_s1", np.linspace(2.0, 100.0, 11), (40.0, 44.0), (22.0, 25.0), False, {FRONT_WIDE: doc_camera()}, 2
    )


def build_s2() -> Scene:
    """Scene S2: S1 with lane lines from x = −30 (14 points), crosswalk 8-11 m, road marking 5-6.5 m, z-jitter."""
    return _scene(
        "synthetic_s2", np.linspace(-30.0, 100.0, 14), (8.0, 11.0), (5.0, 6.5), True, {FRONT_WIDE: doc_camera()}, 2
    )


def build_s1_7cam(num_frames: int = 60) -> Scene:
    """S1 on NVIDIA's 7-camera rig, ``num_frames`` ≥ 2 frames.

    Default intrinsics and nominal extrinsics: docs/world_scenario.md.

    Light states exist for frames 0 and 1 only (later frames: unknown, grey); the boxes are absent
    after frame 1 (their two keyframes are not extrapolated).
    """
    from scene2world.scene.defaults import nvidia_rig

    if num_frames < 2:
        raise SceneError(f"`num_frames` must be >= 2, got {num_frames}")
    return _scene(
        "synthetic_s1_7cam",
        np.linspace(2.0, 100.0, 11),
        (40.0, 44.0),
        (22.0, 25.0),
        False,
        nvidia_rig(),
        num_frames,
    )
