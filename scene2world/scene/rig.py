"""DriveWorks rig JSON <-> :class:`CameraSpec` (ClipGT ``calibration_estimate.rig_json``).

Reading follows NVIDIA's ClipGT loader (docs/world_scenario.md, "ClipGT tables"):

- The rig must be wrapped as ``{"rig": {"sensors": [...]}}``. A sensor is a camera when its
  name starts with ``camera``; it needs ``properties`` and ``nominalSensor2Rig_FLU``.
- Polynomial: key ``polynomial``, else ``bw-poly``; whitespace-separated numbers (a JSON list
  is accepted too), lowest order first; fewer than 6 coefficients are padded with trailing
  zeros (NVIDIA pads 5 -> 6; a zero higher-order term is the same polynomial), more is an error.
- Direction: ``polynomial-type`` ``pixeldistance-to-angle`` = backward θ(r),
  ``angle-to-pixeldistance`` = forward r(θ); without it, the key ``bw-poly`` means backward;
  else the heuristic |c1| < 1 means backward.
- ``linear-c``/``linear-d``/``linear-e`` default to 1, 0, 0.
- Extrinsic: ``nominalSensor2Rig_FLU`` ``t`` (m, FLU rig) and ``roll-pitch-yaw`` (degrees),
  R = Rz(yaw)·Ry(pitch)·Rx(roll) = scipy ``from_euler("xyz")``; this maps the camera's FLU body
  frame to the rig; the camera's OpenCV axes (x right, y down, z forward) are then
  x_flu = z_cv, y_flu = −x_cv, z_flu = −y_cv. ``correction_*`` fields are ignored, as NVIDIA's
  code does (verified there), whatever the doc says.
- Names: ``:`` -> ``_``. Deliberately *not* copying NVIDIA's lookup bug (docs/world_scenario.md,
  "Camera names"): a rig naming
  its front tele ``camera:front:tele:sat:30fov`` yields ``camera_front_tele_30fov`` here.

Added validation: the polynomial in use must be strictly increasing over the image
(backward: θ(r) on [0, r_max]; forward: r(θ) from 0 until it reaches r_max, r_max being the
distance from the principal point to the farthest image corner) — otherwise a SceneError.

Writing (:func:`rig_json_from_cameras`) emits the 6 coefficients, an explicit
``polynomial-type``, ``linear-c/d/e`` and numbers as ``repr`` strings, so reading it back gives
the same floats; rotations are written as roll-pitch-yaw degrees (``as_euler("xyz")``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation

from scene2world.errors import SceneError
from scene2world.scene.model import CameraSpec, FThetaIntrinsics
from scene2world.typing import NDArrayFloat

__all__ = [
    "CV_TO_FLU",
    "NAME_ALIASES",
    "camera_name_from_rig",
    "check_polynomial",
    "nominal_from_rig_SE3_cam",
    "parse_polynomial",
    "parse_rig",
    "rig_SE3_cam_from_nominal",
    "rig_json_from_cameras",
    "rig_name_from_camera",
    "select_cameras",
]

log = logging.getLogger(__name__)

CV_TO_FLU = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
"""(3, 3) maps OpenCV camera axes (x right, y down, z forward) to FLU body axes."""

NAME_ALIASES: dict[str, str] = {"camera_front_tele_sat_30fov": "camera_front_tele_30fov"}
"""Underscore rig names that mean another NVIDIA camera (the docs' ``tele:sat`` spelling)."""

_BACKWARD = "pixeldistance-to-angle"
_FORWARD = "angle-to-pixeldistance"


def camera_name_from_rig(rig_name: str) -> str:
    """NVIDIA underscore name of a rig sensor name (``camera:front:wide:120fov`` -> ``camera_front_wide_120fov``)."""
    name = rig_name.strip().replace(":", "_")
    return NAME_ALIASES.get(name, name)


def rig_name_from_camera(name: str) -> str:
    """DriveWorks colon name of an underscore camera name (``camera_rear_tele_30fov`` -> ``camera:rear:tele:30fov``)."""
    return name.replace("_", ":")


def rig_SE3_cam_from_nominal(t_xyz_m: Sequence[float], rpy_deg: Sequence[float]) -> NDArrayFloat:
    """(4, 4) camera(OpenCV)->rig(FLU) pose from a ``nominalSensor2Rig_FLU`` (t in m, roll-pitch-yaw in degrees)."""
    out = np.eye(4)
    out[:3, :3] = (
        Rotation.from_euler("xyz", np.asarray(rpy_deg, dtype=np.float64), degrees=True).as_matrix() @ CV_TO_FLU
    )
    out[:3, 3] = np.asarray(t_xyz_m, dtype=np.float64)
    return out


def nominal_from_rig_SE3_cam(rig_SE3_cam: NDArrayFloat) -> tuple[list[float], list[float]]:
    """Inverse of :func:`rig_SE3_cam_from_nominal`: (t xyz in m, roll-pitch-yaw in degrees)."""
    m = np.asarray(rig_SE3_cam, dtype=np.float64)
    rpy = Rotation.from_matrix(m[:3, :3] @ CV_TO_FLU.T).as_euler("xyz", degrees=True)
    return [float(v) for v in m[:3, 3]], [float(v) for v in rpy]


def parse_polynomial(value: Any, where: str) -> NDArrayFloat:
    """(6,) coefficients from a rig polynomial string (or list), zero-padded.

    Raises:
        SceneError: when it is empty, not numeric or longer than 6.
    """
    try:
        items = value.replace(",", " ").split() if isinstance(value, str) else list(value)
        coeffs = np.array([float(v) for v in items], dtype=np.float64)
    except (TypeError, ValueError, AttributeError) as e:
        raise SceneError(f"{where}: polynomial must be numbers separated by spaces, got {value!r}") from e
    if not 1 <= len(coeffs) <= 6:
        raise SceneError(f"{where}: polynomial must have 1 to 6 coefficients, got {len(coeffs)}")
    if not np.all(np.isfinite(coeffs)):
        raise SceneError(f"{where}: polynomial holds NaN or infinite values: {value!r}")
    return np.concatenate([coeffs, np.zeros(6 - len(coeffs))])


def check_polynomial(intrinsics: FThetaIntrinsics, where: str) -> None:
    """Raise SceneError unless the f-theta polynomial is strictly increasing over the image.

    Backward θ(r) is checked on [0, r_max]; forward r(θ) from 0 up to the angle where it reaches
    r_max (or π), r_max = distance from the principal point to the farthest image corner.
    """
    i = intrinsics
    r_max = float(np.hypot(max(i.cx_px, i.width_px - i.cx_px), max(i.cy_px, i.height_px - i.cy_px)))
    poly = np.polynomial.Polynomial(i.poly_coeffs)
    kind = "backward θ(r)" if i.is_bw_poly else "forward r(θ)"
    if i.is_bw_poly:
        x = np.linspace(0.0, r_max, 512)
        y = poly(x)
    else:
        x = np.linspace(0.0, np.pi, 2048)
        y = poly(x)
        reach = np.flatnonzero(y >= r_max)
        if len(reach):
            x, y = x[: reach[0] + 1], y[: reach[0] + 1]
    bad = np.flatnonzero(np.diff(y) <= 0)
    if len(bad):
        raise SceneError(
            f"{where}: {kind} polynomial {list(map(float, i.poly_coeffs))} is not increasing over the image "
            f"(it decreases near {'r' if i.is_bw_poly else 'θ'} = {x[bad[0]]:.4g}); check the coefficients "
            "and `polynomial-type`"
        )


def _number(props: Mapping[str, Any], key: str, where: str, default: float | None = None) -> float:
    if key not in props:
        if default is None:
            raise SceneError(f"{where}: property `{key}` is missing")
        return default
    try:
        value = float(props[key])
    except (TypeError, ValueError) as e:
        raise SceneError(f"{where}: property `{key}` must be a number, got {props[key]!r}") from e
    if not np.isfinite(value):
        raise SceneError(f"{where}: property `{key}` must be finite, got {props[key]!r}")
    return value


def _intrinsics(props: Mapping[str, Any], where: str) -> FThetaIntrinsics:
    if "polynomial" in props:
        key = "polynomial"
    elif "bw-poly" in props:
        key = "bw-poly"
    else:
        raise SceneError(f"{where}: properties have neither `polynomial` nor `bw-poly`")
    coeffs = parse_polynomial(props[key], f"{where}.{key}")
    ptype = props.get("polynomial-type")
    if ptype is not None:
        if str(ptype).strip() == _BACKWARD:
            is_bw = True
        elif str(ptype).strip() == _FORWARD:
            is_bw = False
        else:
            raise SceneError(f"{where}: `polynomial-type` must be {_BACKWARD!r} or {_FORWARD!r}, got {ptype!r}")
    else:
        is_bw = key == "bw-poly" or bool(abs(coeffs[1]) < 1.0)
    width, height = _number(props, "width", where), _number(props, "height", where)
    if width != int(width) or height != int(height) or width <= 0 or height <= 0:
        raise SceneError(f"{where}: `width`/`height` must be positive integers, got {width}x{height}")
    intrinsics = FThetaIntrinsics(
        cx_px=_number(props, "cx", where),
        cy_px=_number(props, "cy", where),
        width_px=int(width),
        height_px=int(height),
        poly_coeffs=coeffs,
        is_bw_poly=is_bw,
        linear_cde=np.array(
            [
                _number(props, "linear-c", where, 1.0),
                _number(props, "linear-d", where, 0.0),
                _number(props, "linear-e", where, 0.0),
            ]
        ),
    )
    check_polynomial(intrinsics, f"{where}.{key}")
    return intrinsics


def _vector(value: Any, n: int, where: str) -> list[float]:
    try:
        out = [float(v) for v in value]
    except (TypeError, ValueError) as e:
        raise SceneError(f"{where} must be a list of {n} numbers, got {value!r}") from e
    if len(out) != n or not all(np.isfinite(out)):
        raise SceneError(f"{where} must be {n} finite numbers, got {value!r}")
    return out


def _camera(sensor: Mapping[str, Any], where: str) -> CameraSpec:
    props = sensor.get("properties")
    if not isinstance(props, Mapping):
        raise SceneError(f"{where}: `properties` is missing or not an object")
    nominal = sensor.get("nominalSensor2Rig_FLU")
    if not isinstance(nominal, Mapping):
        raise SceneError(f"{where}: `nominalSensor2Rig_FLU` is missing or not an object")
    t = _vector(nominal.get("t"), 3, f"{where}.nominalSensor2Rig_FLU.t")
    rpy = _vector(nominal.get("roll-pitch-yaw"), 3, f"{where}.nominalSensor2Rig_FLU.roll-pitch-yaw")
    return CameraSpec(
        name=camera_name_from_rig(str(sensor["name"])),
        intrinsics=_intrinsics(props, where),
        rig_SE3_cam=rig_SE3_cam_from_nominal(t, rpy),
    )


def parse_rig(rig: str | Mapping[str, Any], source: str = "rig_json") -> dict[str, CameraSpec]:
    """Every f-theta camera of a DriveWorks rig, keyed by NVIDIA underscore name.

    Args:
        rig: the rig JSON text or its parsed object (``{"rig": {"sensors": [...]}}``).
        source: names the file and field in error messages (e.g. ``"clip.calibration_estimate.parquet: rig_json"``).

    Raises:
        SceneError: on invalid JSON, a missing wrapper, or an invalid camera sensor. Cameras of
            another model than ftheta are skipped with a warning (only requested ones matter).
    """
    if isinstance(rig, str):
        try:
            rig = json.loads(rig)
        except json.JSONDecodeError as e:
            raise SceneError(f"{source}: not valid JSON ({e})") from e
    if isinstance(rig, Mapping) and isinstance(rig.get("rig"), Mapping):
        sensors = rig["rig"].get("sensors")
    else:
        sensors = None
    if not isinstance(sensors, list):
        raise SceneError(f'{source}: expected {{"rig": {{"sensors": [...]}}}}, the rig has no sensor list')
    cameras: dict[str, CameraSpec] = {}
    for k, sensor in enumerate(sensors):
        if not isinstance(sensor, Mapping) or not isinstance(sensor.get("name"), str):
            raise SceneError(f"{source}: rig.sensors[{k}] has no string `name`")
        if not sensor["name"].strip().lower().startswith("camera"):
            continue
        where = f"{source}: sensor {sensor['name']!r}"
        props = sensor.get("properties")
        model = props.get("Model", "ftheta") if isinstance(props, Mapping) else "ftheta"
        if str(model).strip().lower() != "ftheta":
            log.warning("%s: camera model %r is not supported, camera skipped", where, model)
            continue
        spec = _camera(sensor, where)
        if spec.name in cameras:
            raise SceneError(f"{source}: two sensors map to camera {spec.name!r}")
        cameras[spec.name] = spec
    return cameras


def _fmt(value: float) -> str:
    return repr(float(value))


def rig_json_from_cameras(
    cameras: Mapping[str, CameraSpec] | Sequence[CameraSpec], rig_names: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """A DriveWorks rig object for ``cameras`` that :func:`parse_rig` reads back exactly.

    Args:
        cameras: camera specs (a mapping by name, or a sequence).
        rig_names: optional underscore -> rig sensor name overrides; by default ``_`` -> ``:``.
    """
    specs = list(cameras.values()) if isinstance(cameras, Mapping) else list(cameras)
    sensors = []
    for spec in specs:
        i = spec.intrinsics
        t, rpy = nominal_from_rig_SE3_cam(spec.rig_SE3_cam)
        sensors.append(
            {
                "name": (rig_names or {}).get(spec.name, rig_name_from_camera(spec.name)),
                "protocol": "camera.virtual",
                "properties": {
                    "Model": "ftheta",
                    "cx": _fmt(i.cx_px),
                    "cy": _fmt(i.cy_px),
                    "width": str(int(i.width_px)),
                    "height": str(int(i.height_px)),
                    "polynomial": " ".join(_fmt(c) for c in i.poly_coeffs),
                    "polynomial-type": _BACKWARD if i.is_bw_poly else _FORWARD,
                    "linear-c": _fmt(i.linear_cde[0]),
                    "linear-d": _fmt(i.linear_cde[1]),
                    "linear-e": _fmt(i.linear_cde[2]),
                },
                "nominalSensor2Rig_FLU": {"t": t, "roll-pitch-yaw": rpy},
            }
        )
    return {"rig": {"sensors": sensors}}


def select_cameras(
    rig: Mapping[str, CameraSpec], requested: Sequence[str] | None, source: str
) -> dict[str, CameraSpec]:
    """The ``requested`` cameras of ``rig`` (underscore or colon names; all when None).

    Raises:
        SceneError: naming ``source`` and the rig's cameras when a requested camera is missing.
    """
    if requested is None:
        return dict(rig)
    if isinstance(requested, str):
        requested = [n for n in requested.split(",") if n.strip()]
    out: dict[str, CameraSpec] = {}
    for name in requested:
        key = camera_name_from_rig(name)
        if key not in rig:
            raise SceneError(f"{source}: no camera {name!r} in the rig; it has {sorted(rig)}")
        out[key] = rig[key]
    return out
