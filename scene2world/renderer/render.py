"""Render a clip's cameras to control videos (or PNG frames) in parallel processes.

:func:`render_clip` checks the request (cameras in the rig, frame range inside the clip), then
renders in ``workers`` processes (``0`` = one per CPU core, at most one per camera; ``1`` = in
this process). Each process is started with ``spawn`` (no EGL, driver or thread state is
inherited), receives the scene once (pickled), owns one EGL context
(:class:`~scene2world.renderer.raster.Rasterizer`) and takes tasks from a shared queue until
none is left. A task is a frame range of a group of cameras (:func:`plan_tasks`): on the CPU
one camera per task, on a GPU all cameras (up to ``raster.MAX_TILES``) drawn in one GL pass per
frame, one writer per camera. With more workers than tasks the ranges are cut into segments,
rendered in parallel and joined without re-encoding. For every frame a worker builds the draw
batches (``frame.build_frame``), rasterises them (on a GPU in its GL thread,
:mod:`~scene2world.renderer.raster_thread`, while the next frame's geometry is built) and queues
each image to its writer (:mod:`scene2world.renderer.video`), whose thread feeds ffmpeg.

Cancellation: Ctrl-C (SIGINT) or SIGTERM in the parent sets a stop event and stops the
workers; a worker that is told to stop (event, SIGTERM or SIGINT) aborts its writer, which
deletes the temporary file. No published ``.mp4`` (or PNG folder) is ever partial: files are
renamed into place only when complete. Workers that do not stop in time are terminated, and
the parent then removes their leftover temporary files. Temporaries carry their owner's pid and
host: those of a render killed outright (SIGKILL) are removed by the next render of the same
outputs (:mod:`scene2world.leftovers`).

An empty scene (no map elements and no objects) renders black frames and logs a warning.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import os
import queue
import signal
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, get_args

import numpy as np

from scene2world.config import (
    DEFAULT_CRF,
    DEFAULT_PRESET,
    VIDEO_HEIGHT_PX,
    VIDEO_WIDTH_PX,
    Device,
    LineCaps,
    Look,
)
from scene2world.errors import RenderCancelledError, RenderError
from scene2world.leftovers import remove_paths
from scene2world.lifeline import die_with_parent
from scene2world.renderer.blas import one_blas_thread
from scene2world.renderer.gl import renders_on_gpu
from scene2world.renderer.raster import MAX_TILES
from scene2world.renderer.video import (
    FrameWriter,
    PngWriter,
    VideoWriter,
    concat_videos,
    merge_png_dirs,
    open_writer,
    partial_paths,
    png_dir,
    remove_orphan_partials,
    segment_path,
    video_path,
)
from scene2world.scene.model import Scene
from scene2world.stopping import check, sigint_blocked, stops_raise
from scene2world.typing import NDArrayByte

log = logging.getLogger(__name__)

LINE_CAPS: tuple[str, ...] = get_args(LineCaps)


ProgressFn = Callable[[int, int], None]
"""``progress(done, total)``: camera-frames finished so far and in all, for this call."""

_STOP_GRACE_S = 10.0


@dataclass(frozen=True)
class RenderedCamera:
    """One rendered camera.

    ``path`` is the mp4 (or the PNG folder), ``frames`` the number of frames written,
    ``frame_range`` the half-open range of the clip timeline, ``seconds`` the worker time spent
    on this camera (summed over its segments), ``render_seconds`` the part spent building and
    rasterising, ``renderer`` GL_RENDERER of the context that drew it.
    """

    camera: str
    path: Path
    frames: int
    frame_range: tuple[int, int]
    seconds: float
    render_seconds: float
    renderer: str


class FrameBuilder(Protocol):
    """Turns a scene frame into ordered draw batches (default: :mod:`scene2world.renderer.frame`).

    Must be picklable (it is sent to the worker processes).
    """

    def prepare(self, scene: Scene, look: Look) -> Any:
        """Precompute what does not change per frame (``frame.prepare_static``)."""

    def build(self, scene: Scene, camera: str, frame: int, look: Look, prepared: Any) -> list[Any]:
        """Return the frame's ordered ``list[DrawBatch]`` (``frame.build_frame``)."""


@dataclass(frozen=True)
class GeometryBuilder:
    """The default :class:`FrameBuilder`: the geometry of :mod:`scene2world.renderer.frame`.

    ``cull_caps``: leave out the line caps that other geometry covers (``frame.build_frame``).
    """

    cull_caps: bool = True

    def prepare(self, scene: Scene, look: Look) -> Any:
        """Call ``frame.prepare_static``."""
        from scene2world.renderer.frame import prepare_static

        return prepare_static(scene, look)

    def build(self, scene: Scene, camera: str, frame: int, look: Look, prepared: Any) -> list[Any]:
        """Call ``frame.build_frame``."""
        from scene2world.renderer.frame import build_frame

        return build_frame(scene, camera, frame, look, prepared_static=prepared, cull_caps=self.cull_caps)


@dataclass(frozen=True)
class _Job:
    """Settings every worker needs (picklable). ``per_pass``: cameras drawn in one GL pass."""

    out_dir: Path
    start: int
    end: int
    look: Look
    msaa: int
    device: Device
    crf: int
    preset: str
    png: bool
    builder: Any
    per_pass: int = 1


@dataclass(frozen=True)
class _Task:
    """Frames [start, end) of ``cameras``; segment ``index`` of ``count`` per camera (count 1 = the whole range)."""

    cameras: tuple[str, ...]
    start: int
    end: int
    index: int = 0
    count: int = 1
    token: str = ""


MIN_SEGMENT_FRAMES = 16
"""A camera's range is split into segments only down to this many frames each."""


def plan_tasks(
    cameras: Sequence[str], start: int, end: int, workers: int, token: str, per_pass: int = 1
) -> list[_Task]:
    """Tasks covering frames [start, end) of every camera, for ``workers`` processes.

    Cameras go in groups of at most ``per_pass`` (drawn in one pass): as few groups as give every
    worker a task, the range of each group cut into segments (at least MIN_SEGMENT_FRAMES long)
    when there are more workers than groups. With ``per_pass`` 1: one task per camera, or each
    camera's range cut into ``ceil(workers / cameras)`` segments. Group-major order.
    """
    n, count = end - start, len(cameras)
    max_segments = max(1, n // MIN_SEGMENT_FRAMES)
    groups = min(count, max(-(-count // per_pass), -(-workers // max_segments)))
    segments = max(1, min(max_segments, -(-workers // groups))) if workers > groups else 1
    edges = np.linspace(start, end, segments + 1).round().astype(int)
    tasks = []
    for group in np.array_split(np.asarray(cameras, dtype=object), groups):
        for i in range(segments):
            tasks.append(_Task(tuple(group), int(edges[i]), int(edges[i + 1]), i, segments, token))
    return tasks


def auto_cameras_per_pass(cameras: Sequence[str], start: int, end: int, workers: int, device: Device) -> int:
    """Cameras per GL pass when the caller leaves it to ``render_clip``.

    On a GPU all of them (up to ``raster.MAX_TILES``) when one group of them gives every worker a
    task (``workers`` at most the clip's segments of MIN_SEGMENT_FRAMES frames), else 1; on the
    CPU 1. Measured on an H100 with 16 cores, render-only camera-frames/s of the 7 x 151 clip
    (docs/speed.md, "Several cameras per pass"): all cameras per pass against one, 1 process
    124 / 100, 7 processes 653 / 292, 9 processes 740 / 514; 16 processes (two groups of
    cameras, unequal work) 536 / 807. On llvmpipe a pass costs per pixel: 0.84-0.93x.
    """
    count = min(len(cameras), MAX_TILES)
    if count < 2 or not renders_on_gpu(device):
        return 1
    groups = {task.cameras for task in plan_tasks(cameras, start, end, workers, "", count)}
    return count if len(groups) == 1 else 1


# --------------------------------------------------------------------------------------------
# checks


def resolve_frames(scene: Scene, frames: tuple[int, int | None] | None) -> tuple[int, int]:
    """The half-open frame range to render; RenderError naming the clip length if outside."""
    n = scene.num_frames
    if frames is None:
        return 0, n
    try:
        start, end = frames
    except (TypeError, ValueError):
        raise RenderError(f"`frames` must be (start, end), got {frames!r}") from None
    start = 0 if start is None else int(start)
    end = n if end is None else int(end)
    if not 0 <= start < end <= n:
        raise RenderError(
            f"clip {scene.clip_id!r} has {n} frames (0..{n - 1}); frames {start}:{end} is outside it "
            f"(use a half-open range START:END with 0 <= START < END <= {n})"
        )
    return start, end


def check_cameras(scene: Scene, cameras: Sequence[str] | None) -> list[str]:
    """The cameras to render (None = the whole rig); RenderError listing the rig if unknown."""
    if cameras is None:
        return list(scene.camera_names)
    cameras = [str(getattr(c, "value", c)) for c in cameras]
    unknown = [c for c in cameras if c not in scene.cameras]
    if unknown:
        raise RenderError(
            f"clip {scene.clip_id!r}: no camera {', '.join(map(repr, unknown))} in the rig; "
            f"it has {', '.join(scene.camera_names)}"
        )
    if not cameras:
        raise RenderError(f"clip {scene.clip_id!r}: no camera to render")
    if len(set(cameras)) != len(cameras):
        raise RenderError(f"clip {scene.clip_id!r}: camera listed twice in {cameras}")
    return cameras


def _geometry(line_caps: str) -> GeometryBuilder:
    if line_caps not in LINE_CAPS:
        raise RenderError(f"`line_caps` must be one of {list(LINE_CAPS)}, got {line_caps!r}")
    return GeometryBuilder(cull_caps=line_caps == "culled")


def is_empty_scene(scene: Scene) -> bool:
    """True when the scene has no map elements and no tracked objects (renders black)."""
    return len(scene.map) == 0 and not scene.tracks


def default_workers(n_cameras: int) -> int:
    """One worker per usable CPU core, at most one per camera."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, n_cameras))


# --------------------------------------------------------------------------------------------
# one camera, in the current process


class _Stopper:
    """Whether to stop: a multiprocessing/threading event and/or a signal flag."""

    def __init__(self, event: Any = None) -> None:
        self.event = event
        self.signalled = 0
        """The stop signal that arrived (0: none)."""

    def __call__(self) -> bool:
        return bool(self.signalled) or (self.event is not None and self.event.is_set())


def _open_task_writer(scene: Scene, task: _Task, camera: str, job: _Job, raster: Any) -> FrameWriter:
    size = {"width": raster.width, "height": raster.height}
    if task.count == 1:
        return open_writer(
            job.out_dir,
            scene.clip_id,
            camera,
            png=job.png,
            start_frame=task.start,
            crf=job.crf,
            preset=job.preset,
            **size,
        )
    if job.png:
        final = png_dir(job.out_dir, scene.clip_id, camera)
        return PngWriter(segment_path(final, task.token, task.index), start_frame=task.start, **size)
    final = video_path(job.out_dir, scene.clip_id, camera)
    return VideoWriter(segment_path(final, task.token, task.index), crf=job.crf, preset=job.preset, **size)


def _open_raster(job: _Job) -> Any:
    """The worker's rasteriser (``raster_thread.open_rasterizer``: a GL thread with several cameras per pass)."""
    from scene2world.renderer.raster_thread import open_rasterizer

    return open_rasterizer(job.per_pass, width=VIDEO_WIDTH_PX, height=VIDEO_HEIGHT_PX, msaa=job.msaa, device=job.device)


def _render_task(
    scene: Scene,
    task: _Task,
    job: _Job,
    raster: Any,
    prepared: Any,
    should_stop: Callable[[], bool],
    on_frames: Callable[[int], None],
) -> list[RenderedCamera]:
    """Render one task's frames, all its cameras in one pass per frame, into one writer per camera;
    returns what was written per camera (path = the writer's; times shared out evenly).

    Frame f + 1's pass is submitted before frame f's images are written
    (``raster_thread.one_pass_ahead``): a GL thread draws while the geometry is built.
    """
    from scene2world.renderer.raster_thread import one_pass_ahead

    t0 = time.perf_counter()
    geometry_s = 0.0
    raster_s = raster.seconds
    cams = task.cameras

    def passes() -> Iterator[list[Any]]:
        nonlocal geometry_s
        for frame in range(task.start, task.end):
            if should_stop():
                raise RenderCancelledError(
                    f"clip {scene.clip_id!r} camera {', '.join(cams)}: render cancelled at frame {frame}"
                )
            t1 = time.perf_counter()
            images = [job.builder.build(scene, cam, frame, job.look, prepared) for cam in cams]
            geometry_s += time.perf_counter() - t1
            yield images

    with contextlib.ExitStack() as stack:
        writers = [stack.enter_context(_open_task_writer(scene, task, cam, job, raster)) for cam in cams]
        for images in one_pass_ahead(raster, passes()):
            for writer, image in zip(writers, images):
                writer.write(image)
            on_frames(len(cams))
    seconds = time.perf_counter() - t0
    render_s = geometry_s + raster.seconds - raster_s
    return [
        RenderedCamera(
            camera=cam,
            path=writer.path,
            frames=task.end - task.start,
            frame_range=(task.start, task.end),
            seconds=seconds / len(cams),
            render_seconds=render_s / len(cams),
            renderer=raster.renderer_name,
        )
        for cam, writer in zip(cams, writers)
    ]


def _join_segments(scene: Scene, job: _Job, parts: list[RenderedCamera]) -> RenderedCamera:
    """Publish a camera rendered in segments: concatenate the mp4s (or merge the PNG folders)."""
    parts = sorted(parts, key=lambda r: r.frame_range)
    camera = parts[0].camera
    paths = [r.path for r in parts]
    if job.png:
        path = merge_png_dirs(paths, png_dir(job.out_dir, scene.clip_id, camera))
    else:
        path = concat_videos(paths, video_path(job.out_dir, scene.clip_id, camera))
    return RenderedCamera(
        camera=camera,
        path=path,
        frames=sum(r.frames for r in parts),
        frame_range=(parts[0].frame_range[0], parts[-1].frame_range[1]),
        seconds=sum(r.seconds for r in parts),
        render_seconds=sum(r.render_seconds for r in parts),
        renderer=parts[0].renderer,
    )


# --------------------------------------------------------------------------------------------
# worker processes


def _worker_main(scene: Scene, job: _Job, tasks: Any, events: Any, stop: Any) -> None:
    """Entry point of a render process: take cameras from ``tasks`` until a None."""
    stopper = _Stopper(stop)

    def on_signal(signum: int, _frame: Any) -> None:
        # only recorded: the task stops at its next frame, a safe point; raised here, the stop could
        # land inside a half-done import (trimesh imports networkx under `except BaseException`)
        stopper.signalled = signum

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # blocked by the parent until here
    parent = mp.parent_process()
    die_with_parent(signal.SIGTERM, parent.pid if parent is not None else None)  # parent SIGKILLed: stop too
    one_blas_thread()
    camera = None

    def on_frames(count: int) -> None:
        events.put(("frames", count))

    try:
        with _open_raster(job) as raster:
            prepared = job.builder.prepare(scene, job.look)
            while not stopper():
                task = tasks.get()
                if task is None:
                    break
                camera = ", ".join(task.cameras)
                results = _render_task(scene, task, job, raster, prepared, stopper, on_frames)
                events.put(("done", task, results))
                camera = None
            if stopper.signalled:
                name = signal.Signals(stopper.signalled).name
                raise RenderCancelledError(f"render worker {os.getpid()} stopped by {name}")
    except BaseException as e:
        kind = "cancelled" if isinstance(e, (RenderCancelledError, KeyboardInterrupt)) else "error"
        message = str(e) if isinstance(e, RenderError) else f"{type(e).__name__}: {e}"
        with contextlib.suppress(Exception):
            events.put((kind, camera, message, isinstance(e, RenderError)))
    finally:
        with contextlib.suppress(Exception):
            events.put(("exit", os.getpid()))


def _final_path(out_dir: Path | str, clip_id: str, camera: str, png: bool) -> Path:
    """Where a camera's output is published: its mp4, or its PNG folder."""
    return png_dir(out_dir, clip_id, camera) if png else video_path(out_dir, clip_id, camera)


def _remove_partials(out_dir: Path, clip_id: str, cameras: Sequence[str], png: bool) -> None:
    """Remove temporary outputs that stopped workers may have left (never finished files)."""
    for cam in cameras:
        remove_paths(partial_paths(_final_path(out_dir, clip_id, cam, png)))


def _render_in_processes(
    scene: Scene, cameras: list[str], job: _Job, plan: list[_Task], workers: int, progress: ProgressFn | None
) -> list[RenderedCamera]:
    ctx = mp.get_context("spawn")
    tasks = ctx.Queue()
    events = ctx.Queue()
    stop = ctx.Event()
    for task in plan:
        tasks.put(task)
    for _ in range(workers):
        tasks.put(None)
    total = len(cameras) * (job.end - job.start)
    done_frames = 0
    parts: dict[str, list[RenderedCamera]] = {cam: [] for cam in cameras}
    results: dict[str, RenderedCamera] = {}
    failure: RenderError | None = None
    procs = [
        ctx.Process(target=_worker_main, args=(scene, job, tasks, events, stop), name=f"s2w-render-{i}", daemon=True)
        for i in range(workers)
    ]
    exited = 0
    complete = False
    try:
        with stops_raise():
            with sigint_blocked():  # each worker unblocks it once its handler is set
                for p in procs:
                    p.start()
            if progress is not None:
                progress(0, total)
            while exited < workers:
                check()  # a stop signal whose exception was swallowed still stops the render
                try:
                    event = events.get(timeout=0.5)
                except queue.Empty:
                    dead = [p for p in procs if p.exitcode not in (None, 0)]
                    if dead and events.empty():
                        raise RenderError(
                            f"clip {scene.clip_id!r}: render process {dead[0].name} died (exit code {dead[0].exitcode})"
                        ) from None
                    continue
                kind = event[0]
                if kind == "frames":
                    done_frames += event[1]
                    if progress is not None:
                        progress(done_frames, total)
                elif kind == "done":
                    task = event[1]
                    for result in event[2]:
                        pieces = parts[result.camera]
                        pieces.append(result)
                        if len(pieces) == task.count and failure is None:
                            results[result.camera] = (
                                pieces[0] if task.count == 1 else _join_segments(scene, job, pieces)
                            )
                elif kind == "exit":
                    exited += 1
                elif kind in ("error", "cancelled"):
                    _, cam, message, _is_render_error = event
                    where = f"camera {cam}: " if cam else ""
                    cls = RenderCancelledError if kind == "cancelled" else RenderError
                    failure = failure or cls(f"clip {scene.clip_id!r}: {where}{message}")
                    stop.set()
        if failure is not None:
            if isinstance(failure, RenderCancelledError):
                _stop_if_signalled_too()
            raise failure
        if len(results) < len(cameras):
            missing = sorted(set(cameras) - set(results))
            raise RenderError(f"clip {scene.clip_id!r}: render processes exited without rendering {missing}")
        complete = True
    except BaseException:
        stop.set()
        raise
    finally:
        # keep draining: a child does not exit while its queue feeder still holds data
        deadline = time.monotonic() + _STOP_GRACE_S
        while any(p.is_alive() for p in procs) and time.monotonic() < deadline:
            with contextlib.suppress(queue.Empty):
                events.get(timeout=0.05)
        for p in procs:
            if p.is_alive():
                p.terminate()
        for p in procs:
            if p.pid is not None:
                p.join(timeout=5)
                if p.is_alive():
                    p.kill()
                    p.join()
        for q in (tasks, events):
            q.cancel_join_thread()
            q.close()
        if not complete:
            _remove_partials(job.out_dir, scene.clip_id, cameras, job.png)
    return [results[c] for c in cameras]


def _stop_if_signalled_too(wait_s: float = 1.0) -> None:
    """Workers were cancelled: when this process got the same stop signal (Ctrl-C reaches the whole
    group), raise :class:`Stopped` instead of a render error; the signal may be noted a moment later."""
    end = time.monotonic() + wait_s
    while True:
        check()
        if time.monotonic() >= end:
            return
        time.sleep(0.05)


def _stop_signalled() -> bool:
    """Raise :class:`Stopped` if a stop signal arrived (even one whose exception was swallowed)."""
    check()
    return False


def _render_in_process(
    scene: Scene, cameras: list[str], job: _Job, progress: ProgressFn | None
) -> list[RenderedCamera]:
    total = len(cameras) * (job.end - job.start)
    done = 0

    def on_frames(count: int) -> None:
        nonlocal done
        done += count
        if progress is not None:
            progress(done, total)

    results = []
    with (
        stops_raise(),
        _open_raster(job) as raster,
    ):
        prepared = job.builder.prepare(scene, job.look)
        if progress is not None:
            progress(0, total)
        for task in plan_tasks(cameras, job.start, job.end, 1, "", job.per_pass):
            results += _render_task(scene, task, job, raster, prepared, _stop_signalled, on_frames)
    return results


# --------------------------------------------------------------------------------------------
# public API


def render_clip(
    scene: Scene,
    out_dir: Path | str,
    *,
    cameras: Sequence[str] | None = None,
    frames: tuple[int, int | None] | None = None,
    look: Look = "nvidia",
    msaa: int = 4,
    device: Device = "auto",
    crf: int = DEFAULT_CRF,
    preset: str = DEFAULT_PRESET,
    png: bool = False,
    workers: int = 0,
    line_caps: LineCaps = "culled",
    progress: ProgressFn | None = None,
    frame_builder: FrameBuilder | None = None,
    cameras_per_pass: int = 0,
) -> list[RenderedCamera]:
    """Render ``cameras`` of ``scene`` into ``<out_dir>/<clip_id>/<clip_id>.<camera>.mp4``.

    ``frames``: half-open (start, end) of the 30 fps timeline (end None = to the last frame),
    None = all. ``png``: write ``<out_dir>/<clip_id>/<camera>/<frame:06d>.png`` instead.
    ``workers``: render processes (0 = min(CPU cores, cameras); 1 = in this process). More
    workers than cameras split each camera's frames into segments, rendered in parallel and
    joined losslessly (mp4: ffmpeg concat, ``-c copy``; each segment starts with a keyframe).
    ``line_caps``: ``culled`` (far fewer triangles, the same picture but for a few samples) or
    ``all`` (NVIDIA's geometry triangle for triangle); see docs/looks.md.
    ``progress(done, total)`` is called in this process as camera-frames finish.
    ``frame_builder``: the geometry (default :class:`GeometryBuilder`, i.e. ``frame.py``).
    ``cameras_per_pass``: cameras a worker draws in one GL pass, frame by frame (the same
    pixels; 0 = :func:`auto_cameras_per_pass`).
    Returns one :class:`RenderedCamera` per camera, in ``cameras`` order.

    Raises RenderError for an unknown camera (listing the rig), a frame range outside the
    clip (naming its length), a GL/ffmpeg failure; :class:`RenderCancelledError` when a worker was stopped;
    ``KeyboardInterrupt`` (:class:`~scene2world.stopping.Stopped`) when this process was.
    """
    from scene2world.renderer.raster import MSAA_CHOICES

    cams = check_cameras(scene, cameras)
    start, end = resolve_frames(scene, frames)
    if msaa not in MSAA_CHOICES:
        raise RenderError(f"`msaa` must be one of {list(MSAA_CHOICES)}, got {msaa!r}")
    if workers < 0:
        raise RenderError(f"`workers` must be >= 0, got {workers}")
    if not 0 <= cameras_per_pass <= MAX_TILES:
        raise RenderError(f"`cameras_per_pass` must be 0..{MAX_TILES} (0 = by device), got {cameras_per_pass}")
    n_workers = default_workers(len(cams)) if workers == 0 else workers
    if cameras_per_pass == 0:
        cameras_per_pass = auto_cameras_per_pass(cams, start, end, n_workers, device)
    builder = frame_builder or _geometry(line_caps)
    for cam in cams:  # temporaries of renders that were killed outright (SIGKILL) on this host
        remove_orphan_partials(_final_path(out_dir, scene.clip_id, cam, png))
    if is_empty_scene(scene):
        log.warning(
            "clip %r has no map elements and no objects: its %d control video(s) will be black",
            scene.clip_id,
            len(cams),
        )
    job = _Job(
        out_dir=Path(out_dir).absolute(),
        start=start,
        end=end,
        look=look,
        msaa=int(msaa),
        device=device,
        crf=int(crf),
        preset=preset,
        png=bool(png),
        builder=builder,
        per_pass=min(cameras_per_pass, len(cams)),
    )
    plan = plan_tasks(cams, start, end, n_workers, uuid.uuid4().hex[:8], job.per_pass)
    n_workers = min(n_workers, len(plan))
    t0 = time.perf_counter()
    # Ctrl-C and SIGTERM (KeyboardInterrupt, Stopped) pass through as they are: the CLI exits
    # 128 + the signal and Prefect records the run as crashed, not as a failed render
    if n_workers == 1:
        results = _render_in_process(scene, cams, job, progress)
    else:
        results = _render_in_processes(scene, cams, job, plan, n_workers, progress)
    log.info(
        "clip %r: %d camera(s) x %d frame(s) in %.1f s with %d worker(s) on %s",
        scene.clip_id,
        len(cams),
        end - start,
        time.perf_counter() - t0,
        n_workers,
        results[0].renderer if results else "?",
    )
    return results


def render_png_frame(
    scene: Scene,
    camera: str,
    frame: int,
    look: Look = "nvidia",
    msaa: int = 4,
    device: Device = "auto",
    *,
    line_caps: LineCaps = "culled",
    frame_builder: FrameBuilder | None = None,
) -> NDArrayByte:
    """One frame of one camera as a (720, 1280, 3) uint8 RGB image (previews, tests)."""
    from scene2world.renderer.raster import Rasterizer

    (camera,) = check_cameras(scene, [camera])
    resolve_frames(scene, (frame, frame + 1))
    builder = frame_builder or _geometry(line_caps)
    with Rasterizer(VIDEO_WIDTH_PX, VIDEO_HEIGHT_PX, msaa=msaa, device=device) as raster:
        batches = builder.build(scene, camera, int(frame), look, builder.prepare(scene, look))
        image: np.ndarray = raster.render(batches)
    return image
