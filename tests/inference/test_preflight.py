from __future__ import annotations

from pathlib import Path

import pytest

from scene2world.config import InferConfig
from scene2world.errors import InferenceError
from scene2world.inference.preflight import (
    VideoInfo,
    assign_views,
    chunk_windows,
    cosmos_rank_problem,
    cosmos_ranks_for,
    fps_factor,
    frames_per_view,
    max_chunks,
    plan_samples,
    preflight,
    probe_video,
)
from scene2world.inference.spec import validate_sample, write_spec
from scene2world.inference.views import VIEW_KEYS

pytestmark = pytest.mark.timeout(60)


class Specs:
    """Builds validated samples over empty placeholder files and fake probe results."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.videos: dict[Path, VideoInfo] = {}

    def video(self, name: str, frames: int, video_fps: float = 30.0, size: tuple[int, int] = (1280, 720)) -> str:
        path = self.folder / name
        path.write_bytes(b"")
        self.videos[path] = VideoInfo(path, video_fps, frames, *size)
        return name

    def sample(self, views=("front_wide",), frames=90, video_fps=30.0, size=(1280, 720), inputs=False, **fields):
        data = {"name": "s", "prompt": "a drive", "num_conditional_frames": 0, **fields}
        for key in views:
            data[key] = {"control_path": self.video(f"{data['name']}_{key}.mp4", frames, video_fps, size)}
            if inputs:
                data[key]["input_path"] = self.video(f"{data['name']}_{key}_rgb.mp4", frames, video_fps, size)
        return validate_sample(data, base_dir=self.folder, where=f"{self.folder}/spec.json")

    def plan(self, *samples, nproc: int = 1, engine: str = "cosmos"):
        return plan_samples(samples, self.videos, nproc=nproc, engine=engine, spec_path=self.folder / "spec.json")


@pytest.fixture
def specs(tmp_path: Path) -> Specs:
    return Specs(tmp_path)


def test_chunk_arithmetic():
    assert fps_factor(30.0, 10) == 3 and fps_factor(30.0, 15) == 2 and fps_factor(30.0, 30) == 1
    assert fps_factor(30.0, 12) is None and fps_factor(29.97, 10) is None and fps_factor(30.0004, 10) == 3
    assert [frames_per_view(n, 1) for n in (1, 2, 3)] == [29, 57, 85]
    assert max_chunks(29, 1) == 1 and max_chunks(56, 1) == 1 and max_chunks(57, 1) == 2 and max_chunks(10, 1) == 1
    assert chunk_windows(3, 1) == ((0, 29), (28, 57), (56, 85))
    assert chunk_windows(2, 0) == ((0, 29), (29, 58))
    assert assign_views(("front_wide", "cross_right", "rear"), 2) == {"front_wide": 0, "cross_right": 1, "rear": 0}


def test_cosmos_rank_rules():
    for nproc in (1, 2, 4, 8):
        assert cosmos_rank_problem(1, nproc) is None
    for nproc in (3, 5, 6, 7, 16):
        assert "1, 2, 4 or 8" in cosmos_rank_problem(1, nproc)
    assert cosmos_rank_problem(7, 8) is None
    assert "3 active views need at least 3" in cosmos_rank_problem(3, 2)
    assert [cosmos_ranks_for(v) for v in range(1, 8)] == [1, 2, 4, 4, 8, 8, 8]


def test_151_frames_at_fps10_give_one_chunk(specs):
    (p,) = specs.plan(specs.sample(frames=151)).samples
    assert (p.fps_factor, p.available_frames, p.num_chunks, p.frames_per_view) == (3, 50, 1, 29)
    assert p.chunk_source_frames == (tuple(range(0, 87, 3)),)
    assert p.output_source_frames == tuple(range(0, 87, 3))
    assert p.output_files() == ("s.json", "s.mp4")  # save_combined_views defaults to true
    # autoregressive: 50 frames hold one chunk only → num_chunks 2 is clamped, with a warning
    plan = specs.plan(specs.sample(frames=151, enable_autoregressive=True, num_chunks=2))
    assert plan.samples[0].num_chunks == 1 and plan.samples[0].requested_chunks == 2
    assert any("`num_chunks` 2 clamped to 1" in w for w in plan.warnings)


def test_autoregressive_overlap1_121_frames_at_fps15(specs):
    s = specs.sample(
        views=("front_wide", "rear"),
        frames=121,
        video_fps=30.0,
        inputs=True,
        fps=15,
        enable_autoregressive=True,
        num_chunks=2,
        chunk_overlap=1,
        num_conditional_frames=1,
    )
    plan = specs.plan(s, nproc=2)
    (p,) = plan.samples
    assert (p.fps_factor, p.available_frames, p.num_chunks, p.frames_per_view) == (2, 60, 2, 57)
    assert p.chunk_windows == ((0, 29), (28, 57))
    assert p.chunk_source_frames[0] == tuple(range(0, 57, 2))
    assert p.chunk_source_frames[1] == tuple(range(56, 113, 2))
    assert p.output_source_frames == tuple(range(0, 113, 2)) and len(p.output_source_frames) == 57
    assert dict(p.view_ranks) == {"front_wide": 0, "rear": 1}
    assert plan.warnings == ()


def test_more_chunks_than_controls_allow_are_clamped(specs):
    (p,) = specs.plan(specs.sample(frames=300, enable_autoregressive=True, num_chunks=5)).samples
    assert (p.available_frames, p.num_chunks, p.frames_per_view) == (100, 3, 85)


def test_fps_mismatch(specs):
    s = specs.sample(views=("front_wide",))
    data = s.model_dump(mode="json")
    data["rear"] = {"control_path": specs.video("rear25.mp4", 90, video_fps=25.0)}
    s2 = validate_sample(data, base_dir=specs.folder)
    with pytest.raises(InferenceError) as info:
        specs.plan(s2)
    text = str(info.value)
    assert str(specs.folder / "spec.json") in text and "sample 's'" in text
    assert "`fps`: inconsistent video fps (front_wide.control_path=30, rear.control_path=25)" in text
    assert "fix: re-encode" in text


def test_fps_not_dividing(specs):
    with pytest.raises(
        InferenceError, match=r"`fps`: 12 does not divide the videos' 30 fps; fix: use an fps dividing 30"
    ):
        specs.plan(specs.sample(fps=12))
    with pytest.raises(InferenceError, match="re-encode the videos at a whole fps"):
        specs.plan(specs.sample(video_fps=30.0 * 1000 / 1001))


def test_too_few_frames(specs):
    with pytest.raises(InferenceError) as info:
        specs.plan(specs.sample(frames=86))
    text = str(info.value)
    assert "`front_wide.control_path`: only 28 frames at fps 10 (86 frames at 30 fps, factor 3)" in text
    assert "render at least 87 control frames" in text
    specs.plan(specs.sample(frames=87))


def test_short_input_video(specs):
    s = specs.sample(frames=90, inputs=True, num_conditional_frames=1)
    short = next(p for p in specs.videos if p.name.endswith("_rgb.mp4"))
    specs.videos[short] = VideoInfo(short, 30.0, 80, 1280, 720)
    with pytest.raises(InferenceError, match=r"`front_wide.input_path`: 80 frames, but frames up to 84 are read"):
        specs.plan(s)


def test_gpu_counts_cosmos_and_preview(specs):
    three = specs.sample(views=("front_wide", "cross_right", "rear"))
    with pytest.raises(InferenceError, match=r"`nproc_per_node`: 3 active views .* on 2 rank\(s\).*--nproc 4"):
        specs.plan(three, nproc=2, engine="cosmos")
    with pytest.raises(InferenceError, match=r"`nproc_per_node`: 3 ranks: Cosmos runs only on 1, 2, 4 or 8"):
        specs.plan(three, nproc=3, engine="cosmos")
    assert specs.plan(three, nproc=4, engine="cosmos").nproc == 4
    seven = specs.sample(views=VIEW_KEYS, name="seven")
    assert specs.plan(seven, nproc=8).samples[0].view_ranks["front_tele"] == 6
    # the preview engine runs anywhere but says when Cosmos would refuse
    plan = specs.plan(three, nproc=3, engine="preview")
    assert plan.samples[0].view_ranks == {"front_wide": 0, "cross_right": 1, "rear": 2}
    assert any("Cosmos would not run on 3 ranks" in w for w in plan.warnings)
    plan = specs.plan(three, nproc=2, engine="preview")
    assert any("--nproc 4" in w for w in plan.warnings)


def test_stricter_than_nvidia(specs):
    with pytest.raises(InferenceError) as info:
        specs.plan(specs.sample(prompt=None, seed=-1, num_steps=0))
    text = str(info.value)
    assert "`prompt`: neither `prompt` nor `prompt_path`" in text
    assert "`seed`: -1 is negative" in text and "`num_steps`: 0 sampler steps" in text
    with pytest.raises(InferenceError, match="`chunk_overlap`: 29 must be 0-28"):
        specs.plan(specs.sample(enable_autoregressive=True, chunk_overlap=29))
    with pytest.raises(InferenceError, match="`num_conditional_frames`: 40 is outside 0-28"):
        specs.plan(specs.sample(views=("rear",), inputs=True, num_conditional_frames=40))


def test_autoregressive_input_path_quirk(specs):
    # NVIDIA's validator accepts this (per-view values all 0), its dataset then fails (§1.4)
    s = specs.sample(enable_autoregressive=True, num_conditional_frames=1)
    with pytest.raises(InferenceError, match="set `num_conditional_frames` to 0 for control-only generation"):
        specs.plan(s)


def test_stretch_warning(specs):
    assert specs.plan(specs.sample(size=(640, 360))).warnings == ()  # 16:9 scales without distortion
    plan = specs.plan(specs.sample(size=(640, 640)))
    assert any("front_wide control is 640x640; frames are resized to 1280x720 without crop" in w for w in plan.warnings)


def test_probe_and_preflight_on_real_videos(controls, tmp_path):
    info = probe_video(controls["camera_front_wide_120fov"])
    assert (info.fps, info.num_frames, info.width_px, info.height_px) == (30.0, 90, 1280, 720)
    (tmp_path / "junk.mp4").write_bytes(b"not a video")
    with pytest.raises(InferenceError, match="not a readable video"):
        probe_video(tmp_path / "junk.mp4")
    data = {"name": "clip", "prompt": "p", "num_conditional_frames": 0, "save_combined_views": False}
    data |= {"front_wide": {"control_path": str(controls["camera_front_wide_120fov"])}}
    data |= {"rear": {"control_path": str(tmp_path / "junk.mp4")}}
    spec = tmp_path / "spec.json"
    write_spec([data], spec)
    with pytest.raises(InferenceError, match=r"sample 'clip' .*`rear.control_path`: .*not a readable video"):
        preflight(spec, InferConfig())
    del data["rear"]
    write_spec([data], spec)
    plan = preflight(spec, InferConfig(nproc_per_node=1, engine="cosmos"))
    assert plan.output_files() == ("config.yaml", "console.log", "clip.json", "clip_front_wide.mp4", "clip_grid.mp4")
