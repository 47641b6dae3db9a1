"""``verify`` on a packaged run folder and the archive beside it."""

from __future__ import annotations

import pytest
from upstream_data import INFO

from scene2world.config import PackageConfig
from scene2world.packaging.run_folder import package_run
from scene2world.packaging.verify import verify_run

pytestmark = pytest.mark.timeout(60)


def test_verify_reports_a_missing_or_changed_archive(upstream, tmp_path):
    run = tmp_path / "r"
    package_run(upstream.render_dir, upstream.infer_dir, run, PackageConfig(archive="zip", contact_sheet=False), INFO)
    assert verify_run(run) == []
    archive = tmp_path / "r.zip"
    data = archive.read_bytes()
    archive.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    assert verify_run(run) == ["r.zip: sha256 does not match r.zip.sha256"]
    archive.unlink()
    problems = verify_run(run)
    assert len(problems) == 1 and problems[0].startswith("r.zip: the run's archive is missing beside the folder")
