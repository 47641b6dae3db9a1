"""DrawBatch: the geometry <-> rasteriser contract."""

from __future__ import annotations

import numpy as np
import pytest

from scene2world.errors import RenderError
from scene2world.renderer.batch import FAR_CLIP_M, NEAR_CLIP_M, DrawBatch

pytestmark = pytest.mark.timeout(30)


def _tri(z: float = 5.0) -> DrawBatch:
    return DrawBatch(np.array([[0, 0, z], [10, 0, z], [0, 10, z]]), np.ones((3, 3)), np.array([[0, 1, 2]]), "t")


def test_coerces_and_freezes() -> None:
    b = _tri()
    assert b.vertices_px.dtype == np.float32 and b.colors.dtype == np.float32 and b.faces.dtype == np.int32
    assert b.num_triangles == 1 and not b.is_empty
    with pytest.raises(ValueError):
        b.vertices_px[0, 0] = 1.0
    assert (NEAR_CLIP_M, FAR_CLIP_M) == (1e-3, 200.0)


def test_validation() -> None:
    with pytest.raises(RenderError, match=r"`vertices_px` must be \(N, 3\), got \(3, 2\)"):
        DrawBatch(np.zeros((3, 2)), np.zeros((3, 3)), np.zeros((1, 3)))
    with pytest.raises(RenderError, match="`colors` must be"):
        DrawBatch(np.zeros((3, 3)), np.zeros((2, 3)), np.zeros((1, 3)))
    with pytest.raises(RenderError, match="index outside"):
        DrawBatch(np.zeros((3, 3)), np.zeros((3, 3)), np.array([[0, 1, 3]]))


def test_concatenate_offsets_faces_in_order() -> None:
    merged = DrawBatch.concatenate([_tri(5.0), _tri(7.0)], "both")
    assert merged.faces.tolist() == [[0, 1, 2], [3, 4, 5]]
    assert merged.vertices_px[3:, 2].tolist() == [7.0, 7.0, 7.0]
    assert DrawBatch.concatenate([]).is_empty
