from __future__ import annotations

import numpy as np
import pytest

from scene2world.scene.defaults import DEFAULT_FTHETA_INTRINSICS, NVIDIA_RIG_TABLE, default_intrinsics, nvidia_rig
from scene2world.scene.model import DEFAULT_CAMERA_NAMES
from scene2world.scene.rig import check_polynomial

pytestmark = pytest.mark.timeout(60)


def test_default_intrinsics_verbatim():
    assert sorted(DEFAULT_FTHETA_INTRINSICS) == sorted(DEFAULT_CAMERA_NAMES)
    assert all(len(v) == 11 for v in DEFAULT_FTHETA_INTRINSICS.values())
    wide = default_intrinsics("camera_front_wide_120fov")
    assert (wide.cx_px, wide.cy_px, wide.width_px, wide.height_px, wide.is_bw_poly) == (
        954.2063, 757.15415, 1920, 1080, True)  # fmt: skip
    np.testing.assert_array_equal(
        wide.poly_coeffs, [0.0, 1.05758628e-03, 8.21162080e-09, -3.39450080e-11, 8.07342080e-14, -2.94602496e-17]
    )
    tele = default_intrinsics("camera_rear_tele_30fov")
    assert not tele.is_bw_poly and tele.poly_coeffs[5] == 16158.127 and tele.cx_px == 1032.4529
    for name in DEFAULT_FTHETA_INTRINSICS:
        check_polynomial(default_intrinsics(name), name)  # all monotonic over the image
        assert default_intrinsics(name).is_bw_poly == name.endswith("120fov")


def test_rig_table_is_one_table_in_default_order():
    assert tuple(e.name for e in NVIDIA_RIG_TABLE) == DEFAULT_CAMERA_NAMES
    tele = NVIDIA_RIG_TABLE[1]
    assert tele.rig_name == "camera:front:tele:30fov"
    assert tele.t_xyz_m == (1.646, -0.141, 1.449) and tele.rpy_deg == (-0.33, -0.72, -0.73)


def test_nvidia_rig_cameras_look_where_their_names_say():
    rig = nvidia_rig()
    assert list(rig) == list(DEFAULT_CAMERA_NAMES)
    expected_heading = {
        "camera_front_wide_120fov": 0,
        "camera_front_tele_30fov": 0,
        "camera_cross_right_120fov": -67,
        "camera_cross_left_120fov": 66,
        "camera_rear_left_70fov": 151,
        "camera_rear_right_70fov": -155,
        "camera_rear_tele_30fov": 179,
    }
    for name, spec in rig.items():
        optical_axis_rig = spec.rig_SE3_cam[:3, 2]  # camera +z (forward) in the FLU rig
        heading = np.degrees(np.arctan2(optical_axis_rig[1], optical_axis_rig[0]))
        assert abs(heading - expected_heading[name]) < 1.0, name
        assert abs(optical_axis_rig[2]) < 0.07  # roughly level
        assert spec.rig_SE3_cam[2, 3] > 0.8  # mounted above the ground
