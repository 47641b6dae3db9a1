"""F-theta camera: NVIDIA's test vectors (docs/ftheta.md), fitting, rescale, errors."""

from __future__ import annotations

import numpy as np
import pytest

from scene2world.errors import RenderError
from scene2world.renderer.camera import FThetaCamera, fit_inverse_polynomial
from scene2world.scene.defaults import nvidia_rig
from scene2world.scene.model import FThetaIntrinsics
from scene2world.scene.synthetic import DOC_FTHETA

pytestmark = pytest.mark.timeout(60)

# docs/ftheta.md, "Test vectors": the documentation camera rescaled to 1280x720, camera-frame point -> pixel.
TEST_VECTORS = [
    ((0, 0, 10), (638.476, 358.043)),
    ((1, 0, 10), (699.993, 358.043)),
    ((0, 1, 10), (638.476, 419.559)),
    ((5, 2, 10), (919.828, 470.583)),
    ((10, 0, 1), (1514.273, 358.043)),
    ((10, 0, 0.01), (1570.658, 358.043)),
    ((10, 0, -1), (1628.185, 358.043)),
    ((0, 0, -10), (638.476, 358.043)),
    ((1, 1, -5), (1821.376, 1540.942)),
]


@pytest.fixture(scope="module")
def doc_cam() -> FThetaCamera:
    return FThetaCamera.from_intrinsics(DOC_FTHETA, "doc")


@pytest.mark.parametrize(("point", "expected"), TEST_VECTORS)
def test_nvidia_test_vectors(doc_cam: FThetaCamera, point, expected) -> None:
    uv, depth = doc_cam.project(np.array([point], dtype=float))
    assert np.abs(uv[0] - expected).max() < 0.01
    assert depth[0] == point[2]


def test_rescaled_parameters(doc_cam: FThetaCamera) -> None:
    assert (doc_cam.width_px, doc_cam.height_px) == (1280, 720)
    assert doc_cam.cx_px == pytest.approx(638.4765, abs=1e-4)
    assert doc_cam.cy_px == pytest.approx(358.0426, abs=1e-4)
    np.testing.assert_allclose(
        doc_cam.bw_poly, [0, 0.0016186697, 2.1326873e-08, 5.1937194e-11, 9.865754e-15, 0], rtol=1e-6
    )
    np.testing.assert_allclose(
        doc_cam.fw_poly, [0, 617.78967, -5.013810, -7.524060, -0.5544846, 0.3469530], rtol=2e-5, atol=1e-5
    )
    hfov, vfov = doc_cam.fov_deg
    assert hfov == pytest.approx(121.36, abs=0.01)
    assert vfov == pytest.approx(67.29, abs=0.01)
    assert np.degrees(doc_cam.max_ray_angle_rad) == pytest.approx(70.196, abs=1e-3)
    np.testing.assert_allclose(doc_cam.max_ray_distortion, [735.2285, 571.4537], atol=2e-3)


def test_fit_is_float32_with_zero_constant() -> None:
    fw = fit_inverse_polynomial(np.array([0, 1e-3, 0, 0, 0, 0.0]), 700.0)
    assert fw[0] == 0.0
    np.testing.assert_array_equal(fw, fw.astype(np.float32))
    assert fw[1] == pytest.approx(1000.0, rel=1e-5)


def test_project_batch_shapes_and_empty(doc_cam: FThetaCamera) -> None:
    uv, depth = doc_cam.project(np.zeros((0, 3)))
    assert uv.shape == (0, 2) and depth.shape == (0,)
    uv, depth = doc_cam.project(np.array([[0.3, -0.2, 4.0]]))
    assert uv.shape == (1, 2) and depth.shape == (1,)
    pts = np.random.default_rng(0).normal(size=(500, 3)) * [5, 2, 1] + [0, 0, 10]
    uv_all, _ = doc_cam.project(pts)
    uv_one = np.stack([doc_cam.project(p[None])[0][0] for p in pts[:5]])
    np.testing.assert_allclose(uv_all[:5], uv_one)


def test_backproject_inverts_project(doc_cam: FThetaCamera) -> None:
    rng = np.random.default_rng(1)
    uv = rng.uniform([0, 0], [1279, 719], size=(200, 2))
    rays = doc_cam.backproject(uv)
    np.testing.assert_allclose(np.linalg.norm(rays, axis=1), 1.0, atol=1e-9)
    back, _ = doc_cam.project(rays * 7.0)
    assert np.abs(back - uv).max() < 0.05  # fitted inverse polynomials
    assert doc_cam.backproject(np.array([[doc_cam.cx_px, doc_cam.cy_px]])).tolist() == [[0.0, 0.0, 1.0]]


@pytest.mark.parametrize("name", sorted(nvidia_rig()))
def test_default_rig_cameras(name: str) -> None:
    """Backward (120°) and forward (70°, 30°) default cameras rescale from 1920x1080 and round-trip.

    The default intrinsics: docs/world_scenario.md.
    """
    spec = nvidia_rig()[name]
    cam = FThetaCamera.from_intrinsics(spec.intrinsics, name)
    assert (cam.width_px, cam.height_px) == (1280, 720)
    assert cam.cx_px == pytest.approx(spec.intrinsics.cx_px * 2 / 3, abs=1e-3)
    uv = np.array([[100.0, 80.0], [640.0, 360.0], [1200.0, 700.0]])
    back, _ = cam.project(cam.backproject(uv))
    assert np.abs(back - uv).max() < 0.5
    nominal = float(name.split("_")[-1].removesuffix("fov"))
    assert abs(cam.fov_deg[0] - nominal) < 3.0


def test_non_monotonic_polynomial_names_the_camera() -> None:
    bad = FThetaIntrinsics(640.0, 360.0, 1280, 720, [0.0, 600.0, 0.0, -400.0, 0.0, 0.0], False)
    with pytest.raises(RenderError, match="camera_rear_tele_30fov"):
        FThetaCamera.from_intrinsics(bad, "camera_rear_tele_30fov")
    bad_bw = FThetaIntrinsics(640.0, 360.0, 1280, 720, [0.0, 1e-3, 0.0, -5e-9, 0.0, 0.0], True)
    with pytest.raises(RenderError, match="cam_x"):
        FThetaCamera.from_intrinsics(bad_bw, "cam_x")


def test_bad_inputs(doc_cam: FThetaCamera) -> None:
    with pytest.raises(RenderError, match=r"must be \(N, 3\), got \(4, 2\)"):
        doc_cam.project(np.zeros((4, 2)))
    with pytest.raises(RenderError, match="NaN"):
        doc_cam.project(np.array([[0.0, np.nan, 1.0]]))
    with pytest.raises(RenderError, match=r"must be \(N, 2\)"):
        doc_cam.backproject(np.zeros((3,)))


def _formula(cam: FThetaCamera, p: np.ndarray, atan2) -> np.ndarray:
    """The projection written out in numpy (docs/ftheta.md), with the given atan2."""
    rho = np.hypot(p[:, 0], p[:, 1])
    alpha = atan2(rho, p[:, 2])
    a_max, (r_max, slope) = cam.max_ray_angle_rad, cam.max_ray_distortion
    radial = np.zeros(len(p))
    for c in cam.fw_poly[::-1]:
        radial = radial * alpha + c
    delta = np.where(alpha <= a_max, radial, r_max + (alpha - a_max) * slope)
    scale = np.where(rho <= 0.0, 0.0, delta / np.where(rho <= 0.0, 1.0, rho))
    x, y = p[:, 0] * scale, p[:, 1] * scale
    (a00, a01), (a10, a11) = cam.A
    return np.stack([(a00 * x + a01 * y) + cam.cx_px, (a10 * x + a11 * y) + cam.cy_px], axis=1)


def _points() -> np.ndarray:
    """Points in front, beside, behind the camera and on its axis."""
    rng = np.random.default_rng(7)
    pts = rng.normal(size=(3000, 3)) * [20.0, 5.0, 30.0]
    return np.concatenate([pts, [[0.0, 0.0, 5.0], [0.0, 0.0, -5.0], [0.0, 0.0, 0.0], [1e-300, 0.0, 1.0]]])


@pytest.mark.parametrize("name", sorted(nvidia_rig()))
def test_compiled_projection_is_the_formula(name: str) -> None:
    """The compiled projection does the formula's arithmetic exactly (libm's atan2, the affine map
    written out); numpy's own arctan2 and BLAS (used before) agree to within float64 rounding."""
    import math

    cam = FThetaCamera.from_intrinsics(nvidia_rig()[name].intrinsics, name)
    pts = _points()
    uv, depth = cam.project(pts)
    libm_atan2 = np.frompyfunc(math.atan2, 2, 1)
    assert np.array_equal(uv, _formula(cam, pts, lambda y, x: libm_atan2(y, x).astype(np.float64)))
    assert np.array_equal(depth, pts[:, 2])
    np.testing.assert_allclose(uv, _formula(cam, pts, np.arctan2), rtol=1e-12, atol=1e-9)


def test_segment_ends_are_the_points_projections() -> None:
    from scene2world.renderer.projection import project_segment_ends

    cam = FThetaCamera.from_intrinsics(DOC_FTHETA, "doc")
    pts = _points()
    index = np.random.default_rng(3).integers(0, len(pts), size=(5000, 2))
    uvz0, uvz1, shown = project_segment_ends(cam, pts, index, 1e-3, 200.0)
    z = pts[:, 2]
    near, far = z < 1e-3, z > 200.0
    keep = ~((near[index[:, 0]] & near[index[:, 1]]) | (far[index[:, 0]] & far[index[:, 1]]))
    assert np.array_equal(shown, np.flatnonzero(keep)) and 0 < len(shown) < len(index)
    uv, _ = cam.project(pts)
    for ends, uvz in ((index[shown, 0], uvz0), (index[shown, 1], uvz1)):
        assert np.array_equal(uvz[:, :2], uv[ends]) and np.array_equal(uvz[:, 2], z[ends])
    empty = project_segment_ends(cam, pts, np.zeros((0, 2), np.int64), 1e-3, 200.0)
    assert [a.shape for a in empty] == [(0, 3), (0, 3), (0,)]
