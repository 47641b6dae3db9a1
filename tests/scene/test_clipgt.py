from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from scene2world.errors import SceneError
from scene2world.scene.clipgt import clipgt_clip_id, load_clipgt, table_path
from scene2world.scene.clipgt_writer import write_clipgt
from scene2world.scene.defaults import nvidia_rig
from scene2world.scene.model import ObjectType
from scene2world.scene.rig import rig_json_from_cameras

from .helpers import small_scene, yaw_quat

pytestmark = pytest.mark.timeout(60)

CLIP = "clip_a"


def _xyz(v):
    return {"x": v[0], "y": v[1], "z": v[2]}


def _xyzw(q):
    return {"x": q[0], "y": q[1], "z": q[2], "w": q[3]}


def _put(folder: Path, table: str, rows: list[dict], clip: str = CLIP) -> Path:
    """Write a table from python rows (pyarrow infers the types, like a pandas-made file)."""
    path = table_path(folder, clip, table)
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def _minimal(folder: Path, ego_ts=(1_000_000_000, 1_000_100_000, 1_000_200_000), rig=None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rig = rig or rig_json_from_cameras({"camera_front_wide_120fov": nvidia_rig()["camera_front_wide_120fov"]})
    _put(folder, "calibration_estimate", [{"key": {"clip_id": CLIP, "timestamp_micros": -1},
         "calibration_estimate": {"name": "r", "rig_json": json.dumps(rig)}, "version": 1}])  # fmt: skip
    _put(
        folder,
        "egomotion_estimate",
        [
            {
                "key": {"clip_id": CLIP, "timestamp_micros": t},
                "egomotion_estimate": {
                    "name": "e",
                    "location": _xyz([i * 1.0, 0.0, 0.0]),
                    "orientation": _xyzw(yaw_quat(i)),
                },
                "version": 1,
            }
            for i, t in enumerate(ego_ts)
        ],
    )


def _obstacle_row(track_id, t, x, category="automobile", q=None, size=(4.0, 2.0, 1.5)):
    return {
        "key": {"clip_id": CLIP, "timestamp_micros": t, "label_class_id": "x"},
        "obstacle": {
            "trackline_id": track_id,
            "center": _xyz([x, 0.0, 0.8]),
            "size": _xyz(size),
            "orientation": _xyzw(q or [0.0, 0.0, 0.0, 1.0]),
            "category": category,
        },
        "version": 1,
    }


def test_minimal_bundle_with_pandas_like_types(tmp_path):
    _minimal(tmp_path / CLIP)
    scene = load_clipgt(tmp_path / CLIP)
    assert scene.clip_id == CLIP and scene.source_format == "clipgt"
    assert scene.frame_timestamps_us[:4].tolist() == [1000000000, 1000033333, 1000066666, 1000100000]
    assert scene.num_frames == 7
    np.testing.assert_allclose(scene.world_SE3_rig[3, :3, 3], [1, 0, 0], atol=1e-12)
    assert len(scene.map) == 0 and scene.tracks == ()


def test_a_clip_without_lane_lines_loads_with_a_warning(tmp_path, caplog):
    _minimal(tmp_path / CLIP)
    with caplog.at_level("WARNING", logger="scene2world.scene.clipgt"):
        load_clipgt(tmp_path / CLIP)
    (record,) = [r for r in caplog.records if "lane_line" in r.getMessage()]
    assert f"{CLIP}.lane_line.parquet" in record.getMessage() and "no lane lines" in record.getMessage()


def test_clip_id_rules(tmp_path):
    _minimal(tmp_path / "other_name")
    assert clipgt_clip_id(tmp_path / "other_name") == CLIP  # first calibration with an egomotion sibling
    _minimal(tmp_path / CLIP)
    assert clipgt_clip_id(tmp_path / CLIP) == CLIP
    assert clipgt_clip_id(tmp_path / "missing") is None
    assert clipgt_clip_id(tmp_path) is None


def test_frame_timestamp_json_defines_frames_and_ego_is_extrapolated(tmp_path):
    folder = tmp_path / CLIP
    _minimal(folder)
    stamps = [999_950_000, 1_000_000_000, 1_000_250_000]
    (folder / f"{CLIP}.camera_front_wide_120fov.json").write_text(json.dumps([{"timestamp": t} for t in stamps]))
    scene = load_clipgt(folder)
    assert scene.frame_timestamps_us.tolist() == stamps
    np.testing.assert_allclose(scene.world_SE3_rig[:, 0, 3], [-0.5, 0, 2.5], atol=1e-9)


def test_obstacles_rules(tmp_path):
    folder = tmp_path / CLIP
    _minimal(folder)
    t = [1_000_000_000, 1_000_100_000, 1_000_200_000]
    rows = [
        _obstacle_row("b", t[1], 1.0, "PERSON"),
        _obstacle_row("b", t[0], 0.0, "rider"),  # first in time wins the category
        _obstacle_row("a", t[0], 5.0, "bus"),
        _obstacle_row("a", t[1], 6.0),
        _obstacle_row("a", t[1], 99.0),  # repeated timestamp: first row kept
        _obstacle_row("single", t[0], 0.0),  # one observation: dropped
        _obstacle_row("labelstore:x", t[0], 0.0),
        _obstacle_row("labelstore:x", t[1], 0.0),  # skipped prefix
        _obstacle_row("z", t[0], 0.0, q=[0.0, 0.0, 0.0, 0.0]),  # zero quaternion row dropped ...
        _obstacle_row("z", t[1], 1.0),
        _obstacle_row("z", t[2], 2.0),  # ... leaving two rows
        _obstacle_row("n", t[0], float("nan")),
        _obstacle_row("n", t[1], 1.0),  # NaN row dropped -> one observation -> dropped
    ]
    _put(folder, "obstacle", rows)
    scene = load_clipgt(folder)
    assert [tr.track_id for tr in scene.tracks] == ["a", "b", "z"]
    a, b, z = scene.tracks
    assert a.object_type is ObjectType.TRUCK and b.object_type is ObjectType.CYCLIST
    assert a.centers_world[:, 0].tolist() == [5.0, 6.0]
    assert z.timestamps_us.tolist() == t[1:]
    assert all(tr.max_extrapolation_us == 500_000 and tr.is_moving for tr in scene.tracks)


def test_map_tables_legacy_path_and_light_sign_defaults(tmp_path):
    folder = tmp_path / CLIP
    _minimal(folder)
    pts = [_xyz([0.0, 0.0, 0.0]), _xyz([10.0, 0.0, 0.0])]
    _put(folder, "lane_line", [{"lane_line": {"path": pts, "colors": ["YELLOW"] * 2, "styles": ["SOLID_GROUP"] * 2}}])
    _put(folder, "traffic_light", [{"lane": 0, "traffic_light": {"center": _xyz([5.0, 1.0, 6.0]), "dimensions": None,
         "orientation": _xyzw([0.0, 0.0, 0.0, 1.0]), "category": "traffic_light"}}])  # fmt: skip
    _put(folder, "traffic_sign", [{"traffic_sign": {"center": _xyz([5.0, 1.0, 2.0]),
         "orientation": _xyzw([0.0, 0.0, 0.0, 1.0]), "category": "STOP"}}])  # fmt: skip
    _put(
        folder,
        "lane",
        [{"lane": {"left_rail": pts, "right_rail": []}}, {"lane": {"left_rail": pts, "right_rail": pts}}],
    )
    _put(
        folder,
        "pole",
        [{"pole": {"category": "TREE", "location": pts[:1]}}, {"pole": {"category": "X", "location": []}}],
    )
    scene = load_clipgt(folder)
    assert [ln.lane_type for ln in scene.map.lane_lines] == ["YELLOW SOLID_GROUP"]
    np.testing.assert_array_equal(scene.map.traffic_lights[0].lwh_m, [0.6, 0.6, 1.0])
    np.testing.assert_array_equal(scene.map.traffic_signs[0].lwh_m, [0.8, 0.3, 0.8])
    assert [p.category for p in scene.map.lanes] == ["left_rail", "left_rail", "right_rail"]
    assert len(scene.map.poles) == 1 and scene.map.poles[0].points_world.shape == (1, 3)  # empty row skipped


def test_requested_cameras(tmp_path):
    folder = tmp_path / CLIP
    _minimal(
        folder, rig=rig_json_from_cameras(nvidia_rig(), {"camera_front_tele_30fov": "camera:front:tele:sat:30fov"})
    )
    scene = load_clipgt(folder, cameras=["camera_front_tele_30fov", "camera:rear:tele:30fov"])
    assert list(scene.cameras) == ["camera_front_tele_30fov", "camera_rear_tele_30fov"]
    with pytest.raises(SceneError, match=r"calibration_estimate.parquet.*no camera 'camera_top'"):
        load_clipgt(folder, cameras=["camera_top"])


# ------------------------------------------------------------------------------------------ bad input


def _written(tmp_path) -> Path:
    folder = tmp_path / "s2w_test_small"
    write_clipgt(small_scene(), folder)
    return folder


def test_missing_required_table(tmp_path):
    folder = _written(tmp_path)
    table_path(folder, "s2w_test_small", "egomotion_estimate").unlink()
    with pytest.raises(SceneError, match=r"egomotion_estimate.parquet: required ClipGT table `egomotion_estimate`"):
        load_clipgt(folder, clip_id="s2w_test_small")
    with pytest.raises(SceneError, match="no ClipGT bundle"):
        load_clipgt(folder)


@pytest.mark.parametrize("table", ["egomotion_estimate", "lane_line", "obstacle", "calibration_estimate"])
@pytest.mark.parametrize("damage", ["garbage", "truncate", "empty"])
def test_corrupt_or_truncated_parquet(tmp_path, table, damage):
    folder = _written(tmp_path)
    path = table_path(folder, "s2w_test_small", table)
    data = path.read_bytes()
    path.write_bytes(
        {"garbage": b"not a parquet file at all" * 10, "truncate": data[: len(data) // 2], "empty": b""}[damage]
    )
    with pytest.raises(SceneError, match=rf"{table}.parquet: cannot read the `{table}` parquet table"):
        load_clipgt(folder)


def test_wrong_column_types(tmp_path):
    folder = tmp_path / CLIP
    _minimal(folder)
    row = _obstacle_row("a", 1_000_000_000, 0.0)
    row["obstacle"]["center"]["x"] = "zero"
    _put(folder, "obstacle", [row])
    with pytest.raises(SceneError, match=r"obstacle.parquet: `obstacle.center.x` must be numeric, got string"):
        load_clipgt(folder)
    _put(folder, "obstacle", [{"key": {"timestamp_micros": "late"}, "obstacle": row["obstacle"]}])
    with pytest.raises(SceneError, match=r"`key.timestamp_micros` must be an integer"):
        load_clipgt(folder)
    _put(folder, "obstacle", [{"key": {"timestamp_micros": 1}, "obstacle": 5}])
    with pytest.raises(SceneError, match=r"column `obstacle` must be a struct"):
        load_clipgt(folder)
    _put(folder, "obstacle", [{"key": {"timestamp_micros": 1}, "obstacle": {"trackline_id": "a"}}])
    with pytest.raises(SceneError, match=r"field `obstacle.center` is missing"):
        load_clipgt(folder)
    (folder / f"{CLIP}.obstacle.parquet").unlink()
    _put(folder, "crosswalk", [{"crosswalk": {"category": "P", "location": [1.0, 2.0]}}])
    with pytest.raises(SceneError, match=r"crosswalk.parquet: `crosswalk.location` must be a list of \{x, y, z\}"):
        load_clipgt(folder)
    _put(folder, "crosswalk", [{"crosswalk": {"category": "P"}}])
    with pytest.raises(SceneError, match=r"field `crosswalk.location` is missing"):
        load_clipgt(folder)
    (folder / f"{CLIP}.crosswalk.parquet").unlink()
    _put(folder, "lane_line", [{"lane_line": {"colors": ["WHITE"]}}])
    with pytest.raises(SceneError, match=r"neither `line_rail` nor the legacy `path`"):
        load_clipgt(folder)


def test_nan_or_bad_ego_poses(tmp_path):
    folder = tmp_path / CLIP
    _minimal(folder)
    path = table_path(folder, CLIP, "egomotion_estimate")
    rows = pa.Table.to_pylist(pq.read_table(path))
    rows[1]["egomotion_estimate"]["location"]["y"] = float("nan")
    pq.write_table(pa.Table.from_pylist(rows), path)
    with pytest.raises(
        SceneError, match=r"`egomotion_estimate.location` is null or NaN at row 1 \(timestamp_micros 1000100000\)"
    ):
        load_clipgt(folder)
    rows[1]["egomotion_estimate"]["location"]["y"] = 0.0
    rows[2]["egomotion_estimate"]["orientation"] = _xyzw([0.0, 0.0, 0.0, 0.0])
    pq.write_table(pa.Table.from_pylist(rows), path)
    with pytest.raises(SceneError, match="zero quaternion at row 2"):
        load_clipgt(folder)
    rows[2]["egomotion_estimate"]["orientation"] = _xyzw([0.0, 0.0, 0.0, 1.0])
    rows[2]["key"]["timestamp_micros"] = rows[1]["key"]["timestamp_micros"]
    pq.write_table(pa.Table.from_pylist(rows), path)
    with pytest.raises(SceneError, match="appears twice"):
        load_clipgt(folder)
    pq.write_table(pa.Table.from_pylist(rows)[:0], path)
    with pytest.raises(SceneError, match="has no rows"):
        load_clipgt(folder)


def test_nan_map_vertex_and_bad_light(tmp_path):
    folder = tmp_path / CLIP
    _minimal(folder)
    _put(folder, "road_boundary", [{"road_boundary": {"category": "c", "location": [_xyz([0.0, 0.0, 0.0])]}},
         {"road_boundary": {"category": "c", "location": [_xyz([0.0, float("nan"), 0.0])]}}])  # fmt: skip
    with pytest.raises(SceneError, match=r"road_boundary.parquet: `road_boundary.location` row 1 holds a null, NaN"):
        load_clipgt(folder)
    (folder / f"{CLIP}.road_boundary.parquet").unlink()
    _put(folder, "traffic_light", [{"traffic_light": {"center": _xyz([5.0, 1.0, 6.0]),
         "orientation": _xyzw([0.0, 0.0, 0.0, 0.0]), "category": "traffic_light"}}])  # fmt: skip
    with pytest.raises(SceneError, match=r"`traffic_light.orientation` is null, NaN or zero at row 0"):
        load_clipgt(folder)


def test_bad_frame_timestamp_json(tmp_path):
    folder = tmp_path / CLIP
    _minimal(folder)
    path = folder / f"{CLIP}.camera_front_wide_120fov.json"
    cases = [
        ("{", "expected a JSON list"),
        ("[]", "empty"),
        ('[{"timestamp": 5}, {"timestamp": 5}]', "increasing"),
        ('[{"t": 5}]', "expected a JSON list"),
    ]
    for content, match in cases:
        path.write_text(content)
        with pytest.raises(SceneError, match=match):
            load_clipgt(folder)


def test_bad_rig_in_calibration_and_empty_calibration(tmp_path):
    folder = tmp_path / CLIP
    bad = rig_json_from_cameras({"camera_front_wide_120fov": nvidia_rig()["camera_front_wide_120fov"]})
    bad["rig"]["sensors"][0]["properties"]["polynomial"] = "0 0.001 -0.0001"
    _minimal(folder, rig=bad)
    with pytest.raises(
        SceneError, match=r"calibration_estimate.parquet: `calibration_estimate.rig_json`.*not increasing"
    ):
        load_clipgt(folder)
    pq.write_table(
        pq.read_table(table_path(folder, CLIP, "calibration_estimate"))[:0],
        table_path(folder, CLIP, "calibration_estimate"),
    )
    with pytest.raises(SceneError, match="has no rows"):
        load_clipgt(folder)
