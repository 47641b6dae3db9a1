"""The compiled ``tiles.drawn_tiles`` marks exactly the tiles of its numpy reference."""

from __future__ import annotations

import numpy as np
import pytest

from scene2world.renderer.frame import build_frame, prepare_static
from scene2world.renderer.raster import merge_batches
from scene2world.renderer.tiles import DRAWN_TILE_PX, drawn_tiles
from scene2world.scene.load import load_scene
from tests.conftest import EXAMPLE


def drawn_tiles_reference(vertices_px: np.ndarray, faces: np.ndarray, width: int, height: int, tile: int) -> np.ndarray:
    """The numpy form ``tiles.drawn_tiles`` had before it was compiled (session 7): the same marks."""
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


@pytest.mark.parametrize("tile", [DRAWN_TILE_PX, 64])
def test_the_example_frames_mark_the_reference_tiles(tile: int) -> None:
    scene = load_scene(EXAMPLE / "s2w_demo_curve_0001")
    static = prepare_static(scene, "nvidia")
    for camera in scene.camera_names:
        for frame in range(0, scene.num_frames, 15):
            vertices, _, faces = merge_batches(build_frame(scene, camera, frame, "nvidia", static))
            got = drawn_tiles(vertices, faces, 1280, 720, tile)
            np.testing.assert_array_equal(got, drawn_tiles_reference(vertices, faces, 1280, 720, tile))
            assert got.any(), (camera, frame)


def test_random_triangles_on_and_off_the_image_mark_the_reference_tiles() -> None:
    rng = np.random.default_rng(11)
    for _ in range(200):
        vertices = rng.uniform(-400, 1700, (60, 3)).astype(np.float32)
        vertices[:, :2] *= np.float32(rng.uniform(0.01, 1.0))  # from tiny to image-spanning triangles
        vertices[rng.integers(0, 60, 5), :2] += rng.uniform(-1, 1, (5, 2)).astype(np.float32) * 32  # near edges
        faces = rng.integers(0, 60, (40, 3)).astype(np.uint32)
        np.testing.assert_array_equal(
            drawn_tiles(vertices, faces, 1280, 720, 32), drawn_tiles_reference(vertices, faces, 1280, 720, 32)
        )
    vertices[faces[3, 1], 0] = np.inf  # unknown extent: every tile
    assert drawn_tiles(vertices, faces, 1280, 720, 32).all()
