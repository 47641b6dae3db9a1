"""A :class:`~scene2world.renderer.raster.Rasterizer` in its own thread: GL overlaps the geometry.

On a GPU a pass's time is mostly spent waiting, in the driver, for the draw, the MSAA resolve and
the read-back of the images, with Python's GIL released. A render worker that submits frame f to
this thread and builds frame f + 1 meanwhile hides that wait behind its numpy geometry
(docs/speed.md, "Several cameras per pass"). All GL calls of the context, its creation and its
deletion included, run on the one thread: an EGL context is current in one thread only.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from scene2world.renderer.batch import DrawBatch
from scene2world.renderer.raster import Rasterizer
from scene2world.typing import NDArrayByte


class RasterThread:
    """``Rasterizer(**settings)`` owned by one thread; :meth:`submit` returns a future of a pass's images.

    Passes run in submission order. Use as a context manager or call :meth:`close`, which waits
    for the submitted passes and frees the context.
    """

    def __init__(self, **settings: Any) -> None:
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="s2w-gl")
        self._waiter = ThreadPoolExecutor(1, thread_name_prefix="s2w-gl-wait")
        try:
            self._raster: Rasterizer = self._thread.submit(Rasterizer, **settings).result()
        except BaseException:
            self._thread.shutdown(wait=True)
            self._waiter.shutdown(wait=True)
            raise
        self.width, self.height, self.tiles = self._raster.width, self._raster.height, self._raster.tiles
        self.renderer_name = self._raster.renderer_name

    def submit(self, images: Sequence[Sequence[DrawBatch]]) -> Future[NDArrayByte]:
        """Queue one pass (``Rasterizer.render_tiles``) of ``images``.

        The GL thread issues it (``Rasterizer.issue_tiles``) and goes on to the next; a second
        thread waits for its images (a CUDA read-back's copies), so with two passes submitted the
        next one's draw is issued while this one's images are still being copied out.
        """
        issued = self._thread.submit(self._raster.issue_tiles, images)
        return self._waiter.submit(lambda: issued.result()())

    @property
    def seconds(self) -> float:
        """Time spent in passes: issuing them and waiting for their images."""
        return self._raster.seconds

    def close(self) -> None:
        """Wait for the queued passes, free the context on its thread, end the thread (idempotent)."""
        raster, self._raster = self._raster, None  # type: ignore[assignment]
        self._waiter.shutdown(wait=True)  # the passes' images first (waiting makes no GL call)
        if raster is not None:
            self._thread.submit(raster.close).result()
        self._thread.shutdown(wait=True)

    def __enter__(self) -> RasterThread:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_rasterizer(tiles: int = 1, **settings: Any) -> Rasterizer | RasterThread:
    """A render worker's rasteriser: with several images per pass (a GPU: ``render.auto_cameras_per_pass``)
    a :class:`RasterThread`, so each pass overlaps the next pass's geometry; else a plain
    :class:`Rasterizer` in this thread."""
    return RasterThread(tiles=tiles, **settings) if tiles > 1 else Rasterizer(tiles=tiles, **settings)


def one_pass_ahead(
    raster: Rasterizer | RasterThread, passes: Iterable[Sequence[Sequence[DrawBatch]]]
) -> Iterator[NDArrayByte]:
    """Each pass's images, in order; pass k + 1 is taken from ``passes`` (its geometry built) and
    submitted before pass k's images are returned, so a :class:`RasterThread` draws one while the
    next is built. At most two passes are in flight."""
    pending = None
    for images in passes:
        submitted = raster.submit(images)
        if pending is not None:
            yield pending.result()
        pending = submitted
    if pending is not None:
        yield pending.result()
