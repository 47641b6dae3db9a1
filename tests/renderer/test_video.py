"""mp4 and PNG writers: real ffmpeg, decoded back with imageio; atomic publish."""

from __future__ import annotations

import subprocess

import imageio.v2 as imageio
import imageio_ffmpeg
import numpy as np
import pytest

from scene2world.errors import RenderError
from scene2world.renderer.video import PngWriter, VideoWriter, open_writer, png_dir, video_path

pytestmark = pytest.mark.timeout(120)

W, H = 1280, 720


def frames(n: int, w: int = W, h: int = H) -> list[np.ndarray]:
    out = []
    for i in range(n):
        img = np.zeros((h, w, 3), np.uint8)
        img[:, : w // 2] = (200, 30, 30)
        img[: h // 2, w // 2 :] = (20 * i % 256, 180, 40)
        out.append(img)
    return out


def probe(path) -> dict:
    """Stream properties from ffmpeg's own parser (the bundled binary has no ffprobe)."""
    reader = imageio.get_reader(path, "ffmpeg")
    meta = reader.get_meta_data()
    count = sum(1 for _ in reader)
    reader.close()
    return {"size": meta["size"], "fps": meta["fps"], "pix_fmt": meta["pix_fmt"], "codec": meta["codec"], "n": count}


def test_layout_names():
    assert str(video_path("/o", "clip", "camera_front_wide_120fov")) == "/o/clip/clip.camera_front_wide_120fov.mp4"
    assert str(png_dir("/o", "clip", "camera_front_wide_120fov")) == "/o/clip/camera_front_wide_120fov"


def test_mp4_size_fps_count_pixfmt_and_content(tmp_path):
    path = video_path(tmp_path, "clip", "camera_front_wide_120fov")
    src = frames(12)
    with open_writer(tmp_path, "clip", "camera_front_wide_120fov", preset="ultrafast") as w:
        for f in src:
            w.write(f)
        assert not path.exists()  # nothing under the final name before the end
    assert path.is_file() and [p.name for p in path.parent.iterdir()] == [path.name]
    info = probe(path)
    assert info == {"size": (W, H), "fps": 30.0, "pix_fmt": info["pix_fmt"], "codec": "h264", "n": 12}
    assert info["pix_fmt"].startswith("yuv420p")
    decoded = np.stack([f for f in imageio.get_reader(path, "ffmpeg")])  # list() asks len() = inf
    assert decoded.shape == (12, H, W, 3)
    # CRF 18: flat colours come back within a few levels (away from chroma edges)
    assert np.abs(decoded[5, 100:300, 100:300].astype(int) - [200, 30, 30]).max() <= 6


def test_crf_and_preset_reach_ffmpeg(tmp_path):
    w = VideoWriter(tmp_path / "a.mp4", crf=23, preset="veryfast")
    argv = w.argv
    w.abort()
    assert argv[argv.index("-crf") + 1] == "23" and argv[argv.index("-preset") + 1] == "veryfast"
    assert argv[argv.index("-vcodec", argv.index("-i")) + 1] == "libx264"
    assert argv[argv.index("-pix_fmt", argv.index("-i")) + 1] == "yuv420p"
    assert not list(tmp_path.iterdir())


def test_x264_settings_in_stream(tmp_path):
    path = tmp_path / "b.mp4"
    with VideoWriter(path, width=64, height=32, crf=18, preset="slow") as w:
        for f in frames(3, 64, 32):
            w.write(f)
    # x264 writes its settings into the stream (SEI): check crf and the slow preset's subme/ref
    sei = path.read_bytes()
    assert b"crf=18.0" in sei and b"subme=8" in sei and b"ref=5" in sei


def test_abort_leaves_nothing(tmp_path):
    path = tmp_path / "clip" / "clip.cam.mp4"
    with pytest.raises(ZeroDivisionError), VideoWriter(path, preset="ultrafast") as w:
        for f in frames(5):
            w.write(f)
        raise ZeroDivisionError
    assert not list(path.parent.iterdir())


def test_bad_frames_and_arguments(tmp_path):
    with pytest.raises(RenderError, match="crf"):
        VideoWriter(tmp_path / "a.mp4", crf=60)
    with pytest.raises(RenderError, match="preset"):
        VideoWriter(tmp_path / "a.mp4", preset="superslow")
    with pytest.raises(RenderError, match=r"\(720, 1280, 3\) uint8"), VideoWriter(tmp_path / "a.mp4") as w:
        w.write(np.zeros((720, 1280, 4), np.uint8))
    assert not list(tmp_path.iterdir())


def test_zero_frames_is_an_error(tmp_path):
    with pytest.raises(RenderError, match="no frames"), VideoWriter(tmp_path / "a.mp4"):
        pass
    assert not list(tmp_path.iterdir())


def test_ffmpeg_failure_is_reported(tmp_path):
    w = VideoWriter(tmp_path / "a.mp4", preset="ultrafast")
    w._proc.kill()  # ffmpeg dies mid-stream
    w._proc.wait()
    with pytest.raises(RenderError, match="ffmpeg"):
        for f in frames(50):
            w.write(f)
        w.close()
    w.abort()
    assert not list(tmp_path.iterdir())


def test_png_frames_lossless_named_by_timeline_index(tmp_path):
    src = frames(3, 64, 32)
    with PngWriter(tmp_path / "clip" / "cam", width=64, height=32, start_frame=30) as w:
        for f in src:
            w.write(f)
        assert not (tmp_path / "clip" / "cam").exists()
    folder = tmp_path / "clip" / "cam"
    assert sorted(p.name for p in folder.iterdir()) == ["000030.png", "000031.png", "000032.png"]
    for i, f in enumerate(src):
        np.testing.assert_array_equal(imageio.imread(folder / f"{30 + i:06d}.png"), f)
    assert [p.name for p in folder.parent.iterdir()] == ["cam"]


def test_png_abort_and_republish(tmp_path):
    folder = tmp_path / "cam"
    with pytest.raises(KeyboardInterrupt), PngWriter(folder, width=64, height=32) as w:
        w.write(frames(1, 64, 32)[0])
        raise KeyboardInterrupt
    assert not list(tmp_path.iterdir())
    for n in (3, 1):  # a second render replaces the first one whole
        with PngWriter(folder, width=64, height=32) as w:
            for f in frames(n, 64, 32):
                w.write(f)
    assert sorted(p.name for p in folder.iterdir()) == ["000000.png"]


def test_bundled_ffmpeg_has_libx264():
    out = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-encoders"], capture_output=True, text=True)
    assert "libx264" in out.stdout
