"""Read a pass's images back through CUDA–OpenGL interop instead of ``glReadPixels`` (NVIDIA GPUs).

On an H100, ``glReadPixels`` of a pass's RGB images costs the driver about 1.3 ms of CPU per
1280x720 image and holds the graphics pipe; with 16 render processes it is what stands between
1,270 and 1,680 camera-frames/s (docs/speed.md, "Read-back through CUDA"). Here CUDA maps the
resolved colour renderbuffers (registered once, read-only), copies them into one device buffer,
turns them right way up and drops alpha there, and one transfer brings the pass into pinned host
memory. :meth:`CudaReadback.read` only issues that work: the :class:`PendingImages` it returns
waits for it (sleeping on a blocking event, no spin) on whichever thread asks, so the GL thread
can issue the next pass meanwhile (``raster_thread.RasterThread``).

Each pass gets its own pinned buffer from torch's caching host allocator: the returned array keeps
the buffer alive (the writers queue frames), and a buffer freed by its last array is reused by a
later pass, so no page is faulted in and no copy is made on the CPU.

The CUDA runtime is the one torch loaded (``libcudart`` by its soname). CUDA works on the GPU that
runs the GL context (``cudaGLGetDevices``), whatever the device numbering.
"""

from __future__ import annotations

import ctypes
import glob
import os
from typing import Any, Literal

import numpy as np

from scene2world.errors import RenderError
from scene2world.typing import NDArrayByte

Readback = Literal["auto", "gl", "cuda"]
"""How a pass's images come back: ``gl`` (``glReadPixels``), ``cuda`` (this module; an error
where it cannot run), ``auto`` (``cuda`` on a GPU where torch has CUDA, else ``gl``)."""

_GL_RENDERBUFFER = 0x8D41
_REGISTER_READ_ONLY = 1  # cudaGraphicsRegisterFlagsReadOnly
_DEVICE_TO_DEVICE = 3  # cudaMemcpyDeviceToDevice
_GL_DEVICE_LIST_ALL = 1  # cudaGLDeviceListAll


def _load_cudart(torch: Any) -> ctypes.CDLL:
    """The CUDA runtime torch loaded (found by soname), else the copy in the nvidia wheels beside torch."""
    major = (torch.version.cuda or "").split(".")[0]
    for name in (f"libcudart.so.{major}", "libcudart.so"):
        try:
            return ctypes.CDLL(name, mode=ctypes.RTLD_GLOBAL)
        except OSError:
            continue
    site = os.path.dirname(os.path.dirname(torch.__file__))
    found = sorted(glob.glob(os.path.join(site, "nvidia", "**", "libcudart.so*"), recursive=True))
    if not found:
        raise OSError(f"no libcudart for torch {torch.__version__} (CUDA {torch.version.cuda})")
    return ctypes.CDLL(found[-1], mode=ctypes.RTLD_GLOBAL)


def unavailable_reason() -> str | None:
    """Why this process cannot read back through CUDA (None: it can try)."""
    try:
        import torch
    except ImportError:
        return "torch is not installed"
    if not torch.cuda.is_available():
        return f"torch {torch.__version__} sees no CUDA device"
    try:
        _load_cudart(torch)
    except OSError as e:
        return str(e)
    return None


class PendingImages:
    """A pass's images on their way into pinned host memory; :meth:`result` waits for them (no GL call)."""

    def __init__(self, done: Any, host: Any, shape: tuple[int, int, int]) -> None:
        self._done, self._host, self._shape = done, host, shape

    def result(self) -> NDArrayByte:
        """The images as (tiles·H, W, 3) uint8, once the copies are done."""
        self._done.synchronize()
        images: np.ndarray = self._host.numpy()  # keeps the tensor, and so its pinned block, alive
        return images.reshape(self._shape)


class CudaReadback:
    """The resolved colour renderbuffers of one GL context (``tiles`` of ``width`` x ``height``
    RGBA8), registered with CUDA; :meth:`read` issues a pass's copies and returns them pending.

    Create, use and :meth:`close` it on the thread whose GL context owns the renderbuffers, with
    that context current. Raises :class:`RenderError` where CUDA cannot work on the GL context's GPU.
    """

    def __init__(self, renderbuffers: list[int], width: int, height: int) -> None:
        import torch

        self._torch = torch
        self._cudart = cudart = _load_cudart(torch)
        cudart.cudaGetErrorString.restype = ctypes.c_char_p
        count, device = ctypes.c_uint(0), ctypes.c_int(-1)
        self._check(cudart.cudaGLGetDevices(ctypes.byref(count), ctypes.byref(device), 1, _GL_DEVICE_LIST_ALL), "")
        if count.value < 1:
            raise RenderError("CUDA read-back: no CUDA device runs this GL context")
        gpu = torch.device("cuda", device.value)
        torch.cuda.set_device(gpu)  # this thread's CUDA calls go to the GL context's GPU
        self._stream = torch.cuda.Stream(gpu)
        self._rgba = torch.empty((len(renderbuffers), height, width, 4), dtype=torch.uint8, device=gpu)
        self._resources = (ctypes.c_void_p * len(renderbuffers))()
        self._registered = 0
        try:
            for k, rb in enumerate(renderbuffers):
                slot = ctypes.byref(self._resources, k * ctypes.sizeof(ctypes.c_void_p))
                self._check(
                    cudart.cudaGraphicsGLRegisterImage(slot, rb, _GL_RENDERBUFFER, _REGISTER_READ_ONLY),
                    f"renderbuffer {rb}",
                )
                self._registered += 1
        except BaseException:
            self.close()
            raise

    def _check(self, code: int, what: str) -> None:
        if code != 0:
            message = self._cudart.cudaGetErrorString(code).decode()
            raise RenderError(f"CUDA read-back{' of ' + what if what else ''}: error {code}: {message}")

    def read(self, bottom_up: bool) -> PendingImages:
        """Issue the copies of the pass's images (image k in rows k·H..(k+1)·H, top row first);
        ``bottom_up``: the renderbuffers hold GL's row order (not mirrored by the resolve).

        The copies follow the GL work issued before (mapping orders them), and GL work issued
        after waits for the copies out of the renderbuffers (unmapping orders it); later passes'
        copies queue behind this one's on the one stream, so the device buffer is reused safely."""
        torch, cudart = self._torch, self._cudart
        tiles, h, w = self._rgba.shape[:3]
        stream = ctypes.c_void_p(self._stream.cuda_stream)
        # mapping orders the GL work before this stream's copies
        self._check(cudart.cudaGraphicsMapResources(tiles, self._resources, stream), "the pass (map)")
        try:
            for k in range(tiles):
                array = ctypes.c_void_p()
                resource = ctypes.c_void_p(self._resources[k])
                self._check(cudart.cudaGraphicsSubResourceGetMappedArray(ctypes.byref(array), resource, 0, 0), "")
                row = ctypes.c_size_t(w * 4)
                self._check(
                    cudart.cudaMemcpy2DFromArrayAsync(
                        ctypes.c_void_p(self._rgba[k].data_ptr()),
                        row,
                        array,
                        ctypes.c_size_t(0),
                        ctypes.c_size_t(0),
                        row,
                        ctypes.c_size_t(h),
                        _DEVICE_TO_DEVICE,
                        stream,
                    ),
                    f"image {k}",
                )
        finally:
            self._check(cudart.cudaGraphicsUnmapResources(tiles, self._resources, stream), "the pass (unmap)")
        done = torch.cuda.Event(blocking=True)  # a wait on it sleeps
        with torch.cuda.stream(self._stream):
            images = self._rgba.flip(1) if bottom_up else self._rgba
            host = torch.empty((tiles, h, w, 3), dtype=torch.uint8, pin_memory=True)
            host.copy_(images[..., :3], non_blocking=True)
            done.record(self._stream)
        return PendingImages(done, host, (tiles * h, w, 3))

    def close(self) -> None:
        """Unregister the renderbuffers (before GL deletes them) and free the device buffer (idempotent)."""
        for k in range(self._registered):
            self._cudart.cudaGraphicsUnregisterResource(ctypes.c_void_p(self._resources[k]))
        self._registered = 0
        self._rgba = None  # type: ignore[assignment]
