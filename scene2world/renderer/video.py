"""Write rendered frames as NVIDIA's control videos (mp4) or as lossless PNG frames.

- mp4: ``<out>/<clip_id>/<clip_id>.<camera>.mp4``, H.264 (libx264, CRF 18, preset slow,
  yuv420p, 30 fps; NVIDIA's ``imageio.get_writer(..., ffmpeg_params=["-crf", "18", "-preset",
  "slow"])``), encoded by imageio-ffmpeg's ffmpeg binary in its own process with
  :data:`X264_THREADS` threads (the same bytes on any machine).
- PNG: ``<out>/<clip_id>/<camera>/<frame:06d>.png``, ``frame`` = the index on the clip's 30 fps
  timeline (so ``--frames 30:60`` writes 000030.png to 000059.png).

Both are atomic: frames go to a hidden temporary name in the same folder (``.<name>.partial-*``)
and are renamed to the final name only after the last frame was written and ffmpeg exited 0.
A failed or cancelled render removes its temporary file (:meth:`FrameWriter.abort`, also
called by ``__exit__`` on an exception), so no file that looks finished is ever partial.

Rendering and encoding overlap: :meth:`FrameWriter.write` only puts the frame on a bounded
queue; a thread feeds ffmpeg's stdin (or writes the PNGs), and ffmpeg encodes in its own
process, so neither side waits for the other unless the queue is full.
"""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import subprocess
import threading
import uuid
from collections import deque
from pathlib import Path
from typing import Any, get_args

import numpy as np

from scene2world.config import X264Preset
from scene2world.errors import RenderError
from scene2world.leftovers import owner_tag, remove_orphans
from scene2world.scene.model import FRAME_RATE_HZ

X264_PRESETS: tuple[str, ...] = get_args(X264Preset)

DEFAULT_CRF = 18
"""libx264 constant rate factor of NVIDIA's control videos."""

DEFAULT_PRESET = "slow"
"""libx264 preset of NVIDIA's control videos."""

X264_THREADS = 2
"""libx264 threads per video. Fixed, not ffmpeg's per-machine default (1.5 x cores): x264's output
depends on its thread count, so a fixed count gives the same bytes on every machine. Cameras are
encoded in parallel already; on 2 cores, 2 threads cost 19 ms of CPU per 1280x720 frame against
22 ms for the default (benchmarks/bench_render.py)."""

_STDERR_TAIL_LINES = 40


def video_path(out_dir: Path | str, clip_id: str, camera: str) -> Path:
    """``<out>/<clip_id>/<clip_id>.<camera>.mp4`` (NVIDIA's simplified output layout)."""
    return Path(out_dir) / clip_id / f"{clip_id}.{camera}.mp4"


def png_dir(out_dir: Path | str, clip_id: str, camera: str) -> Path:
    """``<out>/<clip_id>/<camera>``: the folder of ``<frame:06d>.png`` files."""
    return Path(out_dir) / clip_id / camera


def _partial_name(final: Path) -> Path:
    return final.with_name(f".{final.name}.partial-{owner_tag()}-{uuid.uuid4().hex[:8]}{final.suffix}")


def segment_path(final: Path | str, token: str, index: int) -> Path:
    """Hidden name of segment ``index`` of ``final`` (a render split over several processes)."""
    final = Path(final)
    return final.with_name(f".{final.name}.partial-{owner_tag()}-{token}-seg{index:04d}{final.suffix}")


def partial_paths(final: Path | str) -> list[Path]:
    """Every temporary file or folder that a writer of ``final`` may leave when killed."""
    final = Path(final)
    if not final.parent.is_dir():
        return []
    return sorted(final.parent.glob(f".*{final.name}.partial-*"))


def remove_orphan_partials(final: Path | str) -> list[Path]:
    """Delete the temporaries of ``final`` left by processes that died (SIGKILL) on this host."""
    return remove_orphans(partial_paths(final))


def concat_videos(parts: list[Path], final: Path | str) -> Path:
    """Join mp4 segments of one stream (same encoder settings) into ``final`` without re-encoding.

    Uses ffmpeg's concat demuxer with ``-c copy``; atomic like the writers. The parts are removed.
    """
    import imageio_ffmpeg

    final = Path(final)
    if len(parts) == 1:
        os.replace(parts[0], final)
        return final
    listing = _partial_name(final).with_suffix(".txt")
    tmp = _partial_name(final)
    listing.write_text("".join(f"file '{p.resolve()}'\n" for p in parts))
    argv = [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-v", "error", "-f", "concat", "-safe", "0", "-i", str(listing)]
    argv += ["-c", "copy", "-f", "mp4", str(tmp)]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RenderError(f"{final}: joining {len(parts)} segments failed: {proc.stderr.strip()[-2000:]}")
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
        listing.unlink(missing_ok=True)
    for p in parts:
        p.unlink(missing_ok=True)
    return final


def merge_png_dirs(parts: list[Path], final: Path | str) -> Path:
    """Move the PNGs of segment folders into one folder published as ``final`` (atomic)."""
    final = Path(final)
    first = parts[0]
    for part in parts[1:]:
        for png in part.iterdir():
            os.replace(png, first / png.name)
        part.rmdir()
    if final.exists():
        shutil.rmtree(final)
    os.replace(first, final)
    return final


class FrameWriter:
    """Base of the two writers: a bounded queue drained by one thread; atomic publish.

    ``write(frame)`` takes (H, W, 3) uint8 RGB frames in order; ``close()`` waits for the
    queue, finishes the output and renames it to :attr:`path`; ``abort()`` drops everything.
    """

    path: Path

    def __init__(self, path: Path, width: int, height: int, queue_frames: int) -> None:
        self.path = Path(path)
        self.width, self.height = int(width), int(height)
        self.frames_written = 0
        self._queue: queue.Queue[np.ndarray | None] = queue.Queue(maxsize=max(1, queue_frames))
        self._error: BaseException | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._drain, name=f"writer:{self.path.name}", daemon=True)

    def _start(self) -> None:
        self._thread.start()

    def _drain(self) -> None:
        while True:
            frame = self._queue.get()
            if frame is None:
                return
            if self._error is not None:
                continue  # keep draining so that put() never blocks forever
            try:
                self._consume(frame)
            except BaseException as e:
                self._error = e

    def _consume(self, frame: np.ndarray) -> None:
        raise NotImplementedError

    def _check_error(self) -> None:
        if self._error is not None:
            raise self._wrap_error(self._error)

    def _wrap_error(self, e: BaseException) -> RenderError:
        return RenderError(f"{self.path}: writing frames failed: {e}")

    def write(self, frame: np.ndarray) -> None:
        """Queue one (H, W, 3) uint8 RGB frame (copied only if not C-contiguous)."""
        if self._closed:
            raise RenderError(f"{self.path}: writer is closed")
        self._check_error()
        frame = np.asarray(frame)
        if frame.shape != (self.height, self.width, 3) or frame.dtype != np.uint8:
            raise RenderError(
                f"{self.path}: frames must be ({self.height}, {self.width}, 3) uint8, got {frame.shape} {frame.dtype}"
            )
        self._queue.put(np.ascontiguousarray(frame))
        self.frames_written += 1

    def _stop_thread(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def close(self) -> Path:
        """Finish the output and publish it under :attr:`path`; returns it."""
        if self._closed:
            raise RenderError(f"{self.path}: writer already closed")
        self._closed = True
        try:
            self._stop_thread()
            self._check_error()
            self._finish()
        except BaseException:
            self._discard()
            raise
        return self.path

    def abort(self) -> None:
        """Stop, and remove every temporary file (idempotent; no output is published)."""
        if self._closed and not self._thread.is_alive():
            self._discard()
            return
        self._closed = True
        self._error = self._error or RenderError("aborted")
        self._kill()
        self._stop_thread()
        self._discard()

    def _finish(self) -> None:
        raise NotImplementedError

    def _kill(self) -> None:
        pass

    def _discard(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> FrameWriter:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class VideoWriter(FrameWriter):
    """H.264 mp4 writer feeding imageio-ffmpeg's ffmpeg through a pipe (see module docs)."""

    def __init__(
        self,
        path: Path | str,
        *,
        width: int = 1280,
        height: int = 720,
        fps: int = FRAME_RATE_HZ,
        crf: int = DEFAULT_CRF,
        preset: str = DEFAULT_PRESET,
        pix_fmt: str = "yuv420p",
        queue_frames: int = 8,
    ) -> None:
        if not 0 <= int(crf) <= 51:
            raise RenderError(f"`crf` must be in 0..51, got {crf}")
        if preset not in X264_PRESETS:
            raise RenderError(f"`preset` must be one of {list(X264_PRESETS)}, got {preset!r}")
        if width % 2 or height % 2:
            raise RenderError(f"yuv420p needs an even frame size, got {width}x{height}")
        super().__init__(Path(path), width, height, queue_frames)
        import imageio_ffmpeg

        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = _partial_name(self.path)
        # imageio-ffmpeg's own write_frames command line, as NVIDIA's imageio writer runs it
        self.argv = [
            imageio_ffmpeg.get_ffmpeg_exe(),
            "-y",
            "-f", "rawvideo",
            "-vcodec", "rawvideo",
            "-s", f"{width}x{height}",
            "-pix_fmt", "rgb24",
            "-r", str(fps),
            "-i", "-",
            "-an",
            "-vcodec", "libx264",
            "-pix_fmt", pix_fmt,
            "-crf", str(int(crf)),
            "-preset", preset,
            "-threads", str(X264_THREADS),
            "-v", "warning",
            "-f", "mp4",
            str(self._tmp),
        ]  # fmt: skip
        self._stderr: deque[str] = deque(maxlen=_STDERR_TAIL_LINES)
        try:
            self._proc = subprocess.Popen(
                self.argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
        except OSError as e:
            raise RenderError(f"{self.path}: cannot start ffmpeg {self.argv[0]}: {e}") from e
        self._stderr_thread = threading.Thread(target=self._read_stderr, daemon=True)
        self._stderr_thread.start()
        self._start()

    def _read_stderr(self) -> None:
        assert self._proc.stderr is not None
        for line in iter(self._proc.stderr.readline, b""):
            self._stderr.append(line.decode("utf-8", "replace").rstrip())

    def _consume(self, frame: np.ndarray) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.write(frame.data.cast("B"))

    def _wrap_error(self, e: BaseException) -> RenderError:
        tail = "\n".join(self._stderr) or "(no ffmpeg output)"
        return RenderError(f"{self.path}: ffmpeg failed ({type(e).__name__}: {e}); ffmpeg said:\n{tail}")

    def _finish(self) -> None:
        assert self._proc.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            self._proc.stdin.close()
        rc = self._proc.wait()
        self._stderr_thread.join(timeout=5)
        if rc != 0:
            raise RenderError(
                f"{self.path}: ffmpeg exited with status {rc} after {self.frames_written} frame(s); ffmpeg said:\n"
                + ("\n".join(self._stderr) or "(nothing)")
            )
        if self.frames_written == 0:
            raise RenderError(f"{self.path}: no frames were written")
        os.replace(self._tmp, self.path)

    def _kill(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
        try:
            if self._proc.stdin is not None:
                self._proc.stdin.close()
        except OSError:
            pass

    def _discard(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        self._tmp.unlink(missing_ok=True)


class PngWriter(FrameWriter):
    """Lossless PNG frames ``<frame:06d>.png`` in a folder published by one rename."""

    def __init__(
        self,
        folder: Path | str,
        *,
        width: int = 1280,
        height: int = 720,
        start_frame: int = 0,
        compress_level: int = 1,
        queue_frames: int = 8,
    ) -> None:
        super().__init__(Path(folder), width, height, queue_frames)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = _partial_name(self.path)
        self._tmp.mkdir()
        self._next = int(start_frame)
        self._compress_level = int(compress_level)
        self._start()

    def _consume(self, frame: np.ndarray) -> None:
        from PIL import Image

        Image.fromarray(frame, "RGB").save(self._tmp / f"{self._next:06d}.png", compress_level=self._compress_level)
        self._next += 1

    def _finish(self) -> None:
        if self.frames_written == 0:
            raise RenderError(f"{self.path}: no frames were written")
        if self.path.exists():
            shutil.rmtree(self.path)
        os.replace(self._tmp, self.path)

    def _discard(self) -> None:
        shutil.rmtree(self._tmp, ignore_errors=True)


def open_writer(
    out_dir: Path | str,
    clip_id: str,
    camera: str,
    *,
    png: bool = False,
    start_frame: int = 0,
    width: int = 1280,
    height: int = 720,
    fps: int = FRAME_RATE_HZ,
    crf: int = DEFAULT_CRF,
    preset: str = DEFAULT_PRESET,
) -> FrameWriter:
    """The writer for one (clip, camera): mp4 by default, PNG frames with ``png=True``."""
    if png:
        return PngWriter(png_dir(out_dir, clip_id, camera), width=width, height=height, start_frame=start_frame)
    return VideoWriter(
        video_path(out_dir, clip_id, camera), width=width, height=height, fps=fps, crf=crf, preset=preset
    )
