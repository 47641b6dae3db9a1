"""World-space primitives: resampling, patterns, polygons, cuboids (renderer/primitives.py)."""

from __future__ import annotations

import numpy as np
import pytest

from scene2world.errors import RenderError
from scene2world.renderer.primitives import (
    BOX_EDGES,
    BOX_FACES,
    SIGN_FACES,
    apply_pattern,
    box_vertex_colors,
    cuboid_corners,
    fan_triangles,
    nvidia_box_visible,
    offset_segments,
    polygon_outline,
    polyline_segments,
    resample_polyline,
    triangulate_ring,
)

pytestmark = pytest.mark.timeout(60)

W, H = 1280, 720


def _line(length: float, step: float = 0.05) -> np.ndarray:
    pts = np.array([[0.0, 0.0, 0.0], [length, 0.0, 0.0]])
    return polyline_segments(resample_polyline(pts, step))


def _areas(tris: np.ndarray) -> np.ndarray:
    """Areas of (T, 3, 3) triangles projected on the x-y plane."""
    a, b = tris[:, 1, :2] - tris[:, 0, :2], tris[:, 2, :2] - tris[:, 0, :2]
    return np.abs(a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]) / 2


def _runs(segments: np.ndarray) -> list[tuple[float, float]]:
    """Arc-length runs (start, end) of kept segments of a line along +x from the origin."""
    runs: list[list[float]] = []
    for a, b in segments[:, :, 0].astype(float):
        if runs and abs(runs[-1][1] - a) < 1e-6:
            runs[-1][1] = b
        else:
            runs.append([a, b])
    return [(a, b) for a, b in runs]


# ----------------------------------------------------------------------------- resampling


def test_resample_nvidia_counts() -> None:
    one = resample_polyline(np.array([[2.0, 1.8, 0], [11.8, 1.8, 0]]), 0.05)
    assert one.dtype == np.float32 and len(one) == 196  # int(9.8/0.05) = 196 points, 195 segments
    np.testing.assert_allclose(np.diff(one[:, 0]), 9.8 / 195, rtol=1e-4)
    two = resample_polyline(np.array([[0.0, 0, 0], [1.0, 0, 0], [1.0, 2.0, 0]]), 0.8)
    # 1 m -> max(int(1.25), 2) = 2 points (no intermediate), 2 m -> int(2.5) = 2 points
    np.testing.assert_allclose(two, [[0, 0, 0], [1, 0, 0], [1, 2, 0]])
    pole = resample_polyline(np.array([[30.0, 17, 0], [30.0, 17, 7]]), 0.8)
    assert len(pole) == 8  # int(7/0.8) = 8 linspace points; the last one is the end point
    assert len(resample_polyline(np.zeros((0, 3)), 0.8)) == 0
    np.testing.assert_array_equal(resample_polyline(np.array([[1.0, 2, 3]]), 0.8), [[1, 2, 3]])
    with pytest.raises(RenderError, match="NaN"):
        resample_polyline(np.array([[0, 0, 0], [np.nan, 0, 0]]), 0.8)


# ----------------------------------------------------------------------------- patterns


def test_long_dashed_runs_are_clipped_exactly() -> None:
    runs = _runs(apply_pattern(_line(100.0), "long_dashed"))
    assert len(runs) == 9
    for k, (a, b) in enumerate(runs):
        assert a == pytest.approx(12 * k, abs=1e-4) and b == pytest.approx(12 * k + 3, abs=1e-4)


def test_short_dashed_keeps_whole_segments_inside_dashes() -> None:
    seg = _line(30.0)
    kept = apply_pattern(seg, "short_dashed")
    step = float(np.linalg.norm(seg[0, 1] - seg[0, 0]))
    runs = _runs(kept)
    assert len(runs) == 10
    for k, (a, b) in enumerate(runs):
        assert 3 * k - 1e-5 <= a < 3 * k + step
        assert 3 * k + 1.5 - step < b <= 3 * k + 1.5 + 1e-5


def test_dot_dashed_and_dotted() -> None:
    seg = _line(20.0)
    dots = apply_pattern(seg, "dot_dashed")
    idx = [int(np.flatnonzero(np.all(seg == d, axis=(1, 2)))[0]) for d in dots]
    assert idx[:8] == [0, 3, 6, 9, 12, 15, 72, 75]  # 6 dots every 3rd segment, period 72 segments
    short = seg[:10]
    np.testing.assert_array_equal(apply_pattern(short, "dot_dashed"), short[::3])
    np.testing.assert_array_equal(apply_pattern(seg, "dotted_1_9"), seg[::10])
    np.testing.assert_array_equal(apply_pattern(seg, "solid"), seg)
    assert apply_pattern(np.zeros((0, 2, 3)), "long_dashed").shape == (0, 2, 3)


def test_dual_offsets_and_clipgt_collapse() -> None:
    seg = _line(5.0)
    left, right = offset_segments(seg, 0.1)
    np.testing.assert_allclose(left[..., 1], 0.1, atol=1e-7)
    np.testing.assert_allclose(right[..., 1], -0.1, atol=1e-7)
    left, right = offset_segments(seg, 0.1, clipgt_rdf=True)  # offset computed in RDF x-y: none
    np.testing.assert_allclose(left, right)
    sideways = np.array([[[0.0, 0.0, 0.0], [0.0, 1.0, 0.0]]])
    left, _ = offset_segments(sideways, 0.1, clipgt_rdf=True)  # ... or a vertical one
    np.testing.assert_allclose(left[0, :, 2], 0.1, atol=1e-7)


# ----------------------------------------------------------------------------- polygons


def test_ring_resampling_rules() -> None:
    """An open ring's closing edge gets no points; a closed ring's does, duplicate dropped.

    docs/world_scenario.md, "How NVIDIA draws" (polygons).
    """
    open_ring = np.array([[40.0, -14, 0], [40.0, 14, 0], [44.0, 14, 0], [44.0, -14, 0]])
    out_open = polygon_outline(open_ring, 0.8)
    out_closed = polygon_outline(np.concatenate([open_ring, open_ring[:1]]), 0.8)
    on_closing_edge = lambda p: np.isclose(p[:, 1], -14) & (p[:, 0] > 40) & (p[:, 0] < 44)  # noqa: E731
    assert not on_closing_edge(out_open).any()
    assert on_closing_edge(out_closed).sum() == 3  # int(4/0.8) = 5 points on that edge, 2 of them corners
    assert not np.allclose(out_closed[0], out_closed[-1])
    np.testing.assert_allclose(polygon_outline(open_ring, 0.8, close_ring=True), out_closed)


def test_delaunay_fills_convex_hull_and_fixed_keeps_inside() -> None:
    l_shape = np.array([[0.0, 0, 0], [4, 0, 0], [4, 1, 0], [1, 1, 0], [1, 4, 0], [0, 4, 0], [0, 0, 0]])
    outline = polygon_outline(l_shape, 0.8)

    def area(t: np.ndarray) -> float:
        return float(_areas(t).sum())

    assert area(triangulate_ring(outline)) == pytest.approx(11.5)  # convex hull of the L (quirk)
    assert area(triangulate_ring(outline, inside_only=True)) == pytest.approx(7.0)
    assert len(triangulate_ring(outline, plane="rdf_xy")) == 0  # flat: NVIDIA's ClipGT path crashes
    assert triangulate_ring(outline[:2]).shape == (0, 3, 3)


# ----------------------------------------------------------------------------- cuboids, culling


def test_cuboid_corner_order_and_gradient() -> None:
    pose = np.eye(4)
    pose[:3, :3] = [[0, -1, 0], [1, 0, 0], [0, 0, 1]]  # yaw 90°: heading +y
    pose[:3, 3] = [10, 0, 1]
    c = cuboid_corners(pose[None], np.array([[4.0, 2.0, 2.0]]))[0]
    np.testing.assert_allclose(c[0], [10 - 1, 2, 2])  # (+l/2, +w/2, +h/2) in the object frame
    np.testing.assert_allclose(c[6], [10 + 1, -2, 0])  # (−, −, −)
    assert BOX_FACES.shape == SIGN_FACES.shape == (12, 3) and BOX_EDGES.shape == (12, 2)
    colors = box_vertex_colors(np.array([[1.0, 0, 0]]), np.array([[0, 0, 1.0]]))[0]
    assert colors[[0, 1, 4, 5], 0].tolist() == [1, 1, 1, 1] and colors[[2, 3, 6, 7], 2].tolist() == [1, 1, 1, 1]
    assert fan_triangles(np.zeros((2, 16, 3))).shape == (28, 3, 3)


def test_nvidia_box_culling() -> None:
    corners = np.zeros((3, 8, 3))
    corners[..., 2] = 5.0
    uv = np.full((3, 8, 2), 100.0)
    corners[1, :, 2] = -1.0  # behind the camera
    uv[2] = [[-50.0, 100.0]] * 4 + [[1500.0, 100.0]] * 4  # in front but every corner off-image (quirk)
    assert nvidia_box_visible(corners, uv, W, H).tolist() == [True, False, False]
