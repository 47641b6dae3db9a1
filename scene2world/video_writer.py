"""Frames to files on a writer thread, and H.264 mp4 files written and joined by ffmpeg.

:class:`FrameWriter` is the base of every frame writer: :meth:`~FrameWriter.write` only puts the
frame on a bounded queue, one thread drains it, so the caller's next frame is made while this one
is written; :meth:`~FrameWriter.close` publishes the output under its final name,
:meth:`~FrameWriter.abort` leaves nothing. :class:`VideoWriter` pipes the frames to imageio-ffmpeg's
ffmpeg binary, which encodes them in its own process with libx264 into a hidden temporary
(:func:`scene2world.atomic.temporary_path`) renamed into place once ffmpeg exited 0;
:func:`concat_videos` joins mp4 files of one stream without re-encoding. Both the renderer (control
videos) and the preview engine (its Cosmos-like outputs, in every torchrun rank) use them, so this
module imports nothing heavier than numpy.
"""

from __future__ import annotations

import contextlib
import os
import queue
import subprocess
import threading
from collections import deque
from pathlib import Path
from typing import Any, get_args

import numpy as np

from scene2world.atomic import temporary_path
from scene2world.config import DEFAULT_CRF, DEFAULT_PRESET, VIDEO_HEIGHT_PX, VIDEO_WIDTH_PX, X264Preset
from scene2world.errors import RenderError
from scene2world.scene.model import FRAME_RATE_HZ

X264_PRESETS: tuple[str, ...] = get_args(X264Preset)

X264_THREADS = 2
"""libx264 threads per video. Fixed, not ffmpeg's per-machine default (1.5 x cores): x264's output
depends on its thread count, so a fixed count gives the same bytes on every machine. Cameras are
encoded in parallel already; on 2 cores, 2 threads cost 19 ms of CPU per 1280x720 frame against
22 ms for the default (benchmarks/bench_render.py)."""

_STDERR_TAIL_LINES = 40


def concat_videos(parts: list[Path], final: Path | str) -> Path:
    """Join mp4 segments of one stream (same encoder settings) into ``final`` without re-encoding.

    Uses ffmpeg's concat demuxer with ``-c copy``; atomic like the writers. The parts are removed.
    """
    import imageio_ffmpeg

    final = Path(final)
    if len(parts) == 1:
        os.replace(parts[0], final)
        return final
    tmp = temporary_path(final)
    listing = tmp.with_suffix(".txt")
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
    """H.264 mp4 writer feeding imageio-ffmpeg's ffmpeg through a pipe (see module docs).

    ``threads``: libx264 threads (:data:`X264_THREADS`: the same bytes on any machine); None = ffmpeg's
    default for this machine.
    """

    def __init__(
        self,
        path: Path | str,
        *,
        width: int = VIDEO_WIDTH_PX,
        height: int = VIDEO_HEIGHT_PX,
        fps: int = FRAME_RATE_HZ,
        crf: int = DEFAULT_CRF,
        preset: str = DEFAULT_PRESET,
        pix_fmt: str = "yuv420p",
        threads: int | None = X264_THREADS,
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
        self._tmp = temporary_path(self.path)
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
            *(("-threads", str(int(threads))) if threads is not None else ()),
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
