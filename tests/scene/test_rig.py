from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from scipy.spatial.transform import Rotation

from scene2world.errors import SceneError
from scene2world.scene.defaults import nvidia_rig
from scene2world.scene.rig import (
    camera_name_from_rig,
    nominal_from_rig_SE3_cam,
    parse_polynomial,
    parse_rig,
    rig_json_from_cameras,
    rig_name_from_camera,
    rig_SE3_cam_from_nominal,
    select_cameras,
)

from .helpers import assert_cameras_equal, cameras

pytestmark = pytest.mark.timeout(60)

DOC_PROPS = {
    "Model": "ftheta",
    "cx": "1919.420",
    "cy": "1078.106",
    "width": "3848",
    "height": "2168",
    "polynomial": "0 0.000538 2.356e-09 1.907e-12 1.204e-16",
    "polynomial-type": "pixeldistance-to-angle",
    "linear-c": "1.000000",
    "linear-d": "0.000000",
    "linear-e": "0.000000",
}


def _rig(props=None, name="camera:front:wide:120fov", **extra):
    sensor = {
        "name": name,
        "properties": DOC_PROPS if props is None else props,
        "nominalSensor2Rig_FLU": {"t": [1.697, -0.010, 1.443], "roll-pitch-yaw": [0.130, 0.468, -0.714]},
        **extra,
    }
    return {"rig": {"sensors": [sensor, {"name": "lidar:top", "properties": {}}]}}


def test_doc_example_camera():
    cams = parse_rig(json.dumps(_rig()))
    assert list(cams) == ["camera_front_wide_120fov"]
    intr = cams["camera_front_wide_120fov"].intrinsics
    assert (intr.cx_px, intr.cy_px, intr.width_px, intr.height_px) == (1919.42, 1078.106, 3848, 2168)
    np.testing.assert_array_equal(intr.poly_coeffs, [0, 0.000538, 2.356e-09, 1.907e-12, 1.204e-16, 0])  # 5 -> 6
    assert intr.is_bw_poly
    np.testing.assert_array_equal(intr.linear_cde, [1, 0, 0])


def test_extrinsic_verified_vector_and_euler_order():
    m = rig_SE3_cam_from_nominal([1.7, 0, 1.45], [0, 0, 0])
    # camera OpenCV axes in the FLU rig: z_cv -> +x, x_cv -> -y, y_cv -> -z
    np.testing.assert_allclose(m, [[0, 0, 1, 1.7], [-1, 0, 0, 0], [0, -1, 0, 1.45], [0, 0, 0, 1]], atol=1e-15)
    roll, pitch, yaw = 3.0, -7.0, 40.0
    m = rig_SE3_cam_from_nominal([0, 0, 0], [roll, pitch, yaw])
    rz = Rotation.from_euler("z", yaw, degrees=True).as_matrix()
    ry = Rotation.from_euler("y", pitch, degrees=True).as_matrix()
    rx = Rotation.from_euler("x", roll, degrees=True).as_matrix()
    np.testing.assert_allclose(m[:3, :3], rz @ ry @ rx @ rig_SE3_cam_from_nominal([0, 0, 0], [0, 0, 0])[:3, :3])
    _, rpy = nominal_from_rig_SE3_cam(m)
    np.testing.assert_allclose(rpy, [roll, pitch, yaw], atol=1e-9)


def test_correction_fields_are_ignored():
    plain = parse_rig(_rig())["camera_front_wide_120fov"]
    corrected = parse_rig(_rig(correction_sensor_R_FLU={"roll-pitch-yaw": [0, 5, 0]}, correction_rig_T=[3, 0, 0]))[
        "camera_front_wide_120fov"
    ]
    np.testing.assert_array_equal(plain.rig_SE3_cam, corrected.rig_SE3_cam)


@pytest.mark.parametrize(
    ("changes", "is_bw"),
    [
        ({}, True),
        ({"polynomial-type": "angle-to-pixeldistance", "polynomial": "0 1500 10"}, False),
        ({"polynomial-type": None}, True),  # heuristic |c1| < 1
        ({"polynomial-type": None, "polynomial": "0 1500 10"}, False),  # heuristic |c1| >= 1
        ({"polynomial-type": None, "polynomial": None, "bw-poly": "0 0.0005"}, True),  # bw-poly key
        ({"polynomial-type": None, "polynomial": None, "bw-poly": "0 1500"}, True),  # bw-poly wins over heuristic
    ],
)
def test_polynomial_direction_rules(changes, is_bw):
    props = {k: v for k, v in {**DOC_PROPS, **changes}.items() if v is not None}
    assert parse_rig(_rig(props))["camera_front_wide_120fov"].intrinsics.is_bw_poly is is_bw


def test_polynomial_key_precedence_and_padding():
    props = {**DOC_PROPS, "bw-poly": "0 0.9"}
    intr = parse_rig(_rig(props))["camera_front_wide_120fov"].intrinsics
    assert intr.poly_coeffs[1] == 0.000538  # `polynomial` first
    np.testing.assert_array_equal(parse_polynomial("1 2", "x"), [1, 2, 0, 0, 0, 0])
    np.testing.assert_array_equal(parse_polynomial([0, 1, 2, 3, 4, 5], "x"), [0, 1, 2, 3, 4, 5])


def test_linear_cde_read():
    props = {**DOC_PROPS, "linear-c": "0.999", "linear-d": "0.001", "linear-e": "-0.002"}
    intr = parse_rig(_rig(props))["camera_front_wide_120fov"].intrinsics
    np.testing.assert_array_equal(intr.linear_cde, [0.999, 0.001, -0.002])
    props = {k: v for k, v in DOC_PROPS.items() if not k.startswith("linear")}
    np.testing.assert_array_equal(parse_rig(_rig(props))["camera_front_wide_120fov"].intrinsics.linear_cde, [1, 0, 0])


def test_names_colon_to_underscore_and_tele_sat_alias():
    assert camera_name_from_rig("camera:front:wide:120fov") == "camera_front_wide_120fov"
    assert camera_name_from_rig("camera:front:tele:sat:30fov") == "camera_front_tele_30fov"
    assert camera_name_from_rig("camera_rear_tele_30fov") == "camera_rear_tele_30fov"
    assert rig_name_from_camera("camera_front_tele_30fov") == "camera:front:tele:30fov"
    cams = parse_rig(_rig(name="camera:front:tele:sat:30fov"))
    assert list(cams) == ["camera_front_tele_30fov"]


def test_select_cameras_accepts_colon_names_and_rejects_missing():
    rig = nvidia_rig()
    assert list(select_cameras(rig, ["camera:rear:tele:30fov"], "src")) == ["camera_rear_tele_30fov"]
    assert list(select_cameras(rig, "camera_front_wide_120fov,camera_front_tele_30fov", "src")) == [
        "camera_front_wide_120fov",
        "camera_front_tele_30fov",
    ]
    with pytest.raises(SceneError, match=r"src: no camera 'camera_top' in the rig"):
        select_cameras(rig, ["camera_top"], "src")


@pytest.mark.parametrize(
    ("rig", "match"),
    [
        ("{not json", "not valid JSON"),
        ({"sensors": []}, "no sensor list"),
        (_rig({**DOC_PROPS, "polynomial": "0 0.001 -0.0001"}), "not increasing"),  # θ(r) turns down
        (_rig({**DOC_PROPS, "polynomial-type": "angle-to-pixeldistance", "polynomial": "0 -1500"}), "not increasing"),
        (_rig({**DOC_PROPS, "polynomial": "0 1 2 3 4 5 6"}), "1 to 6 coefficients"),
        (_rig({**DOC_PROPS, "polynomial": "0 abc"}), "polynomial must be numbers"),
        (_rig({**DOC_PROPS, "polynomial-type": "sideways"}), "polynomial-type"),
        (_rig({**DOC_PROPS, "cx": "left"}), "property `cx` must be a number"),
        (_rig({k: v for k, v in DOC_PROPS.items() if k != "width"}), "property `width` is missing"),
        (_rig({k: v for k, v in DOC_PROPS.items() if k != "polynomial"}), "neither `polynomial` nor `bw-poly`"),
        ({"rig": {"sensors": [{"name": "camera:x", "properties": DOC_PROPS}]}}, "nominalSensor2Rig_FLU"),
        ({"rig": {"sensors": [{"name": 3}]}}, "no string `name`"),
    ],
)
def test_bad_rigs_raise_scene_error_naming_source(rig, match):
    with pytest.raises(SceneError, match=match) as info:
        parse_rig(rig if isinstance(rig, str) else json.dumps(rig), source="clip.calibration_estimate.parquet")
    assert "clip.calibration_estimate.parquet" in str(info.value)


def test_non_ftheta_camera_is_skipped():
    rig = _rig({**DOC_PROPS, "Model": "pinhole"})
    assert parse_rig(rig) == {}


@settings(max_examples=30, deadline=None)
@given(cameras())
def test_writer_round_trip(cams):
    text = json.dumps(rig_json_from_cameras(cams))
    assert_cameras_equal(parse_rig(text), cams, atol=1e-12)
