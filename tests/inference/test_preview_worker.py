"""The preview worker's pieces, and its whole program in a world of one (no torchrun)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from scene2world.config import InferConfig
from scene2world.errors import InferenceError
from scene2world.inference import preview_worker
from scene2world.inference.preflight import preflight
from scene2world.inference.preview_worker import FrameReader, grid_frame, resize_to_model, view_frames
from scene2world.inference.spec import build_sample, write_spec

from .conftest import CAMERAS, decode_stripes, read_video

pytestmark = pytest.mark.timeout(90)


def test_resize_to_model_stretches_without_crop():
    frames = np.zeros((2, 360, 640, 3), np.uint8)
    frames[:, :, 320:] = 200  # right half bright
    out = resize_to_model(frames)
    assert out.shape == (2, 720, 1280, 3) and out.dtype == np.uint8
    assert out[:, :, :630].max() == 0 and out[:, :, 650:].min() == 200  # the edge stays mid-frame: no crop
    same = np.zeros((1, 720, 1280, 3), np.uint8)
    assert resize_to_model(same) is same
    with pytest.raises(InferenceError, match=r"must be \(T, H, W, 3\) uint8"):
        resize_to_model(np.zeros((720, 1280, 3), np.uint8))


def test_grid_is_row_major_with_black_cells():
    cells = [np.full((720, 1280, 3), 10 * (i + 1), np.uint8) for i in range(4)]
    grid = grid_frame(cells)
    assert grid.shape == (2160, 3840, 3)
    assert grid[0, 0, 0] == 10 and grid[0, 1280, 0] == 20 and grid[0, 2560, 0] == 30 and grid[720, 0, 0] == 40
    assert grid[720, 1280:].max() == 0 and grid[1440:].max() == 0
    with pytest.raises(InferenceError, match="a grid holds 9 views"):
        grid_frame(cells * 3)


def test_frame_reader_hands_out_increasing_frames(controls):
    reader = FrameReader(controls[CAMERAS[1]])
    try:
        assert decode_stripes(reader.frame(0)) == (0, 1)
        assert decode_stripes(reader.frame(42)) == (42, 1)
        with pytest.raises(InferenceError, match="already passed"):
            reader.frame(3)
        with pytest.raises(InferenceError, match="ends after 90 frames, frame 95 is needed"):
            reader.frame(95)
    finally:
        reader.close()


def test_autoregressive_frames_and_combined_output_in_a_world_of_one(controls, tmp_path):
    # fps 30 (factor 1): 90 frames hold 3 chunks with overlap 1, num_chunks 5 is clamped to 3
    cfg = InferConfig(fps=30, enable_autoregressive=True, num_chunks=5, chunk_overlap=1, save_combined_views=True)
    videos = {cam: controls[cam] for cam in (CAMERAS[0], CAMERAS[2])}
    spec = write_spec([build_sample("ar", videos, cfg, tmp_path)], tmp_path / "spec.json")
    plan = preflight(spec, cfg.model_copy(update={"nproc_per_node": 1}))
    (p,) = plan.samples
    assert (p.num_chunks, p.frames_per_view, p.chunk_windows) == (3, 85, ((0, 29), (28, 57), (56, 85)))
    indices = [decode_stripes(f)[0] for f in view_frames(p, "rear")]
    assert indices == list(range(85))  # overlapping frames appear once

    out = tmp_path / "out"
    assert preview_worker.main(["-i", str(spec), "-o", str(out)]) == 0
    assert sorted(f.name for f in out.iterdir()) == ["ar.json", "ar.mp4", "config.yaml", "console.log"]
    meta, frames = read_video(out / "ar.mp4")
    assert meta["size"] == (1280, 720) and meta["fps"] == 30 and len(frames) == 2 * 85
    seen = [decode_stripes(f) for f in frames]
    assert seen == [(i, 0) for i in range(85)] + [(i, 2) for i in range(85)]  # front_wide, then rear
    sidecar = json.loads((out / "ar.json").read_text())
    assert sidecar["num_chunks"] == 5 and sidecar["rear"]["control_path"] == str(videos[CAMERAS[2]])
    assert "clamped to 3" in (out / "console.log").read_text()


def test_a_bad_spec_exits_1_with_the_reason(tmp_path, capsys):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"name": "x", "prompt": "p", "front_wide": {"control_path": "missing.mp4"}}))
    assert preview_worker.main(["-i", str(spec), "-o", str(tmp_path / "out")]) == 1
    assert "`front_wide.control_path`: file not found" in capsys.readouterr().out
