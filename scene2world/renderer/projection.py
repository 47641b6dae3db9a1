"""Camera-frame points to pixels with depth (f-theta, docs/ftheta.md), and NVIDIA's depth fade."""

from __future__ import annotations

import numpy as np

from scene2world.renderer import ftheta_kernel
from scene2world.renderer.camera import FThetaCamera
from scene2world.renderer.style import FAR_M
from scene2world.typing import NDArrayFloat, NDArrayInt


def depth_fade(depth_m: NDArrayFloat) -> NDArrayFloat:
    """NVIDIA's colour factor clamp(1 − depth/200, 0, 1)."""
    return np.clip(1.0 - np.asarray(depth_m, dtype=np.float64) / FAR_M, 0.0, 1.0)


def transform_points(cam_SE3_world: NDArrayFloat, points_world: NDArrayFloat) -> NDArrayFloat:
    """Apply a (4, 4) transform to (..., 3) points."""
    m = np.asarray(cam_SE3_world, dtype=np.float64)
    p = np.asarray(points_world, dtype=np.float64)
    return p @ m[:3, :3].T + m[:3, 3]


def project_uvz(camera: FThetaCamera, points_cam: NDArrayFloat) -> NDArrayFloat:
    """(..., 3) camera-frame points -> (..., 3) pixel u, v and camera depth (m)."""
    flat = points_cam.reshape(-1, 3)
    uv, depth = camera.project(flat)
    return np.concatenate([uv, depth[:, None]], axis=1).reshape(*points_cam.shape[:-1], 3)


def project_segment_ends(
    camera: FThetaCamera, points_cam: NDArrayFloat, index: NDArrayInt, near_m: float, far_m: float
) -> tuple[NDArrayFloat, NDArrayFloat, NDArrayInt]:
    """u, v px and depth of the two ends of the segments ``index`` (S, 2) into ``points_cam`` (P, 3)
    (finite) that are not wholly nearer than ``near_m`` or farther than ``far_m``; returns
    (uvz0, uvz1, the kept segments' numbers). Each point is projected once (segments share ends)."""
    points = np.ascontiguousarray(points_cam, np.float64)
    ends = np.ascontiguousarray(index, np.int64)
    return ftheta_kernel.project_segment_ends(points, ends, float(near_m), float(far_m), *camera.kernel_params)
