"""The contract between geometry (``frame.py``) and the rasteriser (``raster.py``).

For one camera and one frame, :func:`scene2world.renderer.frame.build_frame` returns an ordered
``list[DrawBatch]``. Each batch is a flat-coloured triangle mesh in **pixel space**:

- ``vertices_px`` (N, 3) float32: ``u`` (pixels, right), ``v`` (pixels, down), and ``depth`` =
  camera-frame z in metres (forward distance, not Euclidean). Depth is *screen-linear* (NVIDIA's
  shaders emit w = 1), so the rasteriser must interpolate it linearly in screen space: use an
  orthographic camera, never a perspective one.
- ``colors`` (N, 3) float32: RGB in 0..1, already multiplied by NVIDIA's depth fade
  ``clamp(1 - depth / 200, 0, 1)``.
- ``faces`` (M, 3) int32: triangles indexing ``vertices_px``; winding is arbitrary (draw both sides).

Rasteriser rules (NVIDIA's, see docs/world_scenario.md, "How NVIDIA draws"):

- map ``x_ndc = 2u/W - 1``, ``y_ndc = 1 - 2v/H`` (pixel centres at i + 0.5);
- depth test GL_LESS on camera depth, depth buffer cleared to the far plane, black background;
- clip fragments whose interpolated depth is outside ``[NEAR_CLIP_M, FAR_CLIP_M]``;
- draw the batches in list order (order decides depth ties: the earlier draw wins).

Vertices may have negative depth (``nvidia`` look: NVIDIA leaves near clipping to OpenGL, so a
triangle that crosses the camera plane is cut where its screen-linear depth reaches the near
plane). NVIDIA clips at depth 0; we clip at ``NEAR_CLIP_M`` = 1 mm, which is the same up to depth
buffer quantisation and keeps the depth range non-degenerate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scene2world.errors import RenderError

NEAR_CLIP_M = 1e-3
"""Near clip plane, metres of camera depth (NVIDIA: 0)."""

FAR_CLIP_M = 200.0
"""Far clip plane, metres of camera depth (NVIDIA's ``depth_max``)."""


@dataclass(frozen=True, eq=False)
class DrawBatch:
    """One draw call: a pixel-space triangle mesh with per-vertex colours.

    ``vertices_px``: (N, 3) float32 (u px right, v px down, camera depth m).
    ``colors``: (N, 3) float32 RGB 0..1, depth fade already applied.
    ``faces``: (M, 3) int32 vertex indices.
    ``label``: what the batch holds (``"static_lines"``, ``"box 12 faces"``...), for debugging only.
    """

    vertices_px: np.ndarray
    colors: np.ndarray
    faces: np.ndarray
    label: str = ""

    def __post_init__(self) -> None:
        vertices = np.ascontiguousarray(self.vertices_px, dtype=np.float32)
        colors = np.ascontiguousarray(self.colors, dtype=np.float32)
        faces = np.ascontiguousarray(self.faces, dtype=np.int32)
        if vertices.ndim != 2 or vertices.shape[1] != 3:
            raise RenderError(f"DrawBatch {self.label!r}: `vertices_px` must be (N, 3), got {vertices.shape}")
        if colors.shape != vertices.shape:
            raise RenderError(f"DrawBatch {self.label!r}: `colors` must be {vertices.shape}, got {colors.shape}")
        if faces.ndim != 2 or faces.shape[1] != 3:
            raise RenderError(f"DrawBatch {self.label!r}: `faces` must be (M, 3), got {faces.shape}")
        if faces.size and (faces.min() < 0 or faces.max() >= len(vertices)):
            raise RenderError(
                f"DrawBatch {self.label!r}: `faces` index outside 0..{len(vertices) - 1} "
                f"(got {faces.min()}..{faces.max()})"
            )
        for arr in (vertices, colors, faces):
            arr.setflags(write=False)
        object.__setattr__(self, "vertices_px", vertices)
        object.__setattr__(self, "colors", colors)
        object.__setattr__(self, "faces", faces)

    @property
    def num_triangles(self) -> int:
        """Number of triangles (M)."""
        return len(self.faces)

    @property
    def is_empty(self) -> bool:
        """True when the batch draws nothing."""
        return len(self.faces) == 0

    @staticmethod
    def concatenate(batches: list[DrawBatch], label: str = "") -> DrawBatch:
        """One batch drawing ``batches`` in order (GL rasterises a draw call's triangles in order, so
        depth ties resolve exactly as with separate draws)."""
        if not batches:
            return DrawBatch(np.zeros((0, 3)), np.zeros((0, 3)), np.zeros((0, 3)), label)
        offsets = np.cumsum([0] + [len(b.vertices_px) for b in batches[:-1]])
        return DrawBatch(
            np.concatenate([b.vertices_px for b in batches]),
            np.concatenate([b.colors for b in batches]),
            np.concatenate([b.faces + o for b, o in zip(batches, offsets)]),
            label,
        )
