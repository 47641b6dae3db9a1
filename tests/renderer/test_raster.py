"""Rasterizer on real EGL (Mesa llvmpipe here): NVIDIA's pixel mapping, depth rules and MSAA."""

from __future__ import annotations

import os

import numpy as np
import pytest

from scene2world.errors import RenderError
from scene2world.renderer.batch import DrawBatch
from scene2world.renderer.cuda_readback import unavailable_reason as cuda_unavailable_reason
from scene2world.renderer.raster import Rasterizer, merge_batches
from scene2world.renderer.tiles import drawn_tiles, tile_rects

pytestmark = pytest.mark.timeout(120)

W, H = 320, 180
DEVICE = os.environ.get("S2W_TEST_DEVICE", "cpu")  # `gpu` on an NVIDIA machine (docs/gpu.md)


def quad(u0: float, v0: float, u1: float, v1: float, depth, color) -> DrawBatch:
    """Axis-aligned pixel-space quad; ``depth`` is a scalar or 4 per-corner values (TL, TR, BR, BL)."""
    d = np.broadcast_to(np.asarray(depth, np.float32), (4,))
    vertices = np.array([[u0, v0, d[0]], [u1, v0, d[1]], [u1, v1, d[2]], [u0, v1, d[3]]], np.float32)
    colors = np.tile(np.asarray(color, np.float32), (4, 1))
    return DrawBatch(vertices, colors, np.array([[0, 1, 2], [0, 2, 3]]))


@pytest.fixture(scope="module")
def r1():
    with Rasterizer(W, H, msaa=1, device=DEVICE) as r:
        yield r


@pytest.fixture(scope="module")
def r4():
    with Rasterizer(W, H, msaa=4, device=DEVICE) as r:
        yield r


def covered(img: np.ndarray, color) -> np.ndarray:
    return (img == np.asarray(color, np.uint8)).all(axis=-1)


def test_triangle_pixels_and_colour_exact(r1):
    color = np.array([51, 102, 204]) / 255
    tri = DrawBatch(
        np.array([[10.25, 20.25, 5.0], [100.25, 20.25, 5.0], [10.25, 110.25, 5.0]], np.float32),
        np.tile(color.astype(np.float32), (3, 1)),
        np.array([[0, 2, 1]]),  # clockwise on screen: both windings are drawn
    )
    img = r1.render([tri])
    assert img.shape == (H, W, 3) and img.dtype == np.uint8
    v, u = np.mgrid[0:H, 0:W] + 0.5  # pixel centres at i + 0.5, row 0 = top (v = 0)
    expected = (u > 10.25) & (v > 20.25) & ((u - 10.25) + (v - 20.25) < 90)
    got = covered(img, [51, 102, 204])
    np.testing.assert_array_equal(got, expected)
    assert (img[~expected] == 0).all()


@pytest.mark.parametrize(("msaa", "resolve_by_rects"), [(1, False), (4, False), (4, True)])
def test_rows_in_image_order_and_ndc_mapping(msaa, resolve_by_rects):
    """Whichever way the rows come right (read inverted, a mirroring resolve, a flip after reading)."""
    with Rasterizer(W, H, msaa=msaa, device=DEVICE) as r:
        r._offscreen._renderer.resolve_by_rects = resolve_by_rects
        img = r.render([quad(0, 0, W / 2, 10, 1.0, [1, 1, 1])])
    assert covered(img, [255, 255, 255])[:10, : W // 2].all()
    assert covered(img, [255, 255, 255]).sum() == 10 * W // 2  # top-left block only, no half-pixel shift


def test_depth_test_nearer_wins_in_any_order(r1):
    near, far = quad(20, 20, 80, 80, 5.0, [0, 1, 0]), quad(40, 40, 120, 120, 50.0, [1, 0, 0])
    for batches in ([near, far], [far, near]):
        img = r1.render(batches)
        assert tuple(img[60, 60]) == (0, 255, 0)
        assert tuple(img[100, 100]) == (255, 0, 0)


def test_depth_ties_earlier_draw_wins(r1):
    red, blue = quad(0, 0, 100, 100, 10.0, [1, 0, 0]), quad(50, 50, 150, 150, 10.0, [0, 0, 1])
    img = r1.render([red, blue])
    assert tuple(img[75, 75]) == (255, 0, 0)
    img = r1.render([blue, red])
    assert tuple(img[75, 75]) == (0, 0, 255)
    # within one batch too: triangles are processed in index order
    both = DrawBatch(
        np.concatenate([blue.vertices_px, red.vertices_px]),
        np.concatenate([blue.colors, red.colors]),
        np.concatenate([blue.faces, red.faces + 4]),
    )
    img = r1.render([both])
    assert tuple(img[75, 75]) == (0, 0, 255)


def test_ties_on_sloped_coplanar_geometry(r1):
    # Same plane, depth varying along u: the later batch loses wherever it overlaps.
    depth = [5.0, 150.0, 150.0, 5.0]
    first = quad(0, 0, W, 100, depth, [1, 1, 0])
    second = quad(0, 0, W, 100, depth, [0, 1, 1])
    img = r1.render([first, second])
    assert covered(img[:100], [255, 255, 0]).all()


def test_far_clip_at_200_m_and_near_clip(r1):
    img = r1.render(
        [
            quad(0, 0, 50, 50, 199.5, [1, 0, 0]),
            quad(60, 0, 110, 50, 200.5, [0, 1, 0]),
            quad(120, 0, 170, 50, -1.0, [0, 0, 1]),
        ]
    )
    assert covered(img[:50, :50], [255, 0, 0]).all()
    assert (img[:, 55:] == 0).all()


def test_depth_is_clipped_screen_linearly(r1):
    # Depth 100 m at u = 0 to 300 m at u = 200: linear in screen space, it reaches 200 m at u = 100.
    img = r1.render([quad(0, 0, 200, 20, [100.0, 300.0, 300.0, 100.0], [1, 1, 1])])
    cols = np.nonzero(covered(img, [255, 255, 255]).any(axis=0))[0]
    assert cols[0] == 0 and cols[-1] in (98, 99)


def test_msaa_1_hard_edges_msaa_4_blended(r1, r4):
    tri = DrawBatch(
        np.array([[10.0, 10.0, 5.0], [300.0, 40.0, 5.0], [30.0, 170.0, 5.0]], np.float32),
        np.ones((3, 3), np.float32),
        np.array([[0, 1, 2]]),
    )
    a, b = r1.render([tri]), r4.render([tri])
    assert set(np.unique(a)) == {0, 255}
    partial = (b > 0) & (b < 255)
    assert partial.any()
    assert set(np.unique(b[partial])) <= {63, 64, 127, 128, 191, 192}
    # away from the edges both are identical
    interior = (a == 255).all(-1)
    eroded = interior[1:-1, 1:-1] & interior[:-2, 1:-1] & interior[2:, 1:-1] & interior[1:-1, :-2] & interior[1:-1, 2:]
    assert (b[1:-1, 1:-1][eroded] == 255).all()
    # and MSAA changes only pixels next to an edge: within 2 px of where the MSAA-1 image switches
    lit = (a > 0).any(-1)
    pad = np.pad(lit, 2)
    h, w = lit.shape
    around = np.stack([pad[2 + dy : 2 + dy + h, 2 + dx : 2 + dx + w] for dy in range(-2, 3) for dx in range(-2, 3)])
    near_edge = around.any(0) & ~around.all(0)
    changed = (a != b).any(-1)
    assert changed.any() and not (changed & ~near_edge).any()


def test_empty_input_gives_black(r1, r4):
    for r in (r1, r4):
        assert not r.render([]).any()
        empty = DrawBatch(np.zeros((0, 3)), np.zeros((0, 3)), np.zeros((0, 3)))
        assert not r.render([empty]).any()
    # and the previous frame's content does not leak
    r1.render([quad(0, 0, 50, 50, 1.0, [1, 1, 1])])
    assert not r1.render([]).any()


def test_colour_values_exact(r1):
    levels = np.arange(0, 256, 17)
    batches = [quad(i * 10, 0, i * 10 + 10, 10, 1.0, [c / 255, (255 - c) / 255, 1.0]) for i, c in enumerate(levels)]
    img = r1.render(batches)
    np.testing.assert_array_equal(img[5, 5::10][: len(levels), 0], levels)
    np.testing.assert_array_equal(img[5, 5::10][: len(levels), 1], 255 - levels)


def test_merge_batches_offsets():
    a, b = quad(0, 0, 1, 1, 1.0, [1, 0, 0]), quad(2, 2, 3, 3, 1.0, [0, 1, 0])
    empty = DrawBatch(np.zeros((2, 3)), np.zeros((2, 3)), np.zeros((0, 3)))
    vertices, colors, indices = merge_batches([a, empty, b])
    assert vertices.shape == (8, 3) and colors.shape == (8, 3) and indices.dtype == np.uint32
    np.testing.assert_array_equal(indices, [[0, 1, 2], [0, 2, 3], [4, 5, 6], [4, 6, 7]])
    v, _, i = merge_batches([])
    assert v.shape == (0, 3) and i.shape == (0, 3)


def test_renderer_name_and_bad_arguments(r1):
    assert ("llvmpipe" in r1.renderer_name.lower()) == (DEVICE == "cpu")
    with pytest.raises(RenderError, match="msaa"):
        Rasterizer(W, H, msaa=3)
    with pytest.raises(RenderError, match="device"):
        Rasterizer(W, H, device="tpu")  # type: ignore[arg-type]


def test_gpu_request_on_cpu_machine_is_an_error():
    from scene2world.renderer.gl import list_egl_devices

    if any(not d.software for d in list_egl_devices()):
        pytest.skip("this machine has a hardware EGL device")
    with pytest.raises(RenderError, match="gpu"):
        Rasterizer(W, H, device="gpu")


def test_closed_rasterizer_refuses():
    r = Rasterizer(64, 32, msaa=1, device=DEVICE)
    assert r.render([]).shape == (32, 64, 3)
    r.close()
    r.close()
    with pytest.raises(RenderError, match="closed"):
        r.render([])
    with pytest.raises(RenderError, match="closed"):
        r.readback  # noqa: B018


def test_missing_gl_library_names_apt_packages():
    import ctypes.util
    import subprocess
    import sys

    if ctypes.util.find_library("OSMesa"):
        pytest.skip("libOSMesa is installed: cannot simulate a missing GL library")
    code = (
        "from scene2world.renderer.raster import Rasterizer\n"
        "from scene2world.errors import RenderError\n"
        "try:\n    Rasterizer(64, 32)\nexcept RenderError as e:\n    print(e)\n"
    )
    env = {**os.environ, "PYOPENGL_PLATFORM": "osmesa"}  # a platform whose library is absent here
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert "libegl1 libgl1 libgl1-mesa-dri" in out.stdout, out.stderr[-2000:]


# ----------------------------------------------------------------------------- partial MSAA resolve


def test_drawn_tiles_cover_every_triangle_bounding_box():
    tile = 32
    vertices = np.array(
        [
            [5.0, 5.0, 1.0], [20.0, 6.0, 1.0], [6.0, 25.0, 1.0],  # inside tile (0, 0)
            [100.0, 40.0, 1.0], [300.0, 40.0, 1.0], [100.0, 170.0, 1.0],  # a large triangle
            [63.5, 10.0, 1.0], [64.5, 10.0, 1.0], [64.0, 11.0, 1.0],  # straddles columns 1 and 2
            [-500.0, -500.0, 1.0], [-400.0, -500.0, 1.0], [-400.0, -400.0, 1.0],  # off the image
        ],
        np.float32,
    )  # fmt: skip
    faces = np.arange(12).reshape(4, 3)
    tiles = drawn_tiles(vertices, faces, W, H, tile)
    assert tiles.shape == (6, 10)
    expected = np.zeros((6, 10), bool)
    expected[0, 0] = True
    expected[1:6, 3:10] = True  # bounding box u 99..301, v 39..171 (one pixel of margin)
    expected[0, 1:3] = True
    expected[0, 0] = True  # the off-image box clamps onto the corner tile: over-marking is allowed
    np.testing.assert_array_equal(tiles, expected)
    nan = vertices.copy()
    nan[0, 0] = np.nan
    assert drawn_tiles(nan, faces, W, H, tile).all()  # unknown extent: resolve everything
    assert not drawn_tiles(vertices, faces[:0], W, H, tile).any()


def test_tile_rects_are_row_runs_in_gl_coordinates():
    tiles = np.zeros((6, 10), bool)
    tiles[0, 2:5] = True
    tiles[0, 9] = True
    tiles[5, 0] = True
    rects = tile_rects(tiles, W, H, 32)
    # GL rows count from the bottom: tile row 0 spans GL y 148..180, the last (partial) row 0..20
    assert rects.tolist() == [[64, 148, 160, 180], [288, 148, 320, 180], [0, 0, 32, 20]]


def test_tile_rects_continue_a_run_down_the_rows_that_repeat_it():
    tiles = np.zeros((6, 10), bool)
    tiles[1:4, 3:6] = True  # one rectangle over three rows
    tiles[2, 7] = True
    tiles[4, 3:7] = True  # a longer run below: a rectangle of its own
    tiles[5, 3:7] = True
    rects = tile_rects(tiles, W, H, 32)
    assert rects.tolist() == [[96, 52, 192, 148], [224, 84, 256, 116], [96, 0, 224, 52]]
    covered = np.zeros((H, W), int)
    for x0, y0, x1, y1 in rects:
        covered[H - y1 : H - y0, x0:x1] += 1
    expected = np.kron(tiles, np.ones((32, 32), int))[:H, :W]
    np.testing.assert_array_equal(covered, expected)  # every marked pixel once, nothing else


def random_quads(seed: int, count: int, depths: tuple[float, float], size: float) -> list[DrawBatch]:
    rng = np.random.default_rng(seed)
    centres = rng.uniform([0, 0], [W, H], (count, 2))
    return [
        quad(cu - size, cv - size / 2, cu + size + 0.5, cv + size / 2 + 0.25, float(d), rng.uniform(0.2, 1.0, 3))
        for (cu, cv), d in zip(centres, rng.uniform(*depths, count), strict=True)
    ]


def whole_image_render(msaa: int, tiles: int, images: list[list[DrawBatch]]) -> np.ndarray:
    """The reference: a fresh Rasterizer that clears and resolves whole images."""
    with Rasterizer(W, H, msaa=msaa, device=DEVICE, tiles=tiles) as reference:
        reference._by_tiles = False
        return reference.render_tiles(images).copy()


@pytest.mark.parametrize(("msaa", "resolve_by_rects"), [(1, False), (4, False), (4, True)])
def test_clears_and_resolves_by_tiles_give_the_whole_image_picture(msaa, resolve_by_rects):
    """Each pass clears only where the previous one drew (and resolves only where it draws itself,
    llvmpipe's choice); nothing of an earlier pass may show, not even its depth (later quads lie
    behind earlier ones)."""
    near = random_quads(3, 40, (1, 10), 6)
    near.append(quad(-50, 150, 40, 400, 5.0, [1.0, 0.0, 0.0]))  # runs off two image edges
    far = random_quads(4, 60, (50, 100), 12)  # over much of where `near` drew, but behind it
    passes = [[near, far], [far, []], [[], near], [near, near[:5]]]
    with Rasterizer(W, H, msaa=msaa, device=DEVICE, tiles=2) as r:
        r._offscreen._renderer.resolve_by_rects = resolve_by_rects
        for k, images in enumerate(passes):
            got = r.render_tiles(images)
            np.testing.assert_array_equal(got, whole_image_render(msaa, 2, images), err_msg=f"pass {k}")
    # the test means something: `near` leaves depth where `far` draws, and pictures are not empty
    assert (whole_image_render(msaa, 2, [far, far]).max(axis=-1) > 0).mean() > 0.2
    assert (whole_image_render(msaa, 1, [[*near, *far]]) != whole_image_render(msaa, 1, [far])).any()


def test_an_empty_pass_after_a_full_one_is_black(r4):
    r4.render(random_quads(5, 40, (1, 100), 6))
    assert not r4.render([]).any()


def test_readback_auto_is_gl_without_cuda_and_cuda_is_refused_where_it_cannot_run():
    if DEVICE == "gpu" and cuda_unavailable_reason() is None:
        pytest.skip("CUDA can run here: test_cuda_readback_gives_the_gl_picture covers it")
    with Rasterizer(W, H, msaa=4, device=DEVICE) as r:
        assert r.readback == "gl"
        assert r.render([quad(0, 0, 8, 8, 1.0, [1, 1, 1])])[:8, :8].all()
    with pytest.raises(RenderError, match=r"readback='cuda' cannot run here: .*use readback='auto' or 'gl'"):
        Rasterizer(W, H, device=DEVICE, readback="cuda")
    with pytest.raises(RenderError, match="`readback` must be one of"):
        Rasterizer(W, H, device=DEVICE, readback="pbo")  # type: ignore[arg-type]


@pytest.mark.skipif(DEVICE != "gpu" or cuda_unavailable_reason() is not None, reason="needs a GPU with CUDA torch")
@pytest.mark.parametrize(("msaa", "tiles"), [(1, 1), (4, 1), (4, 3)])
def test_cuda_readback_gives_the_gl_picture(msaa, tiles):
    """CUDA–GL interop reads the same bytes as glReadPixels, pass after pass (an empty one too), and
    an array handed out stays as it was while later passes come back (its pinned buffer is its own)."""
    near = random_quads(6, 40, (1, 10), 6)
    far = random_quads(7, 60, (50, 100), 12)
    passes = [[near, far, near[:3]], [far, [], near], [[], [], []], [near, near, far]]
    with (
        Rasterizer(W, H, msaa=msaa, device=DEVICE, tiles=tiles, readback="cuda") as cuda,
        Rasterizer(W, H, msaa=msaa, device=DEVICE, tiles=tiles, readback="gl") as gl,
    ):
        kept = []
        for k, images in enumerate(passes):
            got = cuda.render_tiles(images[:tiles])
            assert cuda.readback == "cuda"
            np.testing.assert_array_equal(got, gl.render_tiles(images[:tiles]), err_msg=f"pass {k}")
            kept.append((got, got.copy()))
        for k, (got, copy) in enumerate(kept):
            np.testing.assert_array_equal(got, copy, err_msg=f"pass {k}'s array changed by later passes")
    assert kept[0][1].any() and not kept[2][1].any()
