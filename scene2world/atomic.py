"""Files and folders that appear whole or not at all: one temporary-name convention, atomic publishing.

Everything scene2world writes is built under a hidden temporary name beside its final place and
renamed into place when complete (a rename within one folder is atomic on POSIX filesystems), so
a failed, cancelled or killed writer never leaves a file or folder that looks finished.

The one temporary-name convention (:func:`temporary_path`)::

    .<final name>.<kind>-<pid>@<host>-<random><final suffix>

``kind`` says what the temporary is for (``partial`` for a file or folder being written,
``staging`` for a step output being built, ``trash`` for a replaced output being deleted, ``seg``
segments of a split render); ``<pid>@<host>`` names the process that made it, so that
:mod:`scene2world.leftovers` can remove the temporaries of processes killed outright (SIGKILL)
and :func:`temporaries_of` finds every temporary of one final path.
"""

from __future__ import annotations

import errno
import glob
import os
import re
import shutil
import uuid
from pathlib import Path

from scene2world.leftovers import owner_tag, remove_paths

PARTIAL = "partial"
"""Kind of a file or folder being written."""

STAGING = "staging"
"""Kind of a step output being built (:func:`scene2world.cache.staging`)."""

TRASH = "trash"
"""Kind of a replaced folder on its way out (:func:`replace_folder`)."""


def temporary_path(final: Path | str, kind: str = PARTIAL, *, token: str | None = None) -> Path:
    """A hidden sibling of ``final`` named by the convention of this module.

    ``token`` replaces the random part (e.g. ``<run>-seg0003`` for a segment that other
    processes must find by name); it must not be empty.
    """
    final = Path(final)
    if not kind or "-" in kind or "." in kind:
        raise ValueError(f"temporary kind must be a word without '-' or '.', got {kind!r}")
    if token is not None and not token:
        raise ValueError("token must not be empty")
    tail = token if token is not None else uuid.uuid4().hex[:12]
    return final.with_name(f".{final.name}.{kind}-{owner_tag()}-{tail}{final.suffix}")


def temporaries_of(final: Path | str, kind: str | None = None) -> list[Path]:
    """Every temporary (:func:`temporary_path`) of ``final`` that exists, of ``kind`` or of any kind."""
    final = Path(final)
    if not final.parent.is_dir():
        return []
    head = f".{final.name}."
    rest = re.compile(rf"{re.escape(kind) if kind else '[a-z]+'}-\d+@[A-Za-z0-9_]+-")
    found = final.parent.glob(f"{glob.escape(head)}*")
    return sorted(p for p in found if rest.match(p.name[len(head) :]))


def _write(path: Path, data: bytes) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(path)
    try:
        # O_EXCL: a fresh file with the umask's mode (the final file gets the same mode)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def atomic_write_bytes(path: Path | str, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary sibling, flushed to disk, and a rename; returns ``path``.

    Parents are created. Readers see the old file or the new one, never a part.
    """
    return _write(Path(path), bytes(data))


def atomic_write_text(path: Path | str, text: str) -> Path:
    """:func:`atomic_write_bytes` of ``text`` encoded as UTF-8."""
    return _write(Path(path), text.encode("utf-8"))


def replace_folder(new: Path | str, final: Path | str) -> Path:
    """Rename the finished folder ``new`` to ``final``, replacing whatever is there; returns ``final``.

    ``final`` is absent for no longer than two renames: the old folder (or file) is first renamed to a
    ``trash`` temporary, ``new`` takes its place and only then is the old one deleted. If ``new``
    cannot take the place, the old folder is put back and the error raised.
    """
    new, final = Path(new), Path(final)
    try:
        os.rename(new, final)
        return final
    except OSError:
        if not final.exists():
            raise
    trash = temporary_path(final, TRASH)
    os.rename(final, trash)
    try:
        os.rename(new, final)
    except BaseException:
        os.rename(trash, final)
        raise
    remove_paths([trash])
    return final


LINK_FALLBACK_ERRNOS = frozenset({errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EACCES})
"""EXDEV, EPERM, EMLINK, ENOTSUP, EACCES: a hard link is not possible here, a copy is."""


def link_or_copy(src: Path | str, dst: Path | str, *, keep_metadata: bool = True) -> str:
    """Hard-link ``src`` to ``dst``, or copy it where the filesystem cannot link; ``"link"`` or ``"copy"``.

    Parents of ``dst`` are created. ``keep_metadata``: a copy keeps the mode and times of ``src``
    (``shutil.copy2``); else it gets the umask's mode (``shutil.copyfile``). Other link errors
    (``src`` missing, ``dst`` existing) are raised as they are.
    """
    src, dst = Path(src), Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
        return "link"
    except OSError as e:
        if e.errno not in LINK_FALLBACK_ERRNOS:
            raise
    if keep_metadata:
        shutil.copy2(src, dst)
    else:
        shutil.copyfile(src, dst)
    return "copy"
