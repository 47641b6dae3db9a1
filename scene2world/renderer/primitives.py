"""World-space primitives in NVIDIA's v3 look: polylines, patterns, polygons, cuboids (docs/world_scenario.md).

Everything here is vectorised numpy over stacked arrays: segments are ``(S, 2, 3)``, triangles
``(T, 3, 3)``, cuboid corners ``(M, 8, 3)``; per-vertex colours have the same leading shape.

- **Resampling** (:func:`resample_polyline`) is NVIDIA's ``interpolate_polyline_to_points``: per
  input segment ``n = max(int(len/interval), 2)`` points by ``linspace`` (float32), the last one
  dropped except at the very end.
- **Patterns** (:func:`apply_pattern`) cut the 0.05 m segments of lane lines: long dash 3 m on /
  9 m off (clipped exactly), short dash 1.5/1.5 (whole segments only), dot-dash, dotted 1-in-10;
  dual lines are two copies offset ±0.1 m (:func:`offset_segments`).
- **Polygons** (:func:`triangulate_ring`): Delaunay of the resampled outline (= convex hull fill).
- **Cuboids** (:func:`cuboid_corners`, :data:`BOX_FACES`, :data:`BOX_EDGES`, :data:`SIGN_FACES`,
  :data:`LIGHT_LOOP`): NVIDIA's corner, face and edge orders; traffic-light loops become fans
  (:func:`fan_triangles`).

How they become pixels: :mod:`scene2world.renderer.meshes` (projection, then
:mod:`~scene2world.renderer.lines` for lines and :mod:`~scene2world.renderer.clipping` for the
``fixed`` look).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import Delaunay, QhullError

from scene2world.errors import RenderError
from scene2world.renderer.arrays import as_array, check_finite, ragged_arange
from scene2world.renderer.style import (
    DOT_DASH_GAP_FT,
    DOT_DASH_RUN_FT,
    DOTTED_EVERY,
    LANE_LINE_RESAMPLE_M,
    LONG_DASH_OFF_M,
    LONG_DASH_ON_M,
    SHORT_DASH_OFF_M,
    SHORT_DASH_ON_M,
)
from scene2world.typing import NDArrayBool, NDArrayFloat, NDArrayInt

BOX_FACES: NDArrayInt = np.array(
    [[0, 1, 5], [0, 4, 5], [2, 3, 7], [2, 6, 7], [0, 2, 3], [0, 1, 2],
     [4, 6, 7], [4, 5, 6], [0, 4, 7], [0, 3, 7], [1, 5, 6], [1, 2, 6]]
)  # fmt: skip
"""Dynamic-box triangles over :func:`cuboid_corners` (NVIDIA ``ALL_FACE_INDICES``)."""

SIGN_FACES: NDArrayInt = np.array(
    [[0, 1, 2], [0, 2, 3], [4, 5, 6], [4, 6, 7], [0, 1, 5], [0, 5, 4],
     [1, 2, 6], [1, 6, 5], [2, 3, 7], [2, 7, 6], [3, 0, 4], [3, 4, 7]]
)  # fmt: skip
"""Traffic-sign triangles (NVIDIA's static-map cuboid faces)."""

BOX_EDGES: NDArrayInt = np.array(
    [[0, 1], [1, 2], [2, 3], [3, 0], [4, 5], [5, 6], [6, 7], [7, 4], [0, 4], [1, 5], [2, 6], [3, 7]]
)
"""Cuboid edges (NVIDIA ``EDGE_INDICES``)."""

BOX_FRONT_CORNERS: NDArrayInt = np.array([0, 1, 4, 5])
"""Corners on the heading side (+x); they take a box palette's first colour."""

LIGHT_LOOP: NDArrayInt = np.array([0, 1, 2, 3, 0, 4, 5, 6, 7, 4, 5, 1, 2, 6, 7, 3])
"""Traffic-light corner loop, drawn as a triangle fan around its first point."""

CORNER_SIGNS: NDArrayFloat = np.array(
    [[1, 1, 1], [1, -1, 1], [-1, -1, 1], [-1, 1, 1], [1, 1, -1], [1, -1, -1], [-1, -1, -1], [-1, 1, -1]],
    dtype=np.float64,
)
"""Corner k of a cuboid = centre + CORNER_SIGNS[k] · lwh / 2 in the object frame (x heading, z up)."""


# --------------------------------------------------------------------------- polylines


def resample_polyline(points: NDArrayFloat, interval_m: float) -> np.ndarray:
    """NVIDIA's ``interpolate_polyline_to_points`` (float32, like its callers).

    Args:
        points: (N, 3) vertices, metres (any frame). N = 0 or 1 is returned unchanged.
        interval_m: target spacing; each input segment gets ``max(int(len/interval), 2)`` points.

    Returns:
        (M, 3) float32 points; consecutive segments share their end points, the last input point
        closes the list. Spacing is ``len/(n − 1)``, slightly above the interval.
    """
    p = as_array(points, "points", (3,), np.float32)
    if len(p) < 2:
        return p.copy()
    a, b = p[:-1], p[1:]
    length = np.linalg.norm(b - a, axis=1)
    n = np.maximum((length / np.float32(interval_m)).astype(np.int64), 2)
    k = ragged_arange(n - 1)
    seg = np.repeat(np.arange(len(a)), n - 1)
    step = (b - a) / (n - 1)[:, None].astype(np.float32)
    out = k.astype(np.float32)[:, None] * step[seg] + a[seg]
    return np.concatenate([out, p[-1:]]).astype(np.float32)


def polyline_segments(points: NDArrayFloat) -> np.ndarray:
    """(N, 3) polyline -> (N−1, 2, 3) segments (same dtype); N < 2 gives (0, 2, 3)."""
    p = np.asarray(points)
    if len(p) < 2:
        return np.zeros((0, 2, 3), dtype=p.dtype if p.size else np.float32)
    return np.stack([p[:-1], p[1:]], axis=1)


def _cumulative(segments: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Segment lengths and the cumulative arc length at each segment start/end, float32 like NVIDIA."""
    seg32 = segments.astype(np.float32)
    length = np.linalg.norm(seg32[:, 1] - seg32[:, 0], axis=1)
    cum = np.concatenate([np.zeros(1, np.float32), np.cumsum(length, dtype=np.float32)])
    return length, cum


def _long_dashed(segments: np.ndarray) -> np.ndarray:
    """Dashes [12k, 12k + 3] m of arc length; boundary segments clipped to the dash."""
    length, cum = _cumulative(segments)
    total = float(cum[-1])
    period = LONG_DASH_ON_M + LONG_DASH_OFF_M
    starts = np.arange(0.0, total, period) if total > 0 else np.zeros(0)
    if len(starts) == 0:
        return np.zeros((0, 2, 3), np.float32)
    s0, s1 = cum[:-1].astype(np.float64), cum[1:].astype(np.float64)
    d0 = starts[:, None]
    d1 = np.minimum(d0 + LONG_DASH_ON_M, total)
    overlap = (s1[None] > d0) & (s0[None] < d1)
    di, si = np.nonzero(overlap)  # ordered by dash, then by segment
    lo = np.maximum(s0[si], d0[di, 0])
    hi = np.minimum(s1[si], d1[di, 0])
    with np.errstate(invalid="ignore", divide="ignore"):
        t0 = np.where(lo > s0[si], (lo - s0[si]) / length[si], 0.0)
        t1 = np.where(hi < s1[si], (hi - s0[si]) / length[si], 1.0)
    a, b = segments[si, 0].astype(np.float64), segments[si, 1].astype(np.float64)
    out = np.stack([a + t0[:, None] * (b - a), a + t1[:, None] * (b - a)], axis=1)
    return out.astype(np.float32)


def _short_dashed(segments: np.ndarray) -> np.ndarray:
    """Whole segments lying inside [3k, 3k + 1.5] m of arc length."""
    _, cum = _cumulative(segments)
    total = float(cum[-1])
    period = SHORT_DASH_ON_M + SHORT_DASH_OFF_M
    if total <= 0:
        return np.zeros((0, 2, 3), np.float32)
    s0, s1 = cum[:-1].astype(np.float64), cum[1:].astype(np.float64)
    k = np.floor(s0 / period)
    d0 = k * period
    d1 = np.minimum(d0 + SHORT_DASH_ON_M, total)
    keep = (s0 >= d0) & (s1 <= d1) & (d0 < total)
    return segments[keep].astype(np.float32)


def _dot_dashed(segments: np.ndarray) -> np.ndarray:
    """Every 3rd segment within runs of int(3 ft/0.05 m) segments, then int(9 ft/0.05 m) skipped."""
    run = max(1, int(DOT_DASH_RUN_FT * 0.3048 / LANE_LINE_RESAMPLE_M))
    gap = max(1, int(DOT_DASH_GAP_FT * 0.3048 / LANE_LINE_RESAMPLE_M))
    if len(segments) <= run:
        return segments[::3].astype(np.float32)
    j = np.arange(len(segments)) % (run + gap)
    return segments[(j < run) & (j % 3 == 0)].astype(np.float32)


def apply_pattern(segments: NDArrayFloat, pattern: str) -> np.ndarray:
    """Cut NVIDIA's dash ``pattern`` out of consecutive segments of one polyline.

    Args:
        segments: (S, 2, 3) consecutive segments (end of one = start of the next), metres.
        pattern: ``solid``, ``long_dashed``, ``short_dashed``, ``dot_dashed`` or ``dotted_1_9``;
            anything else is drawn solid (NVIDIA's fallback).

    Returns:
        (K, 2, 3) float32 kept (and, for ``long_dashed``, clipped) segments in order.
    """
    seg = np.asarray(segments, dtype=np.float32).reshape(-1, 2, 3)
    check_finite(seg, "segments")
    if len(seg) == 0:
        return seg
    if pattern == "long_dashed":
        return _long_dashed(seg)
    if pattern == "short_dashed":
        return _short_dashed(seg)
    if pattern == "dot_dashed":
        return _dot_dashed(seg)
    if pattern == "dotted_1_9":
        return seg[::DOTTED_EVERY]
    return seg


def offset_segments(segments: NDArrayFloat, offset_m: float, clipgt_rdf: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Left and right copies of each segment for dual lane lines (NVIDIA ``offset_line_segments``).

    The offset is ``(−d_y, d_x, 0)·offset_m`` with ``d`` the unit 3-D direction of the segment
    (left = 90° counter-clockwise seen from above in FLU). With ``clipgt_rdf`` the offset is computed
    the way NVIDIA's ClipGT path does, in its RDF world (x right, y down, z forward): expressed
    back in FLU it is ``(0, −d_z, d_y)·offset_m``, i.e. zero for a flat line (the copies collapse).
    Zero-length segments are copied unchanged.
    """
    seg = np.asarray(segments, dtype=np.float64).reshape(-1, 2, 3)
    check_finite(seg, "segments")
    d = seg[:, 1] - seg[:, 0]
    norm = np.linalg.norm(d, axis=1, keepdims=True)
    d = np.divide(d, norm, out=np.zeros_like(d), where=norm > 0)
    if clipgt_rdf:
        perp = np.stack([np.zeros(len(d)), -d[:, 2], d[:, 1]], axis=1)
    else:
        perp = np.stack([-d[:, 1], d[:, 0], np.zeros(len(d))], axis=1)
    off = (perp * offset_m)[:, None, :]
    return (seg + off).astype(np.float32), (seg - off).astype(np.float32)


# --------------------------------------------------------------------------- polygons


def polygon_outline(points: NDArrayFloat, interval_m: float, close_ring: bool = False) -> np.ndarray:
    """The resampled outline NVIDIA triangulates (docs/world_scenario.md, "How NVIDIA draws": polygons, rings).

    The ring is resampled as an *open* polyline (a stored ring without its first vertex repeated
    gets no points on its closing edge); a last point equal (allclose) to the first is dropped.
    ``close_ring`` (``fixed`` look) repeats the first vertex first, so every edge is densified.
    """
    p = as_array(points, "points", (3,), np.float32)
    if close_ring and len(p) >= 3 and not np.allclose(p[0], p[-1]):
        p = np.concatenate([p, p[:1]])
    out = resample_polyline(p, interval_m).astype(np.float64)
    if len(out) >= 2 and np.allclose(out[0], out[-1]):
        out = out[:-1]
    return out


def triangulate_ring(outline: NDArrayFloat, plane: str = "xy", inside_only: bool = False) -> NDArrayFloat:
    """Delaunay triangles of a resampled outline (NVIDIA ``triangulate_polygon_3d``).

    Args:
        outline: (N, 3) outline points (FLU world), see :func:`polygon_outline`.
        plane: ``"xy"`` triangulates the ground plane (FLU x-y, RDS-HQ path); ``"rdf_xy"`` NVIDIA's
            ClipGT path, whose world x-y plane is FLU (−y, −z).
        inside_only: keep only triangles whose centroid is inside the outline (``fixed`` look:
            concave polygons are not filled to their convex hull).

    Returns:
        (T, 3, 3) float64 triangles in Qhull's simplex order; (0, 3, 3) when there are fewer than
        3 points or the points are degenerate in ``plane`` (NVIDIA crashes there: QhullError).
    """
    p = as_array(outline, "outline", (3,))
    if len(p) < 3:
        return np.zeros((0, 3, 3))
    xy = p[:, :2] if plane == "xy" else np.stack([-p[:, 1], -p[:, 2]], axis=1)
    try:
        simplices = Delaunay(xy).simplices
    except (QhullError, ValueError):
        return np.zeros((0, 3, 3))
    tris = p[simplices]
    if inside_only and len(tris):
        centroids = tris[:, :, :2].mean(axis=1)
        tris = tris[points_in_polygon(centroids, p[:, :2])]
    return tris


def points_in_polygon(points_xy: NDArrayFloat, ring_xy: NDArrayFloat) -> NDArrayBool:
    """Even-odd test of (P, 2) points against a closed (N, 2) ring (closing edge implied)."""
    q = np.asarray(points_xy, dtype=np.float64)
    a = np.asarray(ring_xy, dtype=np.float64)
    b = np.roll(a, -1, axis=0)
    x, y = q[:, None, 0], q[:, None, 1]
    crosses = (a[None, :, 1] > y) != (b[None, :, 1] > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_at = a[None, :, 0] + (y - a[None, :, 1]) * (b[None, :, 0] - a[None, :, 0]) / (b[None, :, 1] - a[None, :, 1])
    return (np.count_nonzero(crosses & (x < x_at), axis=1) % 2) == 1


# --------------------------------------------------------------------------- cuboids


def cuboid_corners(world_SE3_obj: NDArrayFloat, lwh_m: NDArrayFloat) -> NDArrayFloat:
    """Corners of oriented boxes in NVIDIA's order (docs/world_scenario.md, "How NVIDIA draws").

    Args:
        world_SE3_obj: (M, 4, 4) object(x heading, y left, z up)->world poses.
        lwh_m: (M, 3) length, width, height, metres.

    Returns:
        (M, 8, 3) corners in the world frame.
    """
    poses = np.asarray(world_SE3_obj, dtype=np.float64).reshape(-1, 4, 4)
    lwh = np.asarray(lwh_m, dtype=np.float64).reshape(-1, 3)
    if len(poses) != len(lwh):
        raise RenderError(f"`world_SE3_obj` ({len(poses)}) and `lwh_m` ({len(lwh)}) must have one row per box")
    check_finite(poses, "world_SE3_obj")
    check_finite(lwh, "lwh_m")
    local = CORNER_SIGNS[None] * (lwh[:, None, :] / 2)
    return np.einsum("mij,mkj->mki", poses[:, :3, :3], local) + poses[:, None, :3, 3]


def box_vertex_colors(front_rgb: NDArrayFloat, back_rgb: NDArrayFloat) -> NDArrayFloat:
    """(M, 8, 3) per-corner colours: corners 0, 1, 4, 5 front, 2, 3, 6, 7 back (0..1)."""
    front = np.asarray(front_rgb, dtype=np.float64).reshape(-1, 3)
    back = np.asarray(back_rgb, dtype=np.float64).reshape(-1, 3)
    out = np.repeat(back[:, None, :], 8, axis=1)
    out[:, BOX_FRONT_CORNERS] = front[:, None, :]
    return out


def nvidia_box_visible(corners_cam: NDArrayFloat, uv: NDArrayFloat, width_px: int, height_px: int) -> NDArrayBool:
    """NVIDIA's box culling: keep a box when at least one corner is in front (z > 0) AND inside the image.

    Args:
        corners_cam: (M, 8, 3) corners in the camera frame, metres.
        uv: (M, 8, 2) their pixels.
        width_px: image width.
        height_px: image height.

    Returns:
        (M,) keep mask. (NVIDIA first drops boxes with every corner behind the camera plane, which
        this test implies.) Large near boxes whose corners are all off-image are dropped (quirk).
    """
    z = corners_cam[..., 2]
    inside = (uv[..., 0] >= 0) & (uv[..., 0] < width_px) & (uv[..., 1] >= 0) & (uv[..., 1] < height_px)
    return np.any(inside & (z > 0), axis=1)


def fan_triangles(loops: NDArrayFloat) -> NDArrayFloat:
    """(L, K, 3) point loops -> (L·(K−2), 3, 3) triangle fan around each loop's first point."""
    p = np.asarray(loops, dtype=np.float64)
    k = p.shape[1]
    i = np.arange(1, k - 1)
    tris = np.stack([np.repeat(p[:, :1], k - 2, axis=1), p[:, i], p[:, i + 1]], axis=2)
    return tris.reshape(-1, 3, 3)
