"""The fixed look's near clipping and chord subdivision (renderer/clipping.py)."""

from __future__ import annotations

import numpy as np
import pytest

from scene2world.renderer.camera import FThetaCamera
from scene2world.renderer.clipping import (
    MAX_CHORD_ERROR_PX,
    _chord_error_px,
    clip_segments_near,
    clip_triangles_near,
    subdivide_segments,
    subdivide_triangles,
)
from scene2world.scene.synthetic import DOC_FTHETA

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def cam() -> FThetaCamera:
    return FThetaCamera.from_intrinsics(DOC_FTHETA, "doc")


def _areas(tris: np.ndarray) -> np.ndarray:
    """Areas of (T, 3, 3) triangles projected on the x-y plane."""
    a, b = tris[:, 1, :2] - tris[:, 0, :2], tris[:, 2, :2] - tris[:, 0, :2]
    return np.abs(a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]) / 2


# ----------------------------------------------------------------------------- fixed look: clipping, subdivision


def test_near_clipping_of_a_segment_crossing_the_camera_plane() -> None:
    seg = np.array([[[0.0, 0.0, -1.0], [0.0, 2.0, 3.0]], [[0.0, 0, -2.0], [0.0, 0, -1.0]]])
    rgb = np.array([[[0.0, 0, 0], [1.0, 1, 1]], [[1.0, 1, 1], [1.0, 1, 1]]])
    out, col, src = clip_segments_near(seg, rgb, 0.05)
    assert src.tolist() == [0]
    np.testing.assert_allclose(out[0, 0], [0.0, 0.525, 0.05])
    np.testing.assert_allclose(out[0, 1], [0.0, 2.0, 3.0])
    np.testing.assert_allclose(col[0, 0], 0.2625)


def test_near_clipping_of_triangles() -> None:
    tri = np.array(
        [
            [[0, 0, 1.0], [1, 0, 1.0], [0, 1, 1.0]],  # in front: unchanged
            [[0, 0, 1.0], [1, 0, -1.0], [0, 1, -1.0]],  # one vertex in front: one triangle
            [[0, 0, -1.0], [1, 0, 1.0], [0, 1, 1.0]],  # two in front: a quad (two triangles)
            [[0, 0, -1.0], [1, 0, -1.0], [0, 1, -1.0]],  # behind: dropped
        ]
    )
    out, _, src = clip_triangles_near(tri, np.ones_like(tri), 0.0)
    assert src.tolist() == [0, 1, 2, 2]
    assert np.all(out[..., 2] >= -1e-12)
    areas = _areas(out)
    assert areas[1] == pytest.approx(0.125) and areas[2] + areas[3] == pytest.approx(0.5 - 0.125)


def test_subdivision_bounds_chord_error(cam: FThetaCamera) -> None:
    seg = np.array([[[-3.0, 1.4, 0.6], [3.0, 1.4, 0.6]]])  # 6 m ground segment 0.6 m ahead: strongly bent
    assert _chord_error_px(cam, seg[:, 0], seg[:, 1])[0] > 50
    pieces, _, src = subdivide_segments(cam, seg, np.zeros((1, 2, 3)))
    assert len(pieces) > 8 and np.all(src == 0)
    np.testing.assert_allclose(pieces[0, 0], seg[0, 0])
    np.testing.assert_allclose(pieces[-1, 1], seg[0, 1])
    assert _chord_error_px(cam, pieces[:, 0], pieces[:, 1]).max() < MAX_CHORD_ERROR_PX
    tri = np.array([[[-3.0, 1.4, 0.6], [3.0, 1.4, 0.6], [0.0, 1.4, 6.0]]])
    parts, _, tsrc = subdivide_triangles(cam, tri, np.ones_like(tri))
    assert len(parts) > 16 and np.all(tsrc == 0)
    edges_a, edges_b = parts[:, [0, 1, 2]].reshape(-1, 3), parts[:, [1, 2, 0]].reshape(-1, 3)
    assert _chord_error_px(cam, edges_a, edges_b).max() < MAX_CHORD_ERROR_PX
    assert _areas(parts[:, :, [0, 2]]).sum() == pytest.approx(_areas(tri[:, :, [0, 2]]).sum())
