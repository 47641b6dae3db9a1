from __future__ import annotations

import pytest
from upstream_data import CLIP_A, INFO

from scene2world.config import PackageConfig
from scene2world.packaging.run_folder import package_run
from scene2world.packaging.verify import verify_run

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def run_dir(upstream, tmp_path):
    run = tmp_path / "run"
    package_run(
        upstream.render_dir,
        upstream.infer_dir,
        run,
        PackageConfig(archive="zip", contact_sheet=False, cosmos_layout=False),
        INFO,
        link=False,  # these tests edit the run folder; never through a link into the upstream outputs
    )
    return run


def test_intact_run_has_no_problem(run_dir):
    assert verify_run(run_dir) == []


def test_one_changed_byte_is_found(run_dir):
    rel = f"controls/{CLIP_A}/{CLIP_A}.camera_cross_left_120fov.mp4"
    data = bytearray((run_dir / rel).read_bytes())
    data[len(data) // 2] ^= 0x01
    (run_dir / rel).write_bytes(bytes(data))
    assert verify_run(run_dir) == [f"{rel}: sha256 changed"]
    assert verify_run(run_dir, check_hash=False) == []


def test_missing_and_truncated_and_extra_files_are_found(run_dir):
    (run_dir / "spec" / "spec.jsonl").unlink()
    log = run_dir / "logs" / "console.log"
    log.write_bytes(log.read_bytes()[:-1])
    (run_dir / "generated" / "notes.txt").write_text("added by hand")
    problems = verify_run(run_dir)
    assert "spec/spec.jsonl: missing" in problems
    assert any(p.startswith("logs/console.log: size") for p in problems)
    assert "generated/notes.txt: not listed in manifest.json" in problems
    assert len(problems) == 3


def test_missing_or_broken_manifest(run_dir, tmp_path):
    (run_dir / "manifest.json").write_text("{not json")
    assert verify_run(run_dir)[0].startswith("manifest.json: ")
    (run_dir / "manifest.json").unlink()
    assert "no manifest here" in verify_run(run_dir)[0]
    assert verify_run(tmp_path / "nowhere") == [f"{tmp_path / 'nowhere'}: not a folder"]


def test_changed_archive_is_found(run_dir):
    archive = run_dir.with_name("run.zip")
    with open(archive, "ab") as fh:
        fh.write(b"\0")
    assert verify_run(run_dir) == ["run.zip: sha256 does not match run.zip.sha256"]
