"""The last generation of a dataset: a small JSON file under the data root, written atomically.

``<data_root>/regenerate/<slug>.json`` holds, for the last regeneration of one source that
finished: the source's content sha256 and HTTP validators, each clip's content digest, the
sample names, the packaged run folder and the report of that run. A failed or cancelled
regeneration never writes it, so it always describes outputs that exist.
"""

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from scene2world.atomic import atomic_write_text

STATE_DIR = "regenerate"


class Generation(BaseModel):
    """One finished regeneration of one dataset source."""

    model_config = ConfigDict(extra="forbid")

    source: str = Field(description="download.source as configured (a dataset name, URL or path).")
    resolved: str = Field(description="The URL or path it resolved to.")
    content_sha256: str = Field(description="sha256 of the archive (or tree digest of the folder).")
    etag: str | None = None
    last_modified: str | None = None
    clips: dict[str, str] = Field(default_factory=dict, description="clip id -> content digest of its files.")
    samples: list[str] = Field(default_factory=list, description="Inference sample names.")
    run_dir: str = Field(description="The packaged run folder (absolute).")
    generated_at: str
    flow_run_id: str | None = None
    report: dict[str, Any] = Field(default_factory=dict, description="What changed, as in the artifact.")


def state_path(data_root: Path, source: str) -> Path:
    """The state file of ``source``: a readable slug plus a hash, so different sources never collide."""
    slug = re.sub(r"[^A-Za-z0-9]+", "-", source).strip("-")[-40:].lower() or "source"
    return Path(data_root).absolute() / STATE_DIR / f"{slug}-{hashlib.sha256(source.encode()).hexdigest()[:10]}.json"


def read_generation(data_root: Path, source: str) -> Generation | None:
    """The last generation of ``source``, or None (never generated, or an unreadable file: start afresh)."""
    path = state_path(data_root, source)
    try:
        return Generation.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, ValidationError):
        return None


def write_generation(data_root: Path, generation: Generation) -> Path:
    """Record ``generation`` as the last one of its source (atomic rename)."""
    path = state_path(data_root, generation.source)
    atomic_write_text(path, generation.model_dump_json(indent=2) + "\n")
    return path
