"""File digests: hashed once per process, yet an edited file is never served an old digest."""

from __future__ import annotations

import hashlib
import os

from scene2world.manifest import _DIGESTS, sha256_file


def test_digest_follows_edits_and_is_shared_by_hard_links(tmp_path):
    path = tmp_path / "a.bin"
    path.write_bytes(b"x" * 1000)
    old = path.stat().st_mtime_ns - 10_000_000_000  # written 10 s ago: settled, so remembered
    os.utime(path, ns=(old, old))
    first = sha256_file(path)
    assert first == hashlib.sha256(b"x" * 1000).hexdigest()
    os.link(path, tmp_path / "b.bin")
    assert sha256_file(tmp_path / "b.bin") == first
    assert (path.stat().st_ino, 1000) in {(k[1], k[2]) for k in _DIGESTS}

    stat = path.stat()
    path.write_bytes(b"y" * 1000)  # same size, new bytes
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000))
    assert sha256_file(path) == hashlib.sha256(b"y" * 1000).hexdigest()

    path.unlink()
    path.write_bytes(b"z" * 1000)  # a new file (inode) under the old name
    assert sha256_file(path) == hashlib.sha256(b"z" * 1000).hexdigest()


def test_a_file_written_just_now_is_not_remembered(tmp_path):
    path = tmp_path / "fresh.bin"
    path.write_bytes(b"a" * 10)
    sha256_file(path)
    path.write_bytes(b"b" * 10)  # same size, possibly the same coarse modification time
    assert sha256_file(path) == hashlib.sha256(b"b" * 10).hexdigest()
