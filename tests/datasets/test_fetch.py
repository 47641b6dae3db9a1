from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path

import pytest

from scene2world.datasets.fetch import PART_SUFFIX, SIDECAR_SUFFIX, fetch
from scene2world.errors import DatasetError

pytestmark = pytest.mark.timeout(30)

BODY = os.urandom(200_000)
SHA = hashlib.sha256(BODY).hexdigest()
FAST = {"backoff_s": 0.0, "timeout_s": 5.0}


def _part(dest: Path) -> Path:
    return dest.with_name(dest.name + PART_SUFFIX)


def test_plain_download_writes_file_sidecar_and_no_part(http_server, tmp_path):
    url = http_server.add("/data/scene.zip", BODY)
    seen_progress = []
    res = fetch(url, tmp_path, progress=lambda done, total: seen_progress.append((done, total)), **FAST)
    assert res.path == tmp_path / "scene.zip"
    assert res.path.read_bytes() == BODY
    assert (res.sha256, res.size, res.downloaded, res.not_modified, res.resumed) == (SHA, len(BODY), True, False, False)
    assert res.etag == '"v1"' and res.attempts == 1
    assert seen_progress[-1] == (len(BODY), len(BODY))
    meta = json.loads((tmp_path / ("scene.zip" + SIDECAR_SUFFIX)).read_text())
    assert meta["etag"] == '"v1"' and meta["sha256"] == SHA and meta["url"] == url
    assert not _part(res.path).exists()
    assert http_server.requests_for("/data/scene.zip")[0].headers["accept-encoding"] == "identity"


def test_dropped_connection_resumes_with_range(http_server, tmp_path):
    url = http_server.add("/a.zip", BODY, failures=["drop:70000"])
    res = fetch(url, tmp_path, retries=2, **FAST)
    assert res.path.read_bytes() == BODY
    assert res.resumed and res.attempts == 2
    first, second = http_server.requests_for("/a.zip")
    assert "range" not in first.headers
    assert second.headers["range"] == "bytes=70000-"
    assert second.headers["if-range"] == '"v1"'
    assert second.status == 206


def test_two_drops_resume_twice(http_server, tmp_path):
    url = http_server.add("/a.zip", BODY, failures=["drop:1000", "drop:5000"])
    res = fetch(url, tmp_path, retries=3, **FAST)
    assert res.path.read_bytes() == BODY and res.attempts == 3
    assert [s.headers.get("range") for s in http_server.requests_for("/a.zip")] == [
        None,
        "bytes=1000-",
        "bytes=6000-",
    ]


def test_server_without_ranges_restarts_from_zero(http_server, tmp_path):
    url = http_server.add("/a.zip", BODY, ranges=False, failures=["drop:50000"])
    res = fetch(url, tmp_path, retries=1, **FAST)
    assert res.path.read_bytes() == BODY
    assert not res.resumed
    assert http_server.requests_for("/a.zip")[1].status == 200


def test_changed_file_behind_partial_restarts(http_server, tmp_path):
    url = http_server.add("/a.zip", BODY, failures=["drop:50000"])
    with pytest.raises(DatasetError, match="1 attempt"):
        fetch(url, tmp_path, retries=0, **FAST)
    assert _part(tmp_path / "a.zip").stat().st_size == 50000
    new_body = BODY[::-1]
    http_server.add("/a.zip", new_body, etag='"v2"')
    res = fetch(url, tmp_path, **FAST)
    assert res.path.read_bytes() == new_body
    last = http_server.requests_for("/a.zip")[-1]
    assert last.headers["if-range"] == '"v1"' and last.status == 200


def test_503_then_ok_is_retried(http_server, tmp_path):
    url = http_server.add("/a.zip", BODY, failures=["503", "503"])
    res = fetch(url, tmp_path, retries=2, **FAST)
    assert res.path.read_bytes() == BODY and res.attempts == 3


def test_429_is_retried(http_server, tmp_path):
    url = http_server.add("/a.zip", BODY, failures=["429"])
    assert fetch(url, tmp_path, retries=1, **FAST).attempts == 2


def test_retries_run_out(http_server, tmp_path):
    url = http_server.add("/a.zip", BODY, failures=["503"] * 5)
    with pytest.raises(DatasetError, match=r"failed after 3 attempt\(s\): HTTP 503"):
        fetch(url, tmp_path, retries=2, **FAST)
    assert not (tmp_path / "a.zip").exists()


@pytest.mark.parametrize("status", ["404", "403"])
def test_client_errors_are_not_retried(http_server, tmp_path, status):
    url = http_server.add("/a.zip", BODY, failures=[status])
    with pytest.raises(DatasetError, match=f"HTTP {status}.*not retried"):
        fetch(url, tmp_path, retries=4, **FAST)
    assert len(http_server.requests_for("/a.zip")) == 1


def test_connection_refused_is_retried_then_fails(tmp_path):
    sock = __import__("socket").socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    with pytest.raises(DatasetError, match=r"2 attempt\(s\).*ConnectionError"):
        fetch(f"http://127.0.0.1:{port}/x.zip", tmp_path, retries=1, **FAST)


def test_sha256_pin_mismatch_removes_download(http_server, tmp_path):
    url = http_server.add("/a.zip", BODY)
    with pytest.raises(DatasetError, match="does not match the pinned sha256"):
        fetch(url, tmp_path, sha256="0" * 64, **FAST)
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == []


def test_sha256_pin_match_and_cached_pinned_file_needs_no_request(http_server, tmp_path):
    url = http_server.add("/a.zip", BODY)
    assert fetch(url, tmp_path, sha256=SHA.upper(), **FAST).sha256 == SHA
    again = fetch(url, tmp_path, sha256=SHA, **FAST)
    assert again.path.read_bytes() == BODY and not again.downloaded and again.attempts == 0
    assert len(http_server.requests_for("/a.zip")) == 1


def test_bad_pin_format(tmp_path):
    with pytest.raises(DatasetError, match="64 hex"):
        fetch("http://127.0.0.1:1/a.zip", tmp_path, sha256="abc")


def test_conditional_get_etag_not_modified(http_server, tmp_path):
    url = http_server.add("/a.zip", BODY)
    first = fetch(url, tmp_path, **FAST)
    mtime = first.path.stat().st_mtime_ns
    second = fetch(url, tmp_path, **FAST)
    assert second.not_modified and not second.downloaded and second.sha256 == SHA
    assert second.path.stat().st_mtime_ns == mtime
    req = http_server.requests_for("/a.zip")[-1]
    assert req.headers["if-none-match"] == '"v1"' and req.status == 304


def test_conditional_get_last_modified_only(http_server, tmp_path):
    url = http_server.add("/a.zip", BODY, etag=None)
    fetch(url, tmp_path, **FAST)
    second = fetch(url, tmp_path, **FAST)
    assert second.not_modified
    req = http_server.requests_for("/a.zip")[-1]
    assert "if-none-match" not in req.headers and "if-modified-since" in req.headers


def test_conditional_get_changed_downloads_new_version(http_server, tmp_path):
    url = http_server.add("/a.zip", BODY)
    fetch(url, tmp_path, **FAST)
    http_server.add("/a.zip", b"new content", etag='"v2"')
    res = fetch(url, tmp_path, **FAST)
    assert res.downloaded and not res.not_modified and res.path.read_bytes() == b"new content"
    assert json.loads((tmp_path / ("a.zip" + SIDECAR_SUFFIX)).read_text())["etag"] == '"v2"'


def test_not_modified_but_cached_file_altered_downloads_again(http_server, tmp_path):
    url = http_server.add("/a.zip", BODY)
    res = fetch(url, tmp_path, **FAST)
    data = bytearray(res.path.read_bytes())
    data[10] ^= 0xFF
    res.path.write_bytes(bytes(data))
    again = fetch(url, tmp_path, **FAST)
    assert again.downloaded and again.path.read_bytes() == BODY


def test_complete_part_answered_416_is_finished_without_body(http_server, tmp_path):
    url = http_server.add("/a.zip", BODY)
    dest = tmp_path / "a.zip"
    _part(dest).write_bytes(BODY)
    _part(dest).with_name(_part(dest).name + ".json").write_text(json.dumps({"url": url, "etag": '"v1"'}))
    res = fetch(url, tmp_path, **FAST)
    assert res.path.read_bytes() == BODY and res.resumed
    assert http_server.requests_for("/a.zip")[0].status == 416


def test_oversized_part_answered_416_restarts(http_server, tmp_path):
    url = http_server.add("/a.zip", BODY)
    dest = tmp_path / "a.zip"
    _part(dest).write_bytes(BODY + b"junk")
    _part(dest).with_name(_part(dest).name + ".json").write_text(json.dumps({"url": url, "etag": '"v1"'}))
    res = fetch(url, tmp_path, retries=1, **FAST)
    assert res.path.read_bytes() == BODY
    assert [s.status for s in http_server.requests_for("/a.zip")] == [416, 200]


def test_filename_from_url_is_sanitised(http_server, tmp_path):
    url = http_server.add("/dl/my%20data%3F.tar.gz", BODY)
    assert fetch(url, tmp_path, **FAST).path.name == "my_data_.tar.gz"


# ------------------------------------------------------------------------------------------------------- local


def _zip(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("clip/a.txt", "hello")
    return path


def test_local_folder_is_used_in_place(tmp_path):
    (tmp_path / "ds").mkdir()
    res = fetch(str(tmp_path / "ds"), tmp_path / "dl")
    assert res.path == tmp_path / "ds" and res.in_place and res.sha256 is None
    assert not (tmp_path / "dl").exists()


def test_folder_with_pin_is_an_error(tmp_path):
    with pytest.raises(DatasetError, match="folder; a sha256 pin"):
        fetch(str(tmp_path), tmp_path / "dl", sha256="0" * 64)


def test_local_archive_in_place_and_file_url(tmp_path):
    archive = _zip(tmp_path / "d.zip")
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    res = fetch(str(archive), tmp_path / "dl", sha256=digest)
    assert res.path == archive and res.in_place and res.sha256 == digest
    res2 = fetch(archive.as_uri(), tmp_path / "dl")
    assert res2.path == archive and res2.sha256 == digest and res2.source.scheme == "file"


def test_local_archive_copied(tmp_path):
    archive = _zip(tmp_path / "d.zip")
    res = fetch(str(archive), tmp_path / "dl", copy_local=True)
    assert res.path == tmp_path / "dl" / "d.zip" and not res.in_place
    assert res.path.read_bytes() == archive.read_bytes()
    assert [p.name for p in (tmp_path / "dl").iterdir()] == ["d.zip"]


def test_local_archive_pin_mismatch_keeps_users_file(tmp_path):
    archive = _zip(tmp_path / "d.zip")
    with pytest.raises(DatasetError, match="does not match the pinned"):
        fetch(str(archive), tmp_path / "dl", sha256="f" * 64)
    assert archive.exists()
