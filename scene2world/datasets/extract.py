"""Safe extraction of dataset archives (zip, tar, tar.gz, tar.bz2, tar.xz).

Every member is checked before a byte of it is written, and the archive is extracted into a hidden
temporary folder beside the target that is renamed into place only when everything succeeded:
a failed extraction leaves nothing behind. Refused, with a DatasetError naming the archive and the
member:

* absolute names (``/etc/x``, ``C:/x``, backslash-rooted names), names with a ``..`` component, NUL bytes;
* **links of any kind** — tar symlinks and hardlinks and zip symlink entries, whether they point inside
  or outside. Dataset archives (ClipGT parquet bundles, RDS-HQ tars) hold regular files only, the
  download step refuses links in dataset folders too, and refusing them outright rules out every
  link-following escape (``a -> /``, ``a -> ..``, chains). Re-create the archive with links
  dereferenced (``tar -h``, ``zip`` without ``-y``);
* device files, FIFOs and anything else that is not a regular file or a folder;
* more than ``max_members`` members, or more than ``max_bytes`` bytes in total (declared sizes are
  checked first, written bytes are counted too), so a zip bomb stops early.

Files are written with mode 0644 (0755 if the archive marks them executable); owners, other mode bits and
timestamps are not restored.
"""

from __future__ import annotations

import lzma
import os
import shutil
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from scene2world.atomic import replace_folder, temporary_path
from scene2world.datasets.sources import ArchiveFormat, archive_format
from scene2world.errors import DatasetError

DEFAULT_MAX_BYTES = 20 * 1024**3
"""Largest total extracted size accepted by default (matches ``DownloadConfig.max_extract_bytes``)."""
DEFAULT_MAX_MEMBERS = 200_000
"""Most archive members accepted by default."""
MAX_RATIO = 200
"""Most bytes extracted per byte of archive. Dataset files (parquet, mp4, tar of them) are already
compressed, a few to one at most; deflate can reach ~1000 to one only on degenerate data (a bomb)."""
RATIO_FLOOR_BYTES = 64 * 1024**2
"""Below this many extracted bytes the ratio is not checked (small, very repetitive text is fine)."""
_CHUNK = 1 << 20
_READ_ERRORS = (OSError, EOFError, tarfile.TarError, zipfile.BadZipFile, zlib.error, lzma.LZMAError, RuntimeError)


@dataclass(frozen=True)
class Extracted:
    """A finished extraction: the folder, how many files and bytes were written."""

    root: Path
    num_files: int
    num_bytes: int


def sniff_format(archive: Path) -> ArchiveFormat | None:
    """Return the archive format from the file's name, or else from its first bytes; None if neither tells."""
    fmt = archive_format(Path(archive).name)
    if fmt is not None:
        return fmt
    try:
        with open(archive, "rb") as fh:
            head = fh.read(6)
    except OSError as e:
        raise DatasetError(f"{archive}: cannot read the archive: {e}") from e
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return "zip"
    if head.startswith(b"\x1f\x8b"):
        return "tar.gz"
    if head.startswith(b"BZh"):
        return "tar.bz2"
    if head.startswith(b"\xfd7zXZ\x00"):
        return "tar.xz"
    try:
        return "tar" if tarfile.is_tarfile(archive) else None
    except OSError:
        return None


def extract_archive(
    archive: Path,
    dest: Path,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_members: int = DEFAULT_MAX_MEMBERS,
    overwrite: bool = False,
) -> Extracted:
    """Extract ``archive`` into the new folder ``dest``, safely and atomically.

    ``max_bytes``: largest total size of the extracted files, bytes. ``max_members``: most members (files,
    folders) accepted. ``overwrite``: replace an existing ``dest`` (swapped out only once the new one is
    complete); otherwise an existing ``dest`` is an error.

    Raises DatasetError naming the archive and the offending member (see the module docstring).
    """
    archive = Path(archive)
    dest = Path(dest).absolute()
    if not archive.is_file():
        raise DatasetError(f"{archive}: archive not found")
    if dest.exists() and not overwrite:
        raise DatasetError(f"{dest}: already exists; remove it or extract with overwrite=True")
    fmt = sniff_format(archive)
    if fmt is None:
        raise DatasetError(f"{archive}: not a zip or tar archive (.zip, .tar, .tar.gz/.tgz, .tar.bz2, .tar.xz)")

    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(dest)
    tmp.mkdir()
    try:
        budget = _Budget(archive, max_bytes, max_members)
        if fmt == "zip":
            _extract_zip(archive, tmp, budget)
        else:
            _extract_tar(archive, tmp, budget)
        os.chmod(tmp, 0o755)
        _publish(tmp, dest, overwrite=overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Extracted(root=dest, num_files=budget.files, num_bytes=budget.bytes)


class _Budget:
    """Counts members and bytes against the limits; raises DatasetError when one is exceeded."""

    def __init__(self, archive: Path, max_bytes: int, max_members: int) -> None:
        self.archive, self.max_bytes, self.max_members = archive, max_bytes, max_members
        self.members = self.files = self.bytes = 0
        self.archive_bytes = max(archive.stat().st_size, 1)

    def ratio(self, total: int, what: str) -> None:
        """DatasetError when ``total`` extracted bytes exceed :data:`MAX_RATIO` times the archive's size."""
        if total > RATIO_FLOOR_BYTES and total > MAX_RATIO * self.archive_bytes:
            raise DatasetError(
                f"{self.archive}: {what} {total} bytes from a {self.archive_bytes}-byte archive, more than "
                f"{MAX_RATIO} to one; refusing a possible archive bomb"
            )

    def member(self, name: str) -> None:
        self.members += 1
        if self.members > self.max_members:
            raise DatasetError(
                f"{self.archive}: more than {self.max_members} members (at {name!r}); refusing a possible archive bomb"
            )

    def add_bytes(self, name: str, n: int) -> None:
        self.bytes += n
        self.ratio(self.bytes, f"extracting {name!r} makes")
        if self.bytes > self.max_bytes:
            raise DatasetError(
                f"{self.archive}: extracting {name!r} would exceed the size limit of {self.max_bytes} bytes "
                "(download.max_extract_bytes); refusing a possible archive bomb"
            )


def _safe_relpath(archive: Path, name: str) -> PurePosixPath | None:
    """The member's path relative to the extraction root, or None for the root itself; DatasetError if unsafe."""
    if "\x00" in name:
        raise DatasetError(f"{archive}: member {name!r} has a NUL byte in its name")
    norm = name.replace("\\", "/")
    if norm.startswith("/") or (len(norm) >= 2 and norm[1] == ":" and norm[0].isalpha()):
        raise DatasetError(f"{archive}: member {name!r} has an absolute path; refusing to write outside the target")
    parts = [p for p in norm.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise DatasetError(f"{archive}: member {name!r} has a '..' component; refusing to write outside the target")
    return PurePosixPath(*parts) if parts else None


def _write_member(archive: Path, name: str, src: IO[bytes], target: Path, budget: _Budget, *, executable: bool) -> None:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "wb") as out:
            while chunk := src.read(_CHUNK):
                budget.add_bytes(name, len(chunk))
                out.write(chunk)
    except DatasetError:
        raise
    except _READ_ERRORS as e:
        raise DatasetError(f"{archive}: cannot extract member {name!r}: {e}") from e
    os.chmod(target, 0o755 if executable else 0o644)
    budget.files += 1


def _make_dir(archive: Path, name: str, target: Path) -> None:
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DatasetError(f"{archive}: cannot create folder for member {name!r}: {e}") from e


def _extract_zip(archive: Path, root: Path, budget: _Budget) -> None:
    try:
        zf = zipfile.ZipFile(archive)  # closed by the `with zf` below
    except (zipfile.BadZipFile, OSError) as e:
        raise DatasetError(f"{archive}: not a readable zip file: {e}") from e
    with zf:
        infos = zf.infolist()
        declared = 0
        checked: list[tuple[zipfile.ZipInfo, PurePosixPath | None]] = []
        for info in infos:  # check everything from the central directory before writing anything
            budget.member(info.filename)
            rel = _safe_relpath(archive, info.filename)
            mode = (info.external_attr >> 16) & 0xFFFF if info.create_system == 3 else 0  # 3 = Unix
            kind = stat.S_IFMT(mode)
            if kind == stat.S_IFLNK:
                raise DatasetError(
                    f"{archive}: member {info.filename!r} is a symbolic link; links are not accepted in dataset "
                    "archives (re-create it with the link's target stored as a file)"
                )
            if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
                raise DatasetError(f"{archive}: member {info.filename!r} is a special file (mode {oct(mode)})")
            if info.flag_bits & 0x1:
                raise DatasetError(f"{archive}: member {info.filename!r} is encrypted; extract it by hand")
            if not info.is_dir():
                declared += info.file_size
                if declared > budget.max_bytes:
                    raise DatasetError(
                        f"{archive}: member {info.filename!r} takes the declared total to {declared} bytes, over the "
                        f"size limit of {budget.max_bytes} (download.max_extract_bytes); refusing a possible zip bomb"
                    )
            checked.append((info, rel))
        budget.ratio(declared, "its members declare")  # before anything is written
        budget.members = 0
        for info, rel in checked:
            budget.member(info.filename)
            if rel is None:
                continue
            target = root.joinpath(*rel.parts)
            if info.is_dir():
                _make_dir(archive, info.filename, target)
                continue
            try:
                src = zf.open(info)
            except (*_READ_ERRORS, NotImplementedError) as e:
                raise DatasetError(f"{archive}: cannot read member {info.filename!r}: {e}") from e
            with src:
                executable = bool(((info.external_attr >> 16) & 0o111) and info.create_system == 3)
                _write_member(archive, info.filename, src, target, budget, executable=executable)


def _iter_tar(archive: Path, tf: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    while True:
        try:
            member = tf.next()
        except _READ_ERRORS as e:
            raise DatasetError(f"{archive}: corrupt or truncated tar archive: {e}") from e
        if member is None:
            return
        yield member


def _extract_tar(archive: Path, root: Path, budget: _Budget) -> None:
    try:
        tf = tarfile.open(archive, mode="r:*")  # noqa: SIM115 - closed by the `with tf` below
    except _READ_ERRORS as e:
        raise DatasetError(f"{archive}: not a readable tar archive: {e}") from e
    with tf:
        for member in _iter_tar(archive, tf):  # one pass: check each member, then write it
            budget.member(member.name)
            rel = _safe_relpath(archive, member.name)
            if member.issym() or member.islnk():
                what = "symbolic link" if member.issym() else "hard link"
                raise DatasetError(
                    f"{archive}: member {member.name!r} is a {what} to {member.linkname!r}; links are not accepted in "
                    "dataset archives (re-create it with `tar -h` to store link targets as files)"
                )
            if member.isdir():
                if rel is not None:
                    _make_dir(archive, member.name, root.joinpath(*rel.parts))
                continue
            if not member.isreg():
                raise DatasetError(
                    f"{archive}: member {member.name!r} is a device file, FIFO or other special file; not accepted"
                )
            if rel is None:
                raise DatasetError(f"{archive}: member {member.name!r} is a file without a name")
            if budget.bytes + member.size > budget.max_bytes:
                raise DatasetError(
                    f"{archive}: member {member.name!r} ({member.size} bytes) takes the total over the size limit of "
                    f"{budget.max_bytes} bytes (download.max_extract_bytes); refusing a possible archive bomb"
                )
            try:
                src = tf.extractfile(member)
            except _READ_ERRORS as e:
                raise DatasetError(f"{archive}: cannot read member {member.name!r}: {e}") from e
            if src is None:  # pragma: no cover - isreg() members always have a file object
                raise DatasetError(f"{archive}: member {member.name!r} has no data")
            with src:
                _write_member(
                    archive, member.name, src, root.joinpath(*rel.parts), budget, executable=bool(member.mode & 0o111)
                )


def _publish(tmp: Path, dest: Path, *, overwrite: bool) -> None:
    """Rename the finished ``tmp`` to ``dest``; with ``overwrite``, swap an existing ``dest`` out first."""
    try:
        if overwrite:
            replace_folder(tmp, dest)
        else:
            os.rename(tmp, dest)
    except OSError as e:
        raise DatasetError(f"{dest}: cannot move the extracted files into place: {e}") from e
