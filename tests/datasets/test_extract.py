from __future__ import annotations

import io
import os
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from scene2world.datasets.extract import extract_archive, sniff_format
from scene2world.errors import DatasetError

pytestmark = pytest.mark.timeout(20)

FILES = {"clip/a.parquet": b"a" * 1000, "clip/sub/b.json": b"{}", "top.txt": b"hello"}


def _zip(path: Path, files: dict[str, bytes], *, dirs: tuple[str, ...] = ()) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for d in dirs:
            zf.writestr(zipfile.ZipInfo(d), b"")
        for name, data in files.items():
            zf.writestr(name, data)
    return path


def _tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]], mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode) as tf:
        for info, data in members:
            if data is not None:
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
            else:
                tf.addfile(info)
    return path


def _reg(name: str, data: bytes, mode: int = 0o644) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.mode = mode
    return info, data


def _special(name: str, kind: bytes, linkname: str = "") -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info, None


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


def test_zip_extracts_files_and_folders(tmp_path):
    archive = _zip(tmp_path / "d.zip", FILES, dirs=("empty/",))
    res = extract_archive(archive, tmp_path / "out")
    assert _tree(res.root) == FILES
    assert (res.root / "empty").is_dir()
    assert (res.num_files, res.num_bytes) == (3, sum(map(len, FILES.values())))
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize(
    ("suffix", "mode"), [(".tar", "w"), (".tar.gz", "w:gz"), (".tar.bz2", "w:bz2"), (".txz", "w:xz")]
)
def test_tar_flavours(tmp_path, suffix, mode):
    members = [_reg(n, d) for n, d in FILES.items()] + [_reg("run.sh", b"#!/bin/sh\n", 0o755)]
    archive = _tar(tmp_path / f"d{suffix}", members, mode)
    root = extract_archive(archive, tmp_path / "out").root
    assert _tree(root) == {**FILES, "run.sh": b"#!/bin/sh\n"}
    assert stat.S_IMODE((root / "run.sh").stat().st_mode) == 0o755
    assert stat.S_IMODE((root / "top.txt").stat().st_mode) == 0o644


def test_format_sniffed_without_suffix(tmp_path):
    zipped = _zip(tmp_path / "download", FILES)
    assert sniff_format(zipped) == "zip"
    tgz = _tar(tmp_path / "blob", [_reg("x", b"1")])
    assert sniff_format(tgz) == "tar.gz"
    assert _tree(extract_archive(tgz, tmp_path / "out").root) == {"x": b"1"}
    (tmp_path / "junk").write_bytes(b"not an archive at all")
    with pytest.raises(DatasetError, match="not a zip or tar"):
        extract_archive(tmp_path / "junk", tmp_path / "o2")


@pytest.mark.parametrize("name", ["../evil.txt", "clip/../../evil.txt", "..\\evil.txt", "a/.."])
def test_zip_slip_is_refused(tmp_path, name):
    archive = _zip(tmp_path / "d.zip", {"ok.txt": b"1", name: b"pwned"})
    with pytest.raises(DatasetError, match=r"d\.zip: member .*'\.\.' component") as info:
        extract_archive(archive, tmp_path / "work" / "out")
    assert repr(name) in str(info.value)
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "work" / "evil.txt").exists()
    assert not (tmp_path / "work" / "out").exists() and _leftovers(tmp_path / "work") == []


@pytest.mark.parametrize("name", ["/etc/evil", "C:/evil", "\\evil"])
def test_absolute_paths_are_refused(tmp_path, name):
    archive = _tar(tmp_path / "d.tar.gz", [_reg("ok", b"1"), _reg(name, b"x")])
    with pytest.raises(DatasetError, match="absolute path"):
        extract_archive(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists() and _leftovers(tmp_path) == []


def test_tar_symlink_escape_is_refused(tmp_path):
    archive = _tar(tmp_path / "d.tar.gz", [_special("clip", tarfile.SYMTYPE, "/etc"), _reg("clip/passwd", b"x")])
    with pytest.raises(DatasetError, match=r"member 'clip' is a symbolic link to '/etc'"):
        extract_archive(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists() and _leftovers(tmp_path) == []


@pytest.mark.parametrize(
    ("kind", "target", "what"),
    [
        (tarfile.SYMTYPE, "a.txt", "symbolic link"),
        (tarfile.LNKTYPE, "a.txt", "hard link"),
        (tarfile.LNKTYPE, "../../etc/passwd", "hard link"),
    ],
)
def test_any_link_is_refused_even_inside(tmp_path, kind, target, what):
    archive = _tar(tmp_path / "d.tar", [_reg("a.txt", b"1"), _special("b.txt", kind, target)], "w")
    with pytest.raises(DatasetError, match=f"member 'b.txt' is a {what}"):
        extract_archive(archive, tmp_path / "out")


def test_zip_symlink_entry_is_refused(tmp_path):
    path = tmp_path / "d.zip"
    with zipfile.ZipFile(path, "w") as zf:
        info = zipfile.ZipInfo("link")
        info.create_system = 3
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(DatasetError, match="'link' is a symbolic link"):
        extract_archive(path, tmp_path / "out")


@pytest.mark.parametrize("kind", [tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE])
def test_device_files_are_refused(tmp_path, kind):
    archive = _tar(tmp_path / "d.tar.gz", [_special("dev/null", kind)])
    with pytest.raises(DatasetError, match="'dev/null' is a device file"):
        extract_archive(archive, tmp_path / "out")


def test_zip_bomb_refused_before_writing(tmp_path):
    archive = _zip(tmp_path / "bomb.zip", {"small": b"x", "zeros": bytes(5_000_000)})
    assert archive.stat().st_size < 50_000
    with pytest.raises(DatasetError, match=r"bomb\.zip: member 'zeros'.*size limit of 1000000"):
        extract_archive(archive, tmp_path / "out", max_bytes=1_000_000)
    assert not (tmp_path / "out").exists() and _leftovers(tmp_path) == []


def test_tar_bomb_refused(tmp_path):
    archive = _tar(tmp_path / "bomb.tar.gz", [_reg("a", bytes(600_000)), _reg("b", bytes(600_000))])
    with pytest.raises(DatasetError, match=r"member 'b'.*size limit"):
        extract_archive(archive, tmp_path / "out", max_bytes=1_000_000)
    assert not (tmp_path / "out").exists() and _leftovers(tmp_path) == []


def test_member_count_limit(tmp_path):
    archive = _zip(tmp_path / "many.zip", {f"f{i}": b"" for i in range(20)})
    with pytest.raises(DatasetError, match="more than 10 members"):
        extract_archive(archive, tmp_path / "out", max_members=10)
    tar = _tar(tmp_path / "many.tar", [_reg(f"f{i}", b"") for i in range(20)], "w")
    with pytest.raises(DatasetError, match="more than 10 members"):
        extract_archive(tar, tmp_path / "out", max_members=10)


def test_corrupt_archives(tmp_path):
    good = _tar(tmp_path / "d.tar.gz", [_reg("a", os.urandom(100_000))])
    (tmp_path / "cut.tar.gz").write_bytes(good.read_bytes()[:50_000])
    with pytest.raises(DatasetError, match=r"cut\.tar\.gz"):
        extract_archive(tmp_path / "cut.tar.gz", tmp_path / "out")
    (tmp_path / "bad.zip").write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(DatasetError, match=r"bad\.zip"):
        extract_archive(tmp_path / "bad.zip", tmp_path / "out")
    assert _leftovers(tmp_path) == []


def test_existing_destination(tmp_path):
    archive = _zip(tmp_path / "d.zip", FILES)
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with pytest.raises(DatasetError, match="already exists"):
        extract_archive(archive, out)
    extract_archive(archive, out, overwrite=True)
    assert _tree(out) == FILES and _leftovers(tmp_path) == []


def test_file_then_folder_of_same_name_is_an_error(tmp_path):
    archive = _tar(tmp_path / "d.tar", [_reg("a", b"1"), _reg("a/b", b"2")], "w")
    with pytest.raises(DatasetError, match="member 'a/b'"):
        extract_archive(archive, tmp_path / "out")


def test_compression_ratio_refuses_a_bomb_under_the_size_cap(tmp_path, monkeypatch):
    from scene2world.datasets import extract

    monkeypatch.setattr(extract, "RATIO_FLOOR_BYTES", 1_000_000)
    archive = _zip(tmp_path / "bomb.zip", {"zeros": bytes(5_000_000)})  # ~1000:1, far below the 20 GiB cap
    with pytest.raises(DatasetError, match=r"bomb\.zip: its members declare 5000000 bytes .* more than 200 to one"):
        extract_archive(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists() and _leftovers(tmp_path) == []
    tar = _tar(tmp_path / "bomb.tar.gz", [_reg("a", bytes(3_000_000))])
    with pytest.raises(DatasetError, match=r"bomb\.tar\.gz: extracting 'a' makes .* more than 200 to one"):
        extract_archive(tar, tmp_path / "out")
    assert not (tmp_path / "out").exists() and _leftovers(tmp_path) == []
    fine = _zip(tmp_path / "fine.zip", {"zeros": bytes(900_000)})  # below the floor: accepted
    assert extract_archive(fine, tmp_path / "fine").num_bytes == 900_000
