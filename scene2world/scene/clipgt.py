"""ClipGT loader: a folder of ``<clip_id>.<table>.parquet`` files -> :class:`Scene` (FLU world).

What is read (docs/world_scenario.md, "ClipGT tables"):

- Required: ``calibration_estimate`` (row 0's ``rig_json``, see :mod:`scene2world.scene.rig`) and
  ``egomotion_estimate``. ``obstacle`` is optional, as in NVIDIA's current loader (the doc calls
  it required). Optional map tables: ``lane`` (rails), ``lane_line`` (``line_rail``, or the legacy
  ``path``), ``road_boundary``, ``crosswalk``, ``pole``, ``road_marking``, ``wait_line``,
  ``traffic_light``, ``traffic_sign``, ``intersection_area``, ``road_island``.
- Every table must have the struct column named after it; ``key.timestamp_micros`` is used on
  the egomotion and obstacle tables. Columns are read with pyarrow (no pandas); any numeric type
  is accepted for coordinates.
- Frame timeline: ``<clip_id>.camera_front_wide_120fov.json`` (a list of ``{"timestamp": µs}``)
  when present, else exactly 30 fps from the first egomotion timestamp:
  N = int((t_last − t_first)/10⁶·30) + 1, t_k = t_first + ⌊k·10⁶/30⌋ (1000000000, 1000033333,
  1000066666, 1000100000 …), computed in integers (identical to NVIDIA's float formula).
- Ego: linear positions, SLERP, constant-angular-velocity extrapolation
  (:func:`interpolate_poses`). NaN or zero-norm ego rows and duplicate timestamps are errors.
- Obstacles: rows whose ``trackline_id`` starts with ``labelstore:`` are skipped; rows with NaN
  values or zero-norm quaternions are dropped, then tracks with fewer than 2 observations; a
  repeated timestamp keeps its first row. The category of the first observation (in time)
  gives the type. Tracks extrapolate ≤ 0.5 s and are sorted by track id (NVIDIA's draw order).
  ``is_moving`` is True (the table has no such field).
- Traffic lights/signs: missing or non-finite ``dimensions`` -> [0.6, 0.6, 1.0] / [0.8, 0.3, 0.8];
  lights have no state in ClipGT (``states`` empty).
- Map elements keep their stored vertices: polygon rings stay open or closed as written
  (:attr:`Polygon.closed`); a pole with a single point stays one point (NVIDIA turns it into a
  3 m pole pointing *forward* on this path; drawing it is the renderer's decision). Rows with no
  vertices are skipped. Lanes become two polylines (``left_rail``, ``right_rail`` categories).

Errors: every problem is a :class:`SceneError` naming the file, the table/field and the row.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from scene2world.errors import SceneError
from scene2world.scene.categories import lane_line_type, object_type_from_category
from scene2world.scene.interpolation import interpolate_poses, quat_xyzw_to_matrix
from scene2world.scene.model import (
    FRAME_RATE_HZ,
    Cuboid,
    LaneLine,
    MapElements,
    Polygon,
    Polyline,
    Scene,
    Track,
    TrafficLight,
)
from scene2world.scene.rig import parse_rig, select_cameras
from scene2world.typing import NDArrayFloat, NDArrayInt

__all__ = [
    "CLIPGT_MAX_EXTRAPOLATION_US",
    "FRAME_TIMESTAMPS_SUFFIX",
    "LIGHT_DEFAULT_LWH_M",
    "OPTIONAL_TABLES",
    "REQUIRED_TABLES",
    "SIGN_DEFAULT_LWH_M",
    "clipgt_clip_id",
    "frame_timeline",
    "load_clipgt",
    "table_path",
]

log = logging.getLogger(__name__)

REQUIRED_TABLES: tuple[str, ...] = ("calibration_estimate", "egomotion_estimate")
OPTIONAL_TABLES: tuple[str, ...] = (
    "obstacle",
    "lane",
    "lane_line",
    "road_boundary",
    "crosswalk",
    "pole",
    "road_marking",
    "wait_line",
    "traffic_light",
    "traffic_sign",
    "intersection_area",
    "road_island",
)
FRAME_TIMESTAMPS_SUFFIX = ".camera_front_wide_120fov.json"
CLIPGT_MAX_EXTRAPOLATION_US = 500_000
LIGHT_DEFAULT_LWH_M = (0.6, 0.6, 1.0)
SIGN_DEFAULT_LWH_M = (0.8, 0.3, 0.8)
LABELSTORE_PREFIX = "labelstore:"


def table_path(folder: str | Path, clip_id: str, table: str) -> Path:
    """Path of ``<folder>/<clip_id>.<table>.parquet``."""
    return Path(folder) / f"{clip_id}.{table}.parquet"


def clipgt_clip_id(folder: str | Path) -> str | None:
    """The ClipGT clip id of ``folder`` by NVIDIA's rule, or None when it holds no ClipGT bundle.

    The folder's own name when ``<name>.calibration_estimate.parquet`` and
    ``<name>.egomotion_estimate.parquet`` exist; else the first (sorted)
    ``<id>.calibration_estimate.parquet`` with an ``<id>.egomotion_estimate.parquet`` sibling.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return None
    name = folder.name
    if all(table_path(folder, name, t).is_file() for t in REQUIRED_TABLES):
        return name
    for calib in sorted(folder.glob("*.calibration_estimate.parquet")):
        clip_id = calib.name[: -len(".calibration_estimate.parquet")]
        if table_path(folder, clip_id, "egomotion_estimate").is_file():
            return clip_id
    return None


def frame_timeline(t_first_us: int, t_last_us: int) -> NDArrayInt:
    """NVIDIA's 30 fps frame timestamps (µs) between the first and last ego timestamps.

    The rule: docs/world_scenario.md, "Frame timeline".
    """
    n = int((int(t_last_us) - int(t_first_us)) / 1e6 * FRAME_RATE_HZ) + 1
    k = np.arange(max(n, 1), dtype=np.int64)
    return int(t_first_us) + (k * 1_000_000) // FRAME_RATE_HZ


class _Table:
    """One parquet table with typed, error-checked column access (``where`` names file + table)."""

    def __init__(self, path: Path, name: str, *, require_key: bool) -> None:
        self.path, self.name = path, name
        try:
            table = pq.read_table(path)
        except (pa.ArrowException, OSError, ValueError) as e:
            raise SceneError(f"{path}: cannot read the `{name}` parquet table ({e})") from e
        columns = [name, "key"] if require_key else [name]
        for col in columns:
            if col not in table.column_names:
                raise SceneError(f"{path}: table `{name}` has no column `{col}` (columns: {table.column_names})")
            if not pa.types.is_struct(table.schema.field(col).type):
                raise SceneError(f"{path}: column `{col}` must be a struct, got {table.schema.field(col).type}")
        self.columns = {c: table.column(c).combine_chunks() for c in columns}
        self.num_rows = table.num_rows

    def where(self, dotted: str) -> str:
        return f"{self.path}: `{dotted}`"

    def has(self, dotted: str) -> bool:
        first, *rest = dotted.split(".")
        arr = self.columns.get(first)
        for part in rest:
            if arr is None or not pa.types.is_struct(arr.type) or arr.type.get_field_index(part) < 0:
                return False
            arr = pc.struct_field(arr, part)
        return arr is not None

    def field(self, dotted: str) -> pa.Array:
        parts = dotted.split(".")
        arr = self.columns[parts[0]]
        done = [parts[0]]
        for part in parts[1:]:
            if pa.types.is_null(arr.type):  # an all-null column: every child is null too
                return arr
            if not pa.types.is_struct(arr.type) or arr.type.get_field_index(part) < 0:
                raise SceneError(f"{self.path}: field `{'.'.join([*done, part])}` is missing (got type {arr.type})")
            arr = pc.struct_field(arr, part)
            done.append(part)
        return arr

    def floats(self, dotted: str) -> NDArrayFloat:
        arr = self.field(dotted)
        if pa.types.is_null(arr.type):
            return np.full(len(arr), np.nan)
        if not (pa.types.is_floating(arr.type) or pa.types.is_integer(arr.type) or pa.types.is_decimal(arr.type)):
            raise SceneError(f"{self.where(dotted)} must be numeric, got {arr.type}")
        return pc.cast(arr, pa.float64()).fill_null(np.nan).to_numpy(zero_copy_only=False)

    def xyz(self, dotted: str, names: str = "xyz") -> NDArrayFloat:
        return np.stack([self.floats(f"{dotted}.{c}") for c in names], axis=1).reshape(-1, len(names))

    def ints(self, dotted: str) -> NDArrayInt:
        arr = self.field(dotted)
        if not pa.types.is_integer(arr.type):
            raise SceneError(f"{self.where(dotted)} must be an integer (µs), got {arr.type}")
        if arr.null_count:
            row = int(np.flatnonzero(~arr.is_valid().to_numpy(zero_copy_only=False))[0])
            raise SceneError(f"{self.where(dotted)} is null at row {row}")
        return pc.cast(arr, pa.int64()).to_numpy(zero_copy_only=False)

    def strings(self, dotted: str, optional: bool = False) -> list[str]:
        if optional and not self.has(dotted):
            return [""] * self.num_rows
        arr = self.field(dotted)
        if pa.types.is_dictionary(arr.type):
            arr = arr.dictionary_decode()
        if pa.types.is_null(arr.type):
            return [""] * len(arr)
        if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
            raise SceneError(f"{self.where(dotted)} must be a string, got {arr.type}")
        return [s or "" for s in arr.to_pylist()]

    def string_lists(self, dotted: str) -> list[list[str]]:
        if not self.has(dotted):
            return [[] for _ in range(self.num_rows)]
        arr = self.field(dotted)
        if pa.types.is_null(arr.type):
            return [[] for _ in range(len(arr))]
        if not (pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type)):
            raise SceneError(f"{self.where(dotted)} must be a list of strings, got {arr.type}")
        values = arr.type.value_type
        if not (pa.types.is_string(values) or pa.types.is_large_string(values) or pa.types.is_null(values)):
            raise SceneError(f"{self.where(dotted)} must be a list of strings, got {arr.type}")
        return [[s or "" for s in (row or [])] for row in arr.to_pylist()]

    def point_lists(self, dotted: str) -> list[NDArrayFloat]:
        """Each row's list<struct<x, y, z>> as an (N_i, 3) array (null list -> empty)."""
        arr = self.field(dotted)
        if pa.types.is_null(arr.type):
            return [np.zeros((0, 3)) for _ in range(len(arr))]
        if not (pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type)):
            raise SceneError(f"{self.where(dotted)} must be a list of {{x, y, z}} points, got {arr.type}")
        if pa.types.is_null(arr.type.value_type) and len(arr.flatten()) == 0:
            return [np.zeros((0, 3)) for _ in range(len(arr))]
        if not pa.types.is_struct(arr.type.value_type):
            raise SceneError(f"{self.where(dotted)} must be a list of {{x, y, z}} structs, got {arr.type}")
        lengths = pc.fill_null(pc.list_value_length(arr), 0).to_numpy(zero_copy_only=False).astype(np.int64)
        flat = arr.flatten()
        pts = self._flat_xyz(dotted, flat)
        if pts.size and not np.all(np.isfinite(pts)):
            bad = int(np.flatnonzero(~np.isfinite(pts).all(axis=1))[0])
            row = int(np.searchsorted(np.cumsum(lengths), bad, side="right"))
            raise SceneError(f"{self.where(dotted)} row {row} holds a null, NaN or infinite vertex")
        return np.split(pts, np.cumsum(lengths)[:-1]) if len(lengths) else []

    def _flat_xyz(self, dotted: str, flat: pa.Array) -> NDArrayFloat:
        cols = []
        for c in "xyz":
            if flat.type.get_field_index(c) < 0:
                raise SceneError(f"{self.path}: field `{dotted}[].{c}` is missing (got type {flat.type})")
            child = pc.struct_field(flat, c)
            if not (pa.types.is_floating(child.type) or pa.types.is_integer(child.type)):
                raise SceneError(f"{self.where(dotted)}[].{c} must be numeric, got {child.type}")
            cols.append(pc.cast(child, pa.float64()).fill_null(np.nan).to_numpy(zero_copy_only=False))
        return np.stack(cols, axis=1).reshape(-1, 3)


def _open(folder: Path, clip_id: str, table: str, *, require_key: bool = False) -> _Table | None:
    """The optional table, or None when its file does not exist."""
    path = table_path(folder, clip_id, table)
    if not path.exists():
        return None
    return _Table(path, table, require_key=require_key)


def _open_required(folder: Path, clip_id: str, table: str, *, require_key: bool = False) -> _Table:
    path = table_path(folder, clip_id, table)
    if not path.exists():
        raise SceneError(f"{path}: required ClipGT table `{table}` is missing")
    return _Table(path, table, require_key=require_key)


def _rig(folder: Path, clip_id: str) -> tuple[dict[str, Any], str]:
    t = _open_required(folder, clip_id, "calibration_estimate")
    if t.num_rows == 0:
        raise SceneError(f"{t.path}: table `calibration_estimate` has no rows")
    rig_json = t.strings("calibration_estimate.rig_json")[0]
    return parse_rig(rig_json, source=f"{t.path}: `calibration_estimate.rig_json`"), str(t.path)


def _ego(folder: Path, clip_id: str) -> tuple[NDArrayInt, NDArrayFloat, NDArrayFloat]:
    t = _open_required(folder, clip_id, "egomotion_estimate", require_key=True)
    if t.num_rows == 0:
        raise SceneError(f"{t.path}: table `egomotion_estimate` has no rows")
    ts = t.ints("key.timestamp_micros")
    pos = t.xyz("egomotion_estimate.location")
    quats = t.xyz("egomotion_estimate.orientation", "xyzw")
    for name, arr in (("location", pos), ("orientation", quats)):
        bad = np.flatnonzero(~np.isfinite(arr).all(axis=1))
        if len(bad):
            raise SceneError(
                f"{t.path}: `egomotion_estimate.{name}` is null or NaN at row {bad[0]} (timestamp_micros {ts[bad[0]]})"
            )
    zero = np.flatnonzero(np.linalg.norm(quats, axis=1) < 1e-9)
    if len(zero):
        raise SceneError(f"{t.path}: `egomotion_estimate.orientation` is a zero quaternion at row {zero[0]}")
    order = np.argsort(ts, kind="stable")
    ts, pos, quats = ts[order], pos[order], quats[order]
    dup = np.flatnonzero(np.diff(ts) == 0)
    if len(dup):
        raise SceneError(f"{t.path}: `key.timestamp_micros` {ts[dup[0]]} appears twice in `egomotion_estimate`")
    return ts, pos, quats


def _timeline(folder: Path, clip_id: str, ego_ts: NDArrayInt) -> NDArrayInt:
    path = folder / f"{clip_id}{FRAME_TIMESTAMPS_SUFFIX}"
    if not path.exists():
        return frame_timeline(int(ego_ts[0]), int(ego_ts[-1]))
    try:
        entries = json.loads(path.read_text())
        stamps = np.array([int(e["timestamp"]) for e in entries], dtype=np.int64)
    except (OSError, ValueError, TypeError, KeyError) as e:
        raise SceneError(f"{path}: expected a JSON list of {{'timestamp': µs}} objects ({e!r})") from e
    if len(stamps) == 0:
        raise SceneError(f"{path}: the frame-timestamp list is empty")
    if np.any(np.diff(stamps) <= 0):
        raise SceneError(f"{path}: frame `timestamp` values must be strictly increasing")
    return stamps


def _tracks(folder: Path, clip_id: str) -> tuple[Track, ...]:
    t = _open(folder, clip_id, "obstacle", require_key=True)
    if t is None or t.num_rows == 0:
        return ()
    ids = np.array(t.strings("obstacle.trackline_id"), dtype=object)
    ts = t.ints("key.timestamp_micros")
    centers = t.xyz("obstacle.center")
    sizes = t.xyz("obstacle.size")
    quats = t.xyz("obstacle.orientation", "xyzw")
    categories = t.strings("obstacle.category", optional=True)
    keep = np.array([not i.startswith(LABELSTORE_PREFIX) for i in ids], dtype=bool)
    keep &= np.isfinite(centers).all(1) & np.isfinite(sizes).all(1) & np.isfinite(quats).all(1)
    keep &= np.linalg.norm(np.nan_to_num(quats), axis=1) > 1e-9
    rows = np.flatnonzero(keep)
    if len(rows) == 0:
        return ()
    uniq, inverse = np.unique(ids[rows].astype(str), return_inverse=True)
    order = np.lexsort((ts[rows], inverse))  # by track, then time; stable for repeated times
    rows, inverse = rows[order], inverse[order]
    bounds = np.flatnonzero(np.diff(inverse)) + 1
    tracks = []
    for group in np.split(rows, bounds):
        group_ts = ts[group]
        group = group[np.concatenate([[True], np.diff(group_ts) > 0])]
        if len(group) < 2:
            continue
        tracks.append(
            Track(
                track_id=str(ids[group[0]]),
                object_type=object_type_from_category(categories[group[0]]),
                timestamps_us=ts[group],
                centers_world=centers[group],
                lwh_m=sizes[group],
                quats_xyzw=quats[group],
                is_moving=True,
                max_extrapolation_us=CLIPGT_MAX_EXTRAPOLATION_US,
            )
        )
    log.debug("%s: %d tracks (of %d ids)", t.path, len(tracks), len(uniq))
    return tuple(tracks)


def _polylines(folder: Path, clip_id: str, table: str, field: str = "location") -> list[tuple[NDArrayFloat, str]]:
    t = _open(folder, clip_id, table)
    if t is None or t.num_rows == 0:
        return []
    points = t.point_lists(f"{table}.{field}")
    categories = t.strings(f"{table}.category", optional=True)
    return [(p, c) for p, c in zip(points, categories) if len(p)]


def _lane_lines(folder: Path, clip_id: str) -> tuple[LaneLine, ...]:
    t = _open(folder, clip_id, "lane_line")
    if t is None:  # legal, but the control videos lose their main signal: say so
        log.warning(
            "%s: no `lane_line` table; the control videos will have no lane lines",
            table_path(folder, clip_id, "lane_line"),
        )
        return ()
    if t.num_rows == 0:
        return ()
    if t.has("lane_line.line_rail"):
        field = "line_rail"
    elif t.has("lane_line.path"):
        field = "path"
    else:
        raise SceneError(f"{t.path}: table `lane_line` has neither `line_rail` nor the legacy `path` field")
    points = t.point_lists(f"lane_line.{field}")
    colors = t.string_lists("lane_line.colors")
    styles = t.string_lists("lane_line.styles")
    return tuple(
        LaneLine(points_world=p, lane_type=lane_line_type(c, s)) for p, c, s in zip(points, colors, styles) if len(p)
    )


def _lanes(folder: Path, clip_id: str) -> tuple[Polyline, ...]:
    t = _open(folder, clip_id, "lane")
    if t is None or t.num_rows == 0:
        return ()
    sides = []
    for side in ("left_rail", "right_rail"):
        sides.append(t.point_lists(f"lane.{side}") if t.has(f"lane.{side}") else [np.zeros((0, 3))] * t.num_rows)
    out = []
    for left, right in zip(*sides):
        out += [Polyline(p, category=c) for p, c in ((left, "left_rail"), (right, "right_rail")) if len(p)]
    return tuple(out)


def _cuboids(
    folder: Path, clip_id: str, table: str, default_lwh: Sequence[float]
) -> list[tuple[NDArrayFloat, NDArrayFloat, str]]:
    t = _open(folder, clip_id, table)
    if t is None or t.num_rows == 0:
        return []
    centers = t.xyz(f"{table}.center")
    quats = t.xyz(f"{table}.orientation", "xyzw")
    dims = t.xyz(f"{table}.dimensions") if t.has(f"{table}.dimensions") else np.full((t.num_rows, 3), np.nan)
    categories = t.strings(f"{table}.category", optional=True)
    out = []
    for row in range(t.num_rows):
        if not np.all(np.isfinite(centers[row])):
            raise SceneError(f"{t.path}: `{table}.center` is null or NaN at row {row}")
        q = quats[row]
        if not np.all(np.isfinite(q)) or np.linalg.norm(q) < 1e-9:
            raise SceneError(f"{t.path}: `{table}.orientation` is null, NaN or zero at row {row}")
        lwh = dims[row] if np.all(np.isfinite(dims[row])) else np.asarray(default_lwh, dtype=np.float64)
        world_SE3_obj = np.eye(4)
        world_SE3_obj[:3, :3] = quat_xyzw_to_matrix(q)[0]
        world_SE3_obj[:3, 3] = centers[row]
        out.append((world_SE3_obj, lwh, categories[row]))
    return out


def load_map(folder: str | Path, clip_id: str) -> MapElements:
    """All optional ClipGT map tables of ``clip_id`` in ``folder`` (missing tables are empty)."""
    folder = Path(folder)
    return MapElements(
        lane_lines=_lane_lines(folder, clip_id),
        lanes=_lanes(folder, clip_id),
        road_boundaries=tuple(Polyline(p, c) for p, c in _polylines(folder, clip_id, "road_boundary")),
        wait_lines=tuple(Polyline(p, c) for p, c in _polylines(folder, clip_id, "wait_line")),
        poles=tuple(Polyline(p, c) for p, c in _polylines(folder, clip_id, "pole")),
        crosswalks=tuple(Polygon(p, c) for p, c in _polylines(folder, clip_id, "crosswalk")),
        road_markings=tuple(Polygon(p, c) for p, c in _polylines(folder, clip_id, "road_marking")),
        traffic_signs=tuple(
            Cuboid(m, s, c) for m, s, c in _cuboids(folder, clip_id, "traffic_sign", SIGN_DEFAULT_LWH_M)
        ),
        traffic_lights=tuple(
            TrafficLight(m, s, c) for m, s, c in _cuboids(folder, clip_id, "traffic_light", LIGHT_DEFAULT_LWH_M)
        ),
        intersection_areas=tuple(Polygon(p, c) for p, c in _polylines(folder, clip_id, "intersection_area")),
        road_islands=tuple(Polygon(p, c) for p, c in _polylines(folder, clip_id, "road_island")),
    )


def load_clipgt(folder: str | Path, clip_id: str | None = None, cameras: Sequence[str] | None = None) -> Scene:
    """Load a ClipGT bundle into a :class:`Scene` (``source_format="clipgt"``).

    Args:
        folder: the folder holding ``<clip_id>.*.parquet``.
        clip_id: which clip; by default found with :func:`clipgt_clip_id`.
        cameras: camera names to keep (underscore or colon form); all rig cameras by default.

    Raises:
        SceneError: missing required table, unreadable/corrupt parquet, wrong column types,
            NaN ego poses, a bad rig, or a requested camera missing from the rig.
    """
    folder = Path(folder)
    if clip_id is None:
        clip_id = clipgt_clip_id(folder)
        if clip_id is None:
            raise SceneError(
                f"{folder}: no ClipGT bundle (needs <clip_id>.calibration_estimate.parquet and "
                "<clip_id>.egomotion_estimate.parquet)"
            )
    rig, rig_source = _rig(folder, clip_id)
    selected = select_cameras(rig, cameras, rig_source)
    ego_ts, ego_pos, ego_quats = _ego(folder, clip_id)
    frames = _timeline(folder, clip_id, ego_ts)
    world_SE3_rig = interpolate_poses(ego_ts, ego_pos, ego_quats, frames)
    return Scene(
        clip_id=clip_id,
        source_format="clipgt",
        frame_timestamps_us=frames,
        world_SE3_rig=world_SE3_rig,
        cameras=selected,
        map=load_map(folder, clip_id),
        tracks=_tracks(folder, clip_id),
        metadata={"source_path": str(folder), "ego_keyframes": len(ego_ts)},
    )
