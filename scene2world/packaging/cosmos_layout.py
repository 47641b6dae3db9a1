"""Cosmos's post-training dataset layout of the control videos.

``<root>/control_input_hdmap_bbox/ftheta_<camera>/<clip>_<k>.mp4`` (camera names keep their ``camera_``
prefix, so ``ftheta_camera_front_wide_120fov``), as NVIDIA's renderer writes with chunked output
(docs/world_scenario.md, "Inputs and detection"): chunks of ``TARGET_CHUNK_FRAME`` = 121 frames,
``OVERLAP_FRAME`` = 0, at most ``MAX_CHUNK`` = 10 per clip, numbered from 0. Only whole chunks are written:
the frames after the last whole chunk are left out, and a clip shorter than 121 frames has no chunk.

Chunks are cut frame-exactly from the rendered videos with ffmpeg (imageio-ffmpeg's binary); nothing is
rendered again. Stream copy can only cut at keyframes, so each chunk is re-encoded with NVIDIA's
control-video settings (libx264, CRF 18, preset slow, yuv420p, 30 fps). A chunk that is the whole video
is hard-linked (or copied) instead.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import imageio_ffmpeg

from scene2world.config import DEFAULT_CRF, DEFAULT_PRESET
from scene2world.errors import PackageError
from scene2world.packaging.files import place_file

LAYOUT_DIR = "control_input_hdmap_bbox"
TARGET_CHUNK_FRAME = 121
OVERLAP_FRAME = 0
MAX_CHUNK = 10
FFMPEG_ENCODE = ("-c:v", "libx264", "-crf", str(DEFAULT_CRF), "-preset", DEFAULT_PRESET, "-pix_fmt", "yuv420p")
"""NVIDIA's control-video encoding (``SETTINGS``/writer in the world-scenario renderer)."""


@dataclass(frozen=True)
class Chunk:
    """One chunk of a clip's camera video: frames ``[start, end)`` of the 30 fps timeline, ``index`` from 0."""

    index: int
    start: int
    end: int

    @property
    def num_frames(self) -> int:
        """Frames in the chunk."""
        return self.end - self.start


def chunk_ranges(
    num_frames: int,
    *,
    chunk_frames: int = TARGET_CHUNK_FRAME,
    overlap: int = OVERLAP_FRAME,
    max_chunks: int = MAX_CHUNK,
) -> list[Chunk]:
    """Whole chunks of ``chunk_frames`` frames stepping by ``chunk_frames - overlap``, at most ``max_chunks``."""
    if chunk_frames < 1 or not 0 <= overlap < chunk_frames or max_chunks < 0 or num_frames < 0:
        raise PackageError(
            f"chunking: need chunk_frames >= 1, 0 <= overlap < chunk_frames, max_chunks >= 0, num_frames >= 0; "
            f"got {chunk_frames}, {overlap}, {max_chunks}, {num_frames}"
        )
    step = chunk_frames - overlap
    count = 0 if num_frames < chunk_frames else 1 + (num_frames - chunk_frames) // step
    return [Chunk(k, k * step, k * step + chunk_frames) for k in range(min(count, max_chunks))]


def chunk_path(root: Path, clip_id: str, camera: str, index: int) -> Path:
    """``<root>/control_input_hdmap_bbox/ftheta_<camera>/<clip>_<index>.mp4``."""
    return Path(root) / LAYOUT_DIR / f"ftheta_{camera}" / f"{clip_id}_{index}.mp4"


def cut_chunk(src: Path, dst: Path, chunk: Chunk, *, fps: int = 30) -> Path:
    """Write frames ``[chunk.start, chunk.end)`` of ``src`` to ``dst`` (re-encoded, frame-exact); PackageError."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    argv = [
        imageio_ffmpeg.get_ffmpeg_exe(),
        "-nostdin",
        "-hide_banner",
        "-loglevel",
        "error",
        "-y",
        "-i",
        str(src),
        "-map",
        "0:v:0",
        "-vf",
        f"trim=start_frame={chunk.start}:end_frame={chunk.end},setpts=PTS-STARTPTS",
        "-an",
        "-fps_mode",
        "cfr",
        "-r",
        str(fps),
        *FFMPEG_ENCODE,
        "-movflags",
        "+faststart",
        str(dst),
    ]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        dst.unlink(missing_ok=True)
        tail = proc.stderr.strip().splitlines()[-5:]
        raise PackageError(f"{src}: ffmpeg could not cut frames {chunk.start}-{chunk.end}: {' | '.join(tail)}")
    return dst


def count_frames(path: Path) -> int:
    """Frames in a video, by decoding it (exact)."""
    frames, _secs = imageio_ffmpeg.count_frames_and_secs(str(path))
    return int(frames)


def write_cosmos_layout(
    root: Path,
    clips: Mapping[str, tuple[Mapping[str, Path], int]],
    *,
    link: bool = True,
    workers: int = 4,
) -> dict[str, dict[str, int]]:
    """Write the chunks of every (clip, camera) under ``root``; returns ``{clip: {"chunks", "left_out_frames"}}``.

    ``clips`` maps clip id → (camera → mp4 path, frames in the clip). Each chunk is checked to hold exactly
    ``TARGET_CHUNK_FRAME`` frames (PackageError otherwise, e.g. when a video is shorter than its manifest says).
    """
    jobs: list[tuple[Path, Path, Chunk, bool]] = []
    summary: dict[str, dict[str, int]] = {}
    for clip_id, (cameras, num_frames) in sorted(clips.items()):
        chunks = chunk_ranges(num_frames)
        covered = chunks[-1].end if chunks else 0
        summary[clip_id] = {"chunks": len(chunks), "left_out_frames": num_frames - covered}
        for camera, src in sorted(cameras.items()):
            if Path(src).suffix.lower() != ".mp4":
                raise PackageError(f"{src}: the Cosmos layout needs mp4 control videos (render without --png)")
            for chunk in chunks:
                whole = chunk.start == 0 and chunk.end == num_frames
                jobs.append((Path(src), chunk_path(root, clip_id, camera, chunk.index), chunk, whole))

    def run(job: tuple[Path, Path, Chunk, bool]) -> None:
        src, dst, chunk, whole = job
        if whole:
            place_file(src, dst, link=link)
        else:
            cut_chunk(src, dst, chunk)
        got = count_frames(dst)
        if got != chunk.num_frames:
            raise PackageError(
                f"{src}: chunk {chunk.index} has {got} frames instead of {chunk.num_frames} "
                "(the video is shorter than its render manifest says?)"
            )

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = [pool.submit(run, job) for job in jobs]
        try:
            for future in futures:
                future.result()
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    return summary
