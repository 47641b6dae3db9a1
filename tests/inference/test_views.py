from __future__ import annotations

import pytest

from scene2world.errors import InferenceError
from scene2world.inference.views import VIEW_KEYS, VIEWS, canonical, view_by_key, view_for_camera
from scene2world.scene.model import CameraName

pytestmark = pytest.mark.timeout(30)


def test_table_matches_nvidia_order_and_cameras():
    assert VIEW_KEYS == ("front_wide", "cross_right", "rear_right", "rear", "rear_left", "cross_left", "front_tele")
    assert [v.view_id for v in VIEWS] == list(range(7))
    assert {v.camera for v in VIEWS} == set(CameraName)
    assert view_by_key("rear").camera.value == "camera_rear_tele_30fov"
    assert view_by_key("front_tele").camera.value == "camera_front_tele_30fov"


def test_lookups():
    assert view_for_camera("camera_rear_tele_30fov").key == "rear"
    assert view_for_camera(CameraName.CROSS_LEFT).view_id == 5
    assert canonical(["front_tele", "rear", "front_wide", "rear"]) == ("front_wide", "rear", "front_tele")


def test_unknown_names_raise():
    with pytest.raises(InferenceError, match="camera_rear_30fov"):
        view_for_camera("camera_rear_30fov")
    with pytest.raises(InferenceError, match="expected one of front_wide"):
        view_by_key("back")
