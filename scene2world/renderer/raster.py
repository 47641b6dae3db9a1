"""Rasterise pixel-space :class:`DrawBatch` lists with pyrender over EGL (NVIDIA's GL rules).

The camera is pyrender's ``OrthographicCamera`` in pixel space (docs/ftheta.md, "Drawing through a fisheye"): with
``xmag = W/2``, ``ymag = H/2`` and a view matrix that maps a vertex ``(u, v, depth)`` to
``(u − W/2, H/2 − v, −depth)``, the clip coordinates are exactly NVIDIA's
``x_ndc = 2u/W − 1``, ``y_ndc = 1 − 2v/H`` (pixel centres at i + 0.5), and
``z_ndc = (2·depth − far − near)/(far − near)`` with w = 1, i.e. depth is interpolated linearly in
screen space and OpenGL clips it to [near, far] = [1 mm, 200 m]. The vertices are uploaded as
they come: the flip and the depth sign live in the camera pose, not in a per-frame numpy pass.

Draw order: all batches of a frame are merged into ONE triangle primitive, in list order, and
drawn with one ``glDrawElements``. OpenGL processes the primitives of a draw call in order
(the spec's primitive-order rule: per-fragment operations such as the depth test and the
framebuffer write behave as if triangles were rasterised one after another), so with GL_LESS an
earlier triangle keeps a pixel against a later one at equal depth, exactly as NVIDIA's
separate draw calls do. No depth bias is needed (a bias would change the depth of every batch,
not only the tied ones). The merged mesh lives in buffers that are re-filled every frame
(``glBufferData``); no VAO, VBO or pyrender Mesh is created after the first frame.

Tiles: a Rasterizer of ``tiles`` > 1 draws that many images (cameras) in one pyrender pass. Each
image has its own W x H framebuffer and its own primitive (buffers), drawn into its framebuffer
(``gl.FastRenderer``), so each image is rasterised exactly as alone: same viewport, same window
coordinates, same bytes. (One tall framebuffer with a viewport per image is not exact: window
coordinates offset by 720 rows round differently onto the sub-pixel grid and flip a few samples
per frame.) The pass then resolves and reads back all of them (docs/speed.md, "Several cameras per
pass").

Shading is pyrender's FLAT program (no lights, no sRGB conversion): the output colour is the
interpolated vertex colour, so a colour c/255 comes back as c. Faces are double-sided (no
culling). The background is black. Only colour is read back, rows in image order.
"""

from __future__ import annotations

import contextlib
import ctypes
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any, get_args

import numpy as np

from scene2world.config import VIDEO_HEIGHT_PX, VIDEO_WIDTH_PX, Msaa
from scene2world.errors import RenderError
from scene2world.renderer.batch import FAR_CLIP_M, NEAR_CLIP_M, DrawBatch
from scene2world.renderer.cuda_readback import Readback
from scene2world.renderer.cuda_readback import unavailable_reason as cuda_unavailable_reason
from scene2world.renderer.gl import Device, create_offscreen, is_software_renderer, load_pyrender
from scene2world.renderer.tiles import DRAWN_TILE_PX, drawn_tiles, tile_rects
from scene2world.typing import NDArrayByte

MSAA_CHOICES: tuple[int, ...] = get_args(Msaa)
"""Sample counts :class:`Rasterizer` accepts (NVIDIA: 4)."""

READBACKS: tuple[str, ...] = get_args(Readback)
"""Read-back choices :class:`Rasterizer` accepts (``cuda_readback.Readback``)."""

MAX_TILES = 16
"""Most images one :class:`Rasterizer` draws per pass (16 x 720 rows = 11,520: within every GL's
renderbuffer limit of 16,384)."""


def merge_batches(batches: Sequence[DrawBatch]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One vertex/colour/index set drawing ``batches`` in list order.

    Returns ``vertices_px`` (N, 3) float32, ``colors`` (N, 3) float32 and ``indices`` (M, 3)
    uint32, the faces of batch k offset by the vertex count of batches 0..k−1.
    """
    batches = [b for b in batches if len(b.faces)]
    if not batches:
        empty = np.zeros((0, 3), np.float32)
        return empty, empty, np.zeros((0, 3), np.uint32)
    if len(batches) == 1:
        b = batches[0]
        return b.vertices_px, b.colors, b.faces.astype(np.uint32)
    n_verts = np.fromiter((len(b.vertices_px) for b in batches), np.int64, len(batches))
    n_faces = np.fromiter((len(b.faces) for b in batches), np.int64, len(batches))
    offsets = np.repeat(np.cumsum(n_verts) - n_verts, n_faces).astype(np.uint32)
    indices = np.concatenate([b.faces for b in batches]).astype(np.uint32)
    indices += offsets[:, None]
    vertices = np.concatenate([b.vertices_px for b in batches])
    colors = np.concatenate([b.colors for b in batches])
    return vertices, colors, indices


def _dynamic_primitive_class(pyrender: Any) -> type:
    from OpenGL import GL

    class DynamicPrimitive(pyrender.Primitive):  # type: ignore[misc, name-defined]
        """A TRIANGLES primitive (positions + RGB colours) whose buffers are refilled per frame."""

        _vaid: Any
        _buffers: list[int]
        tile = 0
        """The image (framebuffer) of a several-image pass this primitive draws into (gl.FastRenderer)."""

        def __init__(self, material: Any) -> None:
            super().__init__(
                positions=np.zeros((3, 3), np.float32),
                color_0=np.ones((3, 4), np.float32),
                indices=np.zeros((1, 3), np.uint32),
                material=material,
                mode=pyrender.constants.GLTF.TRIANGLES,
            )
            self._is_transparent = False
            self._colors3 = np.ones((3, 3), np.float32)

        def set_data(self, vertices: np.ndarray, colors: np.ndarray, indices: np.ndarray) -> None:
            self._positions = vertices
            self._colors3 = colors
            self._indices = indices
            if self._vaid is not None:
                self._upload()

        def _upload(self) -> None:
            pos_buf, col_buf, _, idx_buf = self._buffers
            GL.glBindVertexArray(self._vaid)
            for buf, data in ((pos_buf, self._positions), (col_buf, self._colors3)):
                GL.glBindBuffer(GL.GL_ARRAY_BUFFER, buf)
                GL.glBufferData(GL.GL_ARRAY_BUFFER, data.nbytes, data if data.size else None, GL.GL_STREAM_DRAW)
            GL.glBindBuffer(GL.GL_ELEMENT_ARRAY_BUFFER, idx_buf)
            data = self._indices
            GL.glBufferData(GL.GL_ELEMENT_ARRAY_BUFFER, data.nbytes, data if data.size else None, GL.GL_STREAM_DRAW)
            GL.glBindVertexArray(0)

        def _add_to_context(self) -> None:
            # Same attribute locations as pyrender's own layout for POSITION|COLOR_0:
            # 0 = position (vec3), 1 = color_0 (vec4; a 3-component buffer reads alpha 1),
            # 2..5 = the per-instance model matrix (identity).
            if self._vaid is not None:
                raise ValueError("primitive already in a context")
            self._vaid = GL.glGenVertexArrays(1)
            self._buffers = [int(b) for b in GL.glGenBuffers(4)]
            pos_buf, col_buf, inst_buf, _ = self._buffers
            GL.glBindVertexArray(self._vaid)
            for loc, buf in ((0, pos_buf), (1, col_buf)):
                GL.glBindBuffer(GL.GL_ARRAY_BUFFER, buf)
                GL.glVertexAttribPointer(loc, 3, GL.GL_FLOAT, GL.GL_FALSE, 12, ctypes.c_void_p(0))
                GL.glEnableVertexAttribArray(loc)
            GL.glBindBuffer(GL.GL_ARRAY_BUFFER, inst_buf)
            identity = np.eye(4, dtype=np.float32)
            GL.glBufferData(GL.GL_ARRAY_BUFFER, identity.nbytes, identity, GL.GL_STATIC_DRAW)
            for i in range(4):
                GL.glEnableVertexAttribArray(2 + i)
                GL.glVertexAttribPointer(2 + i, 4, GL.GL_FLOAT, GL.GL_FALSE, 64, ctypes.c_void_p(16 * i))
                GL.glVertexAttribDivisor(2 + i, 1)
            GL.glBindVertexArray(0)
            self._upload()

    return DynamicPrimitive


def camera_pose(width: int, height: int) -> np.ndarray:
    """(4, 4) pose of the pixel-space camera: its inverse maps (u, v, depth) to (u − W/2, H/2 − v, −depth)."""
    view = np.array(
        [[1.0, 0.0, 0.0, -width / 2], [0.0, -1.0, 0.0, height / 2], [0.0, 0.0, -1.0, 0.0], [0.0, 0.0, 0.0, 1.0]]
    )
    return np.linalg.inv(view)


class Rasterizer:
    """Draw ordered :class:`DrawBatch` lists into (H, W, 3) uint8 images on one EGL context.

    ``msaa``: samples per pixel (1 = no anti-aliasing; NVIDIA uses 4). ``device``: ``"cpu"``
    (Mesa llvmpipe), ``"gpu"`` (NVIDIA EGL) or ``"auto"``. ``tiles``: images drawn per pass
    (:meth:`render_tiles`; 1 for :meth:`render`). ``readback``: ``"gl"`` (``glReadPixels``),
    ``"cuda"`` (CUDA–GL interop, an error where it cannot run) or ``"auto"`` (CUDA on a GPU where
    torch has CUDA). Not thread-safe: one context per process (or
    per thread, used only there). Use as a context manager or call :meth:`close`.
    """

    def __init__(
        self,
        width: int = VIDEO_WIDTH_PX,
        height: int = VIDEO_HEIGHT_PX,
        msaa: int = 4,
        device: Device = "auto",
        *,
        znear_m: float = NEAR_CLIP_M,
        zfar_m: float = FAR_CLIP_M,
        tiles: int = 1,
        readback: Readback = "auto",
    ) -> None:
        if msaa not in MSAA_CHOICES:
            raise RenderError(f"`msaa` must be one of {list(MSAA_CHOICES)}, got {msaa!r}")
        if width <= 0 or height <= 0:
            raise RenderError(f"image size must be positive, got {width}x{height}")
        if not 0 <= znear_m < zfar_m:
            raise RenderError(f"clip planes must satisfy 0 <= znear_m < zfar_m, got {znear_m}, {zfar_m}")
        if not 1 <= tiles <= MAX_TILES:
            raise RenderError(f"`tiles` must be 1..{MAX_TILES}, got {tiles!r}")
        if readback not in READBACKS:
            raise RenderError(f"`readback` must be one of {list(READBACKS)}, got {readback!r}")
        self.width, self.height, self.msaa, self.tiles = int(width), int(height), int(msaa), int(tiles)
        pyrender = load_pyrender(device)
        self._offscreen = create_offscreen(self.width, self.height, samples=self.msaa, device=device, tiles=self.tiles)
        self._flags = pyrender.RenderFlags.FLAT | pyrender.RenderFlags.SKIP_CULL_FACES
        self._scene = pyrender.Scene(bg_color=[0.0, 0.0, 0.0, 1.0], ambient_light=[0.0, 0.0, 0.0])
        camera = pyrender.OrthographicCamera(
            xmag=self.width / 2, ymag=self.height / 2, znear=float(znear_m), zfar=float(zfar_m)
        )
        self._scene.add(camera, pose=camera_pose(self.width, self.height))
        material = pyrender.MetallicRoughnessMaterial(
            baseColorFactor=[1.0, 1.0, 1.0, 1.0], doubleSided=True, alphaMode="OPAQUE"
        )
        primitive_cls = _dynamic_primitive_class(pyrender)
        self._primitives = [primitive_cls(material) for _ in range(self.tiles)]
        for k, primitive in enumerate(self._primitives):
            primitive.tile = k
        # the mesh always draws, empty or not: drawing an image is what clears its framebuffer
        self._mesh = pyrender.Mesh(primitives=self._primitives)
        self._scene.add(self._mesh)
        # clear only the screen tiles the triangles can touch (gl.FastRenderer): whole-image
        # clears cost more than the lines, on llvmpipe and on an H100; on llvmpipe resolve so too
        self._by_tiles = True  # False: whole-image clears and resolves (the tests' reference)
        self._offscreen._renderer.resolve_by_rects = is_software_renderer(self.renderer_name)
        self._offscreen._renderer.readback = self._choose_readback(readback)
        self.frames_rendered = 0
        self._issue_s = 0.0  # issuing passes (with glReadPixels, reading them back too): the GL thread
        self._wait_s = 0.0  # waiting for CUDA read-backs: whichever thread waits

    def _choose_readback(self, readback: Readback) -> Readback:
        if readback == "gl":
            return "gl"
        if is_software_renderer(self.renderer_name):
            why: str | None = f"the GL context runs on the CPU ({self.renderer_name})"
        else:
            why = cuda_unavailable_reason()
        if why is None:
            return readback
        if readback == "cuda":
            self.close()
            raise RenderError(f"readback='cuda' cannot run here: {why}; use readback='auto' or 'gl'")
        return "gl"

    @property
    def readback(self) -> Readback:
        """How this rasteriser reads images back: ``gl`` or ``cuda`` (``auto`` until the first pass
        tried CUDA: docs/speed.md, "Read-back through CUDA")."""
        if self._offscreen is None:
            raise RenderError("Rasterizer is closed")
        renderer = self._offscreen._renderer
        return "cuda" if renderer._cuda is not None else renderer.readback  # type: ignore[no-any-return]

    @property
    def seconds(self) -> float:
        """Time spent in passes: issuing them and waiting for their images."""
        return self._issue_s + self._wait_s

    @property
    def renderer_name(self) -> str:
        """GL_RENDERER of the context (``llvmpipe (...)`` on CPU, the GPU's name on NVIDIA)."""
        return str(self._offscreen.renderer_name)

    @property
    def gl_version(self) -> str:
        """GL_VERSION of the context."""
        return str(self._offscreen.gl_version)

    def render(self, batches: Sequence[DrawBatch]) -> NDArrayByte:
        """Draw ``batches`` in order; returns the (H, W, 3) uint8 RGB image, top row first."""
        if self.tiles != 1:
            raise RenderError(f"this Rasterizer draws {self.tiles} images per pass: use render_tiles")
        return self.render_tiles([batches])[0]

    def render_tiles(self, images: Sequence[Sequence[DrawBatch]]) -> NDArrayByte:
        """Draw each image's batches in order, all in one pass; returns (len(images), H, W, 3) uint8.

        At most ``tiles`` images; the array is a view of one read-back buffer (image k's rows
        top first).
        """
        return self.issue_tiles(images)()

    def issue_tiles(self, images: Sequence[Sequence[DrawBatch]]) -> Callable[[], NDArrayByte]:
        """Issue :meth:`render_tiles`'s pass; returns the function that waits for its images.

        That function makes no GL call, so another thread may wait while this one issues the next
        pass (with the CUDA read-back; with ``glReadPixels`` the images are there already).
        """
        if self._offscreen is None:
            raise RenderError("Rasterizer is closed")
        if not 1 <= len(images) <= self.tiles:
            raise RenderError(f"render_tiles takes 1..{self.tiles} images, got {len(images)}")
        t0 = time.perf_counter()
        self._offscreen._platform.make_current()
        rects = []
        for k, primitive in enumerate(self._primitives):
            vertices, colors, indices = merge_batches(images[k] if k < len(images) else ())
            primitive.set_data(vertices, colors, indices)
            if self._by_tiles:
                tiles = drawn_tiles(vertices, indices, self.width, self.height, DRAWN_TILE_PX)
                rects.append(tile_rects(tiles, self.width, self.height, DRAWN_TILE_PX))
        self._offscreen._renderer.drawn_rects = rects if self._by_tiles else None
        out = self._offscreen.render(self._scene, self._flags)
        self.frames_rendered += len(images)
        self._issue_s += time.perf_counter() - t0
        shape, count = (self.tiles, self.height, self.width, 3), len(images)

        def wait() -> NDArrayByte:
            if isinstance(out, np.ndarray):
                return out.reshape(shape)[:count]
            t1 = time.perf_counter()
            done: NDArrayByte = out.result().reshape(shape)[:count]
            self._wait_s += time.perf_counter() - t1
            return done

        return wait

    def submit(self, images: Sequence[Sequence[DrawBatch]]) -> Future[NDArrayByte]:
        """:meth:`render_tiles` now, as a finished future (the interface of ``raster_thread.RasterThread``)."""
        done: Future[NDArrayByte] = Future()
        try:
            done.set_result(self.render_tiles(images))
        except Exception as e:
            done.set_exception(e)
        return done

    def close(self) -> None:
        """Free the GL objects and the EGL context (idempotent)."""
        offscreen, self._offscreen = self._offscreen, None
        if offscreen is not None:
            offscreen.delete()

    def __enter__(self) -> Rasterizer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()
