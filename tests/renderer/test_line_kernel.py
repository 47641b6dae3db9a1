"""The compiled line expansion (renderer/line_kernel.py) gives numpy's bytes (tests/renderer/line_reference.py).

Every array is compared with ``np.array_equal`` on its raw values: the kernel must reproduce the
numpy code's float64 plan and float32 vertices exactly, so the renderer's pictures do not depend
on which of the two ran.
"""

from __future__ import annotations

from unittest import mock

import numpy as np
import pytest

from scene2world.renderer import frame
from scene2world.renderer.lines import expand_lines_with_sources
from scene2world.scene.load import load_scene
from scene2world.scene.synthetic import build_s2
from tests.conftest import EXAMPLE
from tests.renderer.line_reference import expand_culled_reference, line_plan
from tests.renderer.test_lines import _chain

pytestmark = pytest.mark.timeout(240)

W, H = 1280, 720


def _assert_same(p0, p1, c0, c1, width, segment_ids=None) -> tuple[np.ndarray, ...]:
    got = expand_lines_with_sources(p0, p1, c0, c1, width, W, H, segment_ids=segment_ids)
    want = expand_culled_reference(
        np.asarray(p0, float),
        np.asarray(p1, float),
        np.asarray(c0, float),
        np.asarray(c1, float),
        np.broadcast_to(np.asarray(width, float), (len(p0),)),
        float(W),
        float(H),
        segment_ids,
    )
    for name, g, w in zip(("vertices", "colours", "faces", "sources"), got, want):
        assert g.shape == w.shape, f"{name}: {g.shape} != {w.shape}"
        assert np.array_equal(g, w), f"{name}: {np.count_nonzero(g != w)} values differ"
    return want


def _frame_lines(scene, look: str, frames: range) -> list[tuple]:
    """The static-line arrays that build_frame expands, for every camera of ``frames``."""
    captured: list[tuple] = []
    real = frame.expand_finite_lines

    def capture(*args, **kwargs):
        captured.append((args, kwargs))
        return real(*args, **kwargs)

    static = frame.prepare_static(scene, look)
    with mock.patch.object(frame, "expand_finite_lines", capture):
        for f in frames:
            for camera in scene.camera_names:
                frame.build_frame(scene, camera, f, look, static)
    return captured


@pytest.mark.parametrize("clip", ["example", "s2"])
def test_kernel_gives_numpys_bytes_on_real_frames(clip: str) -> None:
    scene = load_scene(EXAMPLE / "s2w_demo_curve_0001") if clip == "example" else build_s2()
    frames = range(0, scene.num_frames, 5 if clip == "example" else 1)
    lofts = {1: 0, 2: 0}
    joins = 0
    for args, kwargs in _frame_lines(scene, "nvidia", frames):
        uvz0, uvz1, rgb, width = args[:4]
        _assert_same(uvz0, uvz1, rgb, rgb, width, kwargs["segment_ids"])
    # the frames exercise every part of the plan (else the comparison above proves little)
    for args, kwargs in _frame_lines(scene, "nvidia", range(0, scene.num_frames, 30)):
        plan = _plan_of(*args[:4], kwargs["segment_ids"])
        if plan is not None:
            lofts[1] += int(np.count_nonzero((plan.loft_from >= 0) & (plan.rim == 1)))
            lofts[2] += int(np.count_nonzero((plan.loft_from >= 0) & (plan.rim == 2)))
            joins += int(np.count_nonzero(plan.join))
    if clip == "example":
        assert lofts[1] > 0 and lofts[2] > 0 and joins > 0, (lofts, joins)


def _plan_of(uvz0, uvz1, rgb, width, segment_ids):
    from scene2world.renderer.lines import drawn_rows

    rows = drawn_rows(uvz0, uvz1, rgb, rgb, width, float(W), float(H))
    if rows is None or len(rows.idx) < 2:
        return None
    ids = np.asarray(segment_ids)[rows.idx]
    return line_plan(rows.q0, rows.q1, rows.k0, rows.k1, width[rows.idx], np.diff(ids) == 1, rows.unit, rows.half, W)


@pytest.mark.parametrize("step_px", [0.05, 0.5, 3.0])
@pytest.mark.parametrize("receding", [True, False])
def test_kernel_gives_numpys_bytes_on_chains(step_px: float, receding: bool) -> None:
    """Receding and approaching chains (lofts after end caps, lofts before start caps), bends and
    depth maxima (join triangles), colour changes, broken links and lines leaving the viewport."""
    n = 300
    angles = 90.0 + 40.0 * np.sin(np.linspace(0.0, 6.0, n + 1))
    p0, p1 = _chain(n, 5.0, 0.05, step_px, angle_deg=angles)
    if not receding:
        p0, p1 = p1[::-1].copy(), p0[::-1].copy()
    p1[100:140, 2] = p1[99, 2] - 0.01 * np.arange(40)  # a depth maximum then a descent
    p0[101:141, 2] = p1[100:140, 2]
    rgb = np.ones((n, 3))
    rgb[200:] = [0.9, 0.8, 0.1]  # a colour change
    p0[250] += [0.5, 0.0, 0.0]  # a broken link
    other = rgb.copy()
    other[:, 0] *= 0.5  # different colours at the ends: every joint stays closed
    _assert_same(p0, p1, rgb, rgb, 12)
    _assert_same(p0, p1, rgb, other, np.linspace(4.0, 14.0, n))
    _assert_same(p0, p1, rgb, rgb, 12, segment_ids=np.arange(n) * 2)  # no two rows chain
    shift = np.array([900.0, 0.0, 0.0])
    _assert_same(p0 + shift, p1 + shift, rgb, rgb, 5)  # partly off to the right


def test_kernel_edge_cases() -> None:
    none = np.zeros((0, 3))
    got = expand_lines_with_sources(none, none, none, none, 12, W, H)
    assert [a.shape for a in got] == [(0, 3), (0, 3), (0, 3), (0,)]
    off = np.array([[-300.0, 200.0, 5.0]]), np.array([[-20.0, 200.0, 5.0]])
    assert len(expand_lines_with_sources(*off, np.ones((1, 3)), np.ones((1, 3)), 12, W, H)[2]) == 0
    one = np.array([[300.0, 200.0, 20.0]]), np.array([[600.0, 200.0, 20.0]])
    vertices, _, faces, _ = _assert_same(*one, np.ones((1, 3)), np.ones((1, 3)), 12)
    assert len(vertices) == 4 + 9 + 9 and len(faces) == 2 + 7 + 7
