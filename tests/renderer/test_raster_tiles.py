"""Several cameras in one pass (``Rasterizer.render_tiles``) give each camera's image byte for byte.

Each image is its own primitive drawn through a viewport onto its own rows of one framebuffer:
the viewport offsets the pixels by whole rows, so the covered samples, the depth ties and the
(partial, on llvmpipe) MSAA resolve must not change a byte. Real frames of the bundled example,
whose lines cross the image borders (the tile borders) everywhere. ``S2W_TEST_DEVICE=gpu`` runs
it on an NVIDIA EGL device.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from scene2world.errors import RenderError
from scene2world.renderer.frame import build_frame, prepare_static
from scene2world.renderer.raster import Rasterizer
from scene2world.scene.load import load_scene
from tests.conftest import EXAMPLE

pytestmark = pytest.mark.timeout(300)

DEVICE = os.environ.get("S2W_TEST_DEVICE", "cpu")


@pytest.mark.parametrize(
    ("msaa", "gpu_branches"),
    [(1, False), (1, True), (4, False), (4, True)],
    ids=["msaa1", "msaa1-gpu-branches", "msaa4", "msaa4-gpu-branches"],
)
def test_tiles_equal_single_images(msaa: int, gpu_branches: bool) -> None:
    """``gpu_branches``: the tiled renderer takes the read-back branches NVIDIA's driver takes, here
    on llvmpipe too: no GL_MESA_pack_invert (MSAA 1: rows flipped by numpy) and whole-image MSAA
    resolves (which mirror the rows)."""
    scene = load_scene(EXAMPLE / "s2w_demo_curve_0001")
    static = prepare_static(scene, "nvidia")
    cameras = scene.camera_names[:3]
    frames = [build_frame(scene, camera, 60, "nvidia", static) for camera in cameras]
    with Rasterizer(msaa=msaa, device=DEVICE) as single:
        expected = [single.render(batches) for batches in frames]
    # 4 tiles for 3 images: the unused tile draws nothing and comes back out of the result
    with Rasterizer(msaa=msaa, device=DEVICE, tiles=4) as tiled:
        if gpu_branches:
            tiled._offscreen._renderer._pack_invert = False
            tiled._offscreen._renderer.resolve_by_rects = False
        first = tiled.render_tiles(frames)
        second = tiled.render_tiles(frames[::-1])  # buffers refilled, order swapped
        assert tiled.frames_rendered == 6
    assert first.shape == (3, 720, 1280, 3)
    for k in range(3):
        assert expected[k].any()
        np.testing.assert_array_equal(first[k], expected[k], err_msg=f"camera {cameras[k]}")
        np.testing.assert_array_equal(second[2 - k], expected[k], err_msg=f"camera {cameras[k]}, swapped")


def test_tile_count_is_checked() -> None:
    with pytest.raises(RenderError, match="tiles"):
        Rasterizer(64, 32, tiles=0, device=DEVICE)
    with Rasterizer(64, 32, msaa=1, tiles=2, device=DEVICE) as r:
        with pytest.raises(RenderError, match="render_tiles"):
            r.render([])
        with pytest.raises(RenderError, match=r"1\.\.2 images"):
            r.render_tiles([[], [], []])
        assert r.render_tiles([[], []]).shape == (2, 32, 64, 3)


def test_renders_on_gpu_guess(monkeypatch, tmp_path):
    from scene2world.renderer import gl

    assert gl.renders_on_gpu("gpu") and not gl.renders_on_gpu("cpu")
    monkeypatch.setattr(gl, "GPU_NODES", (str(tmp_path / "renderD*"),))
    assert not gl.renders_on_gpu("auto")
    (tmp_path / "renderD128").touch()
    assert gl.renders_on_gpu("auto")
    with pytest.raises(RenderError, match="device"):
        gl.renders_on_gpu("tpu")  # type: ignore[arg-type]


def test_raster_thread_draws_the_same_images_in_order() -> None:
    """The GL thread returns each pass's images in submission order, the same bytes as in this
    thread with glReadPixels (the thread's own read-back is ``auto``: on a GPU with CUDA torch,
    passes issued while earlier ones are still being copied out); an error of a pass comes back
    through its future, and the threads end on close."""
    import threading

    from scene2world.renderer.raster_thread import RasterThread

    scene = load_scene(EXAMPLE / "s2w_demo_curve_0001")
    static = prepare_static(scene, "nvidia")
    cameras = scene.camera_names[:2]
    frames = [[build_frame(scene, camera, f, "nvidia", static) for camera in cameras] for f in (10, 70, 130)]
    with Rasterizer(msaa=4, device=DEVICE, tiles=2, readback="gl") as here:
        expected = [here.render_tiles(images).copy() for images in frames]
    before = {t.name for t in threading.enumerate()}
    with RasterThread(msaa=4, device=DEVICE, tiles=2) as gl:
        assert (gl.width, gl.height, gl.tiles) == (1280, 720, 2)
        futures = [gl.submit(images) for images in frames]
        too_many = gl.submit(frames[0] * 2)
        for future, want in zip(futures, expected):
            np.testing.assert_array_equal(future.result(timeout=60), want)
        assert gl.seconds > 0
        with pytest.raises(RenderError, match=r"1\.\.2 images"):
            too_many.result(timeout=60)
        assert any(t.name.startswith("s2w-gl") for t in threading.enumerate())
    gl.close()  # idempotent
    assert {t.name for t in threading.enumerate()} <= before
