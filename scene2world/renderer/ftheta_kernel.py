"""NVIDIA's f-theta projection (docs/ftheta.md) compiled by numba, one point at a time.

:meth:`scene2world.renderer.camera.FThetaCamera.project` and the static lines' per-frame
projection (:func:`project_segment_ends`) both go through :func:`_pixel`, so every pixel position
of a frame comes from the same arithmetic: ``ρ = hypot(x, y)``, ``α = atan2(ρ, z)`` (libm's),
``r(α)`` by Horner (lowest order first) up to ``α_max`` and linear past it, then
``[u, v] = A·(x, y)·r/ρ + (c_x, c_y)`` written out (no BLAS, whose kernels round differently from
machine to machine). Why compiled: on a GPU machine the numpy projection, with the filtering and
gathering of the static lines' points around it, cost about a third of a camera-frame's geometry
(docs/speed.md).

``params`` is the camera's float64 array [α_max, r(α_max), r'(α_max), A00, A01, A10, A11, c_x, c_y]
(``FThetaCamera.kernel_params``); ``fw`` its forward polynomial.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(inline="always")
def _pixel(x: float, y: float, z: float, fw: np.ndarray, params: np.ndarray) -> tuple[float, float]:
    a_max = params[0]
    rho = math.hypot(x, y)
    alpha = math.atan2(rho, z)
    if alpha <= a_max:
        delta = 0.0
        for k in range(fw.shape[0] - 1, -1, -1):
            delta = delta * alpha + fw[k]
    else:
        delta = params[1] + (alpha - a_max) * params[2]
    scale = 0.0 if rho <= 0.0 else delta / rho
    xs, ys = x * scale, y * scale
    return (params[3] * xs + params[4] * ys) + params[7], (params[5] * xs + params[6] * ys) + params[8]


@njit(cache=True, nogil=True)
def project_points(points: np.ndarray, fw: np.ndarray, params: np.ndarray) -> np.ndarray:
    """(N, 2) pixels of (N, 3) finite camera-frame points (C-contiguous float64)."""
    uv = np.empty((points.shape[0], 2))
    for i in range(points.shape[0]):
        uv[i, 0], uv[i, 1] = _pixel(points[i, 0], points[i, 1], points[i, 2], fw, params)
    return uv


@njit(cache=True, nogil=True)
def project_segment_ends(
    points: np.ndarray, index: np.ndarray, near: float, far: float, fw: np.ndarray, params: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixels and depth of the ends of the segments ``index`` (S, 2) int64 into ``points`` (P, 3)
    (finite, C-contiguous float64) not wholly nearer than ``near`` or farther than ``far``: uvz0
    and uvz1 (m, 3), each point projected once, and the kept segments' numbers (m,), increasing."""
    n_points, n_segments = points.shape[0], index.shape[0]
    uv = np.empty((n_points, 2))
    done = np.zeros(n_points, np.bool_)
    shown = np.empty(n_segments, np.int64)
    m = 0
    for s in range(n_segments):
        z0, z1 = points[index[s, 0], 2], points[index[s, 1], 2]
        if (z0 < near and z1 < near) or (z0 > far and z1 > far):
            continue
        shown[m] = s
        m += 1
        for end in range(2):
            i = index[s, end]
            if not done[i]:
                uv[i, 0], uv[i, 1] = _pixel(points[i, 0], points[i, 1], points[i, 2], fw, params)
                done[i] = True
    uvz0 = np.empty((m, 3))
    uvz1 = np.empty((m, 3))
    for r in range(m):
        s = shown[r]
        i, j = index[s, 0], index[s, 1]
        uvz0[r, 0], uvz0[r, 1], uvz0[r, 2] = uv[i, 0], uv[i, 1], points[i, 2]
        uvz1[r, 0], uvz1[r, 1], uvz1[r, 2] = uv[j, 0], uv[j, 1], points[j, 2]
    return uvz0, uvz1, shown[:m]
