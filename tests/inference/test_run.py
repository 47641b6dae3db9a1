"""run_inference end to end: the preview engine under real torchrun (2 ranks, gloo), and a fake Cosmos."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from scene2world.config import CosmosEngineConfig, InferConfig
from scene2world.errors import InferenceError
from scene2world.inference.run import run_inference
from scene2world.inference.spec import build_sample, write_spec

from .conftest import CAMERAS, decode_stripes, read_video

pytestmark = pytest.mark.timeout(120)

SIDECAR_ORDER = [
    "name", "prompt_path", "prompt", "negative_prompt", "seed", "guidance", "num_conditional_frames",
    "control_weight", "front_wide", "rear", "rear_left", "rear_right", "cross_left", "cross_right", "front_tele",
    "fps", "num_steps", "enable_autoregressive", "num_chunks", "chunk_overlap", "save_combined_views",
]  # fmt: skip


def test_preview_engine_two_ranks_writes_cosmos_layout(controls, tmp_path):
    cfg = InferConfig(engine="preview", nproc_per_node=2, backend="gloo", fps=10, save_combined_views=False)
    spec_dir = tmp_path / "spec"
    spec_dir.mkdir()
    spec = write_spec([build_sample("clip", controls, cfg, spec_dir)], spec_dir / "spec.json")
    out = tmp_path / "run" / "outputs"
    lines: list[str] = []
    result = run_inference(spec, out, cfg, log=lines.append)

    views = ("front_wide", "cross_right", "rear")  # canonical order of the three cameras' views
    names = {p.name for p in out.iterdir() if p.is_file()}
    assert names == {"clip.json", "config.yaml", "console.log", "clip_grid.mp4", *(f"clip_{v}.mp4" for v in views)}
    assert [p.name for p in (tmp_path / "run").iterdir()] == ["outputs"]  # no staging folder left
    assert result.outputs == {"clip": {v: out / f"clip_{v}.mp4" for v in views}}
    assert result.grids == {"clip": out / "clip_grid.mp4"} and result.combined == {}
    assert all(p.is_file() and out in p.parents for p in result.files)
    assert out / "logs" / "torchrun.log" in result.logs and out / "console.log" in result.logs
    assert sorted(p.parent.name for p in result.logs if p.name == "stdout.log") == ["0", "1"]
    assert any(line.startswith("[default1]:") and "prepares cross_right" in line for line in lines)
    assert any("Cosmos would not run this spec" in w for w in result.warnings)  # 3 views on 2 ranks
    assert "-m scene2world.inference.preview_worker" in result.command and str(out) in result.command

    sidecar_text = (out / "clip.json").read_text()
    sidecar = json.loads(sidecar_text)
    assert "\n" not in sidecar_text.strip() and list(sidecar) == SIDECAR_ORDER
    assert sidecar["prompt"] == cfg.prompt and sidecar["prompt_path"] is None
    assert sidecar["rear"]["control_path"] == str(controls["camera_rear_tele_30fov"])
    assert sidecar["front_tele"] == {"input_path": None, "control_path": None, "num_conditional_frames_per_view": 0}
    assert "world_size: 2" in (out / "config.yaml").read_text()

    controls_decoded = {cam: read_video(path)[1] for cam, path in controls.items()}
    per_view = {}
    for view, cam in zip(views, (CAMERAS[0], CAMERAS[1], CAMERAS[2])):
        meta, frames = read_video(out / f"clip_{view}.mp4")
        assert meta["size"] == (1280, 720) and meta["fps"] == 10 and len(frames) == 29
        number = CAMERAS.index(cam)
        assert [decode_stripes(f) for f in frames] == [(3 * t, number) for t in range(29)]
        for t in (0, 14, 28):  # the pixels are the control frames 0, 3, 6, … (H.264 twice)
            diff = np.abs(frames[t].astype(int) - controls_decoded[cam][3 * t].astype(int))
            assert diff.mean() < 2.0, (view, t, diff.mean())
        per_view[view] = frames

    meta, grid = read_video(out / "clip_grid.mp4")
    assert meta["size"] == (3840, 2160) and meta["fps"] == 10 and len(grid) == 29
    for t in (0, 28):
        for cell, view in enumerate(views):
            r, c = divmod(cell, 3)
            tile = grid[t][r * 720 : (r + 1) * 720, c * 1280 : (c + 1) * 1280].astype(int)
            assert np.abs(tile - per_view[view][t].astype(int)).mean() < 2.0
        assert grid[t][720:].mean() < 1.0 and grid[t][:720, 3840:].size == 0  # cells 3-8 are black


FAKE_COSMOS = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    args = sys.argv[1:]
    out = Path(args[args.index("-o") + 1])
    out.mkdir(parents=True, exist_ok=True)
    (out / "argv.json").write_text(json.dumps(args))
    (out / "config.yaml").write_text("fake: true\\n")
    print("fake cosmos ran", flush=True)
    sys.exit(int(Path(args[args.index("-i") + 1]).with_name("exit_code").read_text()))
    """
)


@pytest.fixture
def fake_cosmos(tmp_path, controls):
    repo = tmp_path / "cosmos-transfer2.5"
    (repo / "examples").mkdir(parents=True)
    (repo / "examples" / "__init__.py").write_text("")
    (repo / "examples" / "multiview.py").write_text(FAKE_COSMOS)
    (repo / "cosmos_transfer2").mkdir()
    (repo / "cosmos_transfer2" / "__init__.py").write_text("")
    cfg = InferConfig(
        engine="cosmos",
        nproc_per_node=1,
        save_combined_views=True,
        cosmos=CosmosEngineConfig(repo_dir=repo, python=sys.executable, disable_guardrails=True),
    )
    spec = write_spec([build_sample("clip", {CAMERAS[0]: controls[CAMERAS[0]]}, cfg, tmp_path)], tmp_path / "s.json")
    out = tmp_path / "out"
    out.mkdir()
    (out / "previous.txt").write_text("an earlier run")
    return cfg, spec, out


def test_cosmos_engine_failure_leaves_out_dir_untouched(fake_cosmos):
    cfg, spec, out = fake_cosmos
    spec.with_name("exit_code").write_text("3")
    with pytest.raises(InferenceError) as info:
        run_inference(spec, out, cfg)
    assert info.value.returncode == 1  # torchrun's status when a rank fails
    assert "fake cosmos ran" in info.value.log_tail and "examples.multiview" in info.value.argv
    assert "the failed run's files and logs are left in" in str(info.value)
    assert [p.name for p in out.iterdir()] == ["previous.txt"]


def test_cosmos_engine_missing_outputs_are_an_error(fake_cosmos):
    cfg, spec, out = fake_cosmos
    spec.with_name("exit_code").write_text("0")
    with pytest.raises(InferenceError, match=r"exited 0 but did not write console.log, clip.json, clip.mp4") as info:
        run_inference(spec, out, cfg)
    stage = Path(str(info.value).rsplit("left in ", 1)[1].rstrip(")"))
    argv = json.loads((stage / "argv.json").read_text())
    assert argv[argv.index("-i") + 1] == str(spec) and "--context-parallel-size=1" in argv
    assert "--no-keep-going" in argv
    assert "--disable-guardrails" in argv
    assert [p.name for p in out.iterdir()] == ["previous.txt"]


def test_preflight_failure_launches_nothing(fake_cosmos, tmp_path):
    cfg, spec, out = fake_cosmos
    with pytest.raises(InferenceError, match=r"`nproc_per_node`: 3 ranks: Cosmos runs only on 1, 2, 4 or 8"):
        run_inference(spec, out, cfg.model_copy(update={"nproc_per_node": 3}))
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_dry_run_returns_the_command(fake_cosmos, tmp_path):
    cfg, spec, _ = fake_cosmos
    result = run_inference(spec, tmp_path / "new", cfg.model_copy(update={"nproc_per_node": 2}), dry_run=True)
    assert result.dry_run and result.returncode is None and not (tmp_path / "new").exists()
    assert "-m examples.multiview" in result.command and "--context-parallel-size=2" in result.command
    assert result.command.startswith(f"cd {cfg.cosmos.repo_dir}")
