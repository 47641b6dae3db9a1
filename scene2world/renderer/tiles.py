"""Which square screen tiles geometry can touch: conservative, vectorised, cheap.

The rasteriser resolves MSAA only in tiles where something was drawn: on llvmpipe a full-frame
resolve costs about as much as drawing the lines. Tiles are indexed (row, column) from the
image's top-left corner; a tile is marked when a triangle's bounding box, widened by one pixel,
touches it, so marking errs only towards too many tiles.
"""

from __future__ import annotations

import numpy as np

RESOLVE_TILE_PX = 32
"""Tile side (px) of llvmpipe's partial MSAA resolve (one blit per run of tiles in a tile row)."""


def drawn_tiles(vertices_px: np.ndarray, faces: np.ndarray, width: int, height: int, tile: int) -> np.ndarray:
    """(rows, cols) bool: the ``tile``-pixel tiles (top row first) that any triangle's bounding box touches.

    Conservative: a triangle can only cover samples inside its pixel bounding box widened by one
    pixel, and clipping (near/far) only removes parts of it. Non-finite vertices mark every tile.
    About 1 ms for 40k triangles.
    """
    rows, cols = -(-height // tile), -(-width // tile)
    if len(faces) == 0:
        return np.zeros((rows, cols), bool)
    # per face the min/max over its three vertices (numpy's reductions over a length-3 axis are
    # ~20x slower than elementwise ops on the rows), widened by a pixel and clamped onto the image
    # (a box wholly off the image clamps onto edge tiles: over-marking)
    a, b, c = faces.T.astype(np.intp)
    box = []
    for axis, count in ((0, cols), (1, rows)):
        x = np.ascontiguousarray(vertices_px[:, axis])
        if not np.isfinite(x.sum(dtype=np.float64)):
            return np.ones((rows, cols), bool)
        xa, xb, xc = x[a], x[b], x[c]
        lo = np.minimum(np.minimum(xa, xb), xc)
        hi = np.maximum(np.maximum(xa, xb), xc)
        box.append(np.clip((lo - 1.0) * (1.0 / tile), 0, count - 1).astype(np.int32))
        box.append(np.clip((hi + 1.0) * (1.0 / tile), 0, count - 1).astype(np.int32) + 1)
    c0, c1, r0, r1 = box
    tiles = np.zeros((rows, cols), bool)
    flat = tiles.ravel()
    # most boxes span at most 2 x 2 tiles: their corner tiles are all of them, marked directly
    small = ((c1 - c0) <= 2) & ((r1 - r0) <= 2)
    for r, c in ((r0, c0), (r0, c1 - 1), (r1 - 1, c0), (r1 - 1, c1 - 1)):
        flat[(r * cols + c)[small]] = True
    big = ~small
    c0, c1, r0, r1 = c0[big], c1[big], r0[big], r1[big]
    # the others through a 2D difference array: +1 at box corners (r0, c0) and (r1, c1), -1 at the others
    stride = cols + 1
    index = np.concatenate([r0 * stride + c0, r1 * stride + c1, r0 * stride + c1, r1 * stride + c0])
    weight = np.repeat(np.array([1.0, 1.0, -1.0, -1.0]), len(r0))
    counts = np.bincount(index, weight, (rows + 1) * stride).reshape(rows + 1, stride)
    tiles |= np.cumsum(np.cumsum(counts, axis=0), axis=1)[:rows, :cols] > 0.5
    return tiles


def tile_rects(tiles: np.ndarray, width: int, height: int, tile: int) -> np.ndarray:
    """(K, 4) int64 GL-space rectangles (x0, y0, x1, y1; y up) covering the True ``tiles``, one per row run."""
    rows, cols = tiles.shape
    padded = np.zeros((rows, cols + 2), np.int8)
    padded[:, 1:-1] = tiles
    edges = np.diff(padded, axis=1)
    row, start = np.nonzero(edges == 1)
    _, stop = np.nonzero(edges == -1)  # row-major order: the k-th stop closes the k-th start
    x0, x1 = start * tile, np.minimum(stop * tile, width)
    top, bottom = row * tile, np.minimum((row + 1) * tile, height)
    return np.stack([x0, height - bottom, x1, height - top], axis=1).astype(np.int64)
