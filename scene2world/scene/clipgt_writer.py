"""ClipGT writer: :class:`Scene` -> ``<folder>/<clip_id>.<table>.parquet`` (the loader's inverse).

Choices:

- Schemas follow NVIDIA's doc (docs/world_scenario.md, "ClipGT tables"): ``key`` struct, a struct column named after
  the table, ``version`` uint64 (1). Coordinates are written as float64 by default so that
  :func:`scene2world.scene.clipgt.load_clipgt` reads back exactly the same numbers;
  ``float_type="float32"`` reproduces the Arrow types reported for NVIDIA's ``multiview_example1``
  (NVIDIA's loader accepts both).
- Ego: by default every scene frame is written ("as given", 30 Hz); ``ego_stride=3`` writes
  every 3rd frame (10 Hz on a 30 fps timeline) plus the last frame, or ``ego_keyframes`` gives
  explicit (timestamps, poses). When the loader's 30 fps rule would not rebuild exactly the
  scene's timeline from the written ego timestamps, ``<clip_id>.camera_front_wide_120fov.json``
  (the frame-timestamp list) is written too, so the round trip keeps every frame.
- Obstacles: each track's keyframes as given (typically 10 Hz); type -> the doc's category name
  (``automobile``, ``person``, ``rider``, ``heavy_truck``, ``other``). Note the loader drops
  1-observation tracks, like NVIDIA's.
- Polygon rings are written exactly as stored: a ring that repeats its first vertex stays closed,
  an open one stays open (:attr:`Polygon.closed`). Scenes we build (the demo) store closed rings,
  so NVIDIA's 0.8 m resampling densifies the closing edge (docs/world_scenario.md, "How NVIDIA draws").
- Lane lines: the type is written as per-vertex ``colors``/``styles`` lists (``OTHER`` as
  ``UNKNOWN``), which the lane-type rule reads back unchanged.
- Lanes: one row per rail polyline, in ``right_rail`` when its category is ``right_rail``, else in
  ``left_rail`` (the other rail empty); the loader reads it back to the same polylines.
- Not representable in ClipGT, hence not written: traffic-light states and feature ids, object
  ``is_moving``, per-camera direct poses (an error), scene metadata. Empty map tables are
  skipped.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from scene2world.atomic import temporary_path
from scene2world.errors import SceneError
from scene2world.scene.categories import clipgt_category_for, split_lane_type
from scene2world.scene.clipgt import FRAME_TIMESTAMPS_SUFFIX, frame_timeline, table_path
from scene2world.scene.interpolation import matrix_to_quat_xyzw
from scene2world.scene.model import Cuboid, Polygon, Polyline, Scene
from scene2world.scene.rig import rig_json_from_cameras
from scene2world.typing import NDArrayFloat, NDArrayInt

__all__ = ["write_clipgt"]

VERSION = 1


def _types(float_type: str) -> dict[str, pa.DataType]:
    f = pa.float64() if float_type == "float64" else pa.float32()
    xyz = pa.struct([("x", f), ("y", f), ("z", f)])
    return {
        "f": f,
        "xyz": xyz,
        "xyzw": pa.struct([("x", f), ("y", f), ("z", f), ("w", f)]),
        "points": pa.list_(xyz),
        "map_key": pa.struct(
            [
                ("clip_id", pa.string()),
                ("label_class_id", pa.string()),
                ("map_id", pa.string()),
                ("map_id_version", pa.string()),
            ]
        ),
    }


def _xyz(v: NDArrayFloat) -> dict[str, float]:
    return {"x": float(v[0]), "y": float(v[1]), "z": float(v[2])}


def _xyzw(q: NDArrayFloat) -> dict[str, float]:
    return {"x": float(q[0]), "y": float(q[1]), "z": float(q[2]), "w": float(q[3])}


def _points(p: NDArrayFloat) -> list[dict[str, float]]:
    return [_xyz(v) for v in np.asarray(p)]


def _write(path: Path, name: str, key_type: pa.DataType, body_type: pa.DataType, keys: list, bodies: list) -> None:
    schema = pa.schema([("key", key_type), (name, body_type), ("version", pa.uint64())])
    table = pa.table(
        {
            "key": pa.array(keys, type=key_type),
            name: pa.array(bodies, type=body_type),
            "version": pa.array([VERSION] * len(keys), type=pa.uint64()),
        },
        schema=schema,
    )
    tmp = temporary_path(path)
    pq.write_table(table, tmp)
    tmp.replace(path)


def _ego_rows(
    scene: Scene, ego_stride: int, ego_keyframes: tuple[NDArrayInt, NDArrayFloat] | None
) -> tuple[NDArrayInt, NDArrayFloat]:
    if ego_keyframes is not None:
        ts = np.asarray(ego_keyframes[0], dtype=np.int64).reshape(-1)
        poses = np.asarray(ego_keyframes[1], dtype=np.float64).reshape(-1, 4, 4)
        if len(ts) == 0 or len(ts) != len(poses) or np.any(np.diff(ts) <= 0):
            raise SceneError("`ego_keyframes` must be (K,) increasing timestamps and (K, 4, 4) poses, K ≥ 1")
        return ts, poses
    if ego_stride < 1:
        raise SceneError(f"`ego_stride` must be ≥ 1, got {ego_stride}")
    idx = np.arange(0, scene.num_frames, ego_stride)
    if idx[-1] != scene.num_frames - 1:
        idx = np.append(idx, scene.num_frames - 1)
    return scene.frame_timestamps_us[idx], scene.world_SE3_rig[idx]


def write_clipgt(
    scene: Scene,
    folder: str | Path,
    *,
    ego_stride: int = 1,
    ego_keyframes: tuple[NDArrayInt, NDArrayFloat] | None = None,
    float_type: Literal["float64", "float32"] = "float64",
    rig_names: dict[str, str] | None = None,
    frame_timestamps: Literal["auto", "always", "never"] = "auto",
) -> list[Path]:
    """Write ``scene`` as a ClipGT bundle into ``folder`` (created if needed).

    Args:
        scene: the scene; must not use per-camera direct poses.
        folder: output folder; files are ``<clip_id>.<table>.parquet``.
        ego_stride: write every n-th frame's ego pose (plus the last); 1 = every frame.
        ego_keyframes: explicit ego keyframes ((K,) µs, (K, 4, 4) rig->world), overriding the stride.
        float_type: coordinate precision in the parquet files.
        rig_names: underscore -> rig sensor name overrides (default ``_`` -> ``:``).
        frame_timestamps: write the frame-timestamp JSON when needed (``auto``), always or never.

    Returns:
        The files written, in order.

    Raises:
        SceneError: on direct camera poses or bad ego keyframes.
    """
    if scene.world_SE3_cam_direct:
        raise SceneError(
            f"clip {scene.clip_id!r}: ClipGT cannot store per-camera poses (world_SE3_cam_direct); "
            "write it as RDS-HQ instead"
        )
    if float_type not in ("float64", "float32"):
        raise SceneError(f"`float_type` must be 'float64' or 'float32', got {float_type!r}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    T = _types(float_type)
    clip = scene.clip_id
    written: list[Path] = []

    def out(table: str) -> Path:
        path = table_path(folder, clip, table)
        written.append(path)
        return path

    # calibration_estimate
    rig = rig_json_from_cameras(scene.cameras, rig_names)
    _write(
        out("calibration_estimate"),
        "calibration_estimate",
        pa.struct([("clip_id", pa.string()), ("timestamp_micros", pa.int64())]),
        pa.struct([("name", pa.string()), ("rig_json", pa.string())]),
        [{"clip_id": clip, "timestamp_micros": -1}],
        [{"name": "scene2world", "rig_json": json.dumps(rig)}],
    )

    # egomotion_estimate
    ego_ts, ego_poses = _ego_rows(scene, ego_stride, ego_keyframes)
    quats = matrix_to_quat_xyzw(ego_poses)
    _write(
        out("egomotion_estimate"),
        "egomotion_estimate",
        pa.struct([("clip_id", pa.string()), ("timestamp_micros", pa.int64())]),
        pa.struct([("name", pa.string()), ("location", T["xyz"]), ("orientation", T["xyzw"])]),
        [{"clip_id": clip, "timestamp_micros": int(t)} for t in ego_ts],
        [
            {"name": "egomotion_scene2world", "location": _xyz(p[:3, 3]), "orientation": _xyzw(q)}
            for p, q in zip(ego_poses, quats)
        ],
    )
    derived = frame_timeline(int(ego_ts[0]), int(ego_ts[-1]))
    need_json = not np.array_equal(derived, scene.frame_timestamps_us)
    if frame_timestamps == "always" or (frame_timestamps == "auto" and need_json):
        path = folder / f"{clip}{FRAME_TIMESTAMPS_SUFFIX}"
        path.write_text(json.dumps([{"timestamp": int(t)} for t in scene.frame_timestamps_us]))
        written.append(path)

    # obstacle
    keys, bodies = [], []
    for track in scene.tracks:
        category = clipgt_category_for(track.object_type)
        for t, c, s, q in zip(track.timestamps_us, track.centers_world, track.lwh_m, track.quats_xyzw):
            keys.append({"clip_id": clip, "timestamp_micros": int(t), "label_class_id": "autolabels"})
            bodies.append(
                {
                    "trackline_id": track.track_id,
                    "center": _xyz(c),
                    "size": _xyz(s),
                    "orientation": _xyzw(q),
                    "category": category,
                }
            )
    if bodies:
        _write(
            out("obstacle"),
            "obstacle",
            pa.struct([("clip_id", pa.string()), ("timestamp_micros", pa.int64()), ("label_class_id", pa.string())]),
            pa.struct(
                [
                    ("trackline_id", pa.string()),
                    ("center", T["xyz"]),
                    ("size", T["xyz"]),
                    ("orientation", T["xyzw"]),
                    ("category", pa.string()),
                ]
            ),
            keys,
            bodies,
        )

    m = scene.map

    def map_table(table: str, fields: list[tuple[str, pa.DataType]], items: Sequence[Any], body: Callable) -> None:
        if not items:
            return
        keys = [{"clip_id": clip, "label_class_id": table, "map_id": "", "map_id_version": ""} for _ in items]
        _write(out(table), table, T["map_key"], pa.struct(fields), keys, [body(item) for item in items])

    def located(item: Polyline | Polygon) -> dict[str, Any]:
        return {"category": item.category, "location": _points(item.points_world)}

    located_fields = [("category", pa.string()), ("location", T["points"])]

    def lane_line(line: Any) -> dict[str, Any]:
        color, style = split_lane_type(line.lane_type)
        n = len(line.points_world)
        return {
            "line_rail": _points(line.points_world),
            "styles": [style] * n,
            "colors": [color] * n,
            "left_driving_direction": [],
            "right_driving_direction": [],
        }

    strings = pa.list_(pa.string())
    map_table(
        "lane_line",
        [
            ("line_rail", T["points"]),
            ("styles", strings),
            ("colors", strings),
            ("left_driving_direction", strings),
            ("right_driving_direction", strings),
        ],
        m.lane_lines,
        lane_line,
    )

    def lane(rail: Polyline) -> dict[str, Any]:
        right = rail.category == "right_rail"
        pts = _points(rail.points_world)
        return {
            "left_rail": [] if right else pts,
            "right_rail": pts if right else [],
            "left_edge_styles": [],
            "right_edge_styles": [],
            "left_edge_colors": [],
            "right_edge_colors": [],
            "lane_direction": "",
        }

    map_table(
        "lane",
        [
            ("left_rail", T["points"]),
            ("right_rail", T["points"]),
            ("left_edge_styles", strings),
            ("right_edge_styles", strings),
            ("left_edge_colors", strings),
            ("right_edge_colors", strings),
            ("lane_direction", pa.string()),
        ],
        m.lanes,
        lane,
    )
    for table, items in (
        ("road_boundary", m.road_boundaries),
        ("pole", m.poles),
        ("crosswalk", m.crosswalks),
        ("road_marking", m.road_markings),
        ("intersection_area", m.intersection_areas),
        ("road_island", m.road_islands),
    ):
        map_table(table, located_fields, items, located)
    map_table(
        "wait_line",
        [*located_fields, ("is_implicit", pa.bool_()), ("intersection_subtype", pa.string())],
        m.wait_lines,
        lambda w: {**located(w), "is_implicit": False, "intersection_subtype": ""},
    )

    def cuboid(c: Cuboid) -> dict[str, Any]:
        return {
            "center": _xyz(c.world_SE3_obj[:3, 3]),
            "dimensions": _xyz(c.lwh_m),
            "orientation": _xyzw(matrix_to_quat_xyzw(c.world_SE3_obj[None])[0]),
            "category": c.category,
        }

    cuboid_fields = [
        ("center", T["xyz"]),
        ("dimensions", T["xyz"]),
        ("orientation", T["xyzw"]),
        ("category", pa.string()),
    ]
    map_table("traffic_sign", cuboid_fields, m.traffic_signs, cuboid)
    map_table("traffic_light", cuboid_fields, m.traffic_lights, cuboid)
    return written
