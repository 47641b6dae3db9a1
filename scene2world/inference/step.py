"""The infer step: one Cosmos multiview sample per clip, all in one torchrun launch.

The control videos are linked next to the spec (``controls/``) so the spec folder is
self-contained and NVIDIA's own ``examples.multiview`` accepts it as is. The key covers the
sample settings, the engine and the control videos' content; rank count, backend and
timeout only change how it runs, not what it produces.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from scene2world import cache
from scene2world.config import InferConfig
from scene2world.errors import InferenceError
from scene2world.manifest import MANIFEST_NAME, Manifest, UpstreamRef, read_manifest, record_tree, write_manifest

STEP = "infer"
STEP_VERSION = "1"
SPEC_DIR = "spec"
OUTPUT_DIR = "outputs"

log = logging.getLogger(__name__)


def settings_of(cfg: InferConfig) -> dict[str, Any]:
    """The inference settings that shape outputs."""
    return cfg.model_dump(mode="json", exclude={"nproc_per_node", "backend", "timeout_s", "hang_timeout_s"})


def infer_key(cfg: InferConfig, render_digest: str) -> str:
    """The step key from the inference settings and the render manifest's digest."""
    return cache.step_key(STEP, STEP_VERSION, settings=settings_of(cfg), content=render_digest)


def sample_name(clip_id: str) -> str:
    """A Cosmos sample name for a clip (letters, digits, ``_.-``)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", clip_id)


def read_render_manifest(path: Path) -> tuple[Manifest, Path]:
    """The render manifest at ``path`` (file or folder) and its folder; InferenceError otherwise."""
    path = Path(path).absolute()
    folder = path.parent if path.name == MANIFEST_NAME else path
    manifest = read_manifest(folder)
    if manifest.step != "render":
        raise InferenceError(f"{folder / MANIFEST_NAME}: a `{manifest.step}` manifest; infer takes a render manifest")
    if manifest.settings.get("png"):
        raise InferenceError(
            f"{folder / MANIFEST_NAME}: rendered as PNG frames; Cosmos needs mp4 control videos (render.png=false)"
        )
    return manifest, folder


def run_infer(
    cfg: InferConfig,
    render_dir: Path,
    *,
    data_root: Path,
    out_dir: Path | None = None,
    log_line: Callable[[str], None] | None = None,
) -> cache.StepResult:
    """Build the spec from a render manifest, run the engine under torchrun, and publish its outputs."""
    from scene2world.inference.run import run_inference
    from scene2world.inference.spec import build_sample, write_spec

    t0 = time.perf_counter()
    upstream, render_dir = read_render_manifest(render_dir)
    key = infer_key(cfg, upstream.digest())
    out_dir = Path(out_dir) if out_dir else cache.store_dir(Path(data_root).absolute(), STEP, key)
    if (hit := cache.lookup(out_dir, key)) is not None:
        log.info("infer: cache hit %s (%s)", key[:12], out_dir)
        return cache.StepResult(hit, out_dir, cache_hit=True)

    with cache.staging(out_dir) as tmp:
        spec_dir = tmp / SPEC_DIR
        samples = []
        names: dict[str, str] = {}
        for clip_id, clip in sorted(upstream.data["clips"].items()):
            videos = {}
            for camera, rel in clip["cameras"].items():
                dest = spec_dir / "controls" / rel
                cache.link_or_copy(render_dir / rel, dest)
                videos[camera] = dest
            name = sample_name(clip_id)
            names[name] = clip_id
            samples.append(build_sample(name, videos, cfg, spec_dir))
        spec_path = write_spec(samples, spec_dir / ("spec.json" if len(samples) == 1 else "spec.jsonl"))
        result = run_inference(spec_path, tmp / OUTPUT_DIR, cfg, log=log_line)
        upstream_ref = UpstreamRef(
            step="render",
            cache_key=upstream.cache_key,
            digest=upstream.digest(),
            manifest_path=str(render_dir / MANIFEST_NAME),
        )
        manifest = infer_manifest(cfg, key, tmp, result, spec_path, t0, upstream=upstream_ref, clip_ids=names)
        write_manifest(tmp, manifest)
        published = cache.publish(tmp, out_dir, key)
    log.info("infer: %d sample(s) with the %s engine in %.1f s", len(samples), cfg.engine, time.perf_counter() - t0)
    return cache.StepResult(published, out_dir, cache_hit=False)


def infer_manifest(
    cfg: InferConfig,
    key: str,
    root: Path,
    result: Any,
    spec_path: Path,
    started: float,
    *,
    upstream: UpstreamRef | None = None,
    clip_ids: dict[str, str] | None = None,
) -> Manifest:
    """The infer manifest for an InferenceResult whose files lie under ``root``."""
    samples = samples_data(result, root, spec_path)
    for name, clip_id in (clip_ids or {}).items():
        samples[name]["clip_id"] = clip_id
    return Manifest(
        step=STEP,
        step_version=STEP_VERSION,
        cache_key=key,
        files=record_tree(root),
        settings=settings_of(cfg),
        upstream=upstream,
        timings_s={"total": time.perf_counter() - started},
        data={
            "engine": cfg.engine,
            "nproc_per_node": cfg.nproc_per_node,
            "spec": Path(spec_path).relative_to(root).as_posix()
            if Path(spec_path).is_relative_to(root)
            else str(spec_path),
            "samples": samples,
            "logs": sorted(Path(p).relative_to(root).as_posix() for p in result.logs),
            "warnings": list(result.warnings),
        },
    )


def samples_data(result: Any, root: Path, spec_path: Path) -> dict[str, dict[str, Any]]:
    """Per-sample outputs of an InferenceResult as paths relative to ``root`` (for the manifest)."""

    def rel(path: Path | str | None) -> str | None:
        return None if path is None else Path(path).relative_to(root).as_posix()

    spec_rel = rel(spec_path) if Path(spec_path).is_relative_to(root) else str(spec_path)
    return {
        name: {
            "spec": spec_rel,
            "json": rel(sample.json),
            "outputs": {view: rel(p) for view, p in sample.views.items()},
            "grid": rel(sample.grid),
            "combined": rel(sample.combined),
        }
        for name, sample in result.samples.items()
    }
