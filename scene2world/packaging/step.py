"""The package step: one run folder per (settings, upstream outputs), with manifest and archive."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from scene2world import cache
from scene2world.config import PackageConfig

STEP = "package"
STEP_VERSION = "1"

log = logging.getLogger(__name__)


def package_key(
    cfg: PackageConfig, name: str, render_digest: str, infer_digest: str | None, info: Mapping[str, Any]
) -> str:
    """The step key from the package settings, the run name, the source and both upstream digests
    (``infer_digest`` None: a run folder of control videos only).

    The full config in ``info`` is recorded in the run manifest but not keyed: settings that do not
    change any output (rank count, timeouts) must not make a new run folder; nor is ``info``'s
    ``cache_key`` (the key itself, when given).
    """
    info = {k: v for k, v in info.items() if k not in ("config", "cache_key")}
    return cache.step_key(
        STEP,
        STEP_VERSION,
        settings=cfg.model_dump(mode="json"),
        name=name,
        render=render_digest,
        infer=infer_digest,
        info=info,
    )


def run_dir_for(runs_dir: Path, name: str, key: str) -> Path:
    """``<runs_dir>/<name>-<key[:10]>``: one folder per distinct run content."""
    return Path(runs_dir).absolute() / f"{name}-{key[:10]}"


def run_package(
    cfg: PackageConfig,
    render_manifest: Path,
    infer_manifest: Path,
    *,
    runs_dir: Path,
    name: str,
    info: dict[str, Any],
    out_dir: Path | None = None,
) -> cache.StepResult:
    """Assemble the run folder from a render and an infer manifest."""
    from scene2world.packaging.run_folder import package_run, read_output

    t0 = time.perf_counter()
    render = read_output(render_manifest, "render")  # each manifest is read once
    infer = read_output(infer_manifest, "infer")
    key = package_key(cfg, name, render.manifest.digest(), infer.manifest.digest(), info)
    out_dir = Path(out_dir) if out_dir else run_dir_for(runs_dir, name, key)
    if (hit := cache.lookup(out_dir, key)) is not None:
        log.info("package: cache hit %s (%s)", key[:12], out_dir)
        return cache.StepResult(hit, out_dir, cache_hit=True)
    manifest = package_run(render, infer, out_dir, cfg, {**info, "cache_key": key})
    log.info("package: %s in %.1f s", out_dir, time.perf_counter() - t0)
    return cache.StepResult(manifest, out_dir, cache_hit=False)
