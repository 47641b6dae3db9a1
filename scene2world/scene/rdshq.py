"""RDS-HQ reader: per-attribute folders of one-sample tars -> :class:`Scene`.

Format (docs/world_scenario.md, "RDS-HQ clips"): ``<root>/<attribute>/<clip_id>.tar``, each tar one webdataset
sample whose members are ``<clip_id>.<key>``. Read here with :mod:`tarfile`, numpy and json
(no webdataset). The world is FLU (the label stores' ``coordinate_frame`` is ``rig``: the
first-frame rig), so nothing is converted.

- Timeline: one frame per ``NNNNNN.vehicle_pose.npy`` (else per camera ``pose``), timestamp
  round(NNNNNN·10⁶/30) µs; no interpolation.
- Cameras: ``vehicle_pose`` (rig->world) + ``pose`` (camera(OpenCV)->world):
  rig_SE3_cam = inv(vehicle_pose[f0]) · pose[f0]. Without ``vehicle_pose``: direct mode, every
  frame's camera pose is kept in ``Scene.world_SE3_cam_direct``; ``world_SE3_rig`` is then the
  first camera's pose turned to FLU axes (only used to place the rig; rendering uses the direct
  poses). Without ``pose``: **a logged warning** and NVIDIA's 7-camera ``multiview_example1``
  extrinsics (:data:`scene2world.scene.defaults.NVIDIA_RIG_TABLE`) instead of NVIDIA's silent
  identity extrinsics; cameras missing from that table are skipped (warning).
- Intrinsics: ``ftheta_intrinsic.<camera>.npy`` = ``[cx, cy, w, h, poly×6, is_bw_poly, (c, d, e)]``;
  without that tar (or for a camera it lacks) NVIDIA's default intrinsics (docs/world_scenario.md), with a warning.
- Objects: ``NNNNNN.all_object_info.json`` (labelled every 3rd frame): one track per tracking id,
  timestamps of the labelled frames, extrapolation 0. Static objects (``object_is_moving`` false
  in every observation) get NVIDIA's mean pose (keep observations whose heading · mean heading >
  0.7, average centre, forward and up axes re-orthonormalised, mean size). Deliberate fix: a
  single-frame track is kept and shown at its one labelled frame (NVIDIA raises IndexError).
  Observations with non-finite values are dropped. Types via
  :func:`scene2world.scene.categories.rdshq_type_from_category`.
- Map label stores (``3d_*``): ``{"labels": [{"labelData": {"shape3d": ...} | {"emptyLabel": true}}]}``,
  vertices as ``[x, y, z]`` lists or ``{"x":…}`` dicts. Lane lines take the lane-type rule over the
  ``colors``/``styles`` attribute lists; lanes give their left and right rails; cuboids (signs,
  lights) give centre = mean of the 8 corners, l = |c3−c0|, w = |c1−c0|, h = |c4−c0| and axes by
  Gram-Schmidt (made right-handed: NVIDIA's real clips store a mirrored corner order, the box is
  the same). Single-point poles and open/closed rings are kept as stored.
- Traffic-light states: ``3d_traffic_lights_status/<clip>.tar`` (``aggregated_states.json``,
  ``traffic_light_states[*] = {feature_id, state: [...]}``) matched by ``feature_id``; one lower-case
  state per frame (padded with ``unknown``); ``off`` is kept (NVIDIA's v2 colour table has no
  ``off``; drawing it is the renderer's decision); unknown strings become ``unknown``.

:func:`scene2world.scene.rdshq_writer.write_rdshq` writes the same layout (used by tests and to
convert scenes). RDS-HQ has no label store for intersection areas and road islands: they are
neither read nor written.
"""

from __future__ import annotations

import io
import json
import logging
import re
import tarfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from scene2world.errors import SceneError
from scene2world.scene.categories import lane_line_type, rdshq_type_from_category
from scene2world.scene.defaults import DEFAULT_FTHETA_INTRINSICS, NVIDIA_RIG_TABLE, default_intrinsics
from scene2world.scene.interpolation import matrix_to_quat_xyzw
from scene2world.scene.model import (
    DEFAULT_CAMERA_NAMES,
    FRAME_RATE_HZ,
    CameraSpec,
    Cuboid,
    FThetaIntrinsics,
    LaneLine,
    MapElements,
    Polygon,
    Polyline,
    Scene,
    Track,
    TrafficLight,
    TrafficLightState,
)
from scene2world.scene.rig import (
    CV_TO_FLU,
    camera_name_from_rig,
    check_polynomial,
    rig_SE3_cam_from_nominal,
    select_cameras,
)
from scene2world.typing import NDArrayFloat, NDArrayInt

__all__ = [
    "MAP_STORES",
    "POSE_FOLDERS",
    "SIGNAL_FOLDERS",
    "load_rdshq",
    "rdshq_clip_id",
    "read_tar",
]

log = logging.getLogger(__name__)

POSE_FOLDERS: tuple[str, ...] = ("pose", "vehicle_pose")
SIGNAL_FOLDERS: tuple[str, ...] = (
    "all_object_info",
    "3d_lanelines",
    "3d_lanes",
    "3d_road_boundaries",
    "ftheta_intrinsic",
)
"""NVIDIA's ``can_load``: ≥ 1 of :data:`POSE_FOLDERS` and ≥ 1 of these sub-folders."""

MAP_STORES: dict[str, str] = {
    "lane_lines": "3d_lanelines",
    "lanes": "3d_lanes",
    "road_boundaries": "3d_road_boundaries",
    "wait_lines": "3d_wait_lines",
    "poles": "3d_poles",
    "crosswalks": "3d_crosswalks",
    "road_markings": "3d_road_markings",
    "traffic_signs": "3d_traffic_signs",
    "traffic_lights": "3d_traffic_lights",
}
"""MapElements field -> RDS-HQ label-store folder."""

CATEGORY_ATTRIBUTES: dict[str, str] = {
    "road_boundaries": "boundary_type",
    "wait_lines": "type",
    "poles": "pole_type",
    "crosswalks": "type",
    "road_markings": "road_marking_class",
    "traffic_signs": "sign_class",
}
"""MapElements field -> the label-store attribute holding its category."""
STORE_KEYS: dict[str, str] = {
    "lane_lines": "lanelines.json",
    "lanes": "lanes.json",
    "road_boundaries": "road_boundaries.json",
    "wait_lines": "wait_lines.json",
    "poles": "poles.json",
    "crosswalks": "crosswalks.json",
    "road_markings": "road_markings.json",
    "traffic_signs": "traffic_signs.json",
    "traffic_lights": "traffic_lights.json",
}
"""MapElements field -> the member key of its label store inside the clip's tar."""
_FRAME_KEY = re.compile(r"^(\d+)\.(vehicle_pose|pose|all_object_info)(?:\.(.+))?\.(npy|json)$")
_STATES = {s.value for s in TrafficLightState}


# ----------------------------------------------------------------------------------------- reading


def rdshq_clip_id(root: str | Path) -> str | None:
    """NVIDIA's RDS-HQ clip id of ``root``: stem of the first ``pose/*.tar``, else ``vehicle_pose/*.tar``."""
    root = Path(root)
    for folder in POSE_FOLDERS:
        tars = sorted((root / folder).glob("*.tar")) if (root / folder).is_dir() else []
        if tars:
            return tars[0].stem
    return None


def read_tar(path: Path) -> dict[str, bytes]:
    """Members of a one-sample tar by key (member name minus its ``<sample>.`` prefix).

    Raises:
        SceneError: when the tar is unreadable or truncated.
    """
    out: dict[str, bytes] = {}
    try:
        with tarfile.open(path, "r") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                base = member.name.rsplit("/", 1)[-1]
                key = base.split(".", 1)[1] if "." in base else base
                f = tar.extractfile(member)
                data = f.read() if f is not None else b""
                if len(data) != member.size:
                    raise SceneError(f"{path}: member {member.name!r} is truncated")
                out[key] = data
    except (tarfile.TarError, OSError, EOFError, ValueError) as e:
        raise SceneError(f"{path}: cannot read the tar ({e})") from e
    return out


def _npy(data: bytes, path: Path, key: str) -> np.ndarray:
    try:
        return np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise SceneError(f"{path}: member `{key}` is not a valid .npy array ({e})") from e


def _json(data: bytes, path: Path, key: str) -> Any:
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise SceneError(f"{path}: member `{key}` is not valid JSON ({e})") from e


def _tar_path(root: Path, folder: str, clip_id: str) -> Path | None:
    path = root / folder / f"{clip_id}.tar"
    return path if path.is_file() else None


def _frames(root: Path, clip_id: str, folder: str) -> tuple[Path, dict[int, dict[str, np.ndarray]]] | None:
    """{frame: {camera-or-'': (4, 4) pose}} of a pose tar, or None when there is none."""
    path = _tar_path(root, folder, clip_id)
    if path is None:
        return None
    frames: dict[int, dict[str, np.ndarray]] = {}
    for key, data in read_tar(path).items():
        m = _FRAME_KEY.match(key)
        if m is None or m.group(2) != folder or m.group(4) != "npy":
            continue
        arr = _npy(data, path, key)
        if arr.shape != (4, 4):
            raise SceneError(f"{path}: member `{key}` must be a (4, 4) pose, got {arr.shape}")
        arr = arr.astype(np.float64)
        if not np.all(np.isfinite(arr)):
            raise SceneError(f"{path}: member `{key}` holds NaN or infinite values")
        camera = camera_name_from_rig(m.group(3)) if m.group(3) else ""
        frames.setdefault(int(m.group(1)), {})[camera] = arr
    if not frames:
        raise SceneError(f"{path}: no `NNNNNN.{folder}...npy` member")
    return path, frames


def _intrinsics(root: Path, clip_id: str) -> dict[str, FThetaIntrinsics] | None:
    path = _tar_path(root, "ftheta_intrinsic", clip_id)
    if path is None:
        return None
    out = {}
    for key, data in read_tar(path).items():
        if not (key.startswith("ftheta_intrinsic.") and key.endswith(".npy")):
            continue
        name = camera_name_from_rig(key[len("ftheta_intrinsic.") : -len(".npy")])
        v = _npy(data, path, key).astype(np.float64).reshape(-1)
        if len(v) not in (11, 14) or not np.all(np.isfinite(v)):
            raise SceneError(
                f"{path}: `{key}` must be 11 or 14 finite numbers [cx, cy, w, h, poly×6, is_bw_poly, (c, d, e)], "
                f"got {len(v)} values"
            )
        intr = FThetaIntrinsics(
            cx_px=float(v[0]),
            cy_px=float(v[1]),
            width_px=int(v[2]),
            height_px=int(v[3]),
            poly_coeffs=v[4:10],
            is_bw_poly=bool(v[10]),
            linear_cde=v[11:14] if len(v) == 14 else np.array([1.0, 0.0, 0.0]),
        )
        check_polynomial(intr, f"{path}: `{key}`")
        out[name] = intr
    return out


def _flu_of(world_SE3_cam: NDArrayFloat) -> NDArrayFloat:
    """(…, 4, 4) camera(OpenCV)->world poses turned into camera-FLU-body->world poses."""
    out = np.array(world_SE3_cam, dtype=np.float64, copy=True)
    out[..., :3, :3] = world_SE3_cam[..., :3, :3] @ CV_TO_FLU.T
    return out


def _cameras_and_poses(
    root: Path, clip_id: str
) -> tuple[NDArrayInt, NDArrayFloat, dict[str, CameraSpec], dict[str, NDArrayFloat]]:
    """(frame numbers, world_SE3_rig, cameras, direct poses)."""
    vehicle = _frames(root, clip_id, "vehicle_pose")
    pose = _frames(root, clip_id, "pose")
    intrinsics = _intrinsics(root, clip_id)
    if intrinsics is None:
        log.warning("%s: no ftheta_intrinsic/%s.tar; using NVIDIA's default f-theta intrinsics", root, clip_id)
        intrinsics = {}
    if vehicle is None and pose is None:
        raise SceneError(f"{root}: RDS-HQ clip {clip_id!r} has neither pose/ nor vehicle_pose/ tar")

    if vehicle is not None:
        _, vframes = vehicle
        numbers = np.array(sorted(vframes), dtype=np.int64)
        world_SE3_rig = np.stack([vframes[int(n)][""] for n in numbers])
    else:
        ppath, pframes = pose  # type: ignore[misc]
        numbers = np.array(sorted(pframes), dtype=np.int64)

    direct: dict[str, NDArrayFloat] = {}
    extrinsics: dict[str, NDArrayFloat] = {}
    if pose is not None:
        ppath, pframes = pose
        names = sorted({c for f in pframes.values() for c in f})
        for name in names:
            if vehicle is None:
                missing = [int(n) for n in numbers if name not in pframes.get(int(n), {})]
                if missing:
                    raise SceneError(f"{ppath}: camera `{name}` has no pose at frame {missing[0]:06d}")
                direct[name] = np.stack([pframes[int(n)][name] for n in numbers])
            else:
                # NVIDIA: camera_to_vehicle = inv(vehicle_pose[f0]) @ pose[f0], f0 the first frame.
                both = [k for k, n in enumerate(numbers) if name in pframes.get(int(n), {})]
                if not both:
                    raise SceneError(f"{ppath}: camera `{name}` has no pose at any vehicle_pose frame")
                k = both[0]
                extrinsics[name] = np.linalg.inv(world_SE3_rig[k]) @ pframes[int(numbers[k])][name]
        if vehicle is None:
            first = next((c for c in DEFAULT_CAMERA_NAMES if c in direct), names[0])
            world_SE3_rig = _flu_of(direct[first])
            extrinsics = {n: np.linalg.inv(world_SE3_rig[0]) @ d[0] for n, d in direct.items()}
    else:
        table = {e.name: e for e in NVIDIA_RIG_TABLE}
        wanted = sorted(intrinsics) or [e.name for e in NVIDIA_RIG_TABLE]
        log.warning(
            "%s: RDS-HQ clip %s has no pose/ tar, so the camera extrinsics are unknown; using NVIDIA's "
            "7-camera multiview_example1 rig extrinsics (scene2world.scene.defaults.NVIDIA_RIG_TABLE) "
            "instead of identity",
            root,
            clip_id,
        )
        for name in wanted:
            if name in table:
                extrinsics[name] = rig_SE3_cam_from_nominal(table[name].t_xyz_m, table[name].rpy_deg)
            else:
                log.warning("%s: camera %s has no pose and no default extrinsics; skipped", root, name)

    cameras: dict[str, CameraSpec] = {}
    for name, rig_SE3_cam in extrinsics.items():
        if name in intrinsics:
            intr = intrinsics[name]
        elif name in DEFAULT_FTHETA_INTRINSICS:
            if intrinsics:
                log.warning("%s: no f-theta intrinsics for %s; using NVIDIA's default", root, name)
            intr = default_intrinsics(name)
        else:
            log.warning("%s: camera %s has no f-theta intrinsics; skipped", root, name)
            continue
        cameras[name] = CameraSpec(name=name, intrinsics=intr, rig_SE3_cam=rig_SE3_cam)
    return numbers, world_SE3_rig, cameras, {n: d for n, d in direct.items() if n in cameras}


def _frame_us(numbers: NDArrayInt) -> NDArrayInt:
    return np.round(np.asarray(numbers, dtype=np.float64) * 1e6 / FRAME_RATE_HZ).astype(np.int64)


def _static_pose(poses: NDArrayFloat, lwh: NDArrayFloat) -> tuple[NDArrayFloat, NDArrayFloat]:
    """NVIDIA's mean pose of a static object: (4, 4) pose and (3,) size."""
    fwd = poses[:, :3, 0]
    mean = fwd.mean(axis=0)
    mean /= max(np.linalg.norm(mean), 1e-12)
    keep = fwd @ mean > 0.7
    if not np.any(keep):
        keep = np.ones(len(poses), dtype=bool)
    x = poses[keep, :3, 0].mean(axis=0)
    x /= max(np.linalg.norm(x), 1e-12)
    up = poses[keep, :3, 2].mean(axis=0)
    z = up - (up @ x) * x
    z /= max(np.linalg.norm(z), 1e-12)
    out = np.eye(4)
    out[:3, :3] = np.stack([x, np.cross(z, x), z], axis=1)
    out[:3, 3] = poses[keep, :3, 3].mean(axis=0)
    return out, lwh[keep].mean(axis=0)


def _tracks(root: Path, clip_id: str) -> tuple[Track, ...]:
    path = _tar_path(root, "all_object_info", clip_id)
    if path is None:
        return ()
    obs: dict[str, list[tuple[int, NDArrayFloat, NDArrayFloat, bool, str]]] = {}
    for key, data in read_tar(path).items():
        m = _FRAME_KEY.match(key)
        if m is None or m.group(2) != "all_object_info" or m.group(4) != "json":
            continue
        frame = int(m.group(1))
        content = _json(data, path, key)
        if not isinstance(content, dict):
            raise SceneError(f"{path}: `{key}` must be an object {{tracking_id: {{...}}}}")
        for track_id, info in content.items():
            try:
                pose = np.asarray(info["object_to_world"], dtype=np.float64).reshape(4, 4)
                lwh = np.asarray(info["object_lwh"], dtype=np.float64).reshape(3)
                moving = bool(info.get("object_is_moving", True))
                otype = str(info.get("object_type", ""))
            except (KeyError, TypeError, ValueError) as e:
                raise SceneError(
                    f"{path}: `{key}` object {track_id!r} needs object_to_world (4x4) and object_lwh (3): {e!r}"
                ) from e
            if np.all(np.isfinite(pose)) and np.all(np.isfinite(lwh)):
                obs.setdefault(str(track_id), []).append((frame, pose, lwh, moving, otype))
    tracks = []
    for track_id in sorted(obs):
        rows = sorted(obs[track_id], key=lambda r: r[0])
        frames = np.array([r[0] for r in rows], dtype=np.int64)
        poses = np.stack([r[1] for r in rows])
        lwh = np.stack([r[2] for r in rows])
        moving = any(r[3] for r in rows)
        if not moving:
            mean_pose, mean_lwh = _static_pose(poses, lwh)
            poses = np.repeat(mean_pose[None], len(rows), axis=0)
            lwh = np.repeat(mean_lwh[None], len(rows), axis=0)
        tracks.append(
            Track(
                track_id=track_id,
                object_type=rdshq_type_from_category(rows[0][4]),
                timestamps_us=_frame_us(frames),
                centers_world=poses[:, :3, 3],
                lwh_m=lwh,
                quats_xyzw=matrix_to_quat_xyzw(poses),
                is_moving=moving,
                max_extrapolation_us=0,
            )
        )
    return tuple(tracks)


def _vertices(value: Any, where: str) -> NDArrayFloat:
    try:
        if len(value) and isinstance(value[0], dict):
            pts = np.array([[v["x"], v["y"], v["z"]] for v in value], dtype=np.float64)
        else:
            pts = np.array(value, dtype=np.float64)
    except (KeyError, TypeError, ValueError) as e:
        raise SceneError(f"{where}: vertices must be [x, y, z] lists or {{x, y, z}} objects ({e!r})") from e
    pts = pts.reshape(-1, 3) if pts.size else np.zeros((0, 3))
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise SceneError(f"{where}: vertices must be (N, 3), got {pts.shape}")
    if not np.all(np.isfinite(pts)):
        raise SceneError(f"{where}: vertices hold NaN or infinite values")
    return pts


def _attributes(shape: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for attr in shape.get("attributes", []) or []:
        if not isinstance(attr, dict) or "name" not in attr:
            continue
        for kind, value in attr.items():
            if kind == "name":
                continue
            if isinstance(value, dict) and len(value) == 1:  # {"enumsList": [...]} / {"textList": [...]}
                value = next(iter(value.values()))
            out[attr["name"]] = value
    return out


def _labels(root: Path, clip_id: str, field: str) -> tuple[Path, list[tuple[dict[str, Any], dict[str, Any], str]]]:
    """(path, [(shape3d, attributes, where)]) of a map label store (empty labels skipped)."""
    folder = MAP_STORES[field]
    path = _tar_path(root, folder, clip_id)
    if path is None:
        return root / folder, []
    members = read_tar(path)
    keys = [k for k in members if k.endswith(".json")]
    if not keys:
        raise SceneError(f"{path}: no .json label store member")
    key = STORE_KEYS[field] if STORE_KEYS[field] in members else sorted(keys)[0]
    store = _json(members[key], path, key)
    labels = store.get("labels") if isinstance(store, dict) else None
    if not isinstance(labels, list):
        raise SceneError(f"{path}: `{key}` must be an object with a `labels` list")
    out = []
    for i, label in enumerate(labels):
        data = label.get("labelData", {}) if isinstance(label, dict) else {}
        if not isinstance(data, dict) or data.get("emptyLabel"):
            continue
        shape = data.get("shape3d")
        if not isinstance(shape, dict):
            raise SceneError(f"{path}: `{key}` labels[{i}].labelData has no `shape3d`")
        out.append((shape, _attributes(shape), f"{path}: `{key}` labels[{i}]"))
    return path, out


def _shape_points(shape: dict[str, Any], kind: str, where: str) -> NDArrayFloat:
    body = shape.get(kind)
    if not isinstance(body, dict) or "vertices" not in body:
        raise SceneError(f"{where}: expected `shape3d.{kind}.vertices`")
    return _vertices(body["vertices"], f"{where}.{kind}.vertices")


def _cuboid(shape: dict[str, Any], where: str) -> tuple[NDArrayFloat, NDArrayFloat]:
    c = _shape_points(shape, "cuboid3d", where)
    if len(c) != 8:
        raise SceneError(f"{where}: a cuboid3d needs 8 vertices, got {len(c)}")
    x, y = c[0] - c[3], c[0] - c[1]
    lwh = np.array([np.linalg.norm(x), np.linalg.norm(y), np.linalg.norm(c[0] - c[4])])
    if np.any(lwh < 1e-9):
        raise SceneError(f"{where}: degenerate cuboid3d (an edge has zero length)")
    x = x / lwh[0]
    y = y - (y @ x) * x
    y = y / max(np.linalg.norm(y), 1e-12)
    pose = np.eye(4)
    pose[:3, :3] = np.stack([x, y, np.cross(x, y)], axis=1)
    pose[:3, 3] = c.mean(axis=0)
    return pose, lwh


def _light_states(root: Path, clip_id: str, num_frames: int) -> dict[str, tuple[str, ...]]:
    path = _tar_path(root, "3d_traffic_lights_status", clip_id)
    if path is None:
        return {}
    members = read_tar(path)
    key = "aggregated_states.json" if "aggregated_states.json" in members else None
    key = key or next((k for k in sorted(members) if k.endswith(".json")), None)
    if key is None:
        raise SceneError(f"{path}: no aggregated_states.json member")
    content = _json(members[key], path, key)
    entries = content.get("traffic_light_states") if isinstance(content, dict) else None
    if not isinstance(entries, list):
        raise SceneError(f"{path}: `{key}` must hold a `traffic_light_states` list")
    out = {}
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or "feature_id" not in entry or not isinstance(entry.get("state"), list):
            raise SceneError(f"{path}: `{key}` traffic_light_states[{i}] needs `feature_id` and a `state` list")
        states = [str(s).strip().lower() for s in entry["state"][:num_frames]]
        states = [s if s in _STATES else TrafficLightState.UNKNOWN.value for s in states]
        states += [TrafficLightState.UNKNOWN.value] * (num_frames - len(states))
        out[str(entry["feature_id"])] = tuple(states)
    return out


def _map(root: Path, clip_id: str, num_frames: int) -> MapElements:
    fields: dict[str, list[Any]] = {}
    for field in MAP_STORES:
        _, labels = _labels(root, clip_id, field)
        items: list[Any] = []
        for shape, attrs, where in labels:
            category = str(attrs.get(CATEGORY_ATTRIBUTES.get(field, ""), "") or "")
            if field == "lane_lines":
                pts = _shape_points(shape, "polyline3d", where)
                colors, styles = attrs.get("colors") or [], attrs.get("styles") or []
                if len(pts):
                    items.append(LaneLine(pts, lane_type=lane_line_type(colors, styles)))
            elif field == "lanes":
                body = shape.get("polylines3d", {})
                rails = body.get("polylines", []) if isinstance(body, dict) else []
                for rail, side in zip(rails, ("left_rail", "right_rail")):
                    pts = _vertices(rail.get("vertices", []) if isinstance(rail, dict) else [], f"{where}.{side}")
                    if len(pts):
                        items.append(Polyline(pts, category=side))
            elif field in ("crosswalks", "road_markings"):
                pts = _shape_points(shape, "surface", where)
                if len(pts):
                    items.append(Polygon(pts, category=category))
            elif field == "traffic_signs":
                pose, lwh = _cuboid(shape, where)
                items.append(Cuboid(pose, lwh, category))
            elif field == "traffic_lights":
                pose, lwh = _cuboid(shape, where)
                items.append((pose, lwh, str(attrs.get("feature_id", "") or "")))
            else:
                pts = _shape_points(shape, "polyline3d", where)
                if len(pts):
                    items.append(Polyline(pts, category=category))
        fields[field] = items
    states = _light_states(root, clip_id, num_frames) if fields["traffic_lights"] else {}
    fields["traffic_lights"] = [
        TrafficLight(pose, lwh, "traffic_light", feature_id=fid, states=states.get(fid, ()))
        for pose, lwh, fid in fields["traffic_lights"]
    ]
    return MapElements(**{k: tuple(v) for k, v in fields.items()})


def load_rdshq(root: str | Path, clip_id: str | None = None, cameras: Sequence[str] | None = None) -> Scene:
    """Load an RDS-HQ clip into a :class:`Scene` (``source_format="rdshq"``).

    Args:
        root: the folder holding ``vehicle_pose/``, ``pose/``, ``3d_*/``… sub-folders.
        clip_id: which clip; by default NVIDIA's rule (:func:`rdshq_clip_id`).
        cameras: camera names to keep (underscore or colon form); all by default.

    Raises:
        SceneError: unreadable/truncated tars, malformed members, or a requested camera missing.
    """
    root = Path(root)
    clip_id = clip_id or rdshq_clip_id(root)
    if clip_id is None:
        raise SceneError(f"{root}: no RDS-HQ clip (needs pose/<clip>.tar or vehicle_pose/<clip>.tar)")
    numbers, world_SE3_rig, rig, direct = _cameras_and_poses(root, clip_id)
    selected = select_cameras(rig, cameras, f"{root} (RDS-HQ clip {clip_id})")
    return Scene(
        clip_id=clip_id,
        source_format="rdshq",
        frame_timestamps_us=_frame_us(numbers),
        world_SE3_rig=world_SE3_rig,
        cameras=selected,
        map=_map(root, clip_id, len(numbers)),
        tracks=_tracks(root, clip_id),
        world_SE3_cam_direct={n: d for n, d in direct.items() if n in selected},
        metadata={"source_path": str(root), "frame_numbers": [int(numbers[0]), int(numbers[-1])]},
    )
