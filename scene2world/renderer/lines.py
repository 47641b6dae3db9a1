"""NVIDIA's line geometry shader on the CPU: projected segments -> quads with round caps.

:func:`expand_lines` builds, per segment, a quad of width ``L·clamp(1 − z̄/200)`` in NDC (so
``L`` px for vertical lines and ``L·H/W`` px for horizontal ones) plus a half-disc cap of 8 fan
triangles at each end (docs/world_scenario.md, "How NVIDIA draws"). Along chains of segments
most caps change nothing or can be replaced by a few *lofts*; ``cull_caps`` (on by default: about
1.8x fewer triangles, same picture) leaves them out. That culled expansion runs compiled
(``line_kernel``, docs/looks.md "Line caps"); its numpy reference, which states the plan array by
array, is ``tests/renderer/line_reference.py``. The full caps (``cull_caps=False``) stay numpy.
"""

from __future__ import annotations

from functools import cache
from typing import NamedTuple

import numpy as np

from scene2world.errors import RenderError
from scene2world.renderer.arrays import as_array, check_finite
from scene2world.renderer.batch import FAR_CLIP_M, NEAR_CLIP_M, DrawBatch
from scene2world.renderer.line_kernel import expand_culled
from scene2world.renderer.projection import depth_fade
from scene2world.renderer.style import (
    FAR_M,
)
from scene2world.typing import NDArrayFloat, NDArrayInt

CAP_SEGMENTS = 8
_GLSL_PI = 3.1415926  # the constant of NVIDIA's shader (caps are not exactly half discs)


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
            picture (``line_kernel``); False emits NVIDIA's 18 triangles per segment.
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
    p0, p1, c0, c1, width = _checked(uvz0, uvz1, rgb0, rgb1, width_px)
    vertices, colors, faces, _ = _expand_rows(
        p0, p1, c0, c1, width, image_width_px, image_height_px, cull_caps, segment_ids, sources=False
    )
    return DrawBatch(vertices, colors, faces, label)


def expand_finite_lines(
    uvz0: NDArrayFloat,
    uvz1: NDArrayFloat,
    rgb: NDArrayFloat,
    width_px: NDArrayFloat,
    image_width_px: int,
    image_height_px: int,
    label: str = "lines",
    *,
    cull_caps: bool = True,
    segment_ids: NDArrayInt | None = None,
) -> DrawBatch:
    """:func:`expand_lines` for arrays the caller knows to be float64, shaped (S, 3), (S, 3), (S, 3),
    (S,) and finite (projected from checked world points), with one colour per segment: no checks,
    no copies (``frame.build_frame``'s per-frame static lines; the same bytes as :func:`expand_lines`)."""
    vertices, colors, faces, _ = _expand_rows(
        uvz0, uvz1, rgb, rgb, width_px, image_width_px, image_height_px, cull_caps, segment_ids, sources=False
    )
    return DrawBatch(vertices, colors, faces, label)


def expand_lines_with_sources(
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
    p0, p1, c0, c1, width = _checked(uvz0, uvz1, rgb0, rgb1, width_px)
    return _expand_rows(p0, p1, c0, c1, width, image_width_px, image_height_px, cull_caps, segment_ids, sources=True)


def _checked(
    uvz0: NDArrayFloat, uvz1: NDArrayFloat, rgb0: NDArrayFloat, rgb1: NDArrayFloat, width_px: NDArrayFloat | float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The line arrays as float64, checked for shape and finite values (RenderError naming the array)."""
    p0 = as_array(uvz0, "uvz0", (3,))
    p1 = as_array(uvz1, "uvz1", (3,))
    c0 = as_array(rgb0, "rgb0", (3,))
    c1 = as_array(rgb1, "rgb1", (3,))
    n = len(p0)
    if not (len(p1) == len(c0) == len(c1) == n):
        raise RenderError(f"line arrays must have one row per segment, got {len(p0)}, {len(p1)}, {len(c0)}, {len(c1)}")
    width = np.broadcast_to(np.asarray(width_px, dtype=np.float64), (n,))
    check_finite(width, "width_px")
    return p0, p1, c0, c1, width


def _expand_rows(
    p0: np.ndarray,
    p1: np.ndarray,
    c0: np.ndarray,
    c1: np.ndarray,
    width: np.ndarray,
    image_width_px: int,
    image_height_px: int,
    cull_caps: bool,
    segment_ids: NDArrayInt | None,
    *,
    sources: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The body of :func:`expand_lines_with_sources` on checked arrays; ``sources=False`` leaves the
    face sources out (an empty array)."""
    w, h = float(image_width_px), float(image_height_px)
    if cull_caps:
        return _expand_culled(p0, p1, c0, c1, width, w, h, segment_ids, sources)
    rows = drawn_rows(p0, p1, c0, c1, width, w, h)
    if rows is None:
        return np.zeros((0, 3)), np.zeros((0, 3)), np.zeros((0, 3), np.int64), np.zeros(0, np.int64)
    vertices, colors = _line_vertices(
        rows.q0, rows.q1, rows.normal, rows.along, rows.fade0, rows.fade1, slice(0, VERTICES_PER_SEGMENT)
    )
    m = len(rows.idx)
    faces = _line_faces_template()[None] + (np.arange(m, dtype=np.int32) * VERTICES_PER_SEGMENT)[:, None, None]
    src = np.repeat(rows.idx, TRIANGLES_PER_SEGMENT) if sources else np.zeros(0, np.int64)
    return vertices.reshape(-1, 3), colors.reshape(-1, 3), faces.reshape(-1, 3), src


class DrawnRows(NamedTuple):
    """The segments that can show (rows) and their shader values; arrays (m, ...)."""

    idx: NDArrayInt
    """Input segment of each row."""
    q0: NDArrayFloat
    q1: NDArrayFloat
    k0: NDArrayFloat
    """Base colours at the starts."""
    k1: NDArrayFloat
    normal: NDArrayFloat
    """(m, 2) offset of length `half` (NDC) along the normal n = (−d_y, d_x), in pixels."""
    along: NDArrayFloat
    """(m, 2) the same along the direction d."""
    fade0: NDArrayFloat
    """Colours at the starts with the depth fade."""
    fade1: NDArrayFloat
    half: NDArrayFloat
    """NDC half widths."""
    unit: NDArrayFloat
    """(m, 2) unit NDC directions."""


def drawn_rows(
    p0: np.ndarray, p1: np.ndarray, c0: np.ndarray, c1: np.ndarray, width: np.ndarray, w: float, h: float
) -> DrawnRows | None:
    """NVIDIA's shader values of the segments that can produce a fragment (None: none can)."""
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
        return None
    half, length = half[idx], length[idx]
    to_px = np.array([w / 2.0, -h / 2.0])
    normal = np.stack([-dy[idx], dx[idx]], axis=1) * (half / length)[:, None] * to_px
    along = np.stack([dx[idx], dy[idx]], axis=1) * (half / length)[:, None] * to_px
    q0, q1 = p0[idx], p1[idx]
    k0 = c0[idx]
    k1 = k0 if c1 is c0 else c1[idx]
    fade0 = k0 * depth_fade(q0[:, 2])[:, None]
    fade1 = k1 * depth_fade(q1[:, 2])[:, None]
    unit = np.stack([dx[idx], dy[idx]], axis=1) / length[:, None]
    return DrawnRows(idx, q0, q1, k0, k1, normal, along, fade0, fade1, half, unit)


@cache
def _kernel_constants() -> tuple[np.ndarray, tuple[float, ...]]:
    """The kernel's cap rim weights (at_end, [normal, direction], rim point) and plan limits."""
    weights = _line_vertex_weights()
    rim_weights = np.ascontiguousarray(np.stack([weights[2:4, 5:14], weights[2:4, 15:24]]))
    limits = (
        float(np.cos(CAP_CULL_MAX_BEND_RAD)),
        CAP_CULL_MAX_STEP_PX,
        CAP_CULL_MIN_WEDGE_PX2,
        LOFT_MAX_STEP,
        LOFT_MAX_DEPTH_STEP_M,
        LOFT_SPACING,
        LOFT_MAX_TURN_RAD,
        LOFT_MAX_DEPTH_ERROR_M,
        LOFT_DEPTH_BIAS,
        LOFT_MARGIN_PX,
    )
    return rim_weights, limits


def _expand_culled(
    p0: np.ndarray,
    p1: np.ndarray,
    c0: np.ndarray,
    c1: np.ndarray,
    width: np.ndarray,
    w: float,
    h: float,
    segment_ids: NDArrayInt | None,
    sources: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The culled expansion (:func:`expand_lines` with ``cull_caps``), compiled (``line_kernel``)."""
    n = len(p0)
    ids = np.arange(n, dtype=np.int64) if segment_ids is None else np.asarray(segment_ids)
    if len(ids) != n:
        raise RenderError(f"segment_ids must have one number per segment ({n}), got {len(ids)}")
    rim_weights, limits = _kernel_constants()
    f64 = [np.ascontiguousarray(a, np.float64) for a in (p0, p1, c0, c1, width)]  # one compiled signature
    vertices, colors, faces, idx, counts = expand_culled(
        *f64, np.ascontiguousarray(ids, np.int64), w, h, rim_weights, limits
    )
    return vertices, colors, faces, np.repeat(idx, counts) if sources else np.zeros(0, np.int64)


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

    Vertex = its end point + a·(normal offset) + b·(direction offset), in float32, left to right
    (``(end + n·a) + d·b``; a = ±1, b = 0 for the quad corners, so those are exactly ``end ± n``):
    one definition that the compiled kernel (``line_kernel``) reproduces bit for bit, whatever BLAS
    the machine has; depth is the end point's.
    """
    weights = _line_vertex_weights()[:, cols]
    at_end = weights[1] > 0
    k, c = len(q0), weights.shape[1]
    vertices = np.empty((k, c, 3), np.float32)
    for axis in range(3):
        end = np.where(at_end, q1[:, axis, None].astype(np.float32), q0[:, axis, None].astype(np.float32))
        if axis == 2:
            vertices[:, :, axis] = end
            continue
        n32 = normal[:, axis, None].astype(np.float32)
        d32 = along[:, axis, None].astype(np.float32)
        vertices[:, :, axis] = (end + n32 * weights[2]) + d32 * weights[3]
    return vertices
