"""NVIDIA's f-theta camera model (docs/ftheta.md): numpy, the projection compiled (``ftheta_kernel``).

A camera is built from the scene's :class:`~scene2world.scene.model.FThetaIntrinsics` (native
sensor size) and rescaled to the output size exactly as NVIDIA's loaders do:

1. the reference polynomial (backward θ(r) when ``is_bw_poly``, else forward r(θ)) is cast to
   float32 (NVIDIA parses it as float32);
2. rescale: ``W' = int(W·rw)``, ``H' = int(H·rh)`` with ``rw = W_out/W``, ``rh = H_out/H``;
   ``cx' = cx·rw``, ``cy' = cy·rh``; with ``s = √(rw·rh)`` backward coefficients ``k_i·s^−i``,
   forward coefficients ``k_i·s``;
3. the missing polynomial is fitted by least squares, degree 5, on 500 samples, constant term 0,
   coefficients cast to float32: r(θ) on r ∈ linspace(0, r_max) for a backward reference,
   θ(r) on θ ∈ linspace(0, α_fit) for a forward one (α_fit: the last of 2000 steps over (0, π]
   with r'(α) > 0, stopping after r(α) > r_max); ``r_max`` = distance from the principal point to
   the farthest image border corner;
4. ``α_max`` = largest ray angle of the four corner pixels (0,0), (W−1,0), (0,H−1), (W−1,H−1);
   past it r(θ) is extended linearly with slope r'(α_max).

A forward polynomial whose slope is not positive on [0, α_max] cannot be inverted:
:class:`~scene2world.errors.RenderError` naming the camera (NVIDIA raises ArithmeticError).

Projection follows NVIDIA, including for points behind the camera (finite, usually far-off
pixels; points on the optical axis map to the principal point). Rejection of such points is the
caller's business (depth test / clipping).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from scene2world.config import VIDEO_HEIGHT_PX, VIDEO_WIDTH_PX
from scene2world.errors import RenderError
from scene2world.renderer.ftheta_kernel import project_points
from scene2world.scene.model import FThetaIntrinsics
from scene2world.typing import NDArrayFloat

FIT_SAMPLES = 500
FIT_DEGREE = 5
FW_DOMAIN_STEPS = 2000


def _polyval(coeffs: np.ndarray, x: np.ndarray) -> NDArrayFloat:
    """Σ coeffs[i]·x^i (lowest order first), Horner, float64."""
    out = np.zeros_like(x, dtype=np.float64)
    for c in coeffs[::-1]:
        out = out * x + c
    return out


def _polyder(coeffs: np.ndarray) -> np.ndarray:
    return coeffs[1:] * np.arange(1, len(coeffs))


def fit_inverse_polynomial(coeffs: NDArrayFloat, range_max: float) -> NDArrayFloat:
    """Least-squares inverse of ``coeffs`` on [0, range_max] (NVIDIA's ``approximate_polynomial_inverse``).

    Samples y ∈ linspace(0, range_max, 500), x = poly(y) in float64, fits y ≈ Σ_{i=1..5} a_i·x^i
    (constant fixed at 0) and returns (6,) coefficients rounded to float32 (stored as float64).
    """
    y = np.linspace(0.0, range_max, FIT_SAMPLES)
    x = _polyval(np.asarray(coeffs, dtype=np.float64), y)
    design = x[:, None] ** np.arange(1, FIT_DEGREE + 1)
    scale = np.abs(design).max(axis=0)
    scale[scale == 0] = 1.0
    sol, *_ = np.linalg.lstsq(design / scale, y, rcond=None)
    out = np.zeros(FIT_DEGREE + 1)
    out[1:] = (sol / scale).astype(np.float32)
    return out


def _fw_domain_max_angle(fw_poly: NDArrayFloat, r_max: float) -> float:
    """Last angle of 2000 steps over (0, π] where r'(α) > 0, stopping after r(α) > r_max."""
    angles = np.arange(1, FW_DOMAIN_STEPS + 1) * (np.pi / FW_DOMAIN_STEPS)
    r = _polyval(fw_poly, angles)
    dr = _polyval(_polyder(fw_poly), angles)
    bad = np.flatnonzero(dr <= 0.0)
    stop = bad[0] if len(bad) else len(angles)  # first index not accepted
    past = np.flatnonzero(r[:stop] > r_max)
    if len(past):
        return float(angles[past[0]])
    return float(angles[stop - 1]) if stop > 0 else 0.0


@dataclass(frozen=True, eq=False)
class FThetaCamera:
    """An f-theta camera at its output resolution.

    ``bw_poly`` (6,): θ(r) radians from pixel distance; ``fw_poly`` (6,): r(θ) pixels from angle
    (lowest order first). ``linear_cde``: A = [[c, d], [e, 1]]. ``max_ray_angle_rad``: α_max;
    ``max_ray_distortion``: (r(α_max), r'(α_max)).
    """

    name: str
    cx_px: float
    cy_px: float
    width_px: int
    height_px: int
    bw_poly: NDArrayFloat
    fw_poly: NDArrayFloat
    linear_cde: NDArrayFloat
    max_ray_angle_rad: float
    max_ray_distortion: NDArrayFloat

    @classmethod
    def from_intrinsics(
        cls,
        intrinsics: FThetaIntrinsics,
        name: str = "",
        width_px: int = VIDEO_WIDTH_PX,
        height_px: int = VIDEO_HEIGHT_PX,
    ) -> FThetaCamera:
        """Rescale native ``intrinsics`` to ``width_px`` x ``height_px`` and fit the missing polynomial.

        Raises:
            RenderError: the forward polynomial is not increasing over the image (names ``name``).
        """
        rw = width_px / intrinsics.width_px
        rh = height_px / intrinsics.height_px
        width, height = int(intrinsics.width_px * rw), int(intrinsics.height_px * rh)
        cx = float(np.float32(np.float32(intrinsics.cx_px) * rw))
        cy = float(np.float32(np.float32(intrinsics.cy_px) * rh))
        s = np.sqrt(rw * rh)
        ref = np.asarray(intrinsics.poly_coeffs, dtype=np.float32).astype(np.float64)
        r_max = float(np.hypot(max(cx, width - cx), max(cy, height - cy)))
        if intrinsics.is_bw_poly:
            bw = (ref * s ** -np.arange(len(ref), dtype=np.float64)).astype(np.float32).astype(np.float64)
            fw = fit_inverse_polynomial(bw, r_max)
        else:
            fw = (ref * s).astype(np.float32).astype(np.float64)
            alpha_fit = _fw_domain_max_angle(fw, r_max)
            if alpha_fit <= 0.0:
                raise RenderError(
                    f"camera {name!r}: the forward f-theta polynomial {ref.tolist()} is not increasing at 0; "
                    "it cannot map angles to pixels"
                )
            bw = fit_inverse_polynomial(fw, alpha_fit)
        cde = np.asarray(intrinsics.linear_cde, dtype=np.float64)
        if abs(cde[0] - cde[1] * cde[2]) < 1e-12:
            raise RenderError(f"camera {name!r}: linear terms c, d, e = {cde.tolist()} give a singular A")
        cam = cls(name, cx, cy, width, height, bw, fw, cde, 0.0, np.zeros(2))
        corners = np.array([[0, 0], [width - 1, 0], [0, height - 1], [width - 1, height - 1]], dtype=np.float64)
        rays = cam.backproject(corners)
        alpha_max = float(np.max(np.arctan2(np.linalg.norm(rays[:, :2], axis=1), rays[:, 2])))
        dfw = _polyder(fw)
        probe = np.linspace(0.0, alpha_max, 512)
        slope = _polyval(dfw, probe)
        if np.any(slope <= 0.0):
            bad = float(np.degrees(probe[np.flatnonzero(slope <= 0.0)[0]]))
            raise RenderError(
                f"camera {name!r}: the f-theta polynomial is not monotonic inside the image (slope of r(θ) "
                f"<= 0 at θ = {bad:.2f}° < α_max = {np.degrees(alpha_max):.2f}°); check its intrinsics"
            )
        distortion = np.array([_polyval(fw, np.array(alpha_max)), _polyval(dfw, np.array(alpha_max))], dtype=np.float64)
        object.__setattr__(cam, "max_ray_angle_rad", alpha_max)
        object.__setattr__(cam, "max_ray_distortion", distortion)
        for arr in (bw, fw, cde, distortion):
            arr.setflags(write=False)
        return cam

    @cached_property
    def A(self) -> NDArrayFloat:
        """(2, 2) affine matrix [[c, d], [e, 1]] (applied after the radial mapping)."""
        c, d, e = self.linear_cde
        return np.array([[c, d], [e, 1.0]])

    @cached_property
    def fov_deg(self) -> tuple[float, float]:
        """(horizontal, vertical) field of view in degrees through the principal point."""
        w, h = self.width_px - 1, self.height_px - 1
        pts = np.array([[0, self.cy_px], [w, self.cy_px], [self.cx_px, 0], [self.cx_px, h]])
        rays = self.backproject(pts)
        ang = np.degrees(np.arctan2(np.linalg.norm(rays[:, :2], axis=1), rays[:, 2]))
        return float(ang[0] + ang[1]), float(ang[2] + ang[3])

    def project(self, points_cam: NDArrayFloat) -> tuple[NDArrayFloat, NDArrayFloat]:
        """Project camera-frame points to pixels.

        Args:
            points_cam: (N, 3) points in the camera frame (OpenCV: x right, y down, z forward), metres.

        Returns:
            uv: (N, 2) pixel coordinates (u right, v down), float64; finite for every finite point,
                also behind the camera (NVIDIA's linear extrapolation past α_max).
            depth: (N,) camera-frame z in metres (forward distance; negative behind the camera).
        """
        p = np.asarray(points_cam, dtype=np.float64)
        if p.ndim != 2 or p.shape[1] != 3:
            raise RenderError(f"`points_cam` must be (N, 3), got {p.shape}")
        if p.size and not np.isfinite(p).all():
            raise RenderError(f"camera {self.name!r}: `points_cam` holds NaN or infinite values")
        return project_points(np.ascontiguousarray(p), *self.kernel_params), p[:, 2].copy()

    @cached_property
    def kernel_params(self) -> tuple[NDArrayFloat, NDArrayFloat]:
        """(fw_poly, [α_max, r(α_max), r'(α_max), A00, A01, A10, A11, c_x, c_y]): this camera for the
        compiled projection (renderer/ftheta_kernel.py), which does the projection's arithmetic."""
        (a00, a01), (a10, a11) = self.A
        distortion = self.max_ray_distortion
        params = [self.max_ray_angle_rad, distortion[0], distortion[1], a00, a01, a10, a11, self.cx_px, self.cy_px]
        return np.array(self.fw_poly, dtype=np.float64), np.array(params, dtype=np.float64)

    def backproject(self, uv: NDArrayFloat) -> NDArrayFloat:
        """Unit rays of pixels.

        Args:
            uv: (N, 2) pixel coordinates (u right, v down).

        Returns:
            (N, 3) rays in the camera frame (OpenCV axes); the principal point gives (0, 0, 1).
        """
        uv = np.asarray(uv, dtype=np.float64)
        if uv.ndim != 2 or uv.shape[1] != 2:
            raise RenderError(f"`uv` must be (N, 2), got {uv.shape}")
        c, d, e = self.linear_cde
        inv_a = np.array([[1.0, -d], [-e, c]]) / (c - e * d)
        xd = (uv - np.array([self.cx_px, self.cy_px])) @ inv_a.T
        r = np.linalg.norm(xd, axis=1)
        theta = _polyval(self.bw_poly, r)
        valid = r > np.finfo(np.float32).eps
        safe_r = np.where(valid, r, 1.0)
        rays = np.empty((len(uv), 3))
        rays[:, :2] = np.where(valid[:, None], np.sin(theta)[:, None] * xd / safe_r[:, None], 0.0)
        rays[:, 2] = np.where(valid, np.cos(theta), 1.0)
        return rays
