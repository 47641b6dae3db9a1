"""Projected triangle meshes (renderer/meshes.py)."""

from __future__ import annotations

import numpy as np
import pytest

from scene2world.errors import RenderError
from scene2world.renderer.camera import FThetaCamera
from scene2world.renderer.meshes import (
    project_triangles,
)
from scene2world.scene.synthetic import DOC_FTHETA

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def cam() -> FThetaCamera:
    return FThetaCamera.from_intrinsics(DOC_FTHETA, "doc")


def test_project_triangles_n0_n1_and_nan(cam: FThetaCamera) -> None:
    assert project_triangles(cam, np.zeros((0, 3, 3)), np.zeros((0, 3))).is_empty
    one = project_triangles(cam, np.array([[[0, 0, 10.0], [1, 0, 10.0], [0, 1, 10.0]]]), np.array([[1.0, 1, 1]]))
    assert one.num_triangles == 1
    np.testing.assert_allclose(one.colors, 0.95)
    behind = project_triangles(cam, np.array([[[0, 0, -10.0], [1, 0, -10.0], [0, 1, -10.0]]]), np.ones((1, 3)))
    assert behind.is_empty
    with pytest.raises(RenderError, match="NaN"):
        project_triangles(cam, np.full((1, 3, 3), np.nan), np.ones((1, 3)))
