"""The one module that owns pyrender's install quirks and the EGL device choice.

Nothing else in scene2world imports ``OpenGL`` or ``pyrender`` directly: call
:func:`load_pyrender` (it sets the environment *before* the first OpenGL import, applies the
patches of docs/install.md, "pyrender's quirks", and returns the module) and :func:`create_context`.

- ``PYOPENGL_PLATFORM=egl`` and ``PYGLET_HEADLESS=1`` are set by default (pyglet 2 cannot be
  imported without X libraries otherwise; pyrender imports it for its viewer), and
  ``__GL_YIELD=USLEEP`` (NVIDIA's driver waits for the GPU without spinning, docs/gpu.md).
- ``np.infty = np.inf`` (numpy 2 removed it; pyrender's ``Mesh.bounds`` uses it).
- The OSMesa program-cache patch: pyrender keys its shader cache on the ctypes pointer of the
  current context, which on OSMesa is a new object per call, so every primitive recompiles its
  program every frame and leaks it (docs/install.md). Harmless on EGL.
- MSAA on/off and colour-only readback: :class:`FastRenderer` replaces pyrender's hard-coded
  4x framebuffer and its colour+depth readback (docs/install.md) per renderer instance, not by
  patching pyrender globally.
- Device choice: ``"cpu"`` = Mesa llvmpipe (EGL's software device), ``"gpu"`` = an NVIDIA (or
  any hardware) EGL device, ``"auto"`` = a hardware device when one is enumerated, else
  llvmpipe. ``EGL_DEVICE_ID`` picks among the hardware devices (their ``eglQueryDevicesEXT``
  order, which is not necessarily the CUDA order). GL_RENDERER is checked after the context
  is made: asking for ``"gpu"`` and getting llvmpipe is a :class:`RenderError`.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

import numpy as np

from scene2world.config import Device
from scene2world.errors import RenderError
from scene2world.renderer.cuda_readback import Readback

log = logging.getLogger(__name__)

DEVICES: tuple[str, ...] = get_args(Device)

APT_PACKAGES = "libegl1 libgl1 libgl1-mesa-dri"
"""The Debian/Ubuntu packages EGL rendering needs on a CPU machine (docs/install.md, "System libraries")."""

# glvnd vendor files: Mesa's (llvmpipe) and NVIDIA's, in their usual places (the NVIDIA
# container runtime mounts the driver under /usr/local/nvidia).
MESA_VENDOR_FILES = (
    "/usr/share/glvnd/egl_vendor.d/50_mesa.json",
    "/etc/glvnd/egl_vendor.d/50_mesa.json",
)
NVIDIA_VENDOR_FILES = (
    "/usr/share/glvnd/egl_vendor.d/10_nvidia.json",
    "/etc/glvnd/egl_vendor.d/10_nvidia.json",
    "/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json",
)

_EGL_EXTENSIONS = 0x3055
_EGL_DRM_DEVICE_FILE_EXT = 0x3233

_GL_RENDERER = 0x1F01
_GL_VERSION = 0x1F02
_GL_PACK_INVERT_MESA = 0x8758

_pyrender: Any = None
_vendor_setup: str | None = None


def _check_device(device: str) -> None:
    if device not in DEVICES:
        raise RenderError(f"`device` must be one of {list(DEVICES)}, got {device!r}")


def _existing(paths: tuple[str, ...]) -> list[str]:
    return [p for p in paths if Path(p).is_file()]


def configure_environment(device: Device = "auto") -> None:
    """Set the env defaults pyrender needs; call before anything imports OpenGL.

    Only defaults are set: values the user exported win. For ``"cpu"`` the glvnd vendor list
    is restricted to Mesa (so no NVIDIA driver is initialised); for ``"gpu"``/``"auto"`` an
    NVIDIA vendor file outside glvnd's search path (``/usr/local/nvidia/...``) is added next
    to Mesa's. No effect once libEGL is loaded in this process.
    """
    _check_device(device)
    os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
    os.environ.setdefault("PYGLET_HEADLESS", "1")
    # NVIDIA's driver sleeps instead of spinning while it waits for the GPU (a read-back): the
    # spin costs a render process's core time that its geometry needs (docs/gpu.md, "Driver waits")
    os.environ.setdefault("__GL_YIELD", "USLEEP")
    global _vendor_setup
    if _vendor_setup is not None or "OpenGL.EGL" in sys.modules:
        return
    _vendor_setup = device
    if "__EGL_VENDOR_LIBRARY_FILENAMES" in os.environ or "__EGL_VENDOR_LIBRARY_DIRS" in os.environ:
        return
    mesa = _existing(MESA_VENDOR_FILES)[:1]
    nvidia = _existing(NVIDIA_VENDOR_FILES)[:1]
    if device == "cpu" and mesa:
        os.environ["__EGL_VENDOR_LIBRARY_FILENAMES"] = mesa[0]
    elif device != "cpu" and nvidia and not nvidia[0].startswith(("/usr/share/", "/etc/")):
        os.environ["__EGL_VENDOR_LIBRARY_FILENAMES"] = ":".join(nvidia + mesa)


def _patch_osmesa_program_cache() -> None:
    """Make pyrender's shader-cache key stable on OSMesa (docs/install.md, "pyrender's quirks")."""
    import OpenGL.contextdata as contextdata

    if getattr(contextdata.getContext, "_scene2world_patched", False):
        return
    original = contextdata.getContext

    def get_context(context: Any = None) -> Any:
        value = original(context)
        if isinstance(value, int):
            return value
        try:
            return ctypes.cast(value, ctypes.c_void_p).value
        except (TypeError, ctypes.ArgumentError):
            return value

    get_context._scene2world_patched = True  # type: ignore[attr-defined]
    contextdata.getContext = get_context


PIP_NAMES = {"pyrender": "pyrender2", "OpenGL": "PyOpenGL", "freetype": "freetype-py", "PIL": "pillow"}
"""Import name -> the PyPI project that provides it, where they differ (docs/install.md: pyrender2)."""


def missing_module_message(error: ModuleNotFoundError) -> str:
    """One line for a Python module that is not installed: which one, and the pip command."""
    module = (error.name or str(error)).split(".")[0]
    project = PIP_NAMES.get(module, module)
    return (
        f"the Python module `{module}` is not installed in {sys.prefix}; install it with "
        f"`{sys.executable} -m pip install {project}` (or reinstall scene2world, which declares it)"
    )


def missing_system_library_message(error: BaseException) -> str:
    """One line for OpenGL system libraries that cannot be loaded: the apt-get command."""
    platform = os.environ.get("PYOPENGL_PLATFORM") or "the default platform"
    extra = " libosmesa6" if platform == "osmesa" else ""
    return (
        f"cannot load the OpenGL system libraries over {platform} ({type(error).__name__}: {error}); "
        f"install them with `apt-get install --no-install-recommends {APT_PACKAGES}{extra}` "
        "(scene2world renders over EGL: keep PYOPENGL_PLATFORM=egl or unset)"
    )


def load_pyrender(device: Device = "auto") -> Any:
    """Import pyrender with the environment and patches it needs; returns the module.

    Raises RenderError naming the pip command when a Python module (pyrender, PyOpenGL, …) is
    missing, and the apt-get command when the system's libEGL/libGL cannot be loaded.
    """
    global _pyrender
    if _pyrender is not None:
        return _pyrender
    configure_environment(device)
    if not hasattr(np, "infty"):
        np.infty = np.inf  # type: ignore[attr-defined]
    try:
        _patch_osmesa_program_cache()
        import pyrender
        import pyrender.renderer
    except ModuleNotFoundError as e:
        raise RenderError(missing_module_message(e)) from e
    except (ImportError, OSError, AttributeError) as e:
        raise RenderError(missing_system_library_message(e)) from e
    _pyrender = pyrender
    return pyrender


@dataclass(frozen=True)
class EGLDeviceInfo:
    """One enumerated EGL device.

    ``index`` in ``eglQueryDevicesEXT`` order, ``software`` for Mesa's software device,
    ``drm_node`` (None for software) and the device's ``extensions`` string.
    """

    index: int
    software: bool
    drm_node: str | None
    extensions: str


def list_egl_devices() -> list[EGLDeviceInfo]:
    """Enumerate EGL devices (empty if the platform-device extension is missing)."""
    load_pyrender()
    from pyrender.platforms import egl

    try:
        raw = egl.query_devices()
    except RuntimeError:
        return []
    query = egl._eglQueryDeviceStringEXT
    out = []
    for i, dev in enumerate(raw):
        ext = query(dev._display, _EGL_EXTENSIONS) if query is not None else None
        ext_s = ext.decode("ascii", "replace") if ext else ""
        node = query(dev._display, _EGL_DRM_DEVICE_FILE_EXT) if query is not None else None
        out.append(
            EGLDeviceInfo(
                index=i,
                software="EGL_MESA_device_software" in ext_s,
                drm_node=node.decode("ascii", "replace") if node else None,
                extensions=ext_s,
            )
        )
    return out


def pick_device(device: Device) -> EGLDeviceInfo | None:
    """Return the EGL device ``device`` names, or None to let EGL pick its default display."""
    _check_device(device)
    devices = list_egl_devices()
    if not devices:
        if device == "gpu":
            raise RenderError(
                "device='gpu' but EGL enumerated no device (eglQueryDevicesEXT); install the glvnd "
                "loaders `libegl1 libgl1` and make NVIDIA's EGL vendor library visible (container: "
                "NVIDIA_DRIVER_CAPABILITIES=graphics,compute,utility; or set __EGL_VENDOR_LIBRARY_FILENAMES "
                "to its 10_nvidia.json); see docs/gpu.md"
            )
        return None
    hardware = [d for d in devices if not d.software]
    software = [d for d in devices if d.software]
    if device == "cpu":
        if not software:
            raise RenderError(
                f"device='cpu' but EGL has no Mesa software device (found {len(devices)} hardware device(s)); "
                f"install `{APT_PACKAGES}` or use device='gpu'"
            )
        return software[0]
    if hardware:
        wanted = int(os.environ.get("EGL_DEVICE_ID", "0"))
        if not 0 <= wanted < len(hardware):
            raise RenderError(f"EGL_DEVICE_ID={wanted} but only {len(hardware)} hardware EGL device(s) were found")
        return hardware[wanted]
    if device == "gpu":
        raise RenderError(
            "device='gpu' but EGL found only Mesa's software device (llvmpipe): NVIDIA's EGL vendor library "
            "is not visible. Set __EGL_VENDOR_LIBRARY_FILENAMES to its 10_nvidia.json (e.g. "
            "/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json) and, in containers, "
            "NVIDIA_DRIVER_CAPABILITIES to include `graphics`; see docs/gpu.md"
        )
    return software[0] if software else None


GPU_NODES = ("/proc/driver/nvidia/gpus/*", "/dev/dri/renderD*")
"""Paths whose presence means a hardware GPU is there (NVIDIA's driver, or any DRM render node)."""


def renders_on_gpu(device: Device) -> bool:
    """Whether a context on ``device`` draws on a hardware GPU: ``gpu`` yes, ``cpu`` no, ``auto``
    when a GPU device node is present (:data:`GPU_NODES`).

    A guess for ``auto`` that loads no library (a render's parent process never loads EGL): it
    only decides how cameras are planned (one or several per pass, the same pixels either way).
    """
    _check_device(device)
    if device != "auto":
        return device == "gpu"
    import glob

    return any(glob.glob(pattern) for pattern in GPU_NODES)


# Minimal flat shaders replacing pyrender's flat.vert/flat.frag for FastRenderer: the same
# transform (pyrender's P and V uniforms; the model and instance matrices are identity here) and
# the vertex colour, without the per-vertex normal matrix, instance matrix and unused varyings.
# About 10% less rasterisation time on llvmpipe for thin-line-heavy frames.
FLAT_VERT = """#version 330 core
layout(location = 0) in vec3 position;
layout(location = 1) in vec3 color_0;
uniform mat4 V;
uniform mat4 P;
out vec3 v_color;
void main()
{
    gl_Position = P * (V * vec4(position, 1.0));
    v_color = color_0;
}
"""

FLAT_FRAG = """#version 330 core
in vec3 v_color;
out vec4 frag_color;
void main()
{
    frag_color = vec4(clamp(v_color, 0.0, 1.0), 1.0);
}
"""

_shader_dir_path: str | None = None


def _shader_dir() -> str:
    """A per-process folder holding FLAT_VERT/FLAT_FRAG (pyrender loads shaders from files)."""
    global _shader_dir_path
    if _shader_dir_path is None:
        import atexit
        import shutil
        import tempfile

        path = tempfile.mkdtemp(prefix="scene2world-shaders-")
        Path(path, "flat.vert").write_text(FLAT_VERT)
        Path(path, "flat.frag").write_text(FLAT_FRAG)
        atexit.register(shutil.rmtree, path, True)
        _shader_dir_path = path
    return _shader_dir_path


def _has_extension(GL: Any, name: str) -> bool:
    count = int(GL.glGetIntegerv(GL.GL_NUM_EXTENSIONS))
    return any(GL.glGetStringi(GL.GL_EXTENSIONS, i) == name.encode() for i in range(count))


def _make_fast_renderer_class(pyrender: Any) -> type:
    """Build the pyrender Renderer subclass with a sample count and colour-only readback."""
    from OpenGL import GL

    base = pyrender.renderer.Renderer

    class FastRenderer(base):  # type: ignore[misc, valid-type]
        """Pyrender's Renderer with its main framebuffer replaced.

        ``samples`` MSAA samples (1 = no MSAA); colour-only readback, rows in image order.
        ``tiles`` images per pass: one W x H framebuffer (and MSAA framebuffer) each; a
        primitive draws into the framebuffer of its ``tile`` attribute, which it clears first.
        The read-back array stacks the images, image k in rows k·H..(k+1)·H.

        Clears cover only where something was drawn (``drawn_rects``): an image's framebuffer is
        cleared where the previous pass drew into it, the rest still holding the clear values. A
        clear is memory traffic for every sample it covers: on an H100 a whole 1280x720 MSAA 4
        image took 0.47 ms of GPU time, more than drawing it (docs/speed.md, "The GPU's share").
        Pyrender's pass clears whatever ``_main_fb_ms`` is: here a 1x1 placeholder.

        Resolves: one whole-image blit, or with ``resolve_by_rects`` (llvmpipe, where a blit's
        cost is its pixels) one blit per rectangle of ``drawn_rects``, the resolved image then
        being cleared by rectangles too. On an H100 each blit has a fixed cost: 30 small blits
        took 0.62 ms of GPU time, one whole-image blit 0.075 ms. A whole-image blit also mirrors
        the rows, GL's bottom-up order into the image's top-down one, so no flip is left to do on
        the CPU (resolving copies samples: the pixels are the same).

        Read-back (``readback``): ``glReadPixels``, or CUDA–GL interop
        (:class:`~scene2world.renderer.cuda_readback.CudaReadback`; ``auto`` falls back to
        ``glReadPixels`` where CUDA cannot map the renderbuffers).
        """

        samples = 4
        tiles = 1
        drawn_rects: Any = None
        """Per tile a (K, 4) int array of GL-space rectangles (x0, y0, x1, y1) that hold everything
        this pass draws into it, or None for whole images; the rest of the read-back image is
        black. Set per pass by the caller, before the draw."""
        resolve_by_rects = False
        """Resolve MSAA images by the rectangles of ``drawn_rects`` instead of whole (set by the caller)."""
        readback: Readback = "gl"
        """How images come back (set by the caller; ``auto`` becomes ``gl`` if CUDA's set-up fails)."""
        _cuda: Any = None
        _pack_invert: bool | None = None
        _main_fb: Any
        _main_fb_ms: Any
        _main_fb_dims: Any
        _tile_fbs: list[tuple[int, int]]
        """Per tile (resolved framebuffer, framebuffer drawn into); one and the same without MSAA."""
        _tile_colors: list[int]
        """Per tile the colour renderbuffer of its resolved framebuffer (what is read back)."""
        _written: list[Any]
        """Per tile the rectangles its framebuffers were written in since their last clear (None: anywhere)."""
        _framebuffers: list[int]
        _renderbuffers: list[int]

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            from pyrender.shader_program import ShaderProgramCache

            self._program_cache = ShaderProgramCache(shader_dir=_shader_dir())
            self._tile_fbs, self._framebuffers, self._renderbuffers, self._written = [], [], [], []
            self._tile_colors = []

        def _renderbuffer(self, samples: int, fmt: int, size: tuple[int, int] | None = None) -> int:
            rb = int(GL.glGenRenderbuffers(1))
            w, h = size or self._main_fb_dims
            GL.glBindRenderbuffer(GL.GL_RENDERBUFFER, rb)
            if samples > 1:
                GL.glRenderbufferStorageMultisample(GL.GL_RENDERBUFFER, samples, fmt, w, h)
            else:
                GL.glRenderbufferStorage(GL.GL_RENDERBUFFER, fmt, w, h)
            self._renderbuffers.append(rb)
            return rb

        def _framebuffer(self, color: int, depth: int | None) -> int:
            fb = int(GL.glGenFramebuffers(1))
            self._framebuffers.append(fb)
            GL.glBindFramebuffer(GL.GL_DRAW_FRAMEBUFFER, fb)
            GL.glFramebufferRenderbuffer(GL.GL_DRAW_FRAMEBUFFER, GL.GL_COLOR_ATTACHMENT0, GL.GL_RENDERBUFFER, color)
            if depth is not None:
                GL.glFramebufferRenderbuffer(GL.GL_DRAW_FRAMEBUFFER, GL.GL_DEPTH_ATTACHMENT, GL.GL_RENDERBUFFER, depth)
            status = GL.glCheckFramebufferStatus(GL.GL_DRAW_FRAMEBUFFER)
            if status != GL.GL_FRAMEBUFFER_COMPLETE:
                raise RenderError(f"OpenGL framebuffer incomplete (status 0x{int(status):x}, samples={self.samples})")
            return fb

        def _configure_main_framebuffer(self) -> None:
            dims = (self.viewport_width, self.viewport_height)
            if self._main_fb is not None and self._main_fb_dims != dims:
                self._delete_main_framebuffer()
            if self._main_fb is not None:
                return
            self._main_fb_dims = dims
            for _ in range(self.tiles):
                color = self._renderbuffer(1, GL.GL_RGBA8)
                self._tile_colors.append(color)
                if self.samples > 1:
                    cb_ms = self._renderbuffer(self.samples, GL.GL_RGBA8)
                    db_ms = self._renderbuffer(self.samples, GL.GL_DEPTH_COMPONENT24)
                    fb = self._framebuffer(color, None)
                    self._tile_fbs.append((fb, self._framebuffer(cb_ms, db_ms)))
                else:
                    # one single-sample framebuffer serves as both: drawn into and read from
                    fb = self._framebuffer(color, self._renderbuffer(1, GL.GL_DEPTH_COMPONENT24))
                    self._tile_fbs.append((fb, fb))
            self._written = [None] * self.tiles  # new renderbuffers hold anything
            # what pyrender binds and clears at the start of its pass, and deletes nothing of
            # (_delete_main_framebuffer does): the placeholder
            placeholder = self._framebuffer(self._renderbuffer(1, GL.GL_RGBA8, (1, 1)), None)
            self._main_fb = self._main_fb_ms = placeholder

        def _delete_main_framebuffer(self) -> None:
            cuda, self._cuda = self._cuda, None
            if cuda is not None:  # CUDA lets go of the renderbuffers before GL deletes them
                cuda.close()
            if self._framebuffers:
                GL.glDeleteFramebuffers(len(self._framebuffers), self._framebuffers)
            if self._renderbuffers:
                GL.glDeleteRenderbuffers(len(self._renderbuffers), self._renderbuffers)
            self._tile_fbs, self._framebuffers, self._renderbuffers, self._written = [], [], [], []
            self._tile_colors = []
            self._main_fb = self._main_fb_ms = None
            self._main_fb_dims = (None, None)

        def _bind_and_draw_primitive(self, primitive: Any, pose: Any, program: Any, flags: Any) -> None:
            tile = getattr(primitive, "tile", 0)
            fb, fb_ms = self._tile_fbs[tile]
            written = self._written[tile]
            # a whole-image resolve overwrites the resolved framebuffer: nothing to clear there
            targets = (fb, fb_ms) if self.resolve_by_rects and fb != fb_ms else (fb_ms,)
            for target in targets:  # the MSAA framebuffer last: drawn into
                GL.glBindFramebuffer(GL.GL_DRAW_FRAMEBUFFER, target)
                if written is None:
                    GL.glClear(GL.GL_COLOR_BUFFER_BIT | GL.GL_DEPTH_BUFFER_BIT)
                    continue
                GL.glEnable(GL.GL_SCISSOR_TEST)
                for x0, y0, x1, y1 in written.tolist():
                    GL.glScissor(x0, y0, x1 - x0, y1 - y0)
                    GL.glClear(GL.GL_COLOR_BUFFER_BIT | GL.GL_DEPTH_BUFFER_BIT)
                GL.glDisable(GL.GL_SCISSOR_TEST)
            # this pass draws (and resolves by rectangles) within drawn_rects only
            self._written[tile] = None if self.drawn_rects is None else self.drawn_rects[tile]
            super()._bind_and_draw_primitive(primitive, pose, program, flags)

        def _read_main_framebuffer(self, scene: Any, flags: Any) -> Any:
            w, h = self._main_fb_dims
            by_rects = self.resolve_by_rects and self.drawn_rects is not None
            for k, (fb, fb_ms) in enumerate(self._tile_fbs):
                if fb_ms != fb:  # resolve MSAA, colour only (no depth blit)
                    GL.glBindFramebuffer(GL.GL_READ_FRAMEBUFFER, fb_ms)
                    GL.glBindFramebuffer(GL.GL_DRAW_FRAMEBUFFER, fb)
                    if not by_rects:  # the rows mirrored: top row first
                        GL.glBlitFramebuffer(0, 0, w, h, 0, h, w, 0, GL.GL_COLOR_BUFFER_BIT, GL.GL_NEAREST)
                        continue
                    # only where something was drawn: elsewhere both framebuffers hold the
                    # background since their clear
                    for x0, y0, x1, y1 in self.drawn_rects[k].tolist():
                        GL.glBlitFramebuffer(x0, y0, x1, y1, x0, y0, x1, y1, GL.GL_COLOR_BUFFER_BIT, GL.GL_NEAREST)
            bottom_up = self.samples == 1 or by_rects
            if self.readback != "gl" and self._cuda is None:
                self._cuda = self._open_cuda(w, h)
            if self._cuda is not None:  # pending: cuda_readback.PendingImages
                return self._cuda.read(bottom_up)  # type: ignore[no-any-return]
            return self._read_pixels(w, h, bottom_up)

        def _open_cuda(self, w: int, h: int) -> Any:
            from scene2world.renderer.cuda_readback import CudaReadback

            try:
                return CudaReadback(self._tile_colors, w, h)
            except (RenderError, OSError, RuntimeError) as e:
                if self.readback == "cuda":
                    raise RenderError(f"{e} (readback='gl' reads back without CUDA)") from e
                log.warning("reading images back with glReadPixels: %s", e)
                self.readback = "gl"
                return None

        def _read_pixels(self, w: int, h: int, bottom_up: bool) -> np.ndarray:
            GL.glPixelStorei(GL.GL_PACK_ALIGNMENT, 1)
            if self._pack_invert is None:
                self._pack_invert = _has_extension(GL, "GL_MESA_pack_invert")
            # GL rows are bottom-up where the resolve did not mirror them. Mesa flips them while
            # reading (GL_MESA_pack_invert); elsewhere one contiguous copy does (RGB: a strided
            # RGBA->RGB copy costs 3 ms).
            invert = bottom_up and self._pack_invert
            if invert:
                GL.glPixelStorei(_GL_PACK_INVERT_MESA, 1)
            image = np.empty((self.tiles, h, w, 3), dtype=np.uint8)
            for k, (fb, _) in enumerate(self._tile_fbs):
                GL.glBindFramebuffer(GL.GL_READ_FRAMEBUFFER, fb)
                GL.glReadPixels(0, 0, w, h, GL.GL_RGB, GL.GL_UNSIGNED_BYTE, image[k])
            if invert:
                GL.glPixelStorei(_GL_PACK_INVERT_MESA, 0)
            if bottom_up and not invert:
                image = np.ascontiguousarray(image[:, ::-1])
            return image.reshape(self.tiles * h, w, 3)

    return FastRenderer


_fast_renderer_cls: type | None = None


def fast_renderer_class() -> type:
    """Return the FastRenderer class (pyrender Renderer with MSAA choice, colour-only read)."""
    global _fast_renderer_cls
    if _fast_renderer_cls is None:
        _fast_renderer_cls = _make_fast_renderer_class(load_pyrender())
    return _fast_renderer_cls


_display_refs: dict[int, int] = {}
_platform_cls: type | None = None


def _shared_display_platform_class() -> type:
    """Return pyrender's EGLPlatform subclass that calls ``eglTerminate`` only for a display's last context.

    EGL returns the same display handle for every context on one device, and pyrender
    terminates it when any one renderer is deleted, which breaks every other renderer of
    the process (EGL_BAD_DISPLAY).
    """
    global _platform_cls
    if _platform_cls is not None:
        return _platform_cls
    from OpenGL import EGL
    from pyrender.platforms import egl

    def key(display: Any) -> int:
        return int(ctypes.cast(display, ctypes.c_void_p).value or 0)

    class SharedDisplayEGLPlatform(egl.EGLPlatform):  # type: ignore[misc, name-defined]
        _egl_display: Any
        _egl_context: Any

        def init_context(self) -> None:
            super().init_context()
            k = key(self._egl_display)
            _display_refs[k] = _display_refs.get(k, 0) + 1

        def delete_context(self) -> None:
            if self._egl_display is None:
                return
            k = key(self._egl_display)
            if self._egl_context is not None:
                EGL.eglMakeCurrent(self._egl_display, EGL.EGL_NO_SURFACE, EGL.EGL_NO_SURFACE, EGL.EGL_NO_CONTEXT)
                EGL.eglDestroyContext(self._egl_display, self._egl_context)
                self._egl_context = None
            _display_refs[k] = _display_refs.get(k, 1) - 1
            if _display_refs[k] <= 0:
                _display_refs.pop(k, None)
                EGL.eglTerminate(self._egl_display)
            self._egl_display = None

    _platform_cls = SharedDisplayEGLPlatform
    return _platform_cls


def is_software_renderer(renderer_name: str) -> bool:
    """Return True for Mesa's CPU rasterisers (llvmpipe, softpipe, swrast)."""
    name = renderer_name.lower()
    return any(s in name for s in ("llvmpipe", "softpipe", "swrast", "software"))


def create_offscreen(width: int, height: int, *, samples: int = 4, device: Device = "auto", tiles: int = 1) -> Any:
    """Create a pyrender ``OffscreenRenderer`` of ``width``x``height`` on the EGL device ``device``.

    Its renderer is a :class:`FastRenderer` with ``samples`` MSAA samples (1 = none), ``tiles``
    images per pass and colour-only readback; ``renderer_name`` (GL_RENDERER), ``gl_version`` and ``egl_device``
    are set on it. Raises RenderError when EGL cannot be loaded or initialised, or when
    ``device="gpu"`` was asked and a software renderer came up.
    """
    _check_device(device)
    pyrender = load_pyrender(device)
    if os.environ.get("PYOPENGL_PLATFORM") != "egl":
        raise RenderError(
            f"PYOPENGL_PLATFORM={os.environ.get('PYOPENGL_PLATFORM')!r}: scene2world renders over EGL only; "
            "unset it or set it to `egl`"
        )
    from OpenGL import GL
    from pyrender.platforms import egl

    info = pick_device(device)
    renderer_cls = fast_renderer_class()

    class Offscreen(pyrender.OffscreenRenderer):  # type: ignore[misc, name-defined]
        def _create(self) -> None:
            dev = egl.EGLDevice(None) if info is None else egl.query_devices()[info.index]
            self._platform = _shared_display_platform_class()(self.viewport_width, self.viewport_height, device=dev)
            try:
                self._platform.init_context()
                self._platform.make_current()
            except Exception as e:  # pyrender asserts on every EGL call
                raise RenderError(
                    f"could not create an EGL OpenGL 4.1 core context on {device!r} device {info} "
                    f"({type(e).__name__}: {e}); on CPU machines install `{APT_PACKAGES}`, on NVIDIA "
                    "machines see docs/gpu.md"
                ) from e
            self._renderer = renderer_cls(self.viewport_width, self.viewport_height)
            self._renderer.samples = int(samples)
            self._renderer.tiles = int(tiles)

    offscreen = Offscreen(width, height)
    offscreen.renderer_name = (GL.glGetString(_GL_RENDERER) or b"").decode("ascii", "replace")
    offscreen.gl_version = (GL.glGetString(_GL_VERSION) or b"").decode("ascii", "replace")
    offscreen.egl_device = info
    if device == "gpu" and is_software_renderer(offscreen.renderer_name):
        offscreen.delete()
        raise RenderError(
            f"device='gpu' but the EGL context runs on {offscreen.renderer_name!r} (CPU): NVIDIA's EGL driver was "
            "not used; see docs/gpu.md (__EGL_VENDOR_LIBRARY_FILENAMES, EGL_DEVICE_ID)"
        )
    max_samples = int(GL.glGetIntegerv(GL.GL_MAX_SAMPLES))
    if samples > max_samples:
        offscreen.delete()
        raise RenderError(f"msaa={samples} but {offscreen.renderer_name} supports at most {max_samples} samples")
    return offscreen
