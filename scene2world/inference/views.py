"""The Cosmos multiview view table: spec key ↔ view id ↔ renderer camera, in one place.

The canonical order is NVIDIA's ``MULTIVIEW_CAMERA_KEYS`` (the learned view-embedding ids 0-6,
kept when only some views are active); it orders the grid cells, the time-concatenated combined
video and the view → rank assignment. It differs from the order in which the spec *fields* are
declared (``front_wide, rear, rear_left, …``), which is the spec model's business.
Described in ``docs/cosmos.md`` ("Views and cameras").
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from scene2world.errors import InferenceError
from scene2world.scene.model import CameraName


@dataclass(frozen=True)
class ViewInfo:
    """One Cosmos view: its spec key, its view-embedding id and the rig camera that feeds it."""

    key: str
    view_id: int
    camera: CameraName


VIEWS: tuple[ViewInfo, ...] = (
    ViewInfo("front_wide", 0, CameraName.FRONT_WIDE),
    ViewInfo("cross_right", 1, CameraName.CROSS_RIGHT),
    ViewInfo("rear_right", 2, CameraName.REAR_RIGHT),
    ViewInfo("rear", 3, CameraName.REAR_TELE),
    ViewInfo("rear_left", 4, CameraName.REAR_LEFT),
    ViewInfo("cross_left", 5, CameraName.CROSS_LEFT),
    ViewInfo("front_tele", 6, CameraName.FRONT_TELE),
)
"""All seven views in canonical order (index == ``view_id``)."""

VIEW_KEYS: tuple[str, ...] = tuple(v.key for v in VIEWS)
"""Spec keys in canonical order."""

_BY_KEY = {v.key: v for v in VIEWS}
_BY_CAMERA = {v.camera.value: v for v in VIEWS}


def view_by_key(key: str) -> ViewInfo:
    """The view of spec key ``key`` (e.g. ``"rear"``); InferenceError for an unknown key."""
    try:
        return _BY_KEY[key]
    except KeyError:
        raise InferenceError(f"unknown Cosmos view {key!r}; expected one of {', '.join(VIEW_KEYS)}") from None


def view_for_camera(camera: str | CameraName) -> ViewInfo:
    """The view fed by rig camera ``camera`` (e.g. ``camera_rear_tele_30fov`` → ``rear``).

    Raises InferenceError naming the camera and the seven accepted names.
    """
    name = camera.value if isinstance(camera, CameraName) else str(camera)
    try:
        return _BY_CAMERA[name]
    except KeyError:
        raise InferenceError(
            f"camera {name!r} has no Cosmos multiview view; expected one of {', '.join(_BY_CAMERA)}"
        ) from None


def canonical(keys: Iterable[str]) -> tuple[str, ...]:
    """Spec ``keys`` sorted into canonical view order; unknown keys raise InferenceError."""
    ids = sorted({view_by_key(k).view_id for k in keys})
    return tuple(VIEWS[i].key for i in ids)
