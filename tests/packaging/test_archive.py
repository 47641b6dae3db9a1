from __future__ import annotations

import hashlib
import tarfile
import zipfile

import pytest
from upstream_data import INFO

from scene2world.config import PackageConfig
from scene2world.datasets.extract import extract_archive
from scene2world.errors import PackageError
from scene2world.packaging import archive as archive_mod
from scene2world.packaging.archive import archive_members, write_archive
from scene2world.packaging.run_folder import package_run

pytestmark = pytest.mark.timeout(30)


@pytest.mark.parametrize("kind", ["zip", "tar.gz"])
def test_run_archive_holds_exactly_the_run_folder(upstream, tmp_path, kind):
    run = tmp_path / "my-run"
    manifest = package_run(upstream.render_dir, upstream.infer_dir, run, PackageConfig(archive=kind), INFO)
    archive = tmp_path / f"my-run.{kind}"
    assert manifest.data["archive"] == {"path": archive.name, "format": kind}
    expected = {f"my-run/{r.path}" for r in manifest.files} | {"my-run/manifest.json"}
    assert set(archive_members(archive)) == expected
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    assert (tmp_path / f"my-run.{kind}.sha256").read_text() == f"{digest}  my-run.{kind}\n"
    # our own safe extractor accepts it (no links, no absolute paths) and gets the same bytes back
    out = extract_archive(archive, tmp_path / "unpacked").root / "my-run"
    for rec in manifest.files:
        assert (out / rec.path).read_bytes() == (run / rec.path).read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["my-run", archive.name, archive.name + ".sha256", "unpacked"]
    )


def test_hard_linked_files_are_stored_as_plain_files(tmp_path):
    folder = tmp_path / "f"
    folder.mkdir()
    (folder / "a.mp4").write_bytes(b"video")
    (folder / "b.mp4").hardlink_to(folder / "a.mp4")
    write_archive(folder, tmp_path / "f.tar.gz", "tar.gz")
    with tarfile.open(tmp_path / "f.tar.gz") as tf:
        members = {m.name: m for m in tf.getmembers()}
    assert members["f/b.mp4"].isreg() and members["f/b.mp4"].size == 5
    assert members["f/a.mp4"].uname == "" and members["f"].isdir()


def test_zip_stores_media_and_deflates_text(tmp_path):
    folder = tmp_path / "f"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "v.mp4").write_bytes(b"\0" * 1000)
    (folder / "manifest.json").write_text("{}" * 500)
    write_archive(folder, tmp_path / "f.zip", "zip", top="renamed")
    with zipfile.ZipFile(tmp_path / "f.zip") as zf:
        infos = {i.filename: i for i in zf.infolist()}
    assert infos["renamed/sub/v.mp4"].compress_type == zipfile.ZIP_STORED
    assert infos["renamed/manifest.json"].compress_type == zipfile.ZIP_DEFLATED
    assert "renamed/sub/" in infos


def test_failed_archive_leaves_no_temporary_file(tmp_path, monkeypatch):
    folder = tmp_path / "f"
    folder.mkdir()
    (folder / "x").write_text("x")

    def boom(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(archive_mod, "write_archive_file", boom)
    with pytest.raises(PackageError, match="No space left"):
        write_archive(folder, tmp_path / "out" / "f.zip", "zip")
    assert list((tmp_path / "out").iterdir()) == []
