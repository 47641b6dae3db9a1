"""The run folder as one archive (zip or tar.gz), written beside it under a temporary name, then renamed.

Members are the folder's regular files and folders under one top folder (the run's name), sorted, all as
plain entries: hard-linked files are stored as full copies (no tar hardlink members), owner names are not
stored. Zip stores already-compressed media (mp4, png, ...) without recompressing it. A ``<archive>.sha256``
file in ``sha256sum`` format is written beside the archive.
"""

from __future__ import annotations

import os
import stat
import tarfile
import zipfile
from pathlib import Path

from scene2world.atomic import atomic_write_text, temporary_path
from scene2world.config import ArchiveKind
from scene2world.errors import PackageError
from scene2world.manifest import sha256_file

STORED_SUFFIXES = frozenset({".mp4", ".png", ".jpg", ".jpeg", ".zip", ".gz", ".xz", ".bz2", ".parquet", ".tar"})
"""Zip stores these uncompressed (their content is compressed already)."""


def archive_path(run_dir: Path, kind: ArchiveKind) -> Path:
    """``<run_dir>.zip`` or ``<run_dir>.tar.gz``: where the archive of ``run_dir`` goes."""
    run_dir = Path(run_dir)
    return run_dir.with_name(f"{run_dir.name}.{kind}")


def checksum_path(archive: Path) -> Path:
    """``<archive>.sha256``, the archive's checksum file."""
    return archive.with_name(archive.name + ".sha256")


def _entries(folder: Path) -> list[Path]:
    entries = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        base = Path(dirpath)
        for name in sorted([*dirnames, *filenames]):
            path = base / name
            mode = path.lstat().st_mode
            if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
                raise PackageError(f"{path}: only files and folders can be archived (a link or special file)")
            entries.append(path)
    return sorted(entries, key=lambda p: p.relative_to(folder).as_posix())


def write_archive_file(folder: Path, dest: Path, kind: ArchiveKind, *, top: str | None = None) -> Path:
    """Write ``folder`` as a ``kind`` archive to ``dest`` (directly; see :func:`write_archive` for the safe way).

    ``top``: name of the top folder inside the archive (default: ``folder``'s name).
    """
    folder = Path(folder)
    top = top or folder.name
    entries = _entries(folder)
    if kind == "zip":
        with zipfile.ZipFile(dest, "w", allowZip64=True, strict_timestamps=False) as zf:
            zf.write(folder, f"{top}/", compress_type=zipfile.ZIP_STORED)
            for path in entries:
                arcname = f"{top}/{path.relative_to(folder).as_posix()}"
                if path.is_dir():
                    zf.write(path, arcname + "/", compress_type=zipfile.ZIP_STORED)
                else:
                    stored = path.suffix.lower() in STORED_SUFFIXES
                    zf.write(path, arcname, compress_type=zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED)
    elif kind == "tar.gz":
        with tarfile.open(dest, "w:gz", compresslevel=6, format=tarfile.PAX_FORMAT) as tf:
            tf.addfile(_tar_info(folder, top))
            for path in entries:
                info = _tar_info(path, f"{top}/{path.relative_to(folder).as_posix()}")
                if info.isdir():
                    tf.addfile(info)
                else:
                    with open(path, "rb") as fh:
                        tf.addfile(info, fh)
    else:
        raise PackageError(f"archive kind {kind!r}: expected 'zip' or 'tar.gz'")
    return dest


def _tar_info(path: Path, arcname: str) -> tarfile.TarInfo:
    st = path.stat()
    info = tarfile.TarInfo(arcname)
    info.mtime = int(st.st_mtime)
    if stat.S_ISDIR(st.st_mode):
        info.type, info.mode, info.size = tarfile.DIRTYPE, 0o755, 0
    else:
        info.type, info.mode, info.size = tarfile.REGTYPE, 0o644 | (st.st_mode & 0o111), st.st_size
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def write_archive(folder: Path, dest: Path, kind: ArchiveKind, *, top: str | None = None) -> Path:
    """Write ``folder`` as an archive to ``dest`` through a temporary sibling and an atomic rename.

    Also writes ``<dest>.sha256``. Nothing named ``dest`` exists until the archive is complete.
    """
    dest = Path(dest)
    tmp = stage_archive(folder, dest, kind, top=top)
    return commit_archive(tmp, dest)


def stage_archive(folder: Path, dest: Path, kind: ArchiveKind, *, top: str | None = None) -> Path:
    """Write the archive to a hidden temporary file beside ``dest`` and return that file's path."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(dest)
    try:
        write_archive_file(folder, tmp, kind, top=top)
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise PackageError(f"{dest}: cannot write the archive: {e}") from e
        raise
    return tmp


def commit_archive(tmp: Path, dest: Path) -> Path:
    """Rename a staged archive to ``dest`` and write ``<dest>.sha256``; returns ``dest``."""
    digest = sha256_file(tmp)
    os.chmod(tmp, 0o644)
    os.replace(tmp, dest)
    sums = checksum_path(dest)
    atomic_write_text(sums, f"{digest}  {dest.name}\n")
    os.chmod(sums, 0o644)
    return dest


def archive_members(archive: Path) -> list[str]:
    """Names of the files (not folders) inside a zip or tar.gz archive, sorted."""
    archive = Path(archive)
    if archive.name.endswith(".zip"):
        with zipfile.ZipFile(archive) as zf:
            return sorted(i.filename for i in zf.infolist() if not i.is_dir())
    with tarfile.open(archive, "r:*") as tf:
        return sorted(m.name for m in tf.getmembers() if m.isfile())
