"""The one mp4 writer and joiner that the renderer and the preview engine share: real ffmpeg."""

from __future__ import annotations

import imageio_ffmpeg
import numpy as np
import pytest

from scene2world.atomic import temporaries_of
from scene2world.renderer.video import PngWriter, merge_png_dirs
from scene2world.video_writer import X264_THREADS, VideoWriter, concat_videos

pytestmark = pytest.mark.timeout(120)

W, H = 64, 32


def write(path, values, **options):
    with VideoWriter(path, width=W, height=H, preset="ultrafast", **options) as writer:
        for v in values:
            writer.write(np.full((H, W, 3), v, np.uint8))
    return path


def decoded_levels(path) -> list[int]:
    gen = imageio_ffmpeg.read_frames(str(path))
    next(gen)
    return [int(np.frombuffer(raw, np.uint8).mean().round()) for raw in gen]


def test_thread_count_is_fixed_unless_none(tmp_path):
    fixed = VideoWriter(tmp_path / "a.mp4", width=W, height=H)
    machine = VideoWriter(tmp_path / "b.mp4", width=W, height=H, threads=None)
    try:
        i = fixed.argv.index("-threads")
        assert fixed.argv[i + 1] == str(X264_THREADS) and "-threads" not in machine.argv
    finally:
        fixed.abort()
        machine.abort()
    assert list(tmp_path.iterdir()) == []


def test_concat_joins_in_order_and_removes_the_parts(tmp_path):
    parts = [write(tmp_path / "p0.mp4", [40, 80]), write(tmp_path / "p1.mp4", [160, 200, 240])]
    final = concat_videos(parts, tmp_path / "all.mp4")
    assert decoded_levels(final) == pytest.approx([40, 80, 160, 200, 240], abs=3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["all.mp4"] and temporaries_of(final) == []
    one = concat_videos([write(tmp_path / "p2.mp4", [10], threads=None)], tmp_path / "one.mp4")
    assert decoded_levels(one) == pytest.approx([10], abs=3) and not (tmp_path / "p2.mp4").exists()


def test_png_segments_replace_an_older_folder(tmp_path):
    final = tmp_path / "cam"
    final.mkdir()
    (final / "000000.png").write_bytes(b"stale")
    parts = []
    for start in (0, 2):
        with PngWriter(tmp_path / f"seg{start}", width=W, height=H, start_frame=start) as writer:
            for _ in range(2):
                writer.write(np.zeros((H, W, 3), np.uint8))
        parts.append(tmp_path / f"seg{start}")
    merge_png_dirs(parts, final)
    assert sorted(p.name for p in final.iterdir()) == [f"{i:06d}.png" for i in range(4)]
    assert (final / "000000.png").read_bytes()[:4] == b"\x89PNG" and sorted(p.name for p in tmp_path.iterdir()) == [
        "cam"
    ]
