"""RDS-HQ writer: a :class:`Scene` -> the per-attribute tar layout that :mod:`scene2world.scene.rdshq` reads.

Used by tests and to convert scenes; the layout is described in docs/world_scenario.md, "RDS-HQ
clips". Tars are written to a temporary sibling and renamed into place.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from scene2world.atomic import temporary_path
from scene2world.errors import SceneError
from scene2world.scene.categories import split_lane_type
from scene2world.scene.interpolation import track_poses
from scene2world.scene.model import Scene
from scene2world.scene.rdshq import CATEGORY_ATTRIBUTES, MAP_STORES, STORE_KEYS
from scene2world.typing import NDArrayFloat


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 0
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def _npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


def _write_tar(root: Path, folder: str, clip_id: str, members: Iterable[tuple[str, bytes]]) -> Path:
    path = root / folder / f"{clip_id}.tar"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(path)
    with tarfile.open(tmp, "w", format=tarfile.USTAR_FORMAT) as tar:
        for key, data in members:
            _add(tar, f"{clip_id}.{key}", data)
    tmp.replace(path)
    return path


def _label(shape: dict[str, Any], attributes: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "labelFamily": "SHAPE3D",
        "labelData": {
            "shape3d": {
                "attributes": [{"name": "coordinate_frame", "text": "rig"}, *attributes],
                "unit": "METRIC",
                **shape,
            }
        },
    }


def _verts(points: NDArrayFloat, as_dicts: bool) -> list[Any]:
    pts = np.asarray(points, dtype=np.float64)
    if as_dicts:
        return [{"x": float(p[0]), "y": float(p[1]), "z": float(p[2])} for p in pts]
    return pts.tolist()


def _corners(world_SE3_obj: NDArrayFloat, lwh: NDArrayFloat) -> NDArrayFloat:
    """(8, 3) cuboid corners in NVIDIA's order (docs/world_scenario.md, "How NVIDIA draws")."""
    signs = np.array(
        [[1, 1, 1], [1, -1, 1], [-1, -1, 1], [-1, 1, 1], [1, 1, -1], [1, -1, -1], [-1, -1, -1], [-1, 1, -1]]
    )
    local = signs * np.asarray(lwh) / 2
    return local @ world_SE3_obj[:3, :3].T + world_SE3_obj[:3, 3]


def write_rdshq(
    scene: Scene,
    root: str | Path,
    *,
    write_pose: bool = True,
    write_vehicle_pose: bool = True,
    write_intrinsics: bool = True,
    object_stride: int = 3,
    vertices_as_dicts: bool = False,
) -> list[Path]:
    """Write ``scene`` as an RDS-HQ clip under ``root`` (one tar per attribute folder).

    Frames are numbered 0…F−1; objects are sampled at every ``object_stride``-th frame where
    their track is defined (NVIDIA labels every 3rd frame); camera poses are
    ``scene.world_SE3_cam``. Traffic lights without ``feature_id`` get ``light_<i>``.

    Args:
        scene: the scene to write.
        root: output clip folder.
        write_pose: write ``pose/`` (camera->world per frame); False makes a clip without extrinsics.
        write_vehicle_pose: write ``vehicle_pose/``; False makes a direct-mode clip.
        write_intrinsics: write ``ftheta_intrinsic/``; False makes the loader use the defaults.
        object_stride: frame step of ``all_object_info``.
        vertices_as_dicts: write label-store vertices as ``{"x", "y", "z"}`` objects.

    Returns:
        The tar files written.
    """
    if object_stride < 1:
        raise SceneError(f"`object_stride` must be ≥ 1, got {object_stride}")
    root = Path(root)
    clip = scene.clip_id
    written = []
    frames = range(scene.num_frames)
    if write_vehicle_pose:
        written.append(
            _write_tar(
                root,
                "vehicle_pose",
                clip,
                ((f"{k:06d}.vehicle_pose.npy", _npy_bytes(scene.world_SE3_rig[k])) for k in frames),
            )
        )
    if write_pose:
        cam_poses = {name: scene.world_SE3_cam(name) for name in scene.camera_names}
        written.append(
            _write_tar(
                root,
                "pose",
                clip,
                (
                    (f"{k:06d}.pose.{name}.npy", _npy_bytes(cam_poses[name][k]))
                    for k in frames
                    for name in scene.camera_names
                ),
            )
        )
    if write_intrinsics:
        members = []
        for name in scene.camera_names:
            i = scene.cameras[name].intrinsics
            vec = np.concatenate(
                [[i.cx_px, i.cy_px, i.width_px, i.height_px], i.poly_coeffs, [float(i.is_bw_poly)], i.linear_cde]
            )
            members.append((f"ftheta_intrinsic.{name}.npy", _npy_bytes(vec.astype(np.float64))))
        written.append(_write_tar(root, "ftheta_intrinsic", clip, members))

    # all_object_info every object_stride-th frame
    sample = np.arange(0, scene.num_frames, object_stride)
    per_frame: dict[int, dict[str, Any]] = {int(k): {} for k in sample}
    for track in scene.tracks:
        valid, poses, lwh = track_poses(track, scene.frame_timestamps_us[sample])
        for j in np.flatnonzero(valid):
            per_frame[int(sample[j])][track.track_id] = {
                "object_to_world": poses[j].tolist(),
                "object_lwh": lwh[j].tolist(),
                "object_is_moving": bool(track.is_moving),
                "object_type": track.object_type.value,
            }
    written.append(
        _write_tar(
            root,
            "all_object_info",
            clip,
            ((f"{k:06d}.all_object_info.json", json.dumps(v).encode()) for k, v in sorted(per_frame.items())),
        )
    )

    m = scene.map
    d = vertices_as_dicts
    stores: dict[str, list[dict[str, Any]]] = {}
    stores["lane_lines"] = []
    for line in m.lane_lines:
        color, style = split_lane_type(line.lane_type)
        n = len(line.points_world)
        stores["lane_lines"].append(
            _label(
                {"polyline3d": {"vertices": _verts(line.points_world, d)}},
                [
                    {"name": "label_name", "enum": "lane_line"},
                    {"name": "colors", "enumsList": {"enumsList": [color] * n}},
                    {"name": "styles", "enumsList": {"enumsList": [style] * n}},
                ],
            )
        )
    stores["lanes"] = [
        _label(
            {
                "polylines3d": {
                    "polylines": [{"vertices": []}, {"vertices": _verts(r.points_world, d)}]
                    if r.category == "right_rail"
                    else [{"vertices": _verts(r.points_world, d)}, {"vertices": []}]
                }
            },
            [{"name": "label_name", "enum": "lane"}],
        )
        for r in m.lanes
    ]
    for field in ("road_boundaries", "wait_lines", "poles"):
        stores[field] = [
            _label(
                {"polyline3d": {"vertices": _verts(p.points_world, d)}},
                [{"name": CATEGORY_ATTRIBUTES[field], "text": p.category}],
            )
            for p in getattr(m, field)
        ]
    for field in ("crosswalks", "road_markings"):
        stores[field] = [
            _label(
                {"surface": {"vertices": _verts(p.points_world, d)}},
                [{"name": CATEGORY_ATTRIBUTES[field], "text": p.category}],
            )
            for p in getattr(m, field)
        ]
    stores["traffic_signs"] = [
        _label(
            {"cuboid3d": {"vertices": _verts(_corners(c.world_SE3_obj, c.lwh_m), d)}},
            [{"name": "sign_class", "text": c.category}],
        )
        for c in m.traffic_signs
    ]
    light_ids = [light.feature_id or f"light_{i}" for i, light in enumerate(m.traffic_lights)]
    stores["traffic_lights"] = [
        _label(
            {"cuboid3d": {"vertices": _verts(_corners(c.world_SE3_obj, c.lwh_m), d)}},
            [{"name": "feature_id", "text": fid}],
        )
        for c, fid in zip(m.traffic_lights, light_ids)
    ]
    for field, labels in stores.items():
        if not labels:
            labels = [{"labelFamily": "EMPTY", "labelData": {"emptyLabel": True}}]
        written.append(
            _write_tar(root, MAP_STORES[field], clip, [(STORE_KEYS[field], json.dumps({"labels": labels}).encode())])
        )
    with_states = [
        {"feature_id": fid, "state": list(light.states)}
        for light, fid in zip(m.traffic_lights, light_ids)
        if light.states
    ]
    if with_states:
        content = json.dumps({"traffic_light_states": with_states}).encode()
        written.append(_write_tar(root, "3d_traffic_lights_status", clip, [("aggregated_states.json", content)]))
    return written
