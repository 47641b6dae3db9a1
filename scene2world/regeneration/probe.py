"""Ask a dataset source whether it changed, with one request at most (no Prefect here).

An http(s) source gets one conditional GET (ETag / Last-Modified kept beside the download by
:mod:`scene2world.datasets.fetch`): ``304`` reuses the file already here. The answer's sha256
is then pinned for the download step, which reuses the pinned file without asking again. A
local folder or archive is hashed in place.
"""

from dataclasses import dataclass
from pathlib import Path

from scene2world import digest
from scene2world.config import DownloadConfig
from scene2world.datasets import fetch, sources
from scene2world.datasets.step import download_dir, resolve_source
from scene2world.manifest import sha256_file


@dataclass(frozen=True)
class Probe:
    """What a source holds now: its content sha256, whether the server said 304, its validators."""

    source: str
    resolved: str
    kind: str
    content_sha256: str
    not_modified: bool | None
    pin: str | None
    etag: str | None = None
    last_modified: str | None = None


def probe_source(cfg: DownloadConfig, datasets: dict[str, str], data_root: Path) -> Probe:
    """Fetch ``cfg.source`` if it changed (http) or hash it (local). Raises DatasetError when it is
    gone or the server does not answer (after ``cfg.retries`` retries)."""
    resolved = resolve_source(cfg.source, datasets)
    src = sources.classify(resolved)
    if src.kind == "url":
        url = src.url or resolved
        got = fetch.fetch(
            url, download_dir(data_root, url), sha256=cfg.sha256, retries=cfg.retries, timeout_s=cfg.timeout_s
        )
        assert got.sha256 is not None  # an http download is a file
        return Probe(cfg.source, url, src.kind, got.sha256, got.not_modified, got.sha256, got.etag, got.last_modified)
    assert src.path is not None  # classify() sets it for local sources (and raises when they are gone)
    if src.kind == "archive":
        content = sha256_file(src.path)
        return Probe(cfg.source, resolved, src.kind, content, None, content)
    return Probe(cfg.source, resolved, src.kind, digest.tree_digest(src.path), None, None)
