"""The pipeline flow end to end under Prefect's test harness, on a trimmed bundled example."""

from __future__ import annotations

import shutil

import pytest

from scene2world.config import load_config
from scene2world.flows.pipeline import run_pipeline
from scene2world.manifest import read_manifest, verify_files
from tests.conftest import EXAMPLE

CAMERAS = "[camera_front_wide_120fov, camera_cross_left_120fov, camera_rear_tele_30fov]"


@pytest.fixture
def workspace(tmp_path):
    dataset = tmp_path / "dataset"
    shutil.copytree(EXAMPLE, dataset)
    return tmp_path, dataset


def _config(tmp_path, dataset, *extra):
    return load_config(
        None,
        [
            f"download.source={dataset}",
            f"data_root={tmp_path / 'data'}",
            f"runs_dir={tmp_path / 'runs'}",
            "name=flowtest",
            f"render.cameras={CAMERAS}",
            "render.frames='0:90'",
            "render.msaa=1",
            "render.preset=ultrafast",
            "package.archive=none",
            *extra,
        ],
    )


def _statuses(summary):
    return {s["step"]: s["status"] for s in summary["steps"]}


@pytest.mark.timeout(600)
def test_pipeline_runs_then_hits_then_reruns_only_downstream(prefect_harness, workspace):
    tmp_path, dataset = workspace
    first = run_pipeline(_config(tmp_path, dataset))
    assert _statuses(first) == {"download": "ran", "render": "ran", "infer": "ran", "package": "ran"}
    run_dir = first["run_dir"]
    manifest = read_manifest(first["manifest"])
    assert verify_files(manifest_dir := __import__("pathlib").Path(run_dir), manifest) == []
    controls = [f.path for f in manifest.files if f.path.endswith(".mp4") and "controls/" in f.path]
    assert len(controls) == 3, controls
    assert (manifest_dir / "contact_sheet.png").is_file()

    # nothing changed: every step is a hit
    second = run_pipeline(_config(tmp_path, dataset))
    assert set(_statuses(second).values()) == {"cached"}
    assert second["run_dir"] == run_dir

    # an inference setting changed: download and render stay cached
    third = run_pipeline(_config(tmp_path, dataset, "infer.prompt='a rainy night'"))
    assert _statuses(third) == {"download": "cached", "render": "cached", "infer": "ran", "package": "ran"}

    # a deleted output is a miss, not a stale hit
    render_manifest = read_manifest(next(s["manifest"] for s in third["steps"] if s["step"] == "render"))
    render_dir = __import__("pathlib").Path(next(s["manifest"] for s in third["steps"] if s["step"] == "render")).parent
    victim = render_dir / next(f.path for f in render_manifest.files if f.path.endswith(".mp4"))
    victim.unlink()
    fourth = run_pipeline(_config(tmp_path, dataset, "infer.prompt='a rainy night'"))
    assert _statuses(fourth)["download"] == "cached"
    assert _statuses(fourth)["render"] == "ran"
    assert victim.is_file()


@pytest.mark.timeout(600)
def test_changed_input_bytes_rerun_downstream_only(prefect_harness, workspace):
    tmp_path, dataset = workspace
    run_pipeline(_config(tmp_path, dataset))
    # one more byte in the dataset: download re-runs; the scene content is unchanged, so the
    # per-camera render cache serves every camera and nothing is re-rendered
    # and identical control videos keep inference and packaging cached
    (next(dataset.rglob("*.parquet")).parent / "NOTES.txt").write_text("an extra byte\n")
    again = run_pipeline(_config(tmp_path, dataset))
    assert _statuses(again) == {"download": "ran", "render": "ran", "infer": "cached", "package": "cached"}
    render = read_manifest(next(s["manifest"] for s in again["steps"] if s["step"] == "render"))
    assert render.stats == {"rendered_cameras": 0, "reused_cameras": 3}


def test_corrupt_input_is_a_user_error_and_publishes_nothing(prefect_harness, workspace):
    from scene2world.cli import main

    tmp_path, dataset = workspace
    ego = next(dataset.rglob("*.egomotion_estimate.parquet"))
    ego.write_bytes(ego.read_bytes()[:300])  # truncated mid-file
    code = main(
        ["run", "--set", f"download.source={dataset}", "--set", f"data_root={tmp_path / 'data'}",
         "--set", f"runs_dir={tmp_path / 'runs'}", "--set", "render.frames='0:90'"]
    )  # fmt: skip
    assert code == 2
    assert not (tmp_path / "data" / "render").exists() or not any((tmp_path / "data" / "render").iterdir())
    assert not (tmp_path / "runs").exists()
