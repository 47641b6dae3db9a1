"""Content-addressed step outputs: keys, lookups and atomic publishing.

A step's output is a folder holding its files and, written last, ``manifest.json``. The
folder is a cache hit for a key when its manifest carries that key and every file it lists
is present with the recorded size and sha256; anything else is a miss, never a stale hit.

Outputs are built in a hidden staging folder beside the target and published with renames,
so a failed or cancelled step leaves nothing a later run could take for done. Two runs that
publish the same key race harmlessly: the loser finds a valid folder and drops its own copy.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_args

from scene2world import __version__
from scene2world.atomic import STAGING, replace_folder, temporaries_of, temporary_path
from scene2world.atomic import link_or_copy as link_or_copy  # the steps place their inputs with cache.link_or_copy
from scene2world.contracts import StepName
from scene2world.errors import CacheError, Scene2WorldError
from scene2world.leftovers import remove_orphans
from scene2world.manifest import MANIFEST_NAME, Manifest, read_manifest, sha256_json, verify_files

log = logging.getLogger(__name__)


def step_key(step: str, version: str, **parts: Any) -> str:
    """The cache key of a step: sha256 of its name, version and every input that shapes its output.

    ``parts`` must be JSON-serialisable (configs as dicts, upstream manifest digests, content hashes);
    never paths or run ids. The package version is part of every key, so a new release never
    serves outputs made by an older one.
    """
    return sha256_json({"step": step, "version": version, "scene2world": __version__, **parts})


def lookup(out_dir: Path, key: str) -> Manifest | None:
    """The manifest in ``out_dir`` if it was made for ``key`` and all its files are intact, else None."""
    path = Path(out_dir) / MANIFEST_NAME
    if not path.is_file():
        return None
    try:
        manifest = read_manifest(path)
    except CacheError as e:
        log.warning("ignoring unreadable cache entry %s: %s", path, e)
        return None
    if manifest.cache_key != key:
        return None
    problems = verify_files(Path(out_dir), manifest)
    if problems:
        log.info("cache entry %s is stale: %s", out_dir, "; ".join(problems[:3]))
        return None
    return manifest


def foreign_entries(folder: Path) -> list[str]:
    """What in ``folder`` scene2world did not write there, relative paths (empty: ours to replace).

    A folder is ours only when its ``manifest.json`` parses as a scene2world manifest and every
    file under it is the manifest or one of the files that manifest lists (some may be missing:
    a damaged output is still ours). Folders count only through the files inside them.
    """
    folder = Path(folder)
    try:
        manifest = read_manifest(folder / MANIFEST_NAME)
    except CacheError:
        return (
            [MANIFEST_NAME]
            if (folder / MANIFEST_NAME).exists()
            else sorted(p.relative_to(folder).as_posix() for p in folder.iterdir())
        )
    listed = {rec.path for rec in manifest.files} | {MANIFEST_NAME}
    return sorted(
        rel
        for p in folder.rglob("*")
        if (p.is_symlink() or not p.is_dir()) and (rel := p.relative_to(folder).as_posix()) not in listed
    )


def check_replaceable(out_dir: Path) -> None:
    """CacheError unless ``out_dir`` is absent, an empty folder, or a scene2world output (:func:`foreign_entries`)."""
    out_dir = Path(out_dir)
    if not out_dir.exists() and not out_dir.is_symlink():
        return
    if out_dir.is_symlink() or not out_dir.is_dir():
        raise CacheError(f"{out_dir}: exists and is not a folder; choose an empty or new folder as the output")
    if not any(out_dir.iterdir()):
        return
    foreign = foreign_entries(out_dir)
    if foreign:
        more = f" and {len(foreign) - 1} more" if len(foreign) > 1 else ""
        raise CacheError(
            f"{out_dir}: not a scene2world output (it holds {foreign[0]!r}{more}, which scene2world did not "
            "write); nothing was replaced: choose an empty or new folder as the output, or move those files away"
        )


def make_read_only(folder: Path) -> None:
    """Remove write permission from the files under ``folder`` that it alone holds (folders stay
    writable, so our own code can still replace or delete them).

    A file with other hard links (a user's dataset file linked by the download step, an upstream
    output linked by a later step) is left as it is: its mode is the other name's too, and an
    upstream output was made read-only when it was published.
    """
    for path in Path(folder).rglob("*"):
        if path.is_file() and not path.is_symlink():
            st = path.stat()
            mode = st.st_mode
            if mode & 0o222 and st.st_nlink == 1:
                with contextlib.suppress(OSError):
                    path.chmod(mode & ~0o222)


@contextlib.contextmanager
def staging(out_dir: Path) -> Iterator[Path]:
    """A fresh hidden folder beside ``out_dir`` to build an output in; removed if the block fails.

    Staging folders of ``out_dir`` left by killed processes of this host are removed first
    (:mod:`scene2world.leftovers`).

    Refuses (CacheError) to target a non-empty folder that is not wholly a scene2world output
    (:func:`check_replaceable`), so a user's files are never replaced.
    """
    out_dir = Path(out_dir).absolute()
    check_replaceable(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    remove_orphans(temporaries_of(out_dir, STAGING))  # left by killed runs
    tmp = temporary_path(out_dir, STAGING)
    tmp.mkdir()
    try:
        yield tmp
    except BaseException as e:
        if isinstance(e, Scene2WorldError) and str(tmp) in str(e):  # its message points into the staging folder
            kept = keep_logs(tmp, failed_dir(out_dir))
            if kept is not None:
                _point_message_at(e, tmp, kept)
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, OSError) and e.errno == errno.ENOSPC and not isinstance(e, Scene2WorldError):
            writing = f" (writing {e.filename})" if e.filename else ""
            raise DiskFullError(
                f"{out_dir}: No space left on device{writing}; nothing was published: free some space or "
                "choose a data root (or --out) on a larger disk"
            ) from e
        raise
    if tmp.exists():  # not published by the block: an error in the caller's logic
        shutil.rmtree(tmp, ignore_errors=True)


class DiskFullError(CacheError, OSError):
    """A step ran out of disk space (ENOSPC); one line naming the output. Also an ``OSError``, so
    callers that turn OSErrors into their own step's error keep doing so."""

    def __init__(self, message: str) -> None:
        CacheError.__init__(self, message)
        self.errno = errno.ENOSPC


STEP_FOLDERS: tuple[str, ...] = get_args(StepName)
"""The data root's step folders (one per step, named after it)."""
FAILED_DIR = "failed"
LOGS_DIR = "logs"
"""The name of a folder of logs: kept from a failed step (:func:`keep_logs`), published with a step's outputs."""


def failed_dir(out_dir: Path) -> Path:
    """Where the logs of a failed attempt at ``out_dir`` are kept: ``<data_root>/failed/<step>-<UTC time>``
    for a step folder of the data root, else ``<parent>/failed/<name>-<UTC time>``."""
    out_dir = Path(out_dir).absolute()
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    if out_dir.parent.name in STEP_FOLDERS:
        return out_dir.parent.parent / FAILED_DIR / f"{out_dir.parent.name}-{stamp}-{uuid.uuid4().hex[:6]}"
    return out_dir.parent / FAILED_DIR / f"{out_dir.name}-{stamp}-{uuid.uuid4().hex[:6]}"


def keep_logs(tmp: Path, dest: Path) -> Path | None:
    """Move every ``logs`` folder and ``*.log`` file under the staging folder ``tmp`` to ``dest``
    (same relative paths); ``dest`` when something was kept, else None. Best effort."""
    found = [p for p in tmp.rglob("*") if (p.is_dir() and p.name == LOGS_DIR) or (p.is_file() and p.suffix == ".log")]
    found = [p for p in found if not any(q in p.parents for q in found)]  # outermost only
    moved = False
    for path in found:
        target = dest / path.relative_to(tmp)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.rename(path, target)
            moved = True
        except OSError:
            continue
    return dest if moved else None


def _point_message_at(error: BaseException, tmp: Path, kept: Path) -> None:
    """Make a failure's message name the kept logs instead of the staging folder that is deleted."""
    log.warning("logs of the failed step are kept in %s", kept)
    if error.args and isinstance(error.args[0], str):
        error.args = (error.args[0].replace(str(tmp), str(kept)), *error.args[1:])


def publish(tmp: Path, out_dir: Path, key: str) -> Manifest:
    """Move a finished staging folder (its manifest already written) to ``out_dir`` atomically.

    If ``out_dir`` already holds a valid output for ``key`` (a concurrent run won), the staging
    copy is dropped. An older or broken output there is swapped out and deleted, but only when
    it holds nothing but what its own manifest lists (:func:`check_replaceable`). Published
    files are made read-only (:func:`make_read_only`).
    """
    out_dir = Path(out_dir).absolute()
    manifest = read_manifest(tmp / MANIFEST_NAME)
    if manifest.cache_key != key:
        raise CacheError(f"{tmp}: manifest key {manifest.cache_key[:12]} does not match {key[:12]}")
    make_read_only(tmp)
    try:
        os.rename(tmp, out_dir)
        return manifest
    except OSError:
        pass  # out_dir exists (non-empty): a previous or concurrent output
    existing = lookup(out_dir, key)
    if existing is not None:
        shutil.rmtree(tmp, ignore_errors=True)
        return existing
    check_replaceable(out_dir)
    replace_folder(tmp, out_dir)
    return manifest


class StepResult:
    """What a step function returns: its manifest, the folder it lives in, and whether it was a hit."""

    __slots__ = ("cache_hit", "manifest", "out_dir")

    def __init__(self, manifest: Manifest, out_dir: Path, cache_hit: bool) -> None:
        self.manifest = manifest
        self.out_dir = Path(out_dir)
        self.cache_hit = cache_hit

    @property
    def manifest_path(self) -> Path:
        """Absolute path of the step's ``manifest.json``."""
        return self.out_dir / MANIFEST_NAME

    def summary(self) -> dict[str, Any]:
        """A small JSON-able record for Prefect results and the CLI."""
        return {
            "step": self.manifest.step,
            "manifest": str(self.manifest_path),
            "cache_key": self.manifest.cache_key,
            "cache_hit": self.cache_hit,
            "files": len(self.manifest.files),
            "bytes": sum(f.size for f in self.manifest.files),
        }


def store_dir(data_root: Path, step: str, key: str) -> Path:
    """Default output folder of ``step`` for ``key`` inside the data root."""
    return Path(data_root).absolute() / step / key[:20]
