"""Write rendered frames as NVIDIA's control videos (mp4) or as lossless PNG frames.

- mp4: ``<out>/<clip_id>/<clip_id>.<camera>.mp4``, H.264 (libx264, CRF 18, preset slow,
  yuv420p, 30 fps; NVIDIA's ``imageio.get_writer(..., ffmpeg_params=["-crf", "18", "-preset",
  "slow"])``), encoded by imageio-ffmpeg's ffmpeg binary in its own process with
  :data:`~scene2world.video_writer.X264_THREADS` threads (the same bytes on any machine); the
  writer itself is :class:`scene2world.video_writer.VideoWriter`.
- PNG: ``<out>/<clip_id>/<camera>/<frame:06d>.png``, ``frame`` = the index on the clip's 30 fps
  timeline (so ``--frames 30:60`` writes 000030.png to 000059.png).

Both are atomic: frames go to a hidden temporary name in the same folder (``.<name>.partial-*``,
:mod:`scene2world.atomic`)
and are renamed to the final name only after the last frame was written and ffmpeg exited 0.
A failed or cancelled render removes its temporary file (:meth:`FrameWriter.abort`, also
called by ``__exit__`` on an exception), so no file that looks finished is ever partial.

Rendering and encoding overlap: :meth:`FrameWriter.write` only puts the frame on a bounded
queue; a thread feeds ffmpeg's stdin (or writes the PNGs), and ffmpeg encodes in its own
process, so neither side waits for the other unless the queue is full.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

from scene2world.atomic import PARTIAL, replace_folder, temporaries_of, temporary_path
from scene2world.config import DEFAULT_CRF, DEFAULT_PRESET, VIDEO_HEIGHT_PX, VIDEO_WIDTH_PX
from scene2world.errors import RenderError
from scene2world.leftovers import remove_orphans
from scene2world.scene.model import FRAME_RATE_HZ
from scene2world.video_writer import FrameWriter, VideoWriter, concat_videos

__all__ = [
    "FrameWriter",
    "PngWriter",
    "VideoWriter",
    "concat_videos",
    "merge_png_dirs",
    "open_writer",
    "partial_paths",
    "png_dir",
    "remove_orphan_partials",
    "segment_path",
    "video_path",
]


def video_path(out_dir: Path | str, clip_id: str, camera: str) -> Path:
    """``<out>/<clip_id>/<clip_id>.<camera>.mp4`` (NVIDIA's simplified output layout)."""
    return Path(out_dir) / clip_id / f"{clip_id}.{camera}.mp4"


def png_dir(out_dir: Path | str, clip_id: str, camera: str) -> Path:
    """``<out>/<clip_id>/<camera>``: the folder of ``<frame:06d>.png`` files."""
    return Path(out_dir) / clip_id / camera


def segment_path(final: Path | str, token: str, index: int) -> Path:
    """Hidden name of segment ``index`` of ``final`` (a render split over several processes)."""
    return temporary_path(final, token=f"{token}-seg{index:04d}")


def partial_paths(final: Path | str) -> list[Path]:
    """Every temporary file or folder that a writer of ``final`` may leave when killed."""
    return temporaries_of(final, PARTIAL)


def remove_orphan_partials(final: Path | str) -> list[Path]:
    """Delete the temporaries of ``final`` left by processes that died (SIGKILL) on this host."""
    return remove_orphans(partial_paths(final))


def merge_png_dirs(parts: list[Path], final: Path | str) -> Path:
    """Move the PNGs of segment folders into one folder published as ``final`` (atomic)."""
    final = Path(final)
    first = parts[0]
    for part in parts[1:]:
        for png in part.iterdir():
            os.replace(png, first / png.name)
        part.rmdir()
    return replace_folder(first, final)


class PngWriter(FrameWriter):
    """Lossless PNG frames ``<frame:06d>.png`` in a folder published by one rename."""

    def __init__(
        self,
        folder: Path | str,
        *,
        width: int = VIDEO_WIDTH_PX,
        height: int = VIDEO_HEIGHT_PX,
        start_frame: int = 0,
        compress_level: int = 1,
        queue_frames: int = 8,
    ) -> None:
        super().__init__(Path(folder), width, height, queue_frames)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = temporary_path(self.path)
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
        replace_folder(self._tmp, self.path)

    def _discard(self) -> None:
        shutil.rmtree(self._tmp, ignore_errors=True)


def open_writer(
    out_dir: Path | str,
    clip_id: str,
    camera: str,
    *,
    png: bool = False,
    start_frame: int = 0,
    width: int = VIDEO_WIDTH_PX,
    height: int = VIDEO_HEIGHT_PX,
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
