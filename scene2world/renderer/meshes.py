"""Camera-frame shapes -> pixel-space :class:`DrawBatch` meshes, for both looks.

Lines go through :func:`~scene2world.renderer.lines.expand_lines`, triangles are projected per
vertex with their colours faded by depth. The ``nvidia`` look sends NVIDIA's chords unclipped
and lets the rasteriser clip by screen-linear depth, as NVIDIA does; the ``fixed`` look clips at
:data:`~scene2world.renderer.clipping.FIXED_NEAR_M` and subdivides first
(:mod:`scene2world.renderer.clipping`).
"""

from __future__ import annotations

import numpy as np

from scene2world.errors import RenderError
from scene2world.renderer.arrays import as_array
from scene2world.renderer.batch import FAR_CLIP_M, NEAR_CLIP_M, DrawBatch
from scene2world.renderer.camera import FThetaCamera
from scene2world.renderer.clipping import (
    FIXED_NEAR_M,
    clip_segments_near,
    clip_triangles_near,
    subdivide_segments,
    subdivide_triangles,
)
from scene2world.renderer.lines import expand_lines_with_sources
from scene2world.renderer.projection import depth_fade, project_uvz
from scene2world.typing import NDArrayFloat


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
    seg = as_array(segments_cam, "segments_cam", (2, 3))
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
    uvz = project_uvz(camera, seg)
    vertices, colors, faces, face_src = expand_lines_with_sources(
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
    tri = as_array(triangles_cam, "triangles_cam", (3, 3))
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
    uvz = project_uvz(camera, tri)
    u, v, z = uvz[..., 0], uvz[..., 1], uvz[..., 2]
    w, h = camera.width_px, camera.height_px
    dead = np.all(z < NEAR_CLIP_M, axis=1) | np.all(z > FAR_CLIP_M, axis=1)
    dead |= np.all(u < 0, axis=1) | np.all(u > w, axis=1) | np.all(v < 0, axis=1) | np.all(v > h, axis=1)
    keep = np.flatnonzero(~dead)
    colors = col[keep] * depth_fade(z[keep])[..., None]
    m = len(keep)
    return uvz[keep].reshape(-1, 3), colors.reshape(-1, 3), np.arange(3 * m).reshape(m, 3), src[keep]
