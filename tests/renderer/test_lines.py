"""NVIDIA's line shader on the CPU: widths, caps, fading, cap culling (renderer/lines.py)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from scene2world.errors import RenderError
from scene2world.renderer.lines import expand_lines
from scene2world.renderer.projection import (
    depth_fade,
)
from tests.renderer.line_reference import LinePlan, line_plan

pytestmark = pytest.mark.timeout(60)

W, H = 1280, 720
EXAMPLE_CLIP = Path(__file__).resolve().parents[2] / "assets" / "example" / "s2w_demo_curve_0001"


# ----------------------------------------------------------------------------- lines


# NVIDIA's line widths without MSAA (docs/world_scenario.md, "How NVIDIA draws"):
# depth -> (horizontal L=12, vertical L=12, vertical L=5) px
WIDTH_TABLE = {
    5: (7, 12, 5),
    10: (7, 11, 5),
    25: (6, 10, 4),
    50: (5, 9, 4),
    100: (4, 6, 2),
    150: (2, 3, 2),
    190: (0, 1, 1),
}


def _one(p0, p1, width, rgb=(1.0, 1.0, 1.0)):
    return expand_lines(np.array([p0], float), np.array([p1], float), [rgb], [rgb], width, W, H)


@pytest.mark.parametrize("depth", sorted(WIDTH_TABLE))
def test_line_width_anisotropy_and_depth_scaling(depth: int) -> None:
    s = 1 - depth / 200
    horizontal = _one((300, 200, depth), (600, 200, depth), 12).vertices_px
    vertical = _one((300, 200, depth), (300, 500, depth), 12).vertices_px
    pole = _one((300, 200, depth), (300, 500, depth), 5).vertices_px
    thick_h = horizontal[:4, 1].max() - horizontal[:4, 1].min()
    thick_v = vertical[:4, 0].max() - vertical[:4, 0].min()
    thick_p = pole[:4, 0].max() - pole[:4, 0].min()
    assert thick_h == pytest.approx(12 * s * H / W, abs=1e-4)
    assert thick_v == pytest.approx(12 * s, abs=1e-4)
    assert thick_p == pytest.approx(5 * s, abs=1e-4)
    for analytic, measured in zip((thick_h, thick_v, thick_p), WIDTH_TABLE[depth]):
        assert abs(analytic - measured) <= 1.0


def test_round_caps_are_ndc_half_ellipses() -> None:
    batch = _one((300, 200, 20), (600, 200, 20), 12)  # depth 20 m: width 12·0.9 px
    # the quad's 4 corners and each cap's 9 rim points; a cap is fanned over its rim (7 triangles)
    assert batch.num_triangles == 2 + 7 + 7 and len(batch.vertices_px) == 4 + 9 + 9
    v = batch.vertices_px.astype(float)
    np.testing.assert_array_equal(v[[13, 21]], v[[2, 3]])  # the end cap's rim ends are the quad corners
    np.testing.assert_array_equal(v[[4, 12]], v[[1, 0]])  # and the start cap's
    end_centre, end_rim = (v[2] + v[3]) / 2, v[13:22]
    start_rim = v[4:13]
    # rim points lie on an ellipse of semi-axes 5.4 px (u) and 5.4·H/W px (v) around the end point
    du, dv = (end_rim[:, 0] - end_centre[0]) / 5.4, (end_rim[:, 1] - end_centre[1]) / (5.4 * H / W)
    np.testing.assert_allclose(du**2 + dv**2, 1.0, atol=1e-4)
    assert end_rim[:, 0].min() >= end_centre[0] - 1e-3  # the end cap bulges forward (+u) ...
    assert start_rim[:, 0].max() <= 300 + 1e-3  # ... the start cap backward
    assert end_rim[4, 0] == pytest.approx(605.4, abs=1e-3)
    assert np.all(v[:, 2] == 20.0)


def test_line_colors_are_depth_faded() -> None:
    batch = _one((300, 200, 50), (600, 200, 100), 12, rgb=(1.0, 0.5, 0.0))
    np.testing.assert_allclose(batch.colors[0], [0.75, 0.375, 0.0], rtol=1e-6)
    np.testing.assert_allclose(batch.colors[2], [0.5, 0.25, 0.0], rtol=1e-6)
    np.testing.assert_allclose(batch.colors[14], [0.5, 0.25, 0.0], rtol=1e-6)
    np.testing.assert_allclose(depth_fade([0, 50, 100, 200, 250, -10]), [1, 0.75, 0.5, 0, 0, 1])


def test_lines_that_cannot_show_are_skipped() -> None:
    assert _one((300, 200, 5), (300, 200, 5), 12).is_empty  # zero length (NVIDIA: NaN direction)
    assert _one((300, 200, -5), (600, 200, -1), 12).is_empty  # behind the near plane
    assert _one((300, 200, 250), (600, 200, 300), 12).is_empty  # beyond 200 m
    assert _one((-300, 200, 5), (-20, 200, 5), 12).is_empty  # left of the viewport
    assert not _one((300, 200, -5), (600, 200, 5), 12).is_empty  # crosses the near plane: kept


def test_expand_lines_n0_and_nan() -> None:
    empty = expand_lines(np.zeros((0, 3)), np.zeros((0, 3)), np.zeros((0, 3)), np.zeros((0, 3)), 12, W, H)
    assert empty.is_empty and empty.vertices_px.shape == (0, 3)
    with pytest.raises(RenderError, match="NaN"):
        _one((np.nan, 200, 5), (600, 200, 5), 12)
    with pytest.raises(RenderError, match=r"\(N, 3\)"):
        expand_lines(np.zeros((2, 2)), np.zeros((2, 3)), np.zeros((2, 3)), np.zeros((2, 3)), 12, W, H)


# ----------------------------------------------------------------------------- cap culling


def _chain(n: int, z0: float, dz: float, step_px: float, u0: float = 640.0, v0: float = 650.0, angle_deg=90.0):
    """n consecutive segments (shared end points, pixels and depth) from (u0, v0) at ``angle_deg``
    above the horizontal, ``step_px`` long each, depth z0 + k·dz."""
    k = np.arange(n + 1, dtype=float)
    a = np.radians(np.broadcast_to(np.asarray(angle_deg, float), (n + 1,)))
    du, dv = step_px * np.cos(a), -step_px * np.sin(a)
    pts = np.stack(
        [
            u0 + np.concatenate([[0.0], np.cumsum(du[:-1])]),
            v0 + np.concatenate([[0.0], np.cumsum(dv[:-1])]),
            z0 + dz * k,
        ],
        1,
    )
    return pts[:-1], pts[1:]


def _plan(p0: np.ndarray, p1: np.ndarray, width: float = 12.0, colors: np.ndarray | None = None) -> LinePlan:
    """line_plan of segments that are all drawn, with the NDC maths of expand_lines."""
    x0, y0 = 2 * p0[:, 0] / W - 1, 1 - 2 * p0[:, 1] / H
    x1, y1 = 2 * p1[:, 0] / W - 1, 1 - 2 * p1[:, 1] / H
    d = np.stack([x1 - x0, y1 - y0], 1)
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    half = (2 * width / W) * np.clip(1 - (p0[:, 2] + p1[:, 2]) / 400, 0, 1) / 2
    k = np.ones((len(p0), 3)) if colors is None else colors
    widths = np.full(len(p0), width)
    return line_plan(p0, p1, k, k, widths, np.ones(len(p0) - 1, bool), d, half, W)


def _rows(a: np.ndarray) -> set[tuple[float, ...]]:
    return {tuple(r) for r in np.asarray(a, np.float64).tolist()}


def test_full_caps_are_nvidias_18_triangles_per_segment() -> None:
    p0, p1 = _chain(50, 10.0, 0.05, 0.3)
    white = np.ones((50, 3))
    full = expand_lines(p0, p1, white, white, 12, W, H, cull_caps=False)
    assert full.num_triangles == 18 * 50 and len(full.vertices_px) == 24 * 50
    one = expand_lines(p0[:1], p1[:1], white[:1], white[:1], 12, W, H)  # a lone segment keeps both caps
    without_centres = np.r_[0:4, 5:14, 15:24]  # the culled caps are drawn over their rims alone
    np.testing.assert_allclose(one.vertices_px, full.vertices_px[without_centres], atol=1e-4)
    np.testing.assert_array_equal(one.faces[:2], full.faces[:2])


@pytest.mark.parametrize(("step_px", "lofted"), [(0.05, True), (0.5, False)])
def test_chain_keeps_its_quads_ends_and_winning_caps(step_px: float, lofted: bool) -> None:
    """A receding chain: every quad and both chain-end caps stay; inside, only the end caps (which win
    against the deeper quads drawn after them) or, where joints are dense, lofts in their place."""
    n = 400
    p0, p1 = _chain(n, 20.0, 0.05, step_px)
    white = np.ones((n, 3))
    full = expand_lines(p0, p1, white, white, 12, W, H, cull_caps=False)
    culled = expand_lines(p0, p1, white, white, 12, W, H)
    quad_corners = full.vertices_px.reshape(n, 24, 3)[:, :4].reshape(-1, 3)
    np.testing.assert_array_equal(culled.vertices_px[: 4 * n], quad_corners)  # same quads, bit for bit
    kept = _rows(culled.vertices_px)
    caps = full.vertices_px.reshape(n, 24, 3)
    assert _rows(caps[0, 5:14]) <= kept and _rows(caps[-1, 15:24]) <= kept  # the chain's end caps (rims)
    plan = _plan(p0, p1)
    assert plan.start_cap[0] and plan.end_cap[-1] and not plan.start_cap[1:].any()
    assert not plan.join.any()
    if lofted:
        assert plan.end_cap[:-1].sum() == 1 and (plan.loft_from >= 0).sum() > 5  # first cap, then lofts
        assert culled.num_triangles < 3 * n
    else:
        assert plan.end_cap.all() and (plan.loft_from < 0).all()
        assert culled.num_triangles == 2 * n + 7 * (n + 1)  # kept caps: 7 triangles over their rim
    # approaching (drawn from far to near): the start caps win instead
    back = _plan(p1[::-1], p0[::-1])
    assert back.start_cap[0] and back.end_cap[-1] and not back.end_cap[:-1].any()


def test_caps_stay_at_bends_breaks_and_colour_changes() -> None:
    n = 20
    angles = np.where(np.arange(n + 1) < 10, 90.0, 0.0)  # a right angle after segment 9
    p0, p1 = _chain(n, 20.0, 0.05, 0.5, angle_deg=angles)
    plan = _plan(p0, p1)
    assert plan.end_cap[9] and plan.start_cap[10]
    colours = np.ones((n, 3))
    colours[12:] = [1.0, 1.0, 0.0]
    plan = _plan(p0, p1, colors=colours)
    assert plan.end_cap[11] and plan.start_cap[12]
    p0g = p0.copy()
    p0g[15, 0] += 1.0  # segment 15 does not start where 14 ends
    plan = _plan(p0g, p1)
    assert plan.end_cap[14] and plan.start_cap[15]
    assert not plan.start_cap[5] and plan.end_cap[5]  # inside a straight receding stretch: the end cap wins


def test_depth_maximum_drops_both_caps_and_fills_the_wedge() -> None:
    """Where a chain turns from receding to approaching neither cap wins: a join triangle fills the
    outer wedge of the bend instead."""
    p0, p1 = _chain(2, 20.0, 0.05, 2.0, angle_deg=[90.0, 91.0, 91.0])
    p0[1, 2] = p1[0, 2]
    p1[1, 2] = p0[0, 2]  # depth goes up then down: a maximum at the joint
    plan = _plan(p0, p1)
    assert not plan.end_cap[0] and not plan.start_cap[1] and plan.join[0]
    white = np.ones((2, 3))
    batch = expand_lines(p0, p1, white, white, 12, W, H)
    assert batch.num_triangles == 2 + 7 + 2 + 7 + 1


@pytest.fixture(scope="module")
def raster4():
    from scene2world.renderer.raster import Rasterizer

    with Rasterizer(W, H, msaa=4, device=os.environ.get("S2W_TEST_DEVICE", "cpu")) as r:
        yield r


def _same_share(a: np.ndarray, b: np.ndarray) -> float:
    """Share of pixels non-black in either image whose channels all match within 16/255."""
    lit = (a.max(axis=-1) > 0) | (b.max(axis=-1) > 0)
    close = np.abs(a.astype(np.int16) - b.astype(np.int16)).max(axis=-1) <= 16
    return int(np.count_nonzero(close & lit)) / max(int(np.count_nonzero(lit)), 1)


def test_culled_lines_win_the_same_depth_ties(raster4) -> None:
    """A receding white line drawn after a green one crossing it on the ground wins the crossing only
    through its caps' depth (NVIDIA's lines are pulled nearer by the caps): culling keeps that."""
    n = 600
    white0, white1 = _chain(n, 8.0, 0.05, 0.4, u0=640.0, v0=700.0)
    v_cross = 700.0 - 0.4 * 300
    z_cross = 8.0 + 0.05 * 300
    green0 = np.array([[400.0 + 20 * k, v_cross, z_cross] for k in range(24)])
    green1 = green0 + np.array([20.0, 0.0, 0.0])
    p0, p1 = np.concatenate([green0, white0]), np.concatenate([green1, white1])
    rgb = np.concatenate([np.tile([0.4, 0.7, 0.2], (24, 1)), np.ones((n, 3))])
    full = raster4.render([expand_lines(p0, p1, rgb, rgb, 12, W, H, cull_caps=False)])
    culled = raster4.render([expand_lines(p0, p1, rgb, rgb, 12, W, H)])
    crossing = (slice(int(v_cross) - 6, int(v_cross) + 7), slice(634, 647))
    assert (full[crossing][..., 2] > 100).mean() > 0.5  # the white line wins most of the crossing
    np.testing.assert_array_equal(culled[crossing], full[crossing])
    assert _same_share(culled, full) >= 0.999


def test_bundled_example_renders_the_same_with_culled_caps(raster4) -> None:
    """NVIDIA's full caps vs the culled geometry on frames of the bundled example (heaviest frame
    included): at least 99.9 % of the non-black pixels match within 16/255, with far fewer triangles."""
    from scene2world.renderer.frame import build_frame, prepare_static
    from scene2world.scene.load import load_scene

    scene = load_scene(EXAMPLE_CLIP)
    static = prepare_static(scene, "nvidia")
    for camera, frame in (
        ("camera_cross_left_120fov", 0),
        ("camera_front_wide_120fov", 75),
        ("camera_rear_left_70fov", 150),
        ("camera_front_tele_30fov", 100),
    ):
        full = build_frame(scene, camera, frame, "nvidia", static, cull_caps=False)
        culled = build_frame(scene, camera, frame, "nvidia", static)
        share = _same_share(raster4.render(culled), raster4.render(full))
        assert share >= 0.999, (camera, frame, share)
        if frame == 0:
            assert culled[0].num_triangles < 0.6 * full[0].num_triangles, (
                culled[0].num_triangles,
                full[0].num_triangles,
            )
