"""Map and object primitives -> pixel-space triangle meshes (NVIDIA's v3 look, docs/world_scenario.md).

Everything here is vectorised numpy over stacked arrays: segments are ``(S, 2, 3)``, triangles
``(T, 3, 3)``, cuboid corners ``(M, 8, 3)``; per-vertex colours have the same leading shape.

- **Resampling** (:func:`resample_polyline`) is NVIDIA's ``interpolate_polyline_to_points``: per
  input segment ``n = max(int(len/interval), 2)`` points by ``linspace`` (float32), the last one
  dropped except at the very end.
- **Patterns** (:func:`apply_pattern`) cut the 0.05 m segments of lane lines: long dash 3 m on /
  9 m off (clipped exactly), short dash 1.5/1.5 (whole segments only), dot-dash, dotted 1-in-10;
  dual lines are two copies offset ±0.1 m (:func:`offset_segments`).
- **Lines** (:func:`expand_lines`) are NVIDIA's geometry shader on the CPU: a quad of width
  ``L·clamp(1 − z̄/200)`` built in NDC (so ``L`` px for vertical lines and ``L·H/W`` px for
  horizontal ones) plus a half-disc cap of 8 fan triangles at each end. Along chains of
  segments most caps change nothing or can be replaced by a few *lofts*; :func:`line_plan`
  leaves them out (``cull_caps``, on by default: about 1.8x fewer triangles, same picture).
- **Polygons** (:func:`triangulate_ring`): Delaunay of the resampled outline (= convex hull fill).
- **Cuboids** (:func:`cuboid_corners`, :data:`BOX_FACES`, :data:`BOX_EDGES`, :data:`SIGN_FACES`,
  :data:`LIGHT_LOOP`): NVIDIA's corner, face and edge orders.
- **Near clipping / subdivision** (``fixed`` look only): :func:`clip_segments_near`,
  :func:`clip_triangles_near`, :func:`subdivide_segments`, :func:`subdivide_triangles`. The
  ``nvidia`` look sends NVIDIA's chords unclipped and lets the rasteriser clip by screen-linear
  depth, as NVIDIA does.
"""

from __future__ import annotations

from functools import cache
from typing import NamedTuple

import numpy as np
from scipy.spatial import Delaunay, QhullError

from scene2world.errors import RenderError
from scene2world.renderer.batch import FAR_CLIP_M, NEAR_CLIP_M, DrawBatch
from scene2world.renderer.camera import FThetaCamera
from scene2world.renderer.style import (
    DOT_DASH_GAP_FT,
    DOT_DASH_RUN_FT,
    DOTTED_EVERY,
    FAR_M,
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

CAP_SEGMENTS = 8
_GLSL_PI = 3.1415926  # the constant of NVIDIA's shader (caps are not exactly half discs)

FIXED_NEAR_M = 0.05
"""``fixed`` look: geometry is clipped in 3D at this camera depth before projection."""

MAX_CHORD_ERROR_PX = 0.5
"""``fixed`` look: segments and triangles are split until their projected chords deviate less."""

MAX_SUBDIVISION = 32
"""Most pieces one subdivision pass splits a segment (or a triangle edge) into."""

SUBDIVISION_PASSES = 3


def _check_finite(arr: np.ndarray, name: str) -> None:
    if arr.size and not np.isfinite(arr).all():
        raise RenderError(f"`{name}` holds NaN or infinite values (shape {arr.shape})")


def _as(arr: object, name: str, tail: tuple[int, ...], dtype: type = np.float64) -> np.ndarray:
    out: np.ndarray = np.asarray(arr, dtype=dtype)
    if out.ndim != len(tail) + 1 or out.shape[1:] != tail:
        want = "(N, " + ", ".join(map(str, tail)) + ")"
        raise RenderError(f"`{name}` must be {want}, got {out.shape}")
    _check_finite(out, name)
    return out


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
    p = _as(points, "points", (3,), np.float32)
    if len(p) < 2:
        return p.copy()
    a, b = p[:-1], p[1:]
    length = np.linalg.norm(b - a, axis=1)
    n = np.maximum((length / np.float32(interval_m)).astype(np.int64), 2)
    k = _ragged_arange(n - 1)
    seg = np.repeat(np.arange(len(a)), n - 1)
    step = (b - a) / (n - 1)[:, None].astype(np.float32)
    out = k.astype(np.float32)[:, None] * step[seg] + a[seg]
    return np.concatenate([out, p[-1:]]).astype(np.float32)


def _ragged_arange(counts: NDArrayInt) -> NDArrayInt:
    """concatenate([arange(c) for c in counts]) without a Python loop."""
    counts = np.asarray(counts, dtype=np.int64)
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    return np.arange(total) - starts


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
    _check_finite(seg, "segments")
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
    _check_finite(seg, "segments")
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
    p = _as(points, "points", (3,), np.float32)
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
    p = _as(outline, "outline", (3,))
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
    _check_finite(poses, "world_SE3_obj")
    _check_finite(lwh, "lwh_m")
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


# --------------------------------------------------------------------------- projection helpers


def depth_fade(depth_m: NDArrayFloat) -> NDArrayFloat:
    """NVIDIA's colour factor clamp(1 − depth/200, 0, 1)."""
    return np.clip(1.0 - np.asarray(depth_m, dtype=np.float64) / FAR_M, 0.0, 1.0)


def transform_points(cam_SE3_world: NDArrayFloat, points_world: NDArrayFloat) -> NDArrayFloat:
    """Apply a (4, 4) transform to (..., 3) points."""
    m = np.asarray(cam_SE3_world, dtype=np.float64)
    p = np.asarray(points_world, dtype=np.float64)
    return p @ m[:3, :3].T + m[:3, 3]


def _project_uvz(camera: FThetaCamera, points_cam: NDArrayFloat) -> NDArrayFloat:
    flat = points_cam.reshape(-1, 3)
    uv, depth = camera.project(flat)
    return np.concatenate([uv, depth[:, None]], axis=1).reshape(*points_cam.shape[:-1], 3)


# --------------------------------------------------------------------------- lines


@cache
def _cap_trig() -> tuple[NDArrayFloat, NDArrayFloat]:
    angle = np.arange(CAP_SEGMENTS + 1, dtype=np.float32) / np.float32(CAP_SEGMENTS) * np.float32(_GLSL_PI)
    return np.cos(angle).astype(np.float64), np.sin(angle).astype(np.float64)


@cache
def _line_faces_template() -> NDArrayInt:
    """Triangles of one expanded segment over its 24 vertices, in NVIDIA's emission order.

    Vertices: 0..3 quad (p0+o, p0−o, p1+o, p1−o); 4..13 cap at p0 (centre 4, rim 5..13);
    14..23 cap at p1 (centre 14, rim 15..23).
    """
    faces = [(0, 1, 2), (1, 2, 3)]
    for centre in (4, 14):
        faces += [(centre + 1 + i, centre + 2 + i, centre) for i in range(CAP_SEGMENTS)]
    return np.array(faces, dtype=np.int32)


@cache
def _line_vertex_weights() -> np.ndarray:
    """(4, 24) float32: vertex k of an expanded segment = Σ_j weights[j, k]·[start, end, n_off, d_off]_j.

    NVIDIA's shader: quad p0 ± n·w/2, p1 ± n·w/2; caps centre + ((cos a)·perp + (sin a)·dir)·w/2,
    a = iπ/8, with dir = −d, perp = −n at the start and dir = d, perp = n at the end. Vertex order
    as :func:`_line_faces_template`.
    """
    cos_a, sin_a = _cap_trig()
    zero = np.zeros(1)
    at_end = np.array([0, 0, 1, 1] + [0] * 10 + [1] * 10, dtype=np.float64)
    a_n = np.concatenate([[1.0, -1.0, 1.0, -1.0], zero, -cos_a, zero, cos_a])
    a_d = np.concatenate([np.zeros(4), zero, -sin_a, zero, sin_a])
    return np.stack([1.0 - at_end, at_end, a_n, a_d]).astype(np.float32)


CAP_FAN_TRIANGLES = CAP_SEGMENTS - 1
"""Triangles of a kept cap in the culled geometry: its 9 rim points fanned from the first."""


@cache
def _cap_rim_fan() -> NDArrayInt:
    """(7, 3) triangles over a cap's 9 rim points (0..8) covering the shader's half polygon.

    The shader's fan around the centre covers exactly the convex polygon of the rim points (the
    centre lies on the chord from rim 0 to rim 8), so the rim alone, fanned from its first point,
    covers the same samples with one triangle fewer; caps have one depth and one colour, so the
    triangulation does not change any pixel.
    """
    return np.array([(0, 1 + i, 2 + i) for i in range(CAP_FAN_TRIANGLES)], dtype=np.int32)


VERTICES_PER_SEGMENT = 24
TRIANGLES_PER_SEGMENT = 18
"""Triangles of a segment with both caps: quad 2, start cap 8, end cap 8 (:func:`_line_faces_template`)."""

CAP_CULL_MAX_BEND_RAD = 0.05
"""Line plan: largest NDC direction change at an open joint (one whose caps may be left out)."""

CAP_CULL_MAX_STEP_PX = 1.0 / 256.0
"""Line plan: largest half-width step (px) at an open joint (about the rasteriser's sub-pixel precision)."""

CAP_CULL_MIN_WEDGE_PX2 = 1e-4
"""Line plan: outer-side wedges (h²·θ/2, px²) smaller than this get no join triangle."""

LOFT_MAX_STEP = 0.05
"""Line plan: lofts replace the caps of joints at most this many cap radii apart (or this flat:
:data:`LOFT_MAX_DEPTH_STEP_M`), whose depth staircase a loft's ramp follows to within half a
joint's depth step. Measured on the bundled example (182 camera-frames at MSAA 4, against
``cull_caps=False``): 0 (with a negative :data:`LOFT_MAX_DEPTH_STEP_M`) keeps every winning cap;
0.03: 38.0k triangles per camera-frame, 20 pixels over 16/255 off in all; 0.05: 28.4k, 75 pixels
(2e-6 of the lit pixels, single MSAA samples where far lines of two colours cross); 0.1: 25.0k,
109 pixels. NVIDIA's full geometry has 81.7k. From 0.1 on, the 0.4 px steps of a line 8-40 m
away are lofted too, and a line crossing another on the ground loses some of the crossing's
samples (``test_culled_lines_win_the_same_depth_ties``); 0.05 keeps them exact. End to end on
the 2-core machine 0.1 would save about 1.5 s of 33."""

LOFT_MAX_DEPTH_STEP_M = 0.005
"""Line plan: joints whose segments change depth by at most this much are lofted too (flat steps)."""

LOFT_SPACING = 1.0
"""Line plan: longest loft, in cap radii of arc."""

LOFT_MAX_TURN_RAD = 0.02
"""Line plan: a new loft starts each time the NDC direction crosses a multiple of this angle."""

LOFT_MAX_DEPTH_ERROR_M = 0.01
"""Line plan: largest error of a loft's linear depth against the caps' (depth ∝ 1/screen-linear)."""

LOFT_DEPTH_BIAS = 0.5
"""Line plan: lofts are pushed back by this fraction of a joint's depth step (the caps' staircase
lies between a loft's ramp and one step behind it)."""

LOFT_MARGIN_PX = 1e-3
"""Line plan: lofts stay this far (px) inside the line's edges, beyond the sagitta of their sides."""


def expand_lines(
    uvz0: NDArrayFloat,
    uvz1: NDArrayFloat,
    rgb0: NDArrayFloat,
    rgb1: NDArrayFloat,
    width_px: NDArrayFloat | float,
    image_width_px: int,
    image_height_px: int,
    label: str = "lines",
    *,
    cull_caps: bool = True,
    segment_ids: NDArrayInt | None = None,
) -> DrawBatch:
    """Expand projected segments into quads with round caps (NVIDIA's line geometry shader).

    Args:
        uvz0: (S, 3) segment starts: pixels u, v and camera depth (m).
        uvz1: (S, 3) segment ends.
        rgb0: (S, 3) base colours 0..1 at the starts (the depth fade is applied here).
        rgb1: (S, 3) base colours at the ends.
        width_px: nominal width L (scalar or (S,)); the drawn width is L·clamp(1 − z̄/200, 0, 1)
            in NDC units (so L px vertically, L·H/W px horizontally), z̄ = mean end depth.
        image_width_px: viewport width W.
        image_height_px: viewport height H.
        label: the batch label.
        cull_caps: draw chains of segments with far fewer triangles and (nearly) the same
            picture (:func:`line_plan`); False emits NVIDIA's 18 triangles per segment.
        segment_ids: (S,) increasing numbers of the segments in their polylines' list, when some
            were left out before (only segments numbered k and k + 1 may form a chain); None:
            0..S−1.

    Returns:
        A :class:`DrawBatch` in segment order: per drawn segment its quad, its start cap, its end
        cap (18 triangles); with ``cull_caps`` the quad, the kept caps, the loft ending at the
        segment's end and a join triangle towards the next segment, where there are any.
        Segments that cannot produce a visible fragment are skipped: both ends nearer than the
        near plane or farther than 200 m, zero length in NDC (NVIDIA's shader normalises a zero
        vector), or entirely outside the viewport.
    """
    vertices, colors, faces, _ = _expand(
        uvz0, uvz1, rgb0, rgb1, width_px, image_width_px, image_height_px, cull_caps=cull_caps, segment_ids=segment_ids
    )
    return DrawBatch(vertices, colors, faces, label)


class LinePlan(NamedTuple):
    """What :func:`line_plan` draws for m drawn segments (rows); arrays (m,)."""

    start_cap: NDArrayBool
    """Emit the row's start cap."""
    end_cap: NDArrayBool
    """Emit the row's end cap."""
    join: NDArrayBool
    """Emit a join triangle between the row and the next one (their end and start caps went)."""
    join_positive: NDArrayBool
    """The join triangle lies on the +normal side of the row (else on the −normal side)."""
    rim: NDArrayInt
    """Loft rim at the joint after the row: 0 none, 1 the row's end cap rim, 2 the next row's start
    cap rim (the last row has none)."""
    loft_from: NDArrayInt
    """For a row whose end joint closes a loft: the row whose end joint opens it; −1 otherwise."""
    rim_inset_px: NDArrayFloat
    """How far (px) the loft rim at the joint after the row is moved in from the line's edges."""


def line_plan(
    q0: NDArrayFloat,
    q1: NDArrayFloat,
    k0: NDArrayFloat,
    k1: NDArrayFloat,
    width: NDArrayFloat,
    consecutive: NDArrayBool,
    direction: NDArrayFloat,
    half: NDArrayFloat,
    image_width_px: float,
) -> LinePlan:
    """How to draw m drawn segments (rows, in draw order) with far fewer triangles, same picture.

    Rows ``k`` and ``k + 1`` meet at an *open joint* when they are consecutive input segments
    sharing their end point (pixels and depth), colour and nominal width, turn by at most
    :data:`CAP_CULL_MAX_BEND_RAD` in NDC and their half widths differ by at most
    :data:`CAP_CULL_MAX_STEP_PX` px. The shader's shapes are NDC rectangles and 8-piece half
    polygons inscribed in NDC half discs, mapped to pixels by one affine map, so the argument is
    made in NDC (h = half width). Other joints and the chain ends keep both caps; every quad stays.

    - Coverage: on a straight chain both caps at an open joint lie inside the neighbouring quads
      (a cap reaching past a chain end lies inside that end's cap). A turn by θ leaves a wedge of
      angle θ and radius h on the outer side between the quads, which the caps filled.
    - Depth: under GL_LESS the cap facing the deeper neighbour (the end cap where the chain
      recedes, the start cap where it approaches) wins against the later, deeper quads, so
      NVIDIA's lines show, inside, the depth and colour of the nearest joint whose cap reaches
      the pixel rather than their own: that decides ties with ground paint drawn later
      (crossing lines, crosswalks). The other cap always loses to the earlier, nearer quad and
      goes. The winning cap stays; it is drawn from its rim alone (:func:`_cap_rim_fan`), whose
      straight edge is exactly its quad's end edge, so no T-junction is left where the other cap went.
    - Lofts: along a run of open joints that all recede (or all approach) the winning caps sweep
      the run: their union is the *loft* between the first and the last cap's rim polygons (8
      quads), and the depth they leave is, within one joint's depth step, the loft's linear
      ramp. Where the joints are dense (:data:`LOFT_MAX_STEP`) the run keeps its first cap and
      lofts replace the others; a loft spans at most :data:`LOFT_SPACING` cap radii, a turn of
      :data:`LOFT_MAX_TURN_RAD` and a depth span whose ramp errs by :data:`LOFT_MAX_DEPTH_ERROR_M`,
      sits :data:`LOFT_DEPTH_BIAS` of a step back and stays inside the quads by the sagitta of
      its sides plus :data:`LOFT_MARGIN_PX`. Lofts fill the wedges too.
    - At an open joint where neither cap wins (a depth maximum) both go and a *join triangle*
      (the quad's end edge and the next quad's outer start corner) fills the wedge, up to the
      arc's sagitta; wedges under :data:`CAP_CULL_MIN_WEDGE_PX2` px² get none.

    Args:
        q0: (m, 3) row starts (u, v px, depth m).
        q1: (m, 3) row ends.
        k0: (m, 3) base colours at the starts.
        k1: (m, 3) base colours at the ends.
        width: (m,) nominal widths.
        consecutive: (m − 1,) row k + 1 is the input segment after row k's.
        direction: (m, 2) unit NDC directions.
        half: (m,) NDC half widths.
        image_width_px: W (an NDC length times W/2 bounds its pixel length).
    """
    m = len(q0)
    start_cap = np.ones(m, bool)
    end_cap = np.ones(m, bool)
    join = np.zeros(m, bool)
    join_positive = np.zeros(m, bool)
    rim = np.zeros(m, np.int64)
    loft_from = np.full(m, -1, np.int64)
    if m < 2:
        return LinePlan(start_cap, end_cap, join, join_positive, rim, loft_from, np.zeros(m))
    e, s = q1[:-1], q0[1:]  # the two ends meeting at each joint
    linked = consecutive & (width[:-1] == width[1:]) & np.all(k1[:-1] == k0[1:], axis=1)
    linked &= (np.abs(e[:, 0] - s[:, 0]) <= 1e-4) & (np.abs(e[:, 1] - s[:, 1]) <= 1e-4)
    linked &= np.abs(e[:, 2] - s[:, 2]) <= 1e-6
    da, db = direction[:-1], direction[1:]
    cross = da[:, 0] * db[:, 1] - da[:, 1] * db[:, 0]
    linked &= da[:, 0] * db[:, 0] + da[:, 1] * db[:, 1] >= np.cos(CAP_CULL_MAX_BEND_RAD)
    h_px = half * (image_width_px / 2.0)
    open_joint = linked & (np.abs(h_px[:-1] - h_px[1:]) <= CAP_CULL_MAX_STEP_PX)
    forward = q1[1:, 2] > e[:, 2]  # the end cap wins beyond the joint
    backward = q0[:-1, 2] > e[:, 2]  # the start cap wins behind it
    # 1: receding joint (end caps win), 2: approaching joint (start caps win), 0: other
    seg_px = np.hypot(q1[:, 0] - q0[:, 0], q1[:, 1] - q0[:, 1])
    # the caps' depth staircase is fine (short steps or flat ones): a loft's ramp follows it
    fine = (seg_px <= LOFT_MAX_STEP * h_px) | (np.abs(q1[:, 2] - q0[:, 2]) <= LOFT_MAX_DEPTH_STEP_M)
    loftable = open_joint & fine[:-1] & fine[1:]
    kind = np.where(loftable & forward & ~backward, 1, np.where(loftable & backward & ~forward, 2, 0))
    run = kind > 0
    first = run.copy()
    first[1:] &= kind[1:] != kind[:-1]
    last = run.copy()
    last[:-1] &= kind[:-1] != kind[1:]
    # rims every LOFT_SPACING cap radii of arc and every LOFT_MAX_TURN_RAD of turn along a run
    arc = np.floor(np.cumsum(seg_px / (np.maximum(h_px, 1e-3) * LOFT_SPACING))[:-1])
    turn = np.floor(np.arctan2(da[:, 1], da[:, 0]) / LOFT_MAX_TURN_RAD)
    # a loft's linear depth is a chord of the caps' depths (1/z is about linear along a ground line):
    # over a depth span Δz it errs by about Δz²/(4z); uniform steps in √z of √ε keep that under ε
    depth = np.floor(np.sqrt(np.maximum(e[:, 2], 0.0) / LOFT_MAX_DEPTH_ERROR_M))
    tick = np.ones(m - 1, bool)
    tick[1:] = (arc[1:] != arc[:-1]) | (turn[1:] != turn[:-1]) | (depth[1:] != depth[:-1])
    rimmed = run & (first | last | tick)
    rim[:-1] = np.where(rimmed, kind, 0)
    joints = np.flatnonzero(rimmed)
    closes = joints[~first[joints]]
    opens = joints[np.searchsorted(joints, closes) - 1]
    loft_from[closes] = opens
    # a loft's side edges are chords of the line's edges: keep them inside by the chords' sagitta
    arc_px = np.cumsum(seg_px)
    turn = np.abs(direction[opens, 0] * direction[closes, 1] - direction[opens, 1] * direction[closes, 0])
    sagitta = (arc_px[closes] - arc_px[opens]) * turn / 8.0 + LOFT_MARGIN_PX
    rim_inset_px = np.zeros(m)
    rim_inset_px[closes] = sagitta  # a joint closes one loft at most and opens one at most
    rim_inset_px[opens] = np.maximum(rim_inset_px[opens], sagitta)

    # caps: both at closed joints; at open ones the winning cap where no loft covers the joint
    end_cap[:-1] = ~open_joint | (first & (kind == 1)) | (~run & forward)
    start_cap[1:] = ~open_joint | (first & (kind == 2)) | (~run & backward)
    bare = open_joint & ~run & ~forward & ~backward
    wedge = np.maximum(h_px[:-1], h_px[1:]) ** 2 * np.abs(cross) / 2.0
    join[:-1] = bare & (wedge >= CAP_CULL_MIN_WEDGE_PX2)
    join_positive[:-1] = cross < 0  # a left turn in NDC leaves the wedge on the right (−normal) side
    return LinePlan(start_cap, end_cap, join, join_positive, rim, loft_from, rim_inset_px)


def _expand(
    uvz0: NDArrayFloat,
    uvz1: NDArrayFloat,
    rgb0: NDArrayFloat,
    rgb1: NDArrayFloat,
    width_px: NDArrayFloat | float,
    image_width_px: int,
    image_height_px: int,
    *,
    cull_caps: bool = True,
    segment_ids: NDArrayInt | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`expand_lines` returning (vertices, colours, faces, source segment of each face)."""
    p0 = _as(uvz0, "uvz0", (3,))
    p1 = _as(uvz1, "uvz1", (3,))
    c0 = _as(rgb0, "rgb0", (3,))
    c1 = _as(rgb1, "rgb1", (3,))
    n = len(p0)
    if not (len(p1) == len(c0) == len(c1) == n):
        raise RenderError(f"line arrays must have one row per segment, got {len(p0)}, {len(p1)}, {len(c0)}, {len(c1)}")
    width = np.broadcast_to(np.asarray(width_px, dtype=np.float64), (n,))
    _check_finite(width, "width_px")
    w, h = float(image_width_px), float(image_height_px)

    x0, y0 = 2.0 * p0[:, 0] / w - 1.0, 1.0 - 2.0 * p0[:, 1] / h
    x1, y1 = 2.0 * p1[:, 0] / w - 1.0, 1.0 - 2.0 * p1[:, 1] / h
    dx, dy = x1 - x0, y1 - y0
    length = np.hypot(dx, dy)
    z0, z1 = p0[:, 2], p1[:, 2]
    half = (2.0 * width / w) * np.clip(1.0 - (z0 + z1) / (2.0 * FAR_M), 0.0, 1.0) / 2.0

    # Conservative viewport test in NDC (the quad and caps stay within `half` of the segment).
    off = (np.maximum(x0, x1) + half < -1.0) | (np.minimum(x0, x1) - half > 1.0)
    off |= (np.maximum(y0, y1) + half < -1.0) | (np.minimum(y0, y1) - half > 1.0)
    keep = (length > 0) & (half > 0) & ~off
    keep &= ~((z0 < NEAR_CLIP_M) & (z1 < NEAR_CLIP_M)) & ~((z0 > FAR_CLIP_M) & (z1 > FAR_CLIP_M))
    idx = np.flatnonzero(keep)
    if len(idx) == 0:
        return np.zeros((0, 3)), np.zeros((0, 3)), np.zeros((0, 3), np.int64), np.zeros(0, np.int64)

    # Offsets of length `half` (NDC) along the segment normal n = (−d_y, d_x) and direction d, in pixels.
    half, length = half[idx], length[idx]
    to_px = np.array([w / 2.0, -h / 2.0])
    normal = np.stack([-dy[idx], dx[idx]], axis=1) * (half / length)[:, None] * to_px
    along = np.stack([dx[idx], dy[idx]], axis=1) * (half / length)[:, None] * to_px
    q0, q1 = p0[idx], p1[idx]
    fade0 = c0[idx] * depth_fade(q0[:, 2])[:, None]
    fade1 = c1[idx] * depth_fade(q1[:, 2])[:, None]
    m = len(idx)
    if not cull_caps:
        vertices, colors = _line_vertices(q0, q1, normal, along, fade0, fade1, slice(0, VERTICES_PER_SEGMENT))
        faces = _line_faces_template()[None] + (np.arange(m, dtype=np.int32) * VERTICES_PER_SEGMENT)[:, None, None]
        src = np.repeat(idx, TRIANGLES_PER_SEGMENT)
        return vertices.reshape(-1, 3), colors.reshape(-1, 3), faces.reshape(-1, 3), src

    unit = np.stack([dx[idx], dy[idx]], axis=1) / length[:, None]
    ids = idx if segment_ids is None else np.asarray(segment_ids)[idx]
    plan = line_plan(q0, q1, c0[idx], c1[idx], width[idx], np.diff(ids) == 1, unit, half, w)
    start_rows, end_rows = np.flatnonzero(plan.start_cap), np.flatnonzero(plan.end_cap)
    rim_end, rim_start = np.flatnonzero(plan.rim == 1), np.flatnonzero(plan.rim == 2)
    ns, ne, nre, nrs = len(start_rows), len(end_rows), len(rim_end), len(rim_start)
    # vertices: the 4 quad corners of every row (p0 + n, p0 − n, p1 + n, p1 − n, the values of
    # _line_vertices' float32 products), each kept start cap and end cap (its 9 rim points),
    # then the loft rims (9 points, narrowed): end cap rims, start cap rims of the next rows
    cap_at = 4 * m
    rim_at = cap_at + 9 * (ns + ne)
    vertices = np.empty((rim_at + 9 * (nre + nrs), 3), np.float32)
    colors = np.empty_like(vertices)
    corners = vertices[:cap_at].reshape(m, 4, 3)
    n32 = normal.astype(np.float32)
    for k, (end, sign) in enumerate(((q0, 1), (q0, -1), (q1, 1), (q1, -1))):
        corners[:, k, :2] = end[:, :2].astype(np.float32) + sign * n32
        corners[:, k, 2] = end[:, 2]
    corner_colors = colors[:cap_at].reshape(m, 4, 3)
    corner_colors[:, :2] = fade0.astype(np.float32)[:, None]
    corner_colors[:, 2:] = fade1.astype(np.float32)[:, None]
    normal_px = np.hypot(normal[:, 0], normal[:, 1])
    blocks = (
        (start_rows, slice(5, 14), normal[start_rows], cap_at),
        (end_rows, slice(15, 24), normal[end_rows], cap_at + 9 * ns),
        (
            rim_end,
            slice(15, 24),
            normal[rim_end] * (1.0 - plan.rim_inset_px[rim_end] / normal_px[rim_end])[:, None],
            rim_at,
        ),
        (
            rim_start + 1,
            slice(5, 14),
            normal[rim_start + 1] * (1.0 - plan.rim_inset_px[rim_start] / normal_px[rim_start + 1])[:, None],
            rim_at + 9 * nre,
        ),
    )
    for rows, cols, offsets, at in blocks:
        v = _line_positions(q0[rows], q1[rows], offsets, along[rows], cols)
        vertices[at : at + v.shape[0] * v.shape[1]] = v.reshape(-1, 3)
        # a cap (or rim) has its end point's colour: fade0 for start caps, fade1 for end caps
        fade = fade0[rows] if cols.start < 14 else fade1[rows]
        colors[at : at + v.shape[0] * v.shape[1]].reshape(v.shape)[:] = fade.astype(np.float32)[:, None]
    # a kept cap's straight edge is its quad's end edge: rim points 0 and 8 take the quad corners'
    # exact values (they differ by < 1e-6 px), so the cap, fanned from its rim without the centre,
    # meets the quad edge to edge: no T-junction, no seam triangle, one triangle fewer per cap
    cap_rims = vertices[cap_at:rim_at].reshape(ns + ne, 9, 3)
    cap_rims[:ns, 0], cap_rims[:ns, 8] = corners[start_rows, 1], corners[start_rows, 0]
    cap_rims[ns:, 0], cap_rims[ns:, 8] = corners[end_rows, 2], corners[end_rows, 3]
    if LOFT_DEPTH_BIAS and m > 1:
        # NVIDIA's staircase lies between the ramp and one joint's step deeper: aim at its middle
        step_end = np.abs(q1[np.minimum(rim_end + 1, m - 1), 2] - q1[rim_end, 2])
        step_start = np.abs(q0[rim_start, 2] - q0[rim_start + 1, 2])
        vertices[rim_at : rim_at + 9 * nre, 2] += np.repeat(LOFT_DEPTH_BIAS * step_end, 9).astype(np.float32)
        vertices[rim_at + 9 * nre :, 2] += np.repeat(LOFT_DEPTH_BIAS * step_start, 9).astype(np.float32)
    rim_base = np.zeros(m, np.int32)
    rim_base[rim_end] = rim_at + 9 * np.arange(nre)
    rim_base[rim_start] = rim_at + 9 * nre + 9 * np.arange(nrs)

    # faces in row order: quad (2), start cap (7), end cap (7), loft (16), join (1)
    lofts = np.flatnonzero(plan.loft_from >= 0)
    n_start = CAP_FAN_TRIANGLES * plan.start_cap
    n_end = CAP_FAN_TRIANGLES * plan.end_cap
    n_loft = np.zeros(m, np.int64)
    n_loft[lofts] = 2 * CAP_SEGMENTS
    counts = 2 + n_start + n_end + n_loft + plan.join
    offset = np.cumsum(counts) - counts
    faces = np.empty((int(counts[-1] + offset[-1]), 3), np.int32)
    corner0 = np.arange(0, cap_at, 4, dtype=np.int32)
    faces[offset] = corner0[:, None] + np.array([0, 1, 2])
    faces[offset + 1] = corner0[:, None] + np.array([1, 2, 3])
    fan = _cap_rim_fan()  # over the cap's 9 rim points
    cap0 = cap_at + 9 * np.arange(ns + ne, dtype=np.int32)
    cap_steps = np.arange(CAP_FAN_TRIANGLES)
    faces[(offset[start_rows] + 2)[:, None] + cap_steps] = fan + cap0[:ns, None, None]
    faces[(offset[end_rows] + 2 + n_start[end_rows])[:, None] + cap_steps] = fan + cap0[ns:, None, None]
    steps = np.arange(CAP_SEGMENTS)
    a, b = rim_base[plan.loft_from[lofts]][:, None] + steps, rim_base[lofts][:, None] + steps
    band = np.stack([a, a + 1, b + 1, a, b + 1, b], axis=2).reshape(len(lofts), 2 * CAP_SEGMENTS, 3)
    faces[(offset[lofts] + 2 + n_start[lofts] + n_end[lofts])[:, None] + np.arange(2 * CAP_SEGMENTS)] = band
    r = np.flatnonzero(plan.join)
    # the row's quad end edge (corners 2, 3) and the next quad's outer start corner (0: +normal, 1: −normal)
    faces[offset[r] + counts[r] - 1] = np.stack(
        [corner0[r] + 2, corner0[r] + 3, corner0[r] + 4 + np.where(plan.join_positive[r], 0, 1)], axis=1
    )
    return vertices, colors, faces, np.repeat(idx, counts)


def _line_vertices(
    q0: NDArrayFloat,
    q1: NDArrayFloat,
    normal: NDArrayFloat,
    along: NDArrayFloat,
    fade0: NDArrayFloat,
    fade1: NDArrayFloat,
    cols: slice,
) -> tuple[np.ndarray, np.ndarray]:
    """Vertices ``cols`` of :func:`_line_vertex_weights` for each row: (k, c, 3) positions and colours."""
    weights = _line_vertex_weights()[:, cols]
    vertices = _line_positions(q0, q1, normal, along, cols)
    colors = np.empty_like(vertices)
    for channel in range(3):
        ends = np.stack([fade0[:, channel], fade1[:, channel]], axis=1).astype(np.float32)
        colors[:, :, channel] = ends @ weights[:2]
    return vertices, colors


def _line_positions(
    q0: NDArrayFloat, q1: NDArrayFloat, normal: NDArrayFloat, along: NDArrayFloat, cols: slice
) -> np.ndarray:
    """(k, c, 3) float32 positions of vertices ``cols`` of :func:`_line_vertex_weights` for each row.

    Each vertex is a fixed combination of [start, end, normal offset, direction offset]: one small
    float32 matrix product per axis (much faster than broadcasting over (k, c, 3)).
    """
    weights = _line_vertex_weights()[:, cols]
    k, c = len(q0), weights.shape[1]
    vertices = np.empty((k, c, 3), np.float32)
    zero = np.zeros(k)
    offsets = ((normal[:, 0], along[:, 0]), (normal[:, 1], along[:, 1]), (zero, zero))
    for axis, (off_n, off_d) in enumerate(offsets):
        features = np.empty((k, 4), np.float32)
        features[:, 0], features[:, 1], features[:, 2], features[:, 3] = q0[:, axis], q1[:, axis], off_n, off_d
        vertices[:, :, axis] = features @ weights
    return vertices


def project_lines(
    camera: FThetaCamera,
    segments_cam: NDArrayFloat,
    rgb: NDArrayFloat,
    width_px: NDArrayFloat | float,
    *,
    clip_and_subdivide: bool = False,
    cull_caps: bool = True,
    label: str = "lines",
) -> DrawBatch:
    """Project camera-frame segments and expand them into a pixel-space mesh.

    Args:
        camera: the output camera.
        segments_cam: (S, 2, 3) segments in the camera frame, metres.
        rgb: (S, 3) base colours 0..1, or (S, 2, 3) per end.
        width_px: nominal width L in pixels (scalar or (S,)).
        clip_and_subdivide: ``fixed`` look: clip at :data:`FIXED_NEAR_M` in 3D and split segments
            until their chords are within :data:`MAX_CHORD_ERROR_PX`; otherwise NVIDIA's chords,
            near-clipped by the rasteriser on screen-linear depth.
        cull_caps: leave out caps covered by the neighbouring quads (see :func:`expand_lines`).
        label: the batch label.
    """
    vertices, colors, faces, _ = line_mesh(camera, segments_cam, rgb, width_px, clip_and_subdivide, cull_caps)
    return DrawBatch(vertices, colors, faces, label)


def line_mesh(
    camera: FThetaCamera,
    segments_cam: NDArrayFloat,
    rgb: NDArrayFloat,
    width_px: NDArrayFloat | float,
    clip_and_subdivide: bool = False,
    cull_caps: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`project_lines` as arrays: (vertices, colours, faces, source segment of each face)."""
    seg = _as(segments_cam, "segments_cam", (2, 3))
    col = np.asarray(rgb, dtype=np.float64)
    col = np.repeat(col[:, None], 2, axis=1) if col.ndim == 2 else col
    if col.shape != seg.shape:
        raise RenderError(f"`rgb` must be (S, 3) or {seg.shape}, got {np.asarray(rgb).shape}")
    width = np.broadcast_to(np.asarray(width_px, dtype=np.float64), (len(seg),))
    src = np.arange(len(seg))
    if clip_and_subdivide:
        seg, col, keep = clip_segments_near(seg, col, FIXED_NEAR_M)
        src = src[keep]
        seg, col, piece_src = subdivide_segments(camera, seg, col)
        src = src[piece_src]
    uvz = _project_uvz(camera, seg)
    vertices, colors, faces, face_src = _expand(
        uvz[:, 0],
        uvz[:, 1],
        col[:, 0],
        col[:, 1],
        width[src],
        camera.width_px,
        camera.height_px,
        cull_caps=cull_caps,
    )
    return vertices, colors, faces, src[face_src]


def project_triangles(
    camera: FThetaCamera,
    triangles_cam: NDArrayFloat,
    rgb: NDArrayFloat,
    *,
    clip_and_subdivide: bool = False,
    label: str = "triangles",
) -> DrawBatch:
    """Project camera-frame triangles with per-vertex colours (faded by depth).

    Args:
        camera: the output camera.
        triangles_cam: (T, 3, 3) triangles in the camera frame, metres.
        rgb: (T, 3) per-triangle or (T, 3, 3) per-vertex base colours 0..1.
        clip_and_subdivide: ``fixed`` look: clip at :data:`FIXED_NEAR_M` in 3D and split until
            chords are within :data:`MAX_CHORD_ERROR_PX`. Otherwise NVIDIA's straight screen-space
            triangles, near-clipped by the rasteriser on screen-linear depth.
        label: the batch label.

    Triangles that cannot produce a visible fragment (all vertices nearer than the near plane,
    all farther than 200 m, or all beyond one viewport border) are skipped; order is kept.
    """
    vertices, colors, faces, _ = triangle_mesh(camera, triangles_cam, rgb, clip_and_subdivide)
    return DrawBatch(vertices, colors, faces, label)


def triangle_mesh(
    camera: FThetaCamera,
    triangles_cam: NDArrayFloat,
    rgb: NDArrayFloat,
    clip_and_subdivide: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`project_triangles` as arrays: (vertices, colours, faces, source triangle of each face)."""
    tri = _as(triangles_cam, "triangles_cam", (3, 3))
    col = np.asarray(rgb, dtype=np.float64)
    col = np.repeat(col[:, None], 3, axis=1) if col.ndim == 2 else col
    if col.shape != tri.shape:
        raise RenderError(f"`rgb` must be (T, 3) or {tri.shape}, got {np.asarray(rgb).shape}")
    src = np.arange(len(tri))
    if clip_and_subdivide:
        tri, col, piece_src = clip_triangles_near(tri, col, FIXED_NEAR_M)
        src = src[piece_src]
        tri, col, piece_src = subdivide_triangles(camera, tri, col)
        src = src[piece_src]
    uvz = _project_uvz(camera, tri)
    u, v, z = uvz[..., 0], uvz[..., 1], uvz[..., 2]
    w, h = camera.width_px, camera.height_px
    dead = np.all(z < NEAR_CLIP_M, axis=1) | np.all(z > FAR_CLIP_M, axis=1)
    dead |= np.all(u < 0, axis=1) | np.all(u > w, axis=1) | np.all(v < 0, axis=1) | np.all(v > h, axis=1)
    keep = np.flatnonzero(~dead)
    colors = col[keep] * depth_fade(z[keep])[..., None]
    m = len(keep)
    return uvz[keep].reshape(-1, 3), colors.reshape(-1, 3), np.arange(3 * m).reshape(m, 3), src[keep]


def fan_triangles(loops: NDArrayFloat) -> NDArrayFloat:
    """(L, K, 3) point loops -> (L·(K−2), 3, 3) triangle fan around each loop's first point."""
    p = np.asarray(loops, dtype=np.float64)
    k = p.shape[1]
    i = np.arange(1, k - 1)
    tris = np.stack([np.repeat(p[:, :1], k - 2, axis=1), p[:, i], p[:, i + 1]], axis=2)
    return tris.reshape(-1, 3, 3)


# --------------------------------------------------------------------------- fixed look: clipping, subdivision


def clip_segments_near(
    segments_cam: NDArrayFloat, rgb: NDArrayFloat, near_m: float = FIXED_NEAR_M
) -> tuple[NDArrayFloat, NDArrayFloat, NDArrayInt]:
    """Clip (S, 2, 3) camera-frame segments to depth >= ``near_m`` (colours (S, 2, 3) interpolated).

    Returns the kept segments, their colours and the index of each one's source segment.
    """
    seg = np.asarray(segments_cam, dtype=np.float64)
    col = np.asarray(rgb, dtype=np.float64)
    keep = np.flatnonzero((seg[:, 0, 2] >= near_m) | (seg[:, 1, 2] >= near_m))
    seg, col = seg[keep], col[keep]
    z0, z1 = seg[:, 0, 2], seg[:, 1, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.clip((near_m - z0) / (z1 - z0), 0.0, 1.0)[:, None]
    cut_p = seg[:, 0] + t * (seg[:, 1] - seg[:, 0])
    cut_c = col[:, 0] + t * (col[:, 1] - col[:, 0])
    out_seg = np.stack(
        [np.where((z0 < near_m)[:, None], cut_p, seg[:, 0]), np.where((z1 < near_m)[:, None], cut_p, seg[:, 1])], axis=1
    )
    out_col = np.stack(
        [np.where((z0 < near_m)[:, None], cut_c, col[:, 0]), np.where((z1 < near_m)[:, None], cut_c, col[:, 1])], axis=1
    )
    return out_seg, out_col, keep


def _chord_error_px(camera: FThetaCamera, a: NDArrayFloat, b: NDArrayFloat) -> NDArrayFloat:
    """Pixel distance between the projected 3-D midpoint of a-b and the midpoint of the projected chord."""
    if len(a) == 0:
        return np.zeros(0)
    uv = camera.project(np.concatenate([a, b, (a + b) / 2]))[0].reshape(3, len(a), 2)
    return np.linalg.norm(uv[2] - (uv[0] + uv[1]) / 2, axis=1)


def _pieces(error_px: NDArrayFloat) -> NDArrayInt:
    """Split count (power of two, ≤ MAX_SUBDIVISION) bringing a sagitta under MAX_CHORD_ERROR_PX (error ∝ 1/k²)."""
    k = np.ceil(np.sqrt(np.maximum(error_px, 0.0) / MAX_CHORD_ERROR_PX))
    k = np.maximum(k, 1.0)
    return np.minimum(2 ** np.ceil(np.log2(k)), MAX_SUBDIVISION).astype(np.int64)


def subdivide_segments(
    camera: FThetaCamera, segments_cam: NDArrayFloat, rgb: NDArrayFloat
) -> tuple[NDArrayFloat, NDArrayFloat, NDArrayInt]:
    """Split (S, 2, 3) camera-frame segments until each projected chord is within MAX_CHORD_ERROR_PX.

    Each pass splits a segment into a power-of-two count estimated from its midpoint sagitta
    (error ∝ 1/k²); up to :data:`SUBDIVISION_PASSES` passes. Returns the pieces (in order), their
    (K, 2, 3) colours and each piece's source index.
    """
    seg = np.asarray(segments_cam, dtype=np.float64)
    col = np.asarray(rgb, dtype=np.float64)
    src = np.arange(len(seg))
    for _ in range(SUBDIVISION_PASSES):
        k = _pieces(_chord_error_px(camera, seg[:, 0], seg[:, 1]))
        if np.all(k == 1):
            break
        parent = np.repeat(np.arange(len(seg)), k)
        i = _ragged_arange(k).astype(np.float64)
        kk = k[parent].astype(np.float64)
        t0, t1 = (i / kk)[:, None], ((i + 1) / kk)[:, None]
        a, b = seg[parent, 0], seg[parent, 1]
        ca, cb = col[parent, 0], col[parent, 1]
        seg = np.stack([a + t0 * (b - a), a + t1 * (b - a)], axis=1)
        col = np.stack([ca + t0 * (cb - ca), ca + t1 * (cb - ca)], axis=1)
        src = src[parent]
    return seg, col, src


def clip_triangles_near(
    triangles_cam: NDArrayFloat, rgb: NDArrayFloat, near_m: float = FIXED_NEAR_M
) -> tuple[NDArrayFloat, NDArrayFloat, NDArrayInt]:
    """Clip (T, 3, 3) camera-frame triangles to depth >= ``near_m`` (one plane, Sutherland-Hodgman).

    A triangle with one vertex in front becomes one triangle, with two in front a quad (two
    triangles). Colours (T, 3, 3) are interpolated. Returns triangles, colours, source indices
    (pieces of one source stay adjacent, sources in order).
    """
    tri = np.asarray(triangles_cam, dtype=np.float64)
    col = np.asarray(rgb, dtype=np.float64)
    inside = tri[..., 2] >= near_m
    count = inside.sum(axis=1)
    # rotate so that the odd vertex (the lone inside one, or the lone outside one) comes first
    first = np.where(count == 1, np.argmax(inside, axis=1), np.argmin(inside, axis=1))
    order = (first[:, None] + np.arange(3)[None]) % 3
    rows = np.arange(len(tri))[:, None]
    r_tri, r_col = tri[rows, order], col[rows, order]

    def cut(i: int, j: int, sel: NDArrayInt) -> tuple[NDArrayFloat, NDArrayFloat]:
        za, zb = r_tri[sel, i, 2], r_tri[sel, j, 2]
        t = ((near_m - za) / (zb - za))[:, None]
        return (
            r_tri[sel, i] + t * (r_tri[sel, j] - r_tri[sel, i]),
            r_col[sel, i] + t * (r_col[sel, j] - r_col[sel, i]),
        )

    parts_t: list[NDArrayFloat] = []
    parts_c: list[NDArrayFloat] = []
    parts_s: list[NDArrayInt] = []
    full = np.flatnonzero(count == 3)
    parts_t.append(tri[full])
    parts_c.append(col[full])
    parts_s.append(full)
    one = np.flatnonzero(count == 1)
    if len(one):
        ab, cab = cut(0, 1, one)
        ac, cac = cut(0, 2, one)
        parts_t.append(np.stack([r_tri[one, 0], ab, ac], axis=1))
        parts_c.append(np.stack([r_col[one, 0], cab, cac], axis=1))
        parts_s.append(one)
    two = np.flatnonzero(count == 2)
    if len(two):
        ab, cab = cut(0, 1, two)
        ac, cac = cut(0, 2, two)
        b, c = r_tri[two, 1], r_tri[two, 2]
        cb, cc = r_col[two, 1], r_col[two, 2]
        parts_t += [np.stack([b, c, ac], axis=1), np.stack([b, ac, ab], axis=1)]
        parts_c += [np.stack([cb, cc, cac], axis=1), np.stack([cb, cac, cab], axis=1)]
        parts_s += [two, two]
    out_t = np.concatenate(parts_t) if parts_t else np.zeros((0, 3, 3))
    out_c = np.concatenate(parts_c) if parts_c else np.zeros((0, 3, 3))
    src = np.concatenate(parts_s).astype(np.int64)
    order_src = np.argsort(src, kind="stable")
    return out_t[order_src], out_c[order_src], src[order_src]


@cache
def _barycentric_grid(k: int) -> tuple[NDArrayFloat, NDArrayInt]:
    """Barycentric weights (P, 3) of a k-subdivided triangle and its k² faces (k², 3)."""
    ij = [(i, j) for i in range(k + 1) for j in range(k + 1 - i)]
    index = {p: n for n, p in enumerate(ij)}
    weights = np.array([[(k - i - j) / k, i / k, j / k] for i, j in ij])
    faces = []
    for i in range(k):
        for j in range(k - i):
            faces.append((index[(i, j)], index[(i + 1, j)], index[(i, j + 1)]))
            if i + j + 1 < k:
                faces.append((index[(i + 1, j)], index[(i + 1, j + 1)], index[(i, j + 1)]))
    return weights, np.array(faces, dtype=np.int64)


def subdivide_triangles(
    camera: FThetaCamera, triangles_cam: NDArrayFloat, rgb: NDArrayFloat
) -> tuple[NDArrayFloat, NDArrayFloat, NDArrayInt]:
    """Split (T, 3, 3) camera-frame triangles into k² pieces (k from the worst edge's chord error).

    Up to :data:`SUBDIVISION_PASSES` passes. Returns pieces, their (N, 3, 3) colours and source
    indices (pieces of a source adjacent, sources in order).
    """
    tri = np.asarray(triangles_cam, dtype=np.float64)
    col = np.asarray(rgb, dtype=np.float64)
    src = np.arange(len(tri))
    for _ in range(SUBDIVISION_PASSES):
        if len(tri) == 0:
            break
        a = tri[:, [0, 1, 2]].reshape(-1, 3)
        b = tri[:, [1, 2, 0]].reshape(-1, 3)
        k = _pieces(_chord_error_px(camera, a, b).reshape(-1, 3).max(axis=1))
        if np.all(k == 1):
            break
        out_t, out_c, out_s = [], [], []
        for kv in np.unique(k):
            sel = np.flatnonzero(k == kv)
            weights, faces = _barycentric_grid(int(kv))
            out_t.append(np.einsum("pk,tkc->tpc", weights, tri[sel])[:, faces].reshape(-1, 3, 3))
            out_c.append(np.einsum("pk,tkc->tpc", weights, col[sel])[:, faces].reshape(-1, 3, 3))
            out_s.append(np.repeat(sel, len(faces)))
        parent = np.concatenate(out_s)
        order = np.argsort(parent, kind="stable")
        tri, col, src = np.concatenate(out_t)[order], np.concatenate(out_c)[order], src[parent[order]]
    return tri, col, src
