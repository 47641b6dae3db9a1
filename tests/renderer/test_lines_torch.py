"""The torch geometry path (``render.geometry: torch``) against the numpy one, on torch's CPU device.

The same arithmetic on CUDA is what the GPU machine runs; here torch on the CPU checks that the
port computes the same vertices, colours and faces, and the same pixels.
"""

from __future__ import annotations

import numpy as np
import pytest

from scene2world.errors import ConfigError, RenderError
from scene2world.renderer.frame import build_frame, camera_model, prepare_static, upload_static_lines
from scene2world.renderer.lines_torch import project_torch
from scene2world.renderer.render import render_png_frame
from scene2world.scene.load import load_scene
from tests.conftest import EXAMPLE

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.timeout(240)

FRONT = "camera_front_wide_120fov"
CROSS = "camera_cross_left_120fov"


@pytest.fixture(scope="module")
def scene():
    return load_scene(EXAMPLE / "s2w_demo_curve_0001")


@pytest.fixture(scope="module")
def static(scene):
    return prepare_static(scene, "nvidia")


def test_projection_matches_numpy_also_behind_the_camera_and_on_the_axis(scene):
    camera = camera_model(scene, FRONT)
    rng = np.random.default_rng(3)
    points = rng.normal(size=(2000, 3)) * [20.0, 5.0, 30.0]  # about half behind the camera
    points[:3] = [[0.0, 0.0, 5.0], [0.0, 0.0, -5.0], [1e-9, 0.0, 1.0]]
    want, _ = camera.project(points)
    got = project_torch(camera, torch.as_tensor(points)).numpy()
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)
    assert (points[:, 2] < 0).sum() > 500


@pytest.mark.parametrize("cull_caps", [True, False])
@pytest.mark.parametrize(("camera", "frame"), [(FRONT, 10), (CROSS, 40), ("camera_rear_left_70fov", 150)])
def test_static_lines_match_numpy(scene, static, camera, frame, cull_caps):
    lines = upload_static_lines(static, "cpu")
    want = build_frame(scene, camera, frame, "nvidia", static, cull_caps=cull_caps)
    got = build_frame(scene, camera, frame, "nvidia", static, cull_caps=cull_caps, torch_lines=lines)
    assert want[0].num_triangles > 1000
    np.testing.assert_array_equal(got[0].faces, want[0].faces)
    np.testing.assert_array_equal(got[0].colors, want[0].colors)
    # float32 pixels up to 1280 (and off-screen further): a last-bit difference is 1.2e-4 px
    np.testing.assert_allclose(got[0].vertices_px, want[0].vertices_px, rtol=0, atol=5e-4)
    for a, b in zip(got[1:], want[1:]):  # the other batches stay in numpy
        np.testing.assert_array_equal(a.vertices_px, b.vertices_px)


@pytest.mark.parametrize(("camera", "frame"), [(FRONT, 10), (CROSS, 40)])
def test_torch_geometry_draws_the_same_pixels(scene, camera, frame):
    want = render_png_frame(scene, camera, frame, msaa=1, device="cpu")
    got = render_png_frame(scene, camera, frame, msaa=1, device="cpu", geometry="torch")
    assert want.max() > 0
    np.testing.assert_array_equal(got, want)


def test_an_unknown_geometry_is_refused(scene):
    with pytest.raises(RenderError, match="`geometry` must be one of"):
        render_png_frame(scene, FRONT, 0, geometry="jax")  # type: ignore[arg-type]
    from scene2world.config import load_config

    with pytest.raises(ConfigError, match="geometry"):
        load_config(None, overrides=["render.geometry=jax"])


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the choice on a machine without CUDA")
def test_auto_is_numpy_and_cuda_is_refused_without_a_cuda_device(scene):
    from scene2world.renderer.frame import StaticGeometry
    from scene2world.renderer.lines_torch import torch_device
    from scene2world.renderer.render import GeometryBuilder

    assert isinstance(GeometryBuilder(geometry="auto").prepare(scene, "nvidia"), StaticGeometry)
    static, lines = GeometryBuilder(geometry="torch").prepare(scene, "nvidia")
    assert lines.device.type == "cpu" and lines.points_world.shape == static.line_points_world.shape
    with pytest.raises(RenderError, match="no CUDA device"):
        torch_device("cuda")
