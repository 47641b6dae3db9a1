"""NVIDIA's line geometry shader on the CPU: projected segments -> quads with round caps.

:func:`expand_lines` builds, per segment, a quad of width ``L·clamp(1 − z̄/200)`` in NDC (so
``L`` px for vertical lines and ``L·H/W`` px for horizontal ones) plus a half-disc cap of 8 fan
triangles at each end (docs/world_scenario.md, "How NVIDIA draws"). Along chains of segments
most caps change nothing or can be replaced by a few *lofts*; :func:`line_plan` leaves them out
(``cull_caps``, on by default: about 1.8x fewer triangles, same picture).
"""

from __future__ import annotations

from functools import cache
from typing import NamedTuple

import numpy as np

from scene2world.errors import RenderError
from scene2world.renderer.arrays import as_array, check_finite
from scene2world.renderer.batch import FAR_CLIP_M, NEAR_CLIP_M, DrawBatch
from scene2world.renderer.projection import depth_fade
from scene2world.renderer.style import (
    FAR_M,
)
from scene2world.typing import NDArrayBool, NDArrayFloat, NDArrayInt

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
    k0 = c0[idx]
    k1 = k0 if c1 is c0 else c1[idx]
    fade0 = k0 * depth_fade(q0[:, 2])[:, None]
    fade1 = k1 * depth_fade(q1[:, 2])[:, None]
    m = len(idx)
    if not cull_caps:
        vertices, colors = _line_vertices(q0, q1, normal, along, fade0, fade1, slice(0, VERTICES_PER_SEGMENT))
        faces = _line_faces_template()[None] + (np.arange(m, dtype=np.int32) * VERTICES_PER_SEGMENT)[:, None, None]
        src = np.repeat(idx, TRIANGLES_PER_SEGMENT) if sources else np.zeros(0, np.int64)
        return vertices.reshape(-1, 3), colors.reshape(-1, 3), faces.reshape(-1, 3), src

    unit = np.stack([dx[idx], dy[idx]], axis=1) / length[:, None]
    ids = idx if segment_ids is None else np.asarray(segment_ids)[idx]
    plan = line_plan(q0, q1, k0, k1, width[idx], np.diff(ids) == 1, unit, half, w)
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
