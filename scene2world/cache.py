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
import glob
import logging
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from scene2world import __version__
from scene2world.errors import CacheError
from scene2world.leftovers import owner_tag, remove_orphans
from scene2world.manifest import MANIFEST_NAME, Manifest, read_manifest, sha256_json, verify_files

log = logging.getLogger(__name__)

STAGING_PREFIX = ".staging-"
TRASH_PREFIX = ".trash-"


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


def _is_step_output(folder: Path) -> bool:
    return (folder / MANIFEST_NAME).is_file()


@contextlib.contextmanager
def staging(out_dir: Path) -> Iterator[Path]:
    """A fresh hidden folder beside ``out_dir`` to build an output in; removed if the block fails.

    Staging folders of ``out_dir`` left by killed processes of this host are removed first
    (:mod:`scene2world.leftovers`).

    Refuses to target a non-empty folder that is not a scene2world output, so a user's files
    are never replaced.
    """
    out_dir = Path(out_dir).absolute()
    if out_dir.exists() and (not out_dir.is_dir() or (any(out_dir.iterdir()) and not _is_step_output(out_dir))):
        raise CacheError(
            f"{out_dir}: exists and is not a scene2world output (no {MANIFEST_NAME}); choose an empty or new folder"
        )
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    prefix = f"{STAGING_PREFIX}{out_dir.name}-"
    remove_orphans(out_dir.parent.glob(f"{glob.escape(prefix)}*"))  # left by killed runs
    tmp = out_dir.parent / f"{prefix}{owner_tag()}-{uuid.uuid4().hex[:12]}"
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if tmp.exists():  # not published by the block: an error in the caller's logic
        shutil.rmtree(tmp, ignore_errors=True)


def publish(tmp: Path, out_dir: Path, key: str) -> Manifest:
    """Move a finished staging folder (its manifest already written) to ``out_dir`` atomically.

    If ``out_dir`` already holds a valid output for ``key`` (a concurrent run won), the staging
    copy is dropped. An older or broken output there is swapped out and deleted.
    """
    out_dir = Path(out_dir).absolute()
    manifest = read_manifest(tmp / MANIFEST_NAME)
    if manifest.cache_key != key:
        raise CacheError(f"{tmp}: manifest key {manifest.cache_key[:12]} does not match {key[:12]}")
    try:
        os.rename(tmp, out_dir)
        return manifest
    except OSError:
        pass  # out_dir exists (non-empty): a previous or concurrent output
    existing = lookup(out_dir, key)
    if existing is not None:
        shutil.rmtree(tmp, ignore_errors=True)
        return existing
    trash = out_dir.parent / f"{TRASH_PREFIX}{out_dir.name}-{uuid.uuid4().hex[:12]}"
    os.rename(out_dir, trash)
    os.rename(tmp, out_dir)
    shutil.rmtree(trash, ignore_errors=True)
    return manifest


def link_or_copy(src: Path, dst: Path) -> None:
    """Hard-link ``src`` to ``dst`` (same filesystem), else copy it; parents are created."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


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
