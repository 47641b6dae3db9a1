"""Synthetic control videos for the inference tests.

Every frame is a row of ten vertical black/white stripes: seven bits of the frame index and three
bits of the view number, robust to H.264 so a decoded frame tells which source frame it was.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest

CAMERAS = ("camera_front_wide_120fov", "camera_cross_right_120fov", "camera_rear_tele_30fov")
NUM_FRAMES = 90  # 87 = 29 frames at fps 10 from 30 fps, plus a margin
FPS = 30
_BITS_INDEX, _BITS_VIEW = 7, 3


def stripe_frame(index: int, view: int, height: int = 720, width: int = 1280) -> np.ndarray:
    bits = [(index >> b) & 1 for b in range(_BITS_INDEX)] + [(view >> b) & 1 for b in range(_BITS_VIEW)]
    frame = np.zeros((height, width, 3), np.uint8)
    edges = np.linspace(0, width, len(bits) + 1).astype(int)
    for bit, (a, b) in zip(bits, itertools.pairwise(edges)):
        frame[:, a:b] = 255 * bit
    return frame


def decode_stripes(frame: np.ndarray) -> tuple[int, int]:
    """(frame index, view) written by :func:`stripe_frame` (any frame size)."""
    width = frame.shape[1]
    n = _BITS_INDEX + _BITS_VIEW
    edges = np.linspace(0, width, n + 1).astype(int)
    bits = [int(frame[:, a + (b - a) // 4 : b - (b - a) // 4].mean() > 127) for a, b in itertools.pairwise(edges)]
    index = sum(bit << i for i, bit in enumerate(bits[:_BITS_INDEX]))
    view = sum(bit << i for i, bit in enumerate(bits[_BITS_INDEX:]))
    return index, view


def write_video(path: Path, frames: Iterable[np.ndarray], fps: float = FPS) -> Path:
    frames = iter(frames)
    first = next(frames)
    gen = imageio_ffmpeg.write_frames(
        str(path),
        (first.shape[1], first.shape[0]),
        fps=fps,
        codec="libx264",
        pix_fmt_out="yuv420p",
        quality=None,
        macro_block_size=1,
        output_params=["-preset", "ultrafast", "-crf", "18"],
        ffmpeg_log_level="error",
    )
    gen.send(None)
    gen.send(first.tobytes())
    for frame in frames:
        gen.send(np.ascontiguousarray(frame).tobytes())
    gen.close()
    return path


def read_video(path: Path) -> tuple[dict, list[np.ndarray]]:
    gen = imageio_ffmpeg.read_frames(str(path))
    meta = next(gen)
    w, h = meta["size"]
    frames = [np.frombuffer(raw, np.uint8).reshape(h, w, 3) for raw in gen]
    return meta, frames


@pytest.fixture(scope="session")
def controls(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """camera name → 30 fps, 90-frame, 1280x720 control mp4 (view number = camera position in CAMERAS)."""
    folder = tmp_path_factory.mktemp("controls")
    return {
        cam: write_video(folder / f"clip.{cam}.mp4", (stripe_frame(i, v) for i in range(NUM_FRAMES)))
        for v, cam in enumerate(CAMERAS)
    }
