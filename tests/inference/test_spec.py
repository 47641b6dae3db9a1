from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from scene2world.config import InferConfig
from scene2world.errors import InferenceError
from scene2world.inference.spec import (
    MultiviewInferenceArguments,
    build_sample,
    check_sample_name,
    load_spec,
    validate_sample,
    write_spec,
)

pytestmark = pytest.mark.timeout(30)

NVIDIA_SIDECAR_ORDER = [
    "name", "prompt_path", "prompt", "negative_prompt", "seed", "guidance", "num_conditional_frames",
    "control_weight", "front_wide", "rear", "rear_left", "rear_right", "cross_left", "cross_right", "front_tele",
    "fps", "num_steps", "enable_autoregressive", "num_chunks", "chunk_overlap", "save_combined_views",
]  # fmt: skip


WS_FRONT = "world_scenario_videos/ws_front_wide_120fov.mp4"
WS_REAR = "world_scenario_videos/ws_rear_30fov.mp4"


@pytest.fixture
def spec_dir(tmp_path: Path) -> Path:
    """A spec folder like NVIDIA's example: prompt.txt, input_videos/, world_scenario_videos/ (empty files)."""
    (tmp_path / "prompt.txt").write_text("  a night drive \n")
    for sub, prefix in (("input_videos", "night"), ("world_scenario_videos", "ws")):
        (tmp_path / sub).mkdir()
        for view in ("front_wide_120fov", "rear_30fov", "cross_left_120fov"):
            (tmp_path / sub / f"{prefix}_{view}.mp4").write_bytes(b"")
    return tmp_path


def sample(**extra):
    data = {
        "name": "auto_multiview",
        "prompt_path": "prompt.txt",
        "fps": 10,
        "front_wide": {
            "input_path": "input_videos/night_front_wide_120fov.mp4",
            "control_path": "world_scenario_videos/ws_front_wide_120fov.mp4",
        },
        "rear": {
            "input_path": "input_videos/night_rear_30fov.mp4",
            "control_path": "world_scenario_videos/ws_rear_30fov.mp4",
        },
    }
    data.update(extra)
    return data


def write(path: Path, *samples) -> Path:
    if path.suffix == ".json":
        path.write_text(json.dumps(samples[0], indent=4))
    else:
        path.write_text("".join(json.dumps(s) + "\n" for s in samples))
    return path


def test_nvidia_example_loads_with_defaults_and_relative_paths(spec_dir, tmp_path, monkeypatch):
    monkeypatch.chdir("/")  # relative paths come from the spec's folder, not the current directory
    (s,) = load_spec(write(spec_dir / "multiview_spec.json", sample()))
    assert s.prompt == "a night drive"  # read from prompt_path and stripped
    assert s.prompt_path == spec_dir / "prompt.txt"
    assert s.front_wide.control_path == spec_dir / "world_scenario_videos" / "ws_front_wide_120fov.mp4"
    assert s.active_views() == ("front_wide", "rear")
    assert (s.seed, s.guidance, s.num_conditional_frames, s.control_weight) == (0, 3, 1, 1.0)
    assert (s.num_steps, s.enable_autoregressive, s.num_chunks, s.chunk_overlap) == (35, False, 2, 1)
    assert s.save_combined_views is True
    assert s.origin == str(spec_dir / "multiview_spec.json")


def test_sidecar_is_nvidia_compact_dump(spec_dir):
    (s,) = load_spec(write(spec_dir / "s.json", sample()))
    text = s.sidecar_json()
    data = json.loads(text)
    # one compact line: exactly json.dumps's compact form (no space after `,` or `:`), keys in order
    assert text == json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    assert list(data) == NVIDIA_SIDECAR_ORDER
    assert data["rear_left"] == {"input_path": None, "control_path": None, "num_conditional_frames_per_view": 0}
    assert data["prompt"] == "a night drive" and os.path.isabs(data["prompt_path"])
    assert data["rear"]["control_path"] == str(spec_dir / "world_scenario_videos" / "ws_rear_30fov.mp4")
    assert list(MultiviewInferenceArguments.model_fields) == NVIDIA_SIDECAR_ORDER


@pytest.mark.parametrize(
    ("extra", "where"),
    [
        ({"output_dir": "outputs/multiview"}, "`output_dir`: unknown key"),
        ({"save_view_grid": True}, "`save_view_grid`: unknown key"),
        ({"front_wide": {"control_path": WS_FRONT, "hdmap": "x"}}, "`front_wide.hdmap`"),
        ({"guidance": 8}, "`guidance`: Input should be less than or equal to 7"),
        ({"guidance": 3.0}, "`guidance`: Input should be a valid integer"),
        ({"guidance": "4"}, "`guidance`"),
        ({"control_weight": 1.5}, "`control_weight`"),
        ({"fps": 0}, "`fps`"),
        ({"num_chunks": 0}, "`num_chunks`"),
        ({"enable_autoregressive": "yes"}, "`enable_autoregressive`: Input should be a valid boolean"),
        ({"save_combined_views": 0}, "`save_combined_views`"),
        (
            {"rear": {"control_path": WS_REAR, "num_conditional_frames_per_view": 6}},
            "`rear.num_conditional_frames_per_view`",
        ),
        ({"rear": {"control_path": "missing.mp4"}}, "`rear.control_path`: file not found"),
        ({"rear": {"control_path": "~/ws_rear_30fov.mp4"}}, "`~` is not expanded"),
        ({"prompt_path": "nope.txt", "prompt": "given"}, "`prompt_path`: file not found"),
    ],
)
def test_rejected_fields_name_file_and_field(spec_dir, extra, where):
    path = write(spec_dir / "bad.json", sample(**extra))
    with pytest.raises(InferenceError) as info:
        load_spec(path)
    assert str(path) in str(info.value)
    assert where in str(info.value)
    assert "sample 'auto_multiview'" in str(info.value)


def test_missing_name_and_no_active_view(spec_dir):
    data = sample()
    del data["name"]
    with pytest.raises(InferenceError, match="`name`: required key is missing"):
        load_spec(write(spec_dir / "a.json", data))
    with pytest.raises(InferenceError, match="At least one view configuration with a control_path"):
        load_spec(write(spec_dir / "b.json", {"name": "x", "prompt": "p", "rear": {"input_path": "prompt.txt"}}))


def test_prompt_wins_over_prompt_path(spec_dir):
    (s,) = load_spec(write(spec_dir / "s.json", sample(prompt="given")))
    assert s.prompt == "given"


def test_conditional_frames_need_input_paths(spec_dir):
    no_input = sample(rear={"control_path": "world_scenario_videos/ws_rear_30fov.mp4"})
    with pytest.raises(InferenceError, match="missing on: rear"):
        load_spec(write(spec_dir / "a.json", no_input))
    (s,) = load_spec(write(spec_dir / "b.json", {**no_input, "num_conditional_frames": 0}))
    assert s.rear.input_path is None


def test_autoregressive_per_view_rules(spec_dir):
    def ar(fw, rear, **extra):
        data = sample(enable_autoregressive=True, **extra)
        data["front_wide"]["num_conditional_frames_per_view"] = fw
        data["rear"]["num_conditional_frames_per_view"] = rear
        return data

    load_spec(write(spec_dir / "ok.json", ar(1, 5)))  # 1 and 5 may be mixed
    with pytest.raises(InferenceError, match="must be 0, 1 or 5; got front_wide=3"):
        load_spec(write(spec_dir / "a.json", ar(3, 1)))
    with pytest.raises(InferenceError, match="0 on every active view or non-zero on every active view"):
        load_spec(write(spec_dir / "b.json", ar(0, 1)))
    # outside autoregressive mode any 0-5 passes (NVIDIA §8.4)
    load_spec(write(spec_dir / "c.json", {**ar(3, 2), "enable_autoregressive": False}))


def test_jsonl_line_numbers_count_from_one(spec_dir):
    good = sample()
    path = write(spec_dir / "s.jsonl", good, {**good, "name": "b"}, {**good, "name": "c", "guidance": 9})
    with pytest.raises(InferenceError) as info:
        load_spec(path)
    assert f"{path} line 3: sample 'c': `guidance`" in str(info.value)


def test_jsonl_blank_lines_bad_json_and_duplicates(spec_dir):
    line = json.dumps(sample())
    path = spec_dir / "s.jsonl"
    path.write_text(f"{line}\n\n{line}\n{{oops\n")
    with pytest.raises(InferenceError) as info:
        load_spec(path)
    text = str(info.value)
    assert f"{path} line 2: blank line" in text
    assert f"{path} line 4 column 2: invalid JSON" in text
    path.write_text(f"{line}\n{line}\n")
    with pytest.raises(InferenceError, match=r"line 2: sample name 'auto_multiview' already used at .*line 1"):
        load_spec(path)


def test_json_list_and_suffix(spec_dir):
    path = spec_dir / "s.json"
    path.write_text(json.dumps([sample()]))
    with pytest.raises(InferenceError, match=r"got a list of 1; write one object per line to a \.jsonl"):
        load_spec(path)
    with pytest.raises(InferenceError, match=r"must end in \.json .* or \.jsonl"):
        load_spec(spec_dir / "s.yaml")
    with pytest.raises(InferenceError, match="spec file not found"):
        load_spec(spec_dir / "absent.json")


def test_build_write_load_roundtrip(tmp_path):
    videos_dir = tmp_path / "render" / "clip"
    videos_dir.mkdir(parents=True)
    videos = {}
    for cam in ("camera_front_wide_120fov", "camera_rear_tele_30fov", "camera_front_tele_30fov"):
        videos[cam] = videos_dir / f"clip.{cam}.mp4"
        videos[cam].write_bytes(b"")
    spec_dir = tmp_path / "spec"
    spec_dir.mkdir()
    cfg = InferConfig(fps=15, enable_autoregressive=True, num_chunks=3, negative_prompt="blurry")
    data = build_sample("clip", videos, cfg, spec_dir)
    assert data["rear"] == {"control_path": "../render/clip/clip.camera_rear_tele_30fov.mp4"}
    assert "front_tele" in data and "cross_left" not in data
    keys = [k for k in NVIDIA_SIDECAR_ORDER if k in data]
    assert list(data) == keys  # NVIDIA's field order
    assert data["num_conditional_frames"] == 0 and data["negative_prompt"] == "blurry"
    path = write_spec([data, {**data, "name": "clip2"}], spec_dir / "spec.jsonl")
    lines = path.read_text().splitlines()
    assert len(lines) == 2 and json.loads(lines[1])["name"] == "clip2"
    a, _ = load_spec(path)
    assert a.rear.control_path == videos["camera_rear_tele_30fov"]
    assert (a.fps, a.num_chunks, a.enable_autoregressive, a.origin) == (15, 3, True, f"{path} line 1")
    one = write_spec([data], spec_dir / "one.json")
    assert load_spec(one)[0].name == "clip"


def test_write_spec_refuses(tmp_path):
    (tmp_path / "c.mp4").write_bytes(b"")
    data = build_sample("n", {"camera_front_wide_120fov": tmp_path / "c.mp4"}, InferConfig(), tmp_path)
    with pytest.raises(InferenceError, match="exactly one sample, got 2"):
        write_spec([data, {**data, "name": "m"}], tmp_path / "s.json")
    with pytest.raises(InferenceError, match="already used"):
        write_spec([data, data], tmp_path / "s.jsonl")
    with pytest.raises(InferenceError, match="file not found"):  # paths are relative to the spec's folder
        write_spec([data], tmp_path / "sub" / "s.json")
    assert not (tmp_path / "s.jsonl").exists()


def test_build_sample_errors(tmp_path):
    (tmp_path / "c.mp4").write_bytes(b"")
    cam = {"camera_front_wide_120fov": tmp_path / "c.mp4"}
    with pytest.raises(InferenceError, match="no Cosmos multiview view"):
        build_sample("n", {"camera_rear_30fov": tmp_path / "c.mp4"}, InferConfig(), tmp_path)
    with pytest.raises(InferenceError, match=r"infer\.num_conditional_frames=0"):
        build_sample("n", cam, InferConfig(num_conditional_frames=1), tmp_path)
    data = build_sample("n", cam, InferConfig(num_conditional_frames=1), tmp_path, inputs=cam)
    assert data["front_wide"] == {"input_path": "c.mp4", "control_path": "c.mp4"}
    with pytest.raises(InferenceError, match="no control videos"):
        build_sample("n", {}, InferConfig(), tmp_path)
    with pytest.raises(InferenceError, match="cannot be an output file name"):
        build_sample("a/b", cam, InferConfig(), tmp_path)


@pytest.mark.parametrize("name", ["", " x", ".hidden", "-x", "a/b", "a\\b", ".."])
def test_bad_names(name):
    with pytest.raises(InferenceError):
        check_sample_name(name)


def test_validate_sample_without_spec_file(tmp_path):
    (tmp_path / "c.mp4").write_bytes(b"")
    s = validate_sample(
        {
            "name": "n",
            "prompt": "p",
            "num_conditional_frames": 0,
            "front_tele": {"control_path": str(tmp_path / "c.mp4")},
        }
    )
    assert s.active_views() == ("front_tele",)
