"""The download step: get a dataset into the data root and discover its clips.

Every source goes through the same path: resolve (named dataset, URL, archive, folder),
fetch when remote (conditional GET, resume, sha256 pin), take a content hash, then copy
(hard links when possible) or safely extract into a staged folder, discover the clips and
publish the folder with its manifest. The key is the content hash, so a moved folder is a hit
and one edited byte is a miss.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from scene2world import cache, digest
from scene2world.config import DownloadConfig
from scene2world.contracts import DownloadData, DownloadedClip, dump
from scene2world.datasets import extract, fetch, sources
from scene2world.errors import DatasetError
from scene2world.manifest import Manifest, record_tree, sha256_file, write_manifest
from scene2world.scene.prompts import find_clip_text

if TYPE_CHECKING:  # the scene loaders are imported when a clip is read, not by a cached run
    from scene2world.scene.discover import ClipRef

STEP = "download"
STEP_VERSION = "1"
DATASET_DIR = "dataset"

log = logging.getLogger(__name__)


def resolve_source(source: str, datasets: dict[str, str]) -> str:
    """A dataset name from the config's ``datasets`` becomes its URL; anything else is returned as is."""
    return datasets.get(source, source)


def download_dir(data_root: Path, url: str) -> Path:
    """Where downloads of ``url`` are kept (with their conditional-GET sidecar) under the data root."""
    return Path(data_root).absolute() / "downloads" / hashlib.sha256(url.encode()).hexdigest()[:20]


def _key(content: str, cfg: DownloadConfig) -> str:
    return cache.step_key(STEP, STEP_VERSION, content=content, clip_ids=sorted(cfg.clip_ids) if cfg.clip_ids else None)


def local_key(cfg: DownloadConfig, datasets: dict[str, str]) -> str | None:
    """The key of a local source without fetching anything; None for remote sources (they must
    be asked whether they changed)."""
    src = sources.classify(resolve_source(cfg.source, datasets))
    if src.kind == "folder":
        return _key(digest.tree_digest(_local(src)), cfg)
    if src.kind == "archive":
        return _key(sha256_file(_local(src)), cfg)
    return None


def _local(src: sources.Source) -> Path:
    if src.path is None:  # classify() sets path for every local kind
        raise DatasetError(f"{src.value}: not a local folder or archive")
    return src.path


def run_download(
    cfg: DownloadConfig,
    *,
    datasets: dict[str, str],
    data_root: Path,
    out_dir: Path | None = None,
    progress: Callable[[int, int | None], None] | None = None,
) -> cache.StepResult:
    """Fetch/copy/extract ``cfg.source`` and discover its clips; returns the step's manifest."""
    t0 = time.perf_counter()
    data_root = Path(data_root).absolute()
    resolved = resolve_source(cfg.source, datasets)
    src = sources.classify(resolved)
    timings: dict[str, float] = {}
    not_modified = None
    archive_path: Path | None
    if src.kind == "url":
        url = src.url or resolved
        url_dir = download_dir(data_root, url)
        fetched = fetch.fetch(
            url, url_dir, sha256=cfg.sha256, retries=cfg.retries, timeout_s=cfg.timeout_s, progress=progress
        )
        archive_path = fetched.path
        not_modified = fetched.not_modified
        content = sha256_file(archive_path)
        timings["fetch"] = time.perf_counter() - t0
    elif src.kind == "archive":
        archive_path = _local(src)
        content = sha256_file(archive_path)
        if cfg.sha256 and content != cfg.sha256:
            raise DatasetError(f"{archive_path}: sha256 is {content}, but download.sha256 pins {cfg.sha256}")
    else:
        archive_path = None
        content = digest.tree_digest(_local(src))
    key = _key(content, cfg)
    out_dir = Path(out_dir) if out_dir else cache.store_dir(data_root, STEP, key)
    if (hit := cache.lookup(out_dir, key)) is not None:
        log.info("download: cache hit %s (%s)", key[:12], out_dir)
        return cache.StepResult(hit, out_dir, cache_hit=True)

    with cache.staging(out_dir) as tmp:
        dataset = tmp / DATASET_DIR
        t1 = time.perf_counter()
        if archive_path is not None:
            extract.extract_archive(archive_path, dataset, max_bytes=cfg.max_extract_bytes)
        else:
            _copy_tree(_local(src), dataset)
        timings["copy_or_extract"] = time.perf_counter() - t1
        from scene2world.scene.discover import discover_clips  # not imported by a cached run

        clips = discover_clips(dataset)
        if cfg.clip_ids:
            wanted = set(cfg.clip_ids)
            missing = wanted - {c.clip_id for c in clips}
            if missing:
                found = sorted(c.clip_id for c in clips)
                raise DatasetError(
                    f"{resolved}: download.clip_ids {sorted(missing)} not found; the dataset has {found}"
                )
            clips = [c for c in clips if c.clip_id in wanted]
        if not clips:
            raise DatasetError(
                f"{resolved}: no clip found (expected ClipGT parquet bundles `<clip>.egomotion_estimate.parquet` + "
                "`<clip>.calibration_estimate.parquet`, or RDS-HQ folders with vehicle_pose/ or pose/)"
            )
        timings["total"] = time.perf_counter() - t0
        manifest = Manifest(
            step=STEP,
            step_version=STEP_VERSION,
            cache_key=key,
            files=record_tree(tmp),
            settings={"source": cfg.source, "sha256": cfg.sha256, "clip_ids": cfg.clip_ids},
            timings_s=timings,
            data=dump(
                DownloadData(
                    source=resolved,
                    source_kind=src.kind,
                    content_sha256=content,
                    not_modified=not_modified,
                    clips=[_clip_entry(c, tmp) for c in sorted(clips, key=lambda c: c.clip_id)],
                )
            ),
        )
        write_manifest(tmp, manifest)
        published = cache.publish(tmp, out_dir, key)
    log.info("download: %d clip(s) from %s in %.1f s", len(clips), resolved, timings["total"])
    return cache.StepResult(published, out_dir, cache_hit=False)


def _clip_entry(clip: ClipRef, root: Path) -> DownloadedClip:
    """A clip's manifest entry, with the caption and prompt variants the dataset carries for it (``scene.prompts``)."""
    text = find_clip_text(clip.path, clip.clip_id)
    return DownloadedClip(
        clip_id=clip.clip_id,
        format=clip.format,
        path=Path(clip.path).relative_to(root).as_posix(),
        caption=text.caption,
        prompts=text.variants or None,
    )


def _copy_tree(src: Path, dst: Path) -> None:
    """Mirror the regular files of ``src`` into ``dst`` with hard links when possible (no symlinks followed)."""
    dst.mkdir(parents=True, exist_ok=True)  # an empty source is then reported by its own name
    for path in sorted(Path(src).rglob("*")):
        if path.is_symlink():
            raise DatasetError(f"{path}: symbolic links are not accepted in a dataset folder; copy the target instead")
        if path.is_file():
            cache.link_or_copy(path, dst / path.relative_to(src))
