"""The numpy expansion of culled lines: the reference that ``line_kernel.expand_culled`` must match.

This is the vectorised numpy form of NVIDIA's line shader with cap culling (the code the renderer
ran before the compiled kernel, docs/speed.md). It is kept here, readable and array by array, to
check the kernel byte for byte (``test_line_kernel.py``) and to test the plan's decisions
(``test_lines.py``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from scene2world.renderer.lines import (
    CAP_CULL_MAX_BEND_RAD,
    CAP_CULL_MAX_STEP_PX,
    CAP_CULL_MIN_WEDGE_PX2,
    CAP_SEGMENTS,
    LOFT_DEPTH_BIAS,
    LOFT_MARGIN_PX,
    LOFT_MAX_DEPTH_ERROR_M,
    LOFT_MAX_DEPTH_STEP_M,
    LOFT_MAX_STEP,
    LOFT_MAX_TURN_RAD,
    LOFT_SPACING,
    _line_positions,
    drawn_rows,
)
from scene2world.typing import NDArrayBool, NDArrayFloat, NDArrayInt

CAP_FAN_TRIANGLES = CAP_SEGMENTS - 1
CAP_RIM_FAN = np.array([(0, 1 + i, 2 + i) for i in range(CAP_FAN_TRIANGLES)], dtype=np.int32)
"""A kept cap's triangles over its 9 rim points, fanned from the first."""


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

    The argument why the picture stays the same: ``scene2world.renderer.line_kernel``'s docstring.

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


def expand_culled_reference(
    p0: np.ndarray,
    p1: np.ndarray,
    c0: np.ndarray,
    c1: np.ndarray,
    width: np.ndarray,
    w: float,
    h: float,
    segment_ids: NDArrayInt | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(vertices, colours, faces, source segment of each face) of the culled lines, in numpy."""
    rows = drawn_rows(p0, p1, c0, c1, width, w, h)
    if rows is None:
        return np.zeros((0, 3)), np.zeros((0, 3)), np.zeros((0, 3), np.int64), np.zeros(0, np.int64)
    idx, q0, q1, k0, k1, normal, along, fade0, fade1, half, unit = rows
    m = len(idx)
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
    fan = CAP_RIM_FAN  # over the cap's 9 rim points
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
