"""Placing upstream files into a run folder: safe names, paths kept inside their folder, links or copies."""

from __future__ import annotations

import shutil
from pathlib import Path, PurePosixPath

from scene2world.atomic import link_or_copy
from scene2world.errors import PackageError
from scene2world.manifest import FileRecord, Manifest, sha256_file


def check_name(value: str, what: str, where: str) -> str:
    """Return ``value`` if it is usable as one path component (a clip id, camera or sample name).

    ``what`` names the field and ``where`` the manifest, for the PackageError raised otherwise.
    """
    if not isinstance(value, str) or value in ("", ".", "..") or any(c in value for c in "/\\\x00"):
        raise PackageError(f"{where}: {what} {value!r} cannot be a folder or file name (no '/', '\\', '..', empty)")
    return value


def inside(root: Path, rel: str, where: str) -> Path:
    """``root / rel`` for a relative POSIX path that stays inside ``root``; PackageError otherwise."""
    if not isinstance(rel, str) or not rel:
        raise PackageError(f"{where}: expected a relative file path, got {rel!r}")
    pure = PurePosixPath(rel)
    if pure.is_absolute() or ".." in pure.parts or "\\" in rel:
        raise PackageError(f"{where}: path {rel!r} must be relative to the manifest's folder and stay inside it")
    return root.joinpath(*pure.parts)


def place_file(src: Path, dst: Path, *, link: bool = True) -> str:
    """Hard-link (when ``link`` and on the same filesystem) or copy ``src`` to ``dst``; return how (``link``/``copy``).

    Parents of ``dst`` are created; an existing ``dst`` is an error (PackageError).
    """
    if not src.is_file():
        raise PackageError(f"{src}: missing; the upstream step output is incomplete (re-run that step)")
    if dst.exists():
        raise PackageError(f"{dst}: two inputs map to the same run-folder path")
    try:
        if link:
            return link_or_copy(src, dst, keep_metadata=False)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
        return "copy"
    except OSError as e:
        raise PackageError(f"{src} -> {dst}: cannot {'link or ' if link else ''}copy: {e}") from e


def record_checked(
    root: Path, dst: Path, upstream: Manifest | None, upstream_rel: str | None, where: str
) -> FileRecord:
    """The FileRecord of the placed ``dst``; if ``upstream`` lists ``upstream_rel``, its size and sha256 must match.

    A mismatch means the upstream output was altered after its step wrote it: PackageError.
    """
    size = dst.stat().st_size
    digest = sha256_file(dst)
    if upstream is not None and upstream_rel is not None:
        rec = next((r for r in upstream.files if r.path == upstream_rel), None)
        if rec is not None and (rec.size != size or rec.sha256 != digest):
            raise PackageError(
                f"{where}: {upstream_rel} changed since the {upstream.step} step wrote it "
                f"(sha256 {digest[:12]}… != {rec.sha256[:12]}…); re-run `scene2world {upstream.step}`"
            )
    return FileRecord(path=dst.relative_to(root).as_posix(), size=size, sha256=digest)
