"""Render processes that outlive one camera: the pipeline's local render engine.

The pipeline renders one Prefect task per (clip, camera). pyrender needs one process per
parallel render (the GIL, one GL context per process), and starting a process per camera would
pay the interpreter, import and EGL start-up for every camera. :class:`RenderPool` keeps
``processes`` ``spawn``-ed processes for a whole render (:mod:`concurrent.futures`); each task
thread hands its camera to :meth:`RenderPool.render` and waits. A process loads the clip with
only that camera and renders it whole (``render.render_clip`` with one worker, no segments, so
the bytes are the same as a render of the clip's cameras in one ``render_clip`` call). Frame
progress comes back through one queue and is routed to the caller's callback by a thread.

Stopping (docs/processes.md): the parent owns it. :meth:`RenderPool.close` waits for running
cameras after a normal end; with ``stop=True`` (the render ended by an exception: Ctrl-C, SIGTERM,
a cancelled Prefect run) it SIGTERMs the processes first; a process only records the signal, so
each running camera stops at its next frame (never inside an import) and its writers delete their
temporary files (``render.render_clip``). The processes ignore SIGINT, which a terminal sends
to the whole group: they are started with it blocked, so a Ctrl-C during their start-up (a
half-done import) cannot print a traceback, and they stop when the parent tells them. See also
docs/scale-out.md.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import os
import signal
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scene2world.errors import RenderError
from scene2world.lifeline import watch_parent
from scene2world.renderer.blas import one_blas_thread
from scene2world.scene.discover import ClipRef
from scene2world.stopping import check, note_stop, sigint_blocked

if TYPE_CHECKING:
    from scene2world.renderer.render import RenderedCamera

log = logging.getLogger(__name__)

_EVENTS: Any = None  # in a render process: the queue of (token, done, total) progress events
_STARTED = "started"  # the token of the event a render process sends once, with its pid


def _init_process(events: Any, parent: int) -> None:
    global _EVENTS
    # started with SIGINT blocked (RenderPool._submit): ignore it, then drop one that came meanwhile
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    # SIGTERM (the parent's stop) is only recorded: the camera stops at its next frame
    signal.signal(signal.SIGTERM, note_stop)
    _EVENTS = events
    one_blas_thread()
    events.put((_STARTED, os.getpid(), 0))
    watch_parent(parent)  # a killed pipeline must not leave cameras rendering (docs/processes.md)


def _render_one(token: str, clip: ClipRef, camera: str, out_dir: Path, options: dict[str, Any]) -> RenderedCamera:
    """In a render process: load ``clip`` with ``camera`` only and render it into ``out_dir``."""
    from scene2world.renderer.render import render_clip
    from scene2world.scene.load import load_scene

    def progress(done: int, total: int) -> None:
        _EVENTS.put((token, done, total))

    check()  # cameras queued to this process before the parent stopped it are not started
    scene = load_scene(clip.path, clip_id=clip.clip_id, cameras=[camera])
    (result,) = render_clip(scene, out_dir, cameras=[camera], workers=1, progress=progress, **options)
    return result


class RenderPool:
    """``processes`` render processes; :meth:`render` is a ``step.CameraRenderer`` safe to call from threads."""

    def __init__(self, processes: int) -> None:
        if processes < 1:
            raise RenderError(f"a render pool needs at least 1 process, got {processes}")
        ctx = mp.get_context("spawn")
        self.processes = processes
        self._events = ctx.Queue()
        self._executor = ProcessPoolExecutor(
            processes, mp_context=ctx, initializer=_init_process, initargs=(self._events, os.getpid())
        )
        self._callbacks: dict[str, Callable[[int, int], None]] = {}
        self._pids: set[int] = set()
        self._lock = threading.Lock()
        self._router = threading.Thread(target=self._route, name="s2w-render-progress", daemon=True)
        self._router.start()

    def _route(self) -> None:
        while True:
            event = self._events.get()
            if event is None:
                return
            token, done, total = event
            with self._lock:
                if token == _STARTED:
                    self._pids.add(done)
                    continue
                callback = self._callbacks.get(token)
            if callback is not None:
                with contextlib.suppress(Exception):  # progress must never break a render
                    callback(done, total)

    def render(
        self,
        clip: ClipRef,
        camera: str,
        out_dir: Path,
        options: dict[str, Any],
        progress: Callable[[int, int], None] | None,
    ) -> RenderedCamera:
        """Render one camera in a pool process and return its ``RenderedCamera``."""
        token = uuid.uuid4().hex
        if progress is not None:
            with self._lock:
                self._callbacks[token] = progress
        try:
            future = self._submit(_render_one, token, clip, camera, Path(out_dir), options)
            try:
                return future.result()
            except BrokenProcessPool as e:
                raise RenderError(
                    f"clip {clip.clip_id!r} camera {camera}: a render process died ({e}); see the log above"
                ) from e
        finally:
            with self._lock:
                self._callbacks.pop(token, None)

    def _submit(self, *call: Any) -> Future[RenderedCamera]:
        # the executor starts processes in the submitting thread: they start with SIGINT blocked
        # until _init_process ignores it
        with sigint_blocked():
            return self._executor.submit(*call)

    def close(self, stop: bool = False) -> None:
        """Cancel queued cameras, stop the processes and the router; running cameras finish, or
        with ``stop`` are stopped at once (SIGTERM: each deletes its partial files)."""
        if stop:
            with self._lock:
                pids = sorted(self._pids)
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
        self._executor.shutdown(wait=True, cancel_futures=True)
        self._events.put(None)
        self._router.join(timeout=10)
        self._events.close()
        self._events.join_thread()


def default_processes() -> int:
    """One render process per usable CPU core."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


_ACTIVE: RenderPool | None = None
_ACTIVE_LOCK = threading.Lock()


@contextlib.contextmanager
def active_pool(processes: int) -> Iterator[RenderPool]:
    """Start a pool that :func:`current_pool` returns in this process until the block ends."""
    global _ACTIVE
    pool = RenderPool(processes)
    with _ACTIVE_LOCK:
        previous, _ACTIVE = _ACTIVE, pool
    stop = True
    try:
        yield pool
        stop = False
    finally:
        with _ACTIVE_LOCK:
            _ACTIVE = previous
        pool.close(stop=stop)


def current_pool() -> RenderPool | None:
    """The pool of the render running in this process, or None (e.g. on a Dask worker)."""
    return _ACTIVE
