"""NVIDIA's default camera rig, as data: f-theta intrinsics and nominal extrinsics of 7 cameras.

- :data:`DEFAULT_FTHETA_INTRINSICS`: the 7 vectors of NVIDIA's ``default_ftheta_intrinsic.tar``
  (docs/world_scenario.md, "Default intrinsics and the 7-camera rig"), verbatim:
  ``[cx, cy, w, h, p0..p5, is_bw_poly]`` for a 1920x1080
  rig; the 120° cameras hold backward polynomials, the 70°/30° cameras forward ones. The RDS-HQ
  loader uses them when a clip has no ``ftheta_intrinsic`` tar.
- :data:`NVIDIA_RIG_TABLE`: the nominal camera->rig poses of the ``multiview_example1`` rig
  (a third-party dump, *unverified*; docs/world_scenario.md): translation (x, y, z) m in the FLU rig and
  roll-pitch-yaw in degrees, the form of a DriveWorks ``nominalSensor2Rig_FLU``. Used for RDS-HQ
  clips without ``pose`` tars and for the bundled example.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scene2world.scene.model import CameraSpec, FThetaIntrinsics
from scene2world.scene.rig import rig_name_from_camera, rig_SE3_cam_from_nominal

__all__ = ["DEFAULT_FTHETA_INTRINSICS", "NVIDIA_RIG_TABLE", "RigEntry", "default_intrinsics", "nvidia_rig"]

DEFAULT_FTHETA_INTRINSICS: dict[str, tuple[float, ...]] = {
    "camera_cross_left_120fov": (
        9.648627500e02, 7.444390000e02, 1.920000000e03, 1.080000000e03, 0.000000000e00,
        1.065513600e-03, -6.310003600e-09, 1.956612800e-11, 1.258088896e-14, 1.283439360e-18,
        1.000000000e00,
    ),
    "camera_cross_right_120fov": (
        9.58410300e02, 7.44297850e02, 1.92000000e03, 1.08000000e03, 0.00000000e00,
        1.06704060e-03, -1.90164880e-09, 5.09396080e-12, 3.09046848e-14, -6.74121728e-18,
        1.00000000e00,
    ),
    "camera_front_tele_30fov": (
        978.44415, 597.66565, 1920.0, 1080.0, 0.0,
        3675.74975, 178.78496, -387.41287, -11.4377625, 18.0317115,
        0.0,
    ),
    "camera_front_wide_120fov": (
        9.54206300e02, 7.57154150e02, 1.92000000e03, 1.08000000e03, 0.00000000e00,
        1.05758628e-03, 8.21162080e-09, -3.39450080e-11, 8.07342080e-14, -2.94602496e-17,
        1.00000000e00,
    ),
    "camera_rear_left_70fov": (
        933.82935, 557.2074, 1920.0, 1080.0, 0.0,
        1571.27855, 96.98752, -255.40837, 150.845965, 97.98543,
        0.0,
    ),
    "camera_rear_right_70fov": (
        968.8991, 553.86615, 1920.0, 1080.0, 0.0,
        1564.0829, 100.93601, -264.07915, 149.67691, 100.501725,
        0.0,
    ),
    "camera_rear_tele_30fov": (
        1032.4529, 514.0706, 1920.0, 1080.0, 0.0,
        3680.57665, -184.34178, 2877.95335, -12169.1035, 16158.127,
        0.0,
    ),
}  # fmt: skip


@dataclass(frozen=True)
class RigEntry:
    """One row of :data:`NVIDIA_RIG_TABLE`.

    ``t_xyz_m``: camera position in the FLU rig, metres; ``rpy_deg``: roll, pitch, yaw in degrees
    (R = Rz(yaw)·Ry(pitch)·Rx(roll), camera FLU body -> rig); ``hfov_deg``: nominal field of view.
    """

    name: str
    t_xyz_m: tuple[float, float, float]
    rpy_deg: tuple[float, float, float]
    hfov_deg: float

    @property
    def rig_name(self) -> str:
        """DriveWorks sensor name (``camera:front:tele:30fov``, not the docs' ``tele:sat``)."""
        return rig_name_from_camera(self.name)


NVIDIA_RIG_TABLE: tuple[RigEntry, ...] = (
    #        camera (rig name = "_" -> ":")  t xyz (m)                rpy (deg)                hfov (deg)
    RigEntry("camera_front_wide_120fov",  (1.697, -0.010, 1.443), (0.13, 0.47, -0.71),     120.0),
    RigEntry("camera_front_tele_30fov",   (1.646, -0.141, 1.449), (-0.33, -0.72, -0.73),   30.0),
    RigEntry("camera_cross_right_120fov", (2.478, -0.955, 0.929), (-0.19, -1.38, -66.81),  120.0),
    RigEntry("camera_cross_left_120fov",  (2.473, 0.938, 0.918),  (-0.17, 0.44, 66.41),    120.0),
    RigEntry("camera_rear_left_70fov",    (2.029, 1.039, 0.885),  (0.63, 3.26, 151.40),    70.0),
    RigEntry("camera_rear_right_70fov",   (2.008, -1.005, 0.896), (-0.28, 0.87, -154.69),  70.0),
    RigEntry("camera_rear_tele_30fov",    (0.383, 0.300, 1.434),  (-0.25, 0.58, 179.19),   30.0),
)  # fmt: skip
"""NVIDIA's 7-camera ``multiview_example1`` rig, in ``DEFAULT_CAMERA_NAMES`` order."""


def default_intrinsics(name: str) -> FThetaIntrinsics:
    """NVIDIA's default f-theta intrinsics of camera ``name`` (underscore form); c, d, e = 1, 0, 0.

    Raises:
        KeyError: never for the 7 NVIDIA names; callers check membership first.
    """
    v = DEFAULT_FTHETA_INTRINSICS[name]
    return FThetaIntrinsics(
        cx_px=v[0],
        cy_px=v[1],
        width_px=int(v[2]),
        height_px=int(v[3]),
        poly_coeffs=np.array(v[4:10]),
        is_bw_poly=bool(v[10]),
    )


def nvidia_rig() -> dict[str, CameraSpec]:
    """NVIDIA's 7-camera rig: the default intrinsics and the nominal extrinsics, by underscore name."""
    return {
        e.name: CameraSpec(
            name=e.name,
            intrinsics=default_intrinsics(e.name),
            rig_SE3_cam=rig_SE3_cam_from_nominal(e.t_xyz_m, e.rpy_deg),
        )
        for e in NVIDIA_RIG_TABLE
    }
