"""Step manifests: the small JSON contract every step returns and the next step reads.

A manifest lives in its step's output folder as ``manifest.json``; every path in it is
relative to that folder, so moving a folder keeps it valid. It lists each file with its size
and sha256, the settings that produced it, the upstream manifest's digest and the timings.
It is always written last, atomically: a folder without one is not a finished output.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from scene2world.atomic import atomic_write_text
from scene2world.contracts import Payload, StepName
from scene2world.errors import CacheError

MANIFEST_NAME = "manifest.json"
_CHUNK = 1 << 20


class FileRecord(BaseModel):
    """One output file: path relative to the manifest's folder, size in bytes, sha256 hex."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str = Field(description="POSIX path relative to the manifest's folder.")
    size: int = Field(ge=0, description="Size in bytes.")
    sha256: str = Field(min_length=64, max_length=64, description="sha256 of the content, hex.")


class UpstreamRef(BaseModel):
    """Where a step's input came from: the upstream step, its cache key and manifest digest."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    step: StepName
    cache_key: str
    digest: str
    manifest_path: str = Field(description="Absolute path of the upstream manifest when it was read.")


class Manifest(BaseModel):
    """What a step produced. ``data`` holds the step's own structured results (clips, videos...): the
    JSON of the step's model in :mod:`scene2world.contracts`, read with :func:`payload`."""

    model_config = ConfigDict(extra="forbid")
    _path: Path | None = PrivateAttr(None)

    schema_version: int = 1
    step: StepName
    step_version: str
    cache_key: str
    created_at: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    files: list[FileRecord] = Field(default_factory=list)
    settings: dict[str, Any] = Field(default_factory=dict)
    upstream: UpstreamRef | None = None
    timings_s: dict[str, float] = Field(default_factory=dict)
    data: dict[str, Any] = Field(default_factory=dict)
    stats: dict[str, Any] = Field(
        default_factory=dict, description="How the output was made (counts, hits); not part of the digest."
    )

    def digest(self) -> str:
        """sha256 of what the output *is* (files, settings, data). Creation time, timings, stats and
        the upstream reference are left out: identical outputs made from different inputs have the
        same digest, so the steps after them stay cached."""
        payload = {
            "step": self.step,
            "step_version": self.step_version,
            "files": [f.model_dump() for f in sorted(self.files, key=lambda f: f.path)],
            "settings": self.settings,
            "data": _without_run_facts(self.data),
        }
        return sha256_json(payload)

    @property
    def path(self) -> Path | None:
        """The file this manifest was read from (:func:`read_manifest`); None for one built in memory."""
        return self._path

    def __eq__(self, other: object) -> bool:
        """Same content, wherever each was read from."""
        if not isinstance(other, Manifest):
            return NotImplemented
        return self.__dict__ == other.__dict__

    def file(self, rel_path: str) -> FileRecord:
        """The record of ``rel_path``; CacheError if the manifest does not list it."""
        for rec in self.files:
            if rec.path == rel_path:
                return rec
        raise CacheError(f"{MANIFEST_NAME} does not list {rel_path!r}")


RUN_FACT_KEYS = frozenset({"rendered", "reused"})
"""Keys of ``data`` (at any depth) that say how an output was made in this run (which cameras were
rendered or reused from the cache), not what it is: left out of :meth:`Manifest.digest`."""


def _without_run_facts(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_run_facts(v) for k, v in value.items() if k not in RUN_FACT_KEYS}
    if isinstance(value, list):
        return [_without_run_facts(v) for v in value]
    return value


def sha256_json(payload: Any) -> str:
    """sha256 of the canonical JSON (sorted keys, no spaces) of ``payload``."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


_DIGESTS: dict[tuple[int, int, int, int], str] = {}
_DIGESTS_MAX = 200_000
_SETTLED_NS = 2_000_000_000
"""Files modified less than this long ago are not remembered: file times are coarse (a few ms),
so two writes in one tick could share a modification time (git's "racy" entries, same remedy)."""


def sha256_file(path: Path) -> str:
    """sha256 of a file's bytes, read in 1 MiB chunks.

    Hashed once per process: a file whose inode, size and modification time (ns) are unchanged
    since it was hashed in this process gets the digest from then (only files last modified
    more than 2 s before they were hashed are remembered). Hard links share an inode, so
    the copies that steps link from each other's outputs are read once per run, not once per step.
    """
    before = os.stat(path)
    key = (before.st_dev, before.st_ino, before.st_size, before.st_mtime_ns)
    if (known := _DIGESTS.get(key)) is not None:
        return known
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    digest = h.hexdigest()
    after = os.stat(path)
    settled = time.time_ns() - after.st_mtime_ns > _SETTLED_NS
    if settled and (after.st_dev, after.st_ino, after.st_size, after.st_mtime_ns) == key:
        if len(_DIGESTS) >= _DIGESTS_MAX:
            _DIGESTS.clear()
        _DIGESTS[key] = digest
    return digest


def record_files(root: Path, paths: Iterable[Path]) -> list[FileRecord]:
    """FileRecords for ``paths`` (absolute or relative to ``root``), sorted by path."""
    records = []
    for p in paths:
        full = p if p.is_absolute() else root / p
        rel = full.relative_to(root).as_posix()
        records.append(FileRecord(path=rel, size=full.stat().st_size, sha256=sha256_file(full)))
    return sorted(records, key=lambda r: r.path)


def record_tree(root: Path) -> list[FileRecord]:
    """FileRecords for every regular file under ``root`` except the manifest itself."""
    files = [p for p in root.rglob("*") if p.is_file() and not p.is_symlink() and p.name != MANIFEST_NAME]
    return record_files(root, files)


def write_manifest(folder: Path, manifest: Manifest) -> Path:
    """Write ``folder/manifest.json`` atomically and return its path."""
    path = folder / MANIFEST_NAME
    atomic_write_text(path, manifest.model_dump_json(indent=2) + "\n")
    return path


def read_manifest(path: Path) -> Manifest:
    """Read a manifest file (or the ``manifest.json`` inside a folder); CacheError if unreadable."""
    path = Path(path)
    if path.is_dir():
        path = path / MANIFEST_NAME
    try:
        manifest = Manifest.model_validate_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise CacheError(f"{path}: no manifest here; pass a folder or manifest.json written by scene2world") from e
    except (ValidationError, ValueError) as e:
        first = e.errors()[0] if isinstance(e, ValidationError) else {"loc": (), "msg": str(e)}
        loc = ".".join(str(x) for x in first["loc"]) or "(document)"
        raise CacheError(f"{path}: not a valid scene2world manifest at `{loc}`: {first['msg']}") from e
    manifest._path = path.absolute()
    return manifest


P = TypeVar("P", bound=Payload)


def payload(manifest: Manifest, model: type[P]) -> P:
    """The ``data`` of ``manifest`` as ``model``, the payload of the step that wrote it
    (:mod:`scene2world.contracts`).

    CacheError, one line naming the manifest file and the field, when the manifest was written by
    another step or its ``data`` does not fit the model (edited by hand, or damaged).
    """
    where = manifest.path or f"the {manifest.step} step's {MANIFEST_NAME}"
    if manifest.step != model.STEP:
        raise CacheError(f"{where}: a `{manifest.step}` manifest where a `{model.STEP}` one is needed")
    try:
        # strict, from the JSON text: a value of another JSON type ("2" for 2) is refused, not converted
        return model.model_validate_json(json.dumps(manifest.data), strict=True)
    except ValidationError as e:
        first = e.errors()[0]
        loc = ".".join(str(x) for x in ("data", *first["loc"]))
        found = "" if first["type"] == "missing" else f" (found {_short(first['input'])})"
        raise CacheError(
            f"{where}: `{loc}`: {first['msg']}{found}; this {model.STEP} output was edited or damaged: "
            f"delete its folder and run the {model.STEP} step again"
        ) from e


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def verify_files(folder: Path, manifest: Manifest, *, check_hash: bool = True) -> list[str]:
    """Problems with the files of ``manifest`` under ``folder`` (missing, size or sha256 changed).

    An empty list means every file is present and intact.
    """
    problems = []
    for rec in manifest.files:
        p = folder / rec.path
        if not p.is_file():
            problems.append(f"{rec.path}: missing")
        elif p.stat().st_size != rec.size:
            problems.append(f"{rec.path}: size {p.stat().st_size} != {rec.size}")
        elif check_hash and sha256_file(p) != rec.sha256:
            problems.append(f"{rec.path}: sha256 changed")
    return problems
