from __future__ import annotations

import pytest

from scene2world.datasets.sources import archive_format, classify, classify_source
from scene2world.errors import DatasetError

pytestmark = pytest.mark.timeout(10)


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("a.zip", "zip"),
        ("A.ZIP", "zip"),
        ("a.tar", "tar"),
        ("a.tar.gz", "tar.gz"),
        ("a.tgz", "tar.gz"),
        ("a.tar.bz2", "tar.bz2"),
        ("a.tar.xz", "tar.xz"),
        ("a.gz", None),
        ("zip", None),
        (".zip", None),
        ("a.parquet", None),
    ],
)
def test_archive_format(name, fmt):
    assert archive_format(name) == fmt


def test_local_folder_and_archive(tmp_path, monkeypatch):
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds.tar.gz").write_bytes(b"x")
    src = classify_source(str(tmp_path / "ds"))
    assert (src.kind, src.scheme, src.path, src.archive_format) == ("folder", "path", tmp_path / "ds", None)
    assert src.is_local
    monkeypatch.chdir(tmp_path)
    arc = classify("ds.tar.gz")
    assert (arc.kind, arc.path, arc.archive_format) == ("archive", tmp_path / "ds.tar.gz", "tar.gz")
    assert classify_source("ds", base_dir=tmp_path).path == tmp_path / "ds"


def test_file_urls(tmp_path):
    (tmp_path / "my ds").mkdir()
    (tmp_path / "d.zip").write_bytes(b"x")
    folder = classify_source((tmp_path / "my ds").as_uri())
    assert (folder.kind, folder.scheme, folder.path) == ("folder", "file", tmp_path / "my ds")
    arc = classify_source(f"file://localhost{tmp_path}/d.zip")
    assert (arc.kind, arc.scheme, arc.archive_format) == ("archive", "file", "zip")


def test_http_urls():
    src = classify_source("https://example.com/releases/multiview_example1.zip?x=1")
    assert (src.kind, src.scheme, src.url, src.archive_format, src.path) == (
        "url",
        "https",
        "https://example.com/releases/multiview_example1.zip?x=1",
        "zip",
        None,
    )
    assert not src.is_local
    assert classify_source("http://127.0.0.1:8000/get").archive_format is None


def test_dataset_names_resolve(tmp_path):
    src = classify_source("nvidia-example1", datasets={"nvidia-example1": "https://h/x.zip"})
    assert (src.kind, src.name, src.url) == ("url", "nvidia-example1", "https://h/x.zip")


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("s3://bucket/x.zip", "unsupported scheme 's3'"),
        ("ftp://h/x.zip", "unsupported scheme 'ftp'"),
        ("https:///x.zip", "needs a host"),
        ("file://otherhost/x.zip", "local absolute path"),
        ("/no/such/folder", "does not exist"),
    ],
)
def test_rejected_sources_name_value_and_forms(value, match):
    with pytest.raises(DatasetError, match=match) as info:
        classify_source(value)
    assert repr(value.strip()) in str(info.value) or value.strip() == ""


def test_non_archive_file_is_rejected(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DatasetError, match=r"not a known archive.*\.tar\.xz.*http\(s\)://"):
        classify_source(str(tmp_path / "notes.txt"))
