"""The rendered bytes of fixed frames stay the same through refactors (e.g. the split of the old
``primitives`` module into primitives / lines / meshes / clipping / projection / arrays).

The sha256 of raw RGB frames, MSAA 1, over both looks and both line-cap modes, as recorded before
the split. A deliberate change of the picture updates the table: the failure message prints the
new one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest

from scene2world.renderer.frame import build_frame
from scene2world.renderer.raster import Rasterizer
from scene2world.scene.load import load_scene
from scene2world.scene.synthetic import build_s2
from tests.conftest import EXAMPLE

pytestmark = pytest.mark.timeout(240)

FRONT = "camera_front_wide_120fov"
CROSS = "camera_cross_left_120fov"

EXPECTED = {
    ("nvidia", True, "example", FRONT, 10): "8114def10110a3999907c66bdf47a8581970ce58ef6e7aad68f9e7f36916887c",
    ("nvidia", True, "example", CROSS, 40): "36c09e9fa2f01c1ab82e23c04d7b7ea54efee03f606d84ea12a93e3f41585599",
    ("nvidia", True, "s2", FRONT, 0): "bd1aa3cea63909696c034cc305f1d09cd91f8661207b771c507358acfd088293",
    ("nvidia", False, "example", FRONT, 10): "45ad033b0508572f8e636c4fbdb97015fb979c2dea099d572d37c2826f6ea5ee",
    ("nvidia", False, "s2", FRONT, 0): "654ebbe6d9ab3e96193ee71800dfc274bc692ab19fec8be8410ca83e44f20a74",
    ("fixed", True, "example", FRONT, 10): "7348b86aacb76ad5be9c054f8d61c8b7d39d4b7000d6309c4f908db3f5dd50d5",
    ("fixed", True, "example", CROSS, 40): "3fde3b18138a5c2c802b0ea2311db3339f9168bf1140f7424768314618191aba",
    ("fixed", True, "s2", FRONT, 0): "5231a29f72be6eb0fdf216593e2c1ddbc33dd577ecf4e2604ed82f6f2982c999",
    ("fixed", False, "example", FRONT, 10): "aedb919397c805c929023f5d78e55e864b50748087c2206a453f37a48baa8a35",
    ("fixed", False, "s2", FRONT, 0): "a9681577577e41cc4fd60390a56c06ea812b9f81da8d5d7bf82cfa54aa646233",
}


@pytest.fixture(scope="module")
def raster() -> Iterator[Rasterizer]:
    with Rasterizer(1280, 720, msaa=1, device="cpu") as r:
        yield r


def test_frames_are_byte_identical(raster: Rasterizer) -> None:
    scenes = {"example": load_scene(EXAMPLE / "s2w_demo_curve_0001"), "s2": build_s2()}
    got = {}
    for key in EXPECTED:
        look, cull_caps, scene, camera, frame = key
        image = raster.render(build_frame(scenes[scene], camera, frame, look, cull_caps=cull_caps))
        got[key] = hashlib.sha256(image.tobytes()).hexdigest()
    changed = [key for key in EXPECTED if got[key] != EXPECTED[key]]
    table = "\n".join(f"    {key!r}: {got[key]!r}," for key in EXPECTED)
    assert not changed, f"{len(changed)} frame(s) changed: {changed}\nnew table:\n{table}"
