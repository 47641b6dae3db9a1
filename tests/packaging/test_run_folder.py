from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from upstream_data import CAMERAS, CLIP_A, CLIP_B, FRAMES, INFO, make_render

from scene2world.config import PackageConfig
from scene2world.errors import CacheError, PackageError
from scene2world.manifest import read_manifest, sha256_file
from scene2world.packaging import run_folder
from scene2world.packaging.run_folder import package_run
from scene2world.packaging.step import package_key
from scene2world.packaging.verify import verify_run

pytestmark = pytest.mark.timeout(60)

LIGHT = PackageConfig(archive="none", contact_sheet=False, cosmos_layout=False)


@pytest.fixture(scope="module")
def full_run(upstream, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("runs") / "run-full"
    manifest = package_run(
        upstream.render_dir,
        upstream.infer_dir / "manifest.json",
        run_dir,
        PackageConfig(archive="zip", contact_sheet=True, cosmos_layout=True),
        INFO,
    )
    return run_dir, manifest


def _files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def test_layout(full_run):
    run_dir, _ = full_run
    files = _files(run_dir)
    for clip in (CLIP_A, CLIP_B):
        for cam in CAMERAS[clip]:
            assert f"controls/{clip}/{clip}.{cam}.mp4" in files
    for sample in ("s_a", "s_b"):
        assert {f"generated/{sample}/{sample}_{v}.mp4" for v in ("front_wide", "rear", "grid")} <= files
    assert {"spec/spec.jsonl", "logs/console.log", "contact_sheet.png", "manifest.json"} <= files
    assert any(f.startswith("cosmos_layout/control_input_hdmap_bbox/ftheta_camera_") for f in files)
    assert sorted(p.name for p in run_dir.parent.iterdir()) == ["run-full", "run-full.zip", "run-full.zip.sha256"]


def test_manifest_lists_every_file_with_its_hash(full_run):
    run_dir, manifest = full_run
    assert read_manifest(run_dir) == manifest
    assert {r.path for r in manifest.files} == _files(run_dir) - {"manifest.json"}
    for rec in manifest.files:
        assert (rec.size, rec.sha256) == ((run_dir / rec.path).stat().st_size, sha256_file(run_dir / rec.path))


def test_manifest_records_config_source_versions_and_inputs(full_run, upstream):
    _, m = full_run
    assert (m.step, m.cache_key) == ("package", INFO["cache_key"])
    assert m.settings == {"archive": "zip", "contact_sheet": True, "cosmos_layout": True}
    assert m.data["source"] == INFO["source"] and m.data["config"] == INFO["config"]
    assert m.data["name"] == "test-run" and m.data["info"] == {"operator": "ci"}
    assert {"scene2world", "torch", "prefect", "python"} <= set(m.data["versions"])
    assert m.data["versions"]["python"].count(".") == 2
    render, infer = read_manifest(upstream.render_dir), read_manifest(upstream.infer_dir)
    assert m.upstream.step == "infer" and m.upstream.digest == infer.digest()
    assert m.data["inputs"]["render"]["digest"] == render.digest()
    assert m.data["clips"][CLIP_A]["num_frames"] == FRAMES[CLIP_A]
    assert m.data["samples"]["s_b"]["outputs"]["rear"] == "generated/s_b/s_b_rear.mp4"
    assert m.data["samples"]["s_b"]["spec"] == "spec/spec.jsonl" and m.data["spec"] == ["spec/spec.jsonl"]
    assert m.data["logs"] == ["logs/console.log"] and m.data["archive"] == {"path": "run-full.zip", "format": "zip"}
    json.dumps(m.model_dump())


def test_upstream_files_are_hard_linked(full_run, upstream):
    run_dir, _ = full_run
    rel = f"{CLIP_A}/{CLIP_A}.camera_front_wide_120fov.mp4"
    assert os.path.samefile(run_dir / "controls" / rel, upstream.render_dir / rel)


def test_copy_mode_and_no_infer(upstream, tmp_path):
    m = package_run(upstream.render_dir, None, tmp_path / "run", LIGHT, {}, link=False)
    rel = f"{CLIP_B}/{CLIP_B}.camera_rear_tele_30fov.mp4"
    assert not os.path.samefile(tmp_path / "run" / "controls" / rel, upstream.render_dir / rel)
    assert m.upstream.step == "render" and m.data["samples"] == {} and m.data["inputs"]["infer"] is None
    assert m.cache_key == package_key(LIGHT, "run", read_manifest(upstream.render_dir).digest(), None, {})
    assert (tmp_path / "run" / "logs").is_dir() and verify_run(tmp_path / "run") == []


def test_extra_log_files(upstream, tmp_path):
    log = tmp_path / "console.log"
    log.write_text("pipeline log\n")
    m = package_run(upstream.render_dir, upstream.infer_dir, tmp_path / "run", LIGHT, INFO, log_files=[log])
    assert m.data["logs"] == ["logs/console.log", "logs/console-2.log"]
    assert (tmp_path / "run" / "logs" / "console-2.log").read_text() == "pipeline log\n"


def test_same_key_again_replaces_nothing_and_other_key_replaces(upstream, tmp_path):
    run_dir = tmp_path / "run"
    first = package_run(upstream.render_dir, upstream.infer_dir, run_dir, LIGHT, INFO)
    again = package_run(upstream.render_dir, upstream.infer_dir, run_dir, LIGHT, INFO)
    assert again.created_at == first.created_at  # the published folder was already valid for this key
    other = package_run(upstream.render_dir, upstream.infer_dir, run_dir, LIGHT, {**INFO, "cache_key": "z" * 64})
    assert read_manifest(run_dir).cache_key == other.cache_key == "z" * 64
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_a_users_folder_is_never_replaced(upstream, tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "mine.txt").write_text("keep")
    with pytest.raises(CacheError, match="not a scene2world output"):
        package_run(upstream.render_dir, upstream.infer_dir, tmp_path / "run", LIGHT, INFO)
    assert (tmp_path / "run" / "mine.txt").read_text() == "keep"


# ------------------------------------------------------------------------------------------- failures leave nothing


def _assert_nothing_left(parent: Path) -> None:
    assert sorted(p.name for p in parent.iterdir()) == [], "a failed packaging left files behind"


def test_missing_upstream_file_leaves_no_run_folder(tmp_path):
    render = make_render(tmp_path / "render")
    (render / CLIP_B / f"{CLIP_B}.camera_rear_tele_30fov.mp4").unlink()
    runs = tmp_path / "runs"
    runs.mkdir()
    with pytest.raises(PackageError, match=r"camera_rear_tele_30fov\.mp4: missing"):
        package_run(render, None, runs / "run", PackageConfig(archive="zip"), INFO)
    _assert_nothing_left(runs)


def test_failure_in_cosmos_layout_leaves_nothing(upstream, tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise PackageError("ffmpeg exploded")

    monkeypatch.setattr(run_folder, "write_cosmos_layout", boom)
    with pytest.raises(PackageError, match="ffmpeg exploded"):
        package_run(upstream.render_dir, upstream.infer_dir, tmp_path / "run", PackageConfig(cosmos_layout=True), INFO)
    _assert_nothing_left(tmp_path)


def test_failure_while_publishing_leaves_no_archive(upstream, tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(run_folder.cache, "publish", boom)
    with pytest.raises(PackageError, match="No space left"):
        package_run(upstream.render_dir, upstream.infer_dir, tmp_path / "run", PackageConfig(archive="tar.gz"), INFO)
    _assert_nothing_left(tmp_path)


def test_altered_upstream_file_is_refused(tmp_path):
    render = make_render(tmp_path / "render")
    video = render / CLIP_A / f"{CLIP_A}.camera_front_tele_30fov.mp4"
    data = bytearray(video.read_bytes())
    data[-1] ^= 0xFF
    video.write_bytes(bytes(data))
    with pytest.raises(PackageError, match=r"changed since the render step wrote it"):
        package_run(render, None, tmp_path / "runs" / "run", LIGHT, INFO)
    _assert_nothing_left(tmp_path / "runs")


@pytest.mark.parametrize(
    ("edit", "error", "match"),
    [
        (lambda d: d["clips"].update({"../evil": d["clips"].pop(CLIP_B)}), PackageError, "clip id '../evil'"),
        (lambda d: d["clips"][CLIP_A]["cameras"].update({"camera_x": "/etc/passwd"}), PackageError, "must be relative"),
        (
            lambda d: d["clips"][CLIP_A]["cameras"].update({"camera_x": "../infer/spec/spec.jsonl"}),
            PackageError,
            "stay inside",
        ),
        (lambda d: d.update({"clips": {}}), PackageError, "nothing to package"),
        (
            lambda d: d["clips"][CLIP_A].update({"num_frames": "many"}),
            CacheError,
            rf"render/manifest\.json: `data\.clips\.{CLIP_A}\.num_frames`: .*integer.* \(found 'many'\)",
        ),
        (lambda d: d["clips"][CLIP_A].pop("cameras"), CacheError, rf"`data\.clips\.{CLIP_A}\.cameras`: Field required"),
    ],
)
def test_malformed_render_manifest(tmp_path, edit, error, match):
    render = make_render(tmp_path / "render")
    m = read_manifest(render)
    edit(m.data)
    (render / "manifest.json").write_text(m.model_dump_json())
    with pytest.raises(error, match=match):
        package_run(render, None, tmp_path / "runs" / "run", LIGHT, INFO)


def test_wrong_step_manifest_and_bad_info(upstream, tmp_path):
    with pytest.raises(PackageError, match="a `infer` manifest where a `render` one is needed"):
        package_run(upstream.infer_dir, None, tmp_path / "run", LIGHT, INFO)
    with pytest.raises(PackageError, match="JSON-serialisable"):
        package_run(upstream.render_dir, None, tmp_path / "run", LIGHT, {"when": object()})


def test_png_controls(tmp_path):
    import cv2
    import numpy as np

    render = tmp_path / "render"
    for i in range(5):
        (render / "c1" / "camera_front_wide_120fov").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(render / "c1" / "camera_front_wide_120fov" / f"{i:06d}.png"), np.full((36, 64, 3), i, np.uint8))
    from scene2world.contracts import RenderData, RenderedClip, dump
    from scene2world.manifest import Manifest, record_tree, write_manifest

    write_manifest(
        render,
        Manifest(
            step="render",
            step_version="1",
            cache_key="p" * 64,
            files=record_tree(render),
            data=dump(
                RenderData(
                    clips={
                        "c1": RenderedClip(
                            cameras={"camera_front_wide_120fov": "c1/camera_front_wide_120fov"},
                            num_frames=5,
                            frames=(0, 5),
                            format="clipgt",
                        )
                    }
                )
            ),
        ),
    )
    m = package_run(render, None, tmp_path / "run", PackageConfig(archive="none"), {})
    assert m.data["clips"]["c1"] == {
        "num_frames": 5,
        "controls": {"camera_front_wide_120fov": "controls/c1/camera_front_wide_120fov"},
    }
    assert (tmp_path / "run" / "controls/c1/camera_front_wide_120fov/000004.png").is_file()
    with pytest.raises(PackageError, match="needs mp4 control videos"):
        package_run(render, None, tmp_path / "run2", PackageConfig(archive="none", cosmos_layout=True), {})
    assert not (tmp_path / "run2").exists()
    shutil.rmtree(tmp_path / "run")


def test_spec_and_sample_dumps_load_from_the_run_folder(full_run, upstream):
    from scene2world.inference.spec import load_spec

    run_dir, manifest = full_run
    (spec,) = load_spec(run_dir / "spec" / "spec.jsonl")[:1]
    assert spec.front_wide.control_path == run_dir / "controls" / CLIP_A / f"{CLIP_A}.camera_front_wide_120fov.mp4"
    for name in ("s_a", "s_b"):
        entry = manifest.data["samples"][name]
        assert entry["json"] == f"generated/{name}/{name}.json" and entry["seed"] == 0 and entry["reused"] is False
        dump = json.loads((run_dir / entry["json"]).read_text())
        assert dump["rear"]["control_path"].startswith("../../controls/")  # rewritten for its new folder
        (sample,) = load_spec(run_dir / entry["json"])
        assert sample.rear.control_path is not None and run_dir in sample.rear.control_path.parents
    assert verify_run(run_dir) == []


def test_spec_that_cannot_load_in_the_run_folder_is_refused(upstream, tmp_path):
    infer = tmp_path / "infer"
    shutil.copytree(upstream.infer_dir, infer)
    spec = infer / "spec" / "spec.jsonl"
    spec.write_text(spec.read_text().replace('"num_conditional_frames": 0', '"num_conditional_frames": 0, "bad": 1'))
    m = read_manifest(infer)
    m.files = [
        r
        if r.path != "spec/spec.jsonl"
        else r.model_copy(update={"sha256": sha256_file(spec), "size": spec.stat().st_size})
        for r in m.files
    ]
    (infer / "manifest.json").write_text(m.model_dump_json())
    with pytest.raises(PackageError, match=r"the spec does not load from the run folder: .*`bad`: unknown key"):
        package_run(upstream.render_dir, infer, tmp_path / "run", LIGHT, INFO)
    assert not (tmp_path / "run").exists()
