"""The culled line expansion, compiled: NVIDIA's line shader with far fewer triangles, same picture.

:func:`expand_culled` is :func:`scene2world.renderer.lines.expand_lines` with ``cull_caps``: one
pass of loops over the segments, compiled by numba, with no temporary arrays. It computes every
value with the same operations in the same order as the numpy form it replaced (float64 plan,
float32 vertices, libm's ``hypot`` and ``atan2``), which ``tests/renderer/line_reference.py``
keeps as the reference: ``tests/renderer/test_line_kernel.py`` checks the two byte for byte.
Why compiled: the numpy expansion was the largest part of a camera-frame's geometry on a GPU
machine (docs/speed.md, "Compiled geometry"). The first call in a process compiles the kernel or
loads it from numba's on-disk cache.

**The plan** (which caps, lofts and join triangles a chain of segments gets). Rows ``k`` and
``k + 1`` meet at an *open joint* when they are consecutive input segments sharing their end point
(pixels and depth), colour and nominal width, turn by at most ``lines.CAP_CULL_MAX_BEND_RAD`` in
NDC and their half widths differ by at most ``lines.CAP_CULL_MAX_STEP_PX`` px. The shader's shapes
are NDC rectangles and 8-piece half polygons inscribed in NDC half discs, mapped to pixels by one
affine map, so the argument is made in NDC (h = half width). Other joints and the chain ends keep
both caps; every quad stays.

- Coverage: on a straight chain both caps at an open joint lie inside the neighbouring quads
  (a cap reaching past a chain end lies inside that end's cap). A turn by θ leaves a wedge of
  angle θ and radius h on the outer side between the quads, which the caps filled.
- Depth: under GL_LESS the cap facing the deeper neighbour (the end cap where the chain
  recedes, the start cap where it approaches) wins against the later, deeper quads, so
  NVIDIA's lines show, inside, the depth and colour of the nearest joint whose cap reaches
  the pixel rather than their own: that decides ties with ground paint drawn later
  (crossing lines, crosswalks). The other cap always loses to the earlier, nearer quad and
  goes. The winning cap stays; it is drawn from its rim alone (7 triangles fanned from rim
  point 0: the shader's fan around the centre covers exactly the rim's convex polygon), whose
  straight edge is exactly its quad's end edge, so no T-junction is left where the other cap went.
- Lofts: along a run of open joints that all recede (or all approach) the winning caps sweep
  the run: their union is the *loft* between the first and the last cap's rim polygons (8
  quads), and the depth they leave is, within one joint's depth step, the loft's linear
  ramp. Where the joints are dense (``lines.LOFT_MAX_STEP``) the run keeps its first cap and
  lofts replace the others; a loft spans at most ``lines.LOFT_SPACING`` cap radii, a turn of
  ``lines.LOFT_MAX_TURN_RAD`` and a depth span whose ramp errs by
  ``lines.LOFT_MAX_DEPTH_ERROR_M``, sits ``lines.LOFT_DEPTH_BIAS`` of a step back and stays
  inside the quads by the sagitta of its sides plus ``lines.LOFT_MARGIN_PX``. Lofts fill the
  wedges too.
- At an open joint where neither cap wins (a depth maximum) both go and a *join triangle*
  (the quad's end edge and the next quad's outer start corner) fills the wedge, up to the
  arc's sagitta; wedges under ``lines.CAP_CULL_MIN_WEDGE_PX2`` px² get none.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from scene2world.renderer.batch import FAR_CLIP_M, NEAR_CLIP_M
from scene2world.renderer.style import FAR_M


@njit(cache=True, nogil=True)
def expand_culled(
    p0: np.ndarray,
    p1: np.ndarray,
    c0: np.ndarray,
    c1: np.ndarray,
    width: np.ndarray,
    ids: np.ndarray,
    w: float,
    h: float,
    rim_weights: np.ndarray,
    limits: tuple[float, ...],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Culled lines of segments ``p0 -> p1`` (u, v px, depth m). Pass C-contiguous float64 arrays
    and an int64 ``ids``, as ``lines._expand_culled`` does: each other layout compiles again.

    Args:
        p0: (n, 3) segment starts.
        p1: (n, 3) segment ends.
        c0: (n, 3) base colours at the starts.
        c1: (n, 3) base colours at the ends.
        width: (n,) nominal widths L (px).
        ids: (n,) int64 numbers of the segments in their polylines' list (k and k + 1 may chain).
        w: viewport width (px).
        h: viewport height (px).
        rim_weights: (2, 2, R) float32 weights of a cap's R rim points: [start, end] x [normal
            offset, direction offset] (``lines._line_vertex_weights``' cap columns).
        limits: ``lines``' plan limits: cos(CAP_CULL_MAX_BEND_RAD), CAP_CULL_MAX_STEP_PX,
            CAP_CULL_MIN_WEDGE_PX2, LOFT_MAX_STEP, LOFT_MAX_DEPTH_STEP_M, LOFT_SPACING,
            LOFT_MAX_TURN_RAD, LOFT_MAX_DEPTH_ERROR_M, LOFT_DEPTH_BIAS, LOFT_MARGIN_PX.

    Returns:
        vertices (V, 3) float32, colours (V, 3) float32, faces (F, 3) int32, the drawn input
        segments (m,) int64 and the faces of each (m,) int64, in row order.
    """
    cos_max_bend, max_step_px, min_wedge_px2, loft_max_step, loft_max_depth_step_m = limits[:5]
    loft_spacing, loft_max_turn_rad, loft_max_depth_error_m, loft_depth_bias, loft_margin_px = limits[5:]
    n = p0.shape[0]
    rim_points = rim_weights.shape[2]  # a cap's rim: CAP_SEGMENTS + 1 points
    fan = rim_points - 2  # its triangles, fanned from rim point 0
    # ---- which segments can show (lines._expand_rows' conservative viewport test)
    keep = np.empty(n, np.int64)
    ndc = np.empty((n, 4))  # per segment: NDC dx, dy, length, half width
    m = 0
    for i in range(n):
        x0 = 2.0 * p0[i, 0] / w - 1.0
        y0 = 1.0 - 2.0 * p0[i, 1] / h
        x1 = 2.0 * p1[i, 0] / w - 1.0
        y1 = 1.0 - 2.0 * p1[i, 1] / h
        dx, dy = x1 - x0, y1 - y0
        z0, z1 = p0[i, 2], p1[i, 2]
        half = (2.0 * width[i] / w) * min(max(1.0 - (z0 + z1) / (2.0 * FAR_M), 0.0), 1.0) / 2.0
        length = math.hypot(dx, dy)
        ndc[i, 0], ndc[i, 1], ndc[i, 2], ndc[i, 3] = dx, dy, length, half
        off = (max(x0, x1) + half < -1.0) or (min(x0, x1) - half > 1.0)
        off = off or (max(y0, y1) + half < -1.0) or (min(y0, y1) - half > 1.0)
        clipped = (z0 < NEAR_CLIP_M and z1 < NEAR_CLIP_M) or (z0 > FAR_CLIP_M and z1 > FAR_CLIP_M)
        if length > 0 and half > 0 and not off and not clipped:
            keep[m] = i
            m += 1
    idx = keep[:m]
    counts = np.zeros(m, np.int64)
    if m == 0:
        return (np.zeros((0, 3), np.float32), np.zeros((0, 3), np.float32), np.zeros((0, 3), np.int32), idx, counts)

    # ---- per row: offsets (px), unit NDC direction, faded colours, half widths
    normal = np.empty((m, 2))
    along = np.empty((m, 2))
    unit = np.empty((m, 2))
    fade0 = np.empty((m, 3), np.float32)
    fade1 = np.empty((m, 3), np.float32)
    h_px = np.empty(m)
    seg_px = np.empty(m)
    normal_px = np.empty(m)
    for r in range(m):
        i = idx[r]
        dx, dy, length, half = ndc[i, 0], ndc[i, 1], ndc[i, 2], ndc[i, 3]
        s = half / length
        normal[r, 0] = -dy * s * (w / 2.0)
        normal[r, 1] = dx * s * (-h / 2.0)
        along[r, 0] = dx * s * (w / 2.0)
        along[r, 1] = dy * s * (-h / 2.0)
        unit[r, 0] = dx / length
        unit[r, 1] = dy / length
        f0 = min(max(1.0 - p0[i, 2] / FAR_M, 0.0), 1.0)
        f1 = min(max(1.0 - p1[i, 2] / FAR_M, 0.0), 1.0)
        for ch in range(3):
            fade0[r, ch] = np.float32(c0[i, ch] * f0)
            fade1[r, ch] = np.float32(c1[i, ch] * f1)
        h_px[r] = half * (w / 2.0)
        seg_px[r] = math.hypot(p1[i, 0] - p0[i, 0], p1[i, 1] - p0[i, 1])
        normal_px[r] = math.hypot(normal[r, 0], normal[r, 1])

    # ---- the plan (module docstring; joint j between rows j and j + 1)
    start_cap = np.ones(m, np.bool_)
    end_cap = np.ones(m, np.bool_)
    join = np.zeros(m, np.bool_)
    join_positive = np.zeros(m, np.bool_)
    rim = np.zeros(m, np.int64)
    loft_from = np.full(m, -1, np.int64)
    rim_inset = np.zeros(m)
    if m >= 2:
        nj = m - 1
        open_joint = np.zeros(nj, np.bool_)
        forward = np.zeros(nj, np.bool_)
        backward = np.zeros(nj, np.bool_)
        kind = np.zeros(nj, np.int64)
        cross = np.empty(nj)
        fine = np.empty(m, np.bool_)
        for r in range(m):
            i = idx[r]
            fine[r] = seg_px[r] <= loft_max_step * h_px[r] or abs(p1[i, 2] - p0[i, 2]) <= loft_max_depth_step_m
        for j in range(nj):
            a, b = idx[j], idx[j + 1]
            ez = p1[a, 2]
            linked = ids[a] + 1 == ids[b] and width[a] == width[b]
            linked = linked and c1[a, 0] == c0[b, 0] and c1[a, 1] == c0[b, 1] and c1[a, 2] == c0[b, 2]
            linked = linked and abs(p1[a, 0] - p0[b, 0]) <= 1e-4 and abs(p1[a, 1] - p0[b, 1]) <= 1e-4
            linked = linked and abs(ez - p0[b, 2]) <= 1e-6
            cross[j] = unit[j, 0] * unit[j + 1, 1] - unit[j, 1] * unit[j + 1, 0]
            linked = linked and unit[j, 0] * unit[j + 1, 0] + unit[j, 1] * unit[j + 1, 1] >= cos_max_bend
            open_joint[j] = linked and abs(h_px[j] - h_px[j + 1]) <= max_step_px
            forward[j] = p1[b, 2] > ez
            backward[j] = p0[a, 2] > ez
            loftable = open_joint[j] and fine[j] and fine[j + 1]
            if loftable and forward[j] and not backward[j]:
                kind[j] = 1
            elif loftable and backward[j] and not forward[j]:
                kind[j] = 2
        # rims: a run's first and last joints, and a tick of arc, turn or depth
        arc_sum = 0.0
        arc_prev = turn_prev = depth_prev = 0.0
        prev_joint = -1
        for j in range(nj):
            arc_sum += seg_px[j] / (max(h_px[j], 1e-3) * loft_spacing)
            arc = math.floor(arc_sum)
            turn = math.floor(math.atan2(unit[j, 1], unit[j, 0]) / loft_max_turn_rad)
            depth = math.floor(math.sqrt(max(p1[idx[j], 2], 0.0) / loft_max_depth_error_m))
            tick = j == 0 or arc != arc_prev or turn != turn_prev or depth != depth_prev
            arc_prev, turn_prev, depth_prev = arc, turn, depth
            if kind[j] == 0:
                continue
            first = j == 0 or kind[j] != kind[j - 1]
            last = j == nj - 1 or kind[j] != kind[j + 1]
            if first or last or tick:
                rim[j] = kind[j]
                if not first:
                    loft_from[j] = prev_joint
                prev_joint = j
        # loft sides are chords of the line's edges: inset the rims by the chords' sagitta
        arc_px = np.empty(m)
        total = 0.0
        for r in range(m):
            total += seg_px[r]
            arc_px[r] = total
        sagitta = np.zeros(m)
        for j in range(nj):
            o = loft_from[j]
            if o >= 0:
                turn = abs(unit[o, 0] * unit[j, 1] - unit[o, 1] * unit[j, 0])
                sagitta[j] = (arc_px[j] - arc_px[o]) * turn / 8.0 + loft_margin_px
                rim_inset[j] = sagitta[j]
        for j in range(nj):
            o = loft_from[j]
            if o >= 0:
                rim_inset[o] = max(rim_inset[o], sagitta[j])
        for j in range(nj):
            run = kind[j] > 0
            first = run and (j == 0 or kind[j] != kind[j - 1])
            end_cap[j] = (not open_joint[j]) or (first and kind[j] == 1) or (not run and forward[j])
            start_cap[j + 1] = (not open_joint[j]) or (first and kind[j] == 2) or (not run and backward[j])
            bare = open_joint[j] and not run and not forward[j] and not backward[j]
            wedge = max(h_px[j], h_px[j + 1]) ** 2 * abs(cross[j]) / 2.0
            join[j] = bare and wedge >= min_wedge_px2
            join_positive[j] = cross[j] < 0

    # ---- vertex layout: quads (4 per row), kept start caps, kept end caps (9 rim points each),
    # loft rims after end caps (rim 1), loft rims before the next row's start cap (rim 2)
    ns = ne = nre = nrs = 0
    for r in range(m):
        ns += start_cap[r]
        ne += end_cap[r]
        nre += rim[r] == 1
        nrs += rim[r] == 2
    cap_at = 4 * m
    rim_at = cap_at + rim_points * (ns + ne)
    nv = rim_at + rim_points * (nre + nrs)
    vertices = np.empty((nv, 3), np.float32)
    colors = np.empty((nv, 3), np.float32)
    start_base = np.full(m, -1, np.int64)
    end_base = np.full(m, -1, np.int64)
    rim_base = np.zeros(m, np.int64)
    ks = ke = kre = krs = 0
    for r in range(m):
        if start_cap[r]:
            start_base[r] = cap_at + rim_points * ks
            ks += 1
        if end_cap[r]:
            end_base[r] = cap_at + rim_points * (ns + ke)
            ke += 1
        if rim[r] == 1:
            rim_base[r] = rim_at + rim_points * kre
            kre += 1
        elif rim[r] == 2:
            rim_base[r] = rim_at + rim_points * (nre + krs)
            krs += 1
    for r in range(m):
        i = idx[r]
        n0, n1 = np.float32(normal[r, 0]), np.float32(normal[r, 1])
        for k in range(4):
            end = p0 if k < 2 else p1
            sign = np.float32(1.0) if k % 2 == 0 else np.float32(-1.0)
            v = 4 * r + k
            vertices[v, 0] = np.float32(end[i, 0]) + sign * n0
            vertices[v, 1] = np.float32(end[i, 1]) + sign * n1
            vertices[v, 2] = np.float32(end[i, 2])
            for ch in range(3):
                colors[v, ch] = fade0[r, ch] if k < 2 else fade1[r, ch]
        # caps and loft rims: the rim points of the row's start (at_end 0) or end (at_end 1) cap
        for block in range(4):
            if block == 0:
                row, base, at_end, scale = r, start_base[r], 0, 1.0
            elif block == 1:
                row, base, at_end, scale = r, end_base[r], 1, 1.0
            elif block == 2:
                if rim[r] != 1:
                    continue
                row, base, at_end = r, rim_base[r], 1
                scale = 1.0 - rim_inset[r] / normal_px[r]
            else:
                if rim[r] != 2:
                    continue
                row, base, at_end = r + 1, rim_base[r], 0
                scale = 1.0 - rim_inset[r] / normal_px[r + 1]
            if base < 0:
                continue
            src = idx[row]
            end = p1 if at_end else p0
            bx, by, bz = np.float32(end[src, 0]), np.float32(end[src, 1]), np.float32(end[src, 2])
            if block < 2:
                ox, oy = np.float32(normal[row, 0]), np.float32(normal[row, 1])
            else:
                ox, oy = np.float32(normal[row, 0] * scale), np.float32(normal[row, 1] * scale)
            ax, ay = np.float32(along[row, 0]), np.float32(along[row, 1])
            if block >= 2:
                step = abs(p1[idx[min(r + 1, m - 1)], 2] - p1[i, 2]) if block == 2 else abs(p0[i, 2] - p0[src, 2])
                bz = bz + np.float32(loft_depth_bias * step)
            for t in range(rim_points):
                wn, wd = rim_weights[at_end, 0, t], rim_weights[at_end, 1, t]
                v = base + t
                vertices[v, 0] = (bx + ox * wn) + ax * wd
                vertices[v, 1] = (by + oy * wn) + ay * wd
                vertices[v, 2] = bz
                for ch in range(3):
                    colors[v, ch] = fade1[row, ch] if at_end else fade0[row, ch]
        # a kept cap's straight edge is exactly its quad's end edge (rim points 0 and 8)
        if start_base[r] >= 0:
            vertices[start_base[r]] = vertices[4 * r + 1]
            vertices[start_base[r] + rim_points - 1] = vertices[4 * r]
        if end_base[r] >= 0:
            vertices[end_base[r]] = vertices[4 * r + 2]
            vertices[end_base[r] + rim_points - 1] = vertices[4 * r + 3]

    # ---- faces in row order: quad (2), start cap (fan), end cap (fan), loft (2 per rim step), join (1)
    nf = 0
    for r in range(m):
        counts[r] = 2 + fan * (start_cap[r] + end_cap[r]) + 2 * (rim_points - 1) * (loft_from[r] >= 0) + join[r]
        nf += counts[r]
    faces = np.empty((nf, 3), np.int32)
    f = 0
    for r in range(m):
        c = 4 * r
        faces[f, 0], faces[f, 1], faces[f, 2] = c, c + 1, c + 2
        faces[f + 1, 0], faces[f + 1, 1], faces[f + 1, 2] = c + 1, c + 2, c + 3
        f += 2
        for base in (start_base[r], end_base[r]):
            if base >= 0:
                for t in range(fan):
                    faces[f, 0], faces[f, 1], faces[f, 2] = base, base + 1 + t, base + 2 + t
                    f += 1
        if loft_from[r] >= 0:
            a0, b0 = rim_base[loft_from[r]], rim_base[r]
            for s in range(rim_points - 1):
                a, b = a0 + s, b0 + s
                faces[f, 0], faces[f, 1], faces[f, 2] = a, a + 1, b + 1
                faces[f + 1, 0], faces[f + 1, 1], faces[f + 1, 2] = a, b + 1, b
                f += 2
        if join[r]:
            faces[f, 0], faces[f, 1] = c + 2, c + 3
            faces[f, 2] = c + 4 if join_positive[r] else c + 5
            f += 1
    return vertices, colors, faces, idx, counts
