"""The ``fixed`` look's geometry fixes: near clipping in 3-D and subdivision of long chords.

:func:`clip_segments_near` and :func:`clip_triangles_near` cut geometry at
:data:`FIXED_NEAR_M` before projection (points behind an f-theta camera project to far-off
pixels); :func:`subdivide_segments` and :func:`subdivide_triangles` split until every projected
chord is within :data:`MAX_CHORD_ERROR_PX` of the true curve (docs/ftheta.md).
"""

from __future__ import annotations

from functools import cache

import numpy as np

from scene2world.renderer.arrays import ragged_arange
from scene2world.renderer.camera import FThetaCamera
from scene2world.typing import NDArrayFloat, NDArrayInt

FIXED_NEAR_M = 0.05
"""``fixed`` look: geometry is clipped in 3D at this camera depth before projection."""

MAX_CHORD_ERROR_PX = 0.5
"""``fixed`` look: segments and triangles are split until their projected chords deviate less."""

MAX_SUBDIVISION = 32
"""Most pieces one subdivision pass splits a segment (or a triangle edge) into."""

SUBDIVISION_PASSES = 3


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
        i = ragged_arange(k).astype(np.float64)
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
