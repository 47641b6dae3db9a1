"""The one scene model every loader produces and the renderer consumes.

Everything is in a right-handed FLU world (x forward, y left, z up, metres), whatever the
input format. Camera frames use OpenCV axes (x right, y down, z forward), like NVIDIA's
renderer. Transforms name both frames: ``world_SE3_rig`` maps rig points to world points,
``rig_SE3_cam`` maps camera points to rig points.

All values are frozen dataclasses that check their shapes on construction.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

import numpy as np

from scene2world.errors import SceneError
from scene2world.typing import NDArrayFloat, NDArrayInt

FRAME_RATE_HZ = 30
"""NVIDIA's control-video frame rate (``INPUT_POSE_FPS``/``TARGET_RENDER_FPS``)."""

FRAME_PERIOD_US = 1_000_000 / FRAME_RATE_HZ


class CameraName(str, enum.Enum):
    """NVIDIA's seven rig cameras, in ``DEFAULT_CAMERA_NAMES`` order (underscore names)."""

    FRONT_WIDE = "camera_front_wide_120fov"
    FRONT_TELE = "camera_front_tele_30fov"
    CROSS_RIGHT = "camera_cross_right_120fov"
    CROSS_LEFT = "camera_cross_left_120fov"
    REAR_LEFT = "camera_rear_left_70fov"
    REAR_RIGHT = "camera_rear_right_70fov"
    REAR_TELE = "camera_rear_tele_30fov"


DEFAULT_CAMERA_NAMES: tuple[str, ...] = tuple(c.value for c in CameraName)


class ObjectType(str, enum.Enum):
    """Dynamic object classes (values as in NVIDIA's ``ObjectType``)."""

    CAR = "Car"
    PEDESTRIAN = "Pedestrian"
    CYCLIST = "Cyclist"
    TRUCK = "Truck"
    OTHER = "Other"


class TrafficLightState(str, enum.Enum):
    """Per-frame traffic-light state."""

    RED = "red"
    YELLOW = "yellow"
    GREEN = "green"
    UNKNOWN = "unknown"
    OFF = "off"


SourceFormat = Literal["clipgt", "rdshq", "synthetic"]


def _as_array(value: Any, name: str, shape: tuple[int | None, ...], dtype: Any = np.float64) -> np.ndarray:
    """Coerce ``value`` to a read-only array of ``shape`` (None = any length) or raise SceneError."""
    try:
        arr = np.array(value, dtype=dtype, copy=True)
    except (TypeError, ValueError) as e:
        raise SceneError(f"`{name}` must be a numeric array of shape {_fmt(shape)}: {e}") from e
    if arr.ndim != len(shape) or any(s is not None and s != a for s, a in zip(shape, arr.shape)):
        raise SceneError(f"`{name}` must be {_fmt(shape)}, got {arr.shape}")
    arr.setflags(write=False)
    return arr


def _fmt(shape: tuple[int | None, ...]) -> str:
    return "(" + ", ".join("N" if s is None else str(s) for s in shape) + ")"


def _check_finite(arr: np.ndarray, name: str) -> None:
    if arr.size and not np.all(np.isfinite(arr)):
        bad = int(np.flatnonzero(~np.isfinite(arr.reshape(len(arr), -1)).all(axis=1))[0])
        raise SceneError(f"`{name}` holds NaN or infinite values (first at row {bad})")


@dataclass(frozen=True, eq=False)
class FThetaIntrinsics:
    """NVIDIA f-theta intrinsics at the sensor's native resolution.

    ``poly_coeffs``: (6,) polynomial coefficients, lowest order first; backward
    (pixel distance -> angle, radians) when ``is_bw_poly`` else forward (angle -> pixels).
    ``linear_cde``: (3,) the affine terms c, d, e (A = [[c, d], [e, 1]]).
    """

    cx_px: float
    cy_px: float
    width_px: int
    height_px: int
    poly_coeffs: NDArrayFloat
    is_bw_poly: bool
    linear_cde: NDArrayFloat = field(default_factory=lambda: np.array([1.0, 0.0, 0.0]))

    def __post_init__(self) -> None:
        object.__setattr__(self, "poly_coeffs", _as_array(self.poly_coeffs, "poly_coeffs", (6,)))
        object.__setattr__(self, "linear_cde", _as_array(self.linear_cde, "linear_cde", (3,)))
        for name in ("cx_px", "cy_px"):
            if not np.isfinite(getattr(self, name)):
                raise SceneError(f"f-theta `{name}` must be finite, got {getattr(self, name)}")
        if self.width_px <= 0 or self.height_px <= 0:
            raise SceneError(f"f-theta size must be positive, got {self.width_px}x{self.height_px}")
        _check_finite(self.poly_coeffs.reshape(1, -1), "poly_coeffs")


@dataclass(frozen=True, eq=False)
class CameraSpec:
    """One rig camera: name (NVIDIA underscore form), intrinsics, camera(OpenCV)->rig(FLU) pose."""

    name: str
    intrinsics: FThetaIntrinsics
    rig_SE3_cam: NDArrayFloat

    def __post_init__(self) -> None:
        object.__setattr__(self, "rig_SE3_cam", _as_array(self.rig_SE3_cam, f"{self.name}.rig_SE3_cam", (4, 4)))
        _check_finite(self.rig_SE3_cam, f"{self.name}.rig_SE3_cam")


@dataclass(frozen=True, eq=False)
class Polyline:
    """A map polyline. ``points_world``: (N, 3) vertices in the FLU world, metres."""

    points_world: NDArrayFloat
    category: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "points_world", _as_array(self.points_world, "points_world", (None, 3)))
        _check_finite(self.points_world, "points_world")


@dataclass(frozen=True, eq=False)
class LaneLine(Polyline):
    """A lane line with NVIDIA's type string ``"<COLOR> <STYLE>"`` (e.g. ``"WHITE SOLID_SINGLE"``)
    or ``"OTHER"`` for unknown types."""

    lane_type: str = "WHITE SOLID_SINGLE"


@dataclass(frozen=True, eq=False)
class Polygon:
    """A filled map polygon (crosswalk, road marking). ``points_world``: (N, 3) ring vertices
    as stored; ``closed`` is True when the stored ring repeats its first vertex at the end
    (NVIDIA's resampling treats the two cases differently: see docs/world_scenario.md,
    "How NVIDIA draws", polygons and rings)."""

    points_world: NDArrayFloat
    category: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "points_world", _as_array(self.points_world, "points_world", (None, 3)))
        _check_finite(self.points_world, "points_world")

    @property
    def closed(self) -> bool:
        """True when the last vertex repeats the first."""
        p = self.points_world
        return len(p) > 1 and bool(np.array_equal(p[0], p[-1]))


@dataclass(frozen=True, eq=False)
class Cuboid:
    """An oriented box: ``world_SE3_obj`` (4, 4) object(FLU: x length/heading, y width, z up)->world;
    ``lwh_m`` (3,) length, width, height in metres."""

    world_SE3_obj: NDArrayFloat
    lwh_m: NDArrayFloat
    category: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "world_SE3_obj", _as_array(self.world_SE3_obj, "world_SE3_obj", (4, 4)))
        object.__setattr__(self, "lwh_m", _as_array(self.lwh_m, "lwh_m", (3,)))
        _check_finite(self.world_SE3_obj, "world_SE3_obj")
        _check_finite(self.lwh_m.reshape(1, 3), "lwh_m")


@dataclass(frozen=True, eq=False)
class TrafficLight(Cuboid):
    """A traffic light; ``states`` holds one :class:`TrafficLightState` value per scene frame,
    or is empty when the source has no state (drawn as unknown)."""

    feature_id: str = ""
    states: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class MapElements:
    """Static map content, FLU world. Lanes (rails), intersection areas and road islands are
    loaded but not drawn in NVIDIA's v3 look."""

    lane_lines: tuple[LaneLine, ...] = ()
    lanes: tuple[Polyline, ...] = ()
    road_boundaries: tuple[Polyline, ...] = ()
    wait_lines: tuple[Polyline, ...] = ()
    poles: tuple[Polyline, ...] = ()
    crosswalks: tuple[Polygon, ...] = ()
    road_markings: tuple[Polygon, ...] = ()
    traffic_signs: tuple[Cuboid, ...] = ()
    traffic_lights: tuple[TrafficLight, ...] = ()
    intersection_areas: tuple[Polygon, ...] = ()
    road_islands: tuple[Polygon, ...] = ()

    def __len__(self) -> int:
        return sum(len(getattr(self, f.name)) for f in dataclasses.fields(self))


@dataclass(frozen=True, eq=False)
class Track:
    """A tracked object's keyframes (absolute µs, ascending).

    ``centers_world`` (K, 3) m, ``lwh_m`` (K, 3) m, ``quats_xyzw`` (K, 4) object->world rotations.
    ``max_extrapolation_us``: how far outside [first, last] keyframe the pose is extrapolated
    (500 000 for ClipGT, 0 for RDS-HQ).
    """

    track_id: str
    object_type: ObjectType
    timestamps_us: NDArrayInt
    centers_world: NDArrayFloat
    lwh_m: NDArrayFloat
    quats_xyzw: NDArrayFloat
    is_moving: bool = True
    max_extrapolation_us: int = 500_000

    def __post_init__(self) -> None:
        ts = _as_array(self.timestamps_us, f"track {self.track_id}.timestamps_us", (None,), np.int64)
        k = len(ts)
        if k == 0:
            raise SceneError(f"track {self.track_id!r} has no observations")
        if np.any(np.diff(ts) <= 0):
            raise SceneError(f"track {self.track_id!r}: timestamps_us must be strictly increasing")
        object.__setattr__(self, "timestamps_us", ts)
        for name, width in (("centers_world", 3), ("lwh_m", 3), ("quats_xyzw", 4)):
            arr = _as_array(getattr(self, name), f"track {self.track_id}.{name}", (k, width))
            _check_finite(arr, f"track {self.track_id}.{name}")
            object.__setattr__(self, name, arr)
        norms = np.linalg.norm(self.quats_xyzw, axis=1)
        if np.any(norms < 1e-9):
            raise SceneError(f"track {self.track_id!r}: zero-norm quaternion in quats_xyzw")
        object.__setattr__(self, "object_type", ObjectType(self.object_type))


@dataclass(frozen=True, eq=False)
class FrameObjects:
    """The objects present at one frame, stacked. ``world_SE3_obj`` (M, 4, 4), ``lwh_m`` (M, 3)."""

    track_ids: tuple[str, ...]
    object_types: tuple[ObjectType, ...]
    world_SE3_obj: NDArrayFloat
    lwh_m: NDArrayFloat

    def __len__(self) -> int:
        return len(self.track_ids)


@dataclass(frozen=True, eq=False)
class Scene:
    """One clip, ready to render.

    ``frame_timestamps_us`` (F,) absolute µs of each output frame (30 fps timeline);
    ``world_SE3_rig`` (F, 4, 4) rig(FLU)->world per frame; ``cameras`` by underscore name;
    ``world_SE3_cam_direct`` optionally (per camera) (F, 4, 4) camera(OpenCV)->world poses
    that replace ``world_SE3_rig @ rig_SE3_cam`` (RDS-HQ direct mode).
    ``source_format`` says which NVIDIA loader path this scene mirrors: the ``nvidia`` look
    reproduces that path's quirks.
    """

    clip_id: str
    source_format: SourceFormat
    frame_timestamps_us: NDArrayInt
    world_SE3_rig: NDArrayFloat
    cameras: dict[str, CameraSpec]
    map: MapElements = field(default_factory=MapElements)
    tracks: tuple[Track, ...] = ()
    world_SE3_cam_direct: dict[str, NDArrayFloat] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        ts = _as_array(self.frame_timestamps_us, "frame_timestamps_us", (None,), np.int64)
        if len(ts) == 0:
            raise SceneError(f"scene {self.clip_id!r} has no frames")
        object.__setattr__(self, "frame_timestamps_us", ts)
        poses = _as_array(self.world_SE3_rig, "world_SE3_rig", (len(ts), 4, 4))
        _check_finite(poses.reshape(len(ts), 16), "world_SE3_rig")
        object.__setattr__(self, "world_SE3_rig", poses)
        for name, direct in self.world_SE3_cam_direct.items():
            arr = _as_array(direct, f"world_SE3_cam_direct[{name}]", (len(ts), 4, 4))
            self.world_SE3_cam_direct[name] = arr

    @property
    def num_frames(self) -> int:
        """Number of frames on the 30 fps timeline."""
        return len(self.frame_timestamps_us)

    def camera(self, name: str) -> CameraSpec:
        """The camera called ``name`` (underscore form), or a SceneError listing the rig."""
        try:
            return self.cameras[name]
        except KeyError:
            raise SceneError(
                f"clip {self.clip_id!r}: no camera {name!r} in the rig; it has {sorted(self.cameras)}"
            ) from None

    def world_SE3_cam(self, name: str) -> NDArrayFloat:
        """(F, 4, 4) camera(OpenCV)->world pose of camera ``name`` at every frame."""
        if name in self.world_SE3_cam_direct:
            return self.world_SE3_cam_direct[name]
        return self.world_SE3_rig @ self.camera(name).rig_SE3_cam

    def objects_at_frame(self, frame: int) -> FrameObjects:
        """Objects whose pose is defined at ``frame`` (interpolated/extrapolated per track)."""
        from scene2world.scene.interpolation import objects_at_timestamp

        return objects_at_timestamp(self.tracks, int(self.frame_timestamps_us[frame]))

    def content_digest(self, camera: str | None = None) -> str:
        """sha256 of everything that shapes a render: timeline, poses, map, tracks, and the given
        camera only (or every camera when ``camera`` is None). Paths and file names are not in it."""
        h = hashlib.sha256()
        h.update(self.clip_id.encode())
        h.update(self.source_format.encode())
        for value in _walk(self.frame_timestamps_us, self.world_SE3_rig, self.map, self.tracks):
            h.update(value)
        names = sorted(self.cameras) if camera is None else [camera]
        for name in names:
            for value in _walk(name, self.camera(name), self.world_SE3_cam_direct.get(name)):
                h.update(value)
        return h.hexdigest()

    @cached_property
    def camera_names(self) -> tuple[str, ...]:
        """Rig cameras, in NVIDIA's default order first, then any others sorted."""
        known = [c for c in DEFAULT_CAMERA_NAMES if c in self.cameras]
        return tuple(known + sorted(set(self.cameras) - set(known)))


def _walk(*values: Any) -> Iterator[bytes]:
    """Deterministic byte stream of nested dataclasses, arrays, tuples, strings and numbers."""
    for value in values:
        if value is None:
            yield b"\x00None"
        elif isinstance(value, np.ndarray):
            arr = np.ascontiguousarray(value)
            yield f"{arr.dtype.str}{arr.shape}".encode()
            yield arr.tobytes()
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            yield type(value).__name__.encode()
            for f in dataclasses.fields(value):
                yield f.name.encode()
                yield from _walk(getattr(value, f.name))
        elif isinstance(value, (tuple, list)):
            yield f"[{len(value)}".encode()
            for item in value:
                yield from _walk(item)
        elif isinstance(value, dict):
            yield f"{{{len(value)}".encode()
            for k in sorted(value):
                yield str(k).encode()
                yield from _walk(value[k])
        elif isinstance(value, enum.Enum):
            yield str(value.value).encode()
        else:
            yield repr(value).encode()
