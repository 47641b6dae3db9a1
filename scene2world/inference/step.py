"""The infer step: one Cosmos multiview sample per clip x prompt variant x seed, cached per sample.

Layout of the step's output folder (every spec file in it loads unchanged in NVIDIA's
``MultiviewInferenceArguments`` from where it lies, ``docs/cosmos.md``)::

    controls/<clip>/<clip>.<camera>.mp4   the control videos (hard links of the render output)
    spec/spec.json | spec/spec.jsonl      every sample; paths ``../controls/...``
    outputs/<sample>.json                 Cosmos's sample dump; paths ``../controls/...``
    outputs/<sample>_<view>.mp4, <sample>_grid.mp4 or <sample>.mp4
    logs/                                 torchrun and rank logs of this run's launch (if one ran)

A failed launch publishes nothing; its logs are kept like those of any failed step, in
``<data_root>/failed/infer-<time>-<id>/launch/`` (``cache.keep_logs``), and the error names the folder.

Each sample (``<clip>.<variant>.<seed>``, :mod:`.samples`) has its own key and its own cache folder
``<data_root>/infer-samples/<key>/`` with the same ``controls/`` + ``outputs/`` layout. A run looks
every sample up, launches torchrun once for the samples that are missing (the model loads once),
stores each new sample in its folder and links all of them into the step output. The step key
is made of the sample keys, so a change of one prompt re-runs the step but infers one sample.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from scene2world import cache
from scene2world.config import InferConfig
from scene2world.contracts import (
    DownloadData,
    InferData,
    InferredSample,
    RenderData,
    SampleCacheData,
    SampleFiles,
    dump,
)
from scene2world.errors import InferenceError
from scene2world.inference.samples import SampleRequest, build_requests, sample_key
from scene2world.manifest import (
    MANIFEST_NAME,
    Manifest,
    UpstreamRef,
    payload,
    read_manifest,
    record_tree,
    write_manifest,
)

STEP = "infer"
STEP_VERSION = "2"
SPEC_DIR = "spec"
OUTPUT_DIR = "outputs"
CONTROLS_DIR = "controls"
SAMPLE_CACHE = "infer-samples"
LAUNCH_DIR = ".launch"
FAILED_LAUNCH = "launch"
"""Inside the staging folder: where a failed launch's files are moved, so that ``cache.staging``
keeps its logs in the data root's ``failed/`` folder (the launch's own staging name is hidden)."""
LAUNCH_SPEC = ".launch.jsonl"

log = logging.getLogger(__name__)


def settings_of(cfg: InferConfig) -> dict[str, Any]:
    """The inference settings that shape outputs."""
    return cfg.model_dump(mode="json", exclude={"nproc_per_node", "backend", "timeout_s", "hang_timeout_s"})


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


def dataset_text(render: Manifest) -> dict[str, dict[str, Any]]:
    """The clip id → {"caption", "prompts"} recorded by the download step the render came from ({} if none)."""
    ref = render.upstream
    if ref is None or ref.step != "download" or not Path(ref.manifest_path).is_file():
        return {}
    download = payload(read_manifest(Path(ref.manifest_path)), DownloadData)
    return {c.clip_id: {"caption": c.caption, "prompts": c.prompts} for c in download.clips}


def sample_requests(cfg: InferConfig, render: Manifest) -> list[SampleRequest]:
    """Every sample the render output and the settings call for (:func:`.samples.build_requests`)."""
    shas = {rec.path: rec.sha256 for rec in render.files}
    clips = {clip_id: clip.model_dump() for clip_id, clip in payload(render, RenderData).clips.items()}
    return build_requests(cfg, clips, shas, dataset_text(render))


def _step_key(cfg: InferConfig, requests: list[SampleRequest]) -> str:
    keys = {r.name: sample_key(cfg, r) for r in requests}
    return cache.step_key(STEP, STEP_VERSION, settings=settings_of(cfg), samples=keys)


def infer_key(cfg: InferConfig, render_manifest: Path) -> str:
    """The step key for the render output at ``render_manifest`` (file or folder): its sample keys."""
    render, _ = read_render_manifest(render_manifest)
    return _step_key(cfg, sample_requests(cfg, render))


def sample_dir(data_root: Path, key: str) -> Path:
    """The cache folder of one sample."""
    return Path(data_root).absolute() / SAMPLE_CACHE / key[:20]


def run_infer(
    cfg: InferConfig,
    render_dir: Path,
    *,
    data_root: Path,
    out_dir: Path | None = None,
    log_line: Callable[[str], None] | None = None,
) -> cache.StepResult:
    """Build the samples from a render manifest, infer the missing ones in one launch, publish them all."""
    from scene2world.inference.spec import build_sample, write_spec

    t0 = time.perf_counter()
    data_root = Path(data_root).absolute()
    upstream, render_dir = read_render_manifest(render_dir)
    requests = sample_requests(cfg, upstream)
    key = _step_key(cfg, requests)
    out_dir = Path(out_dir) if out_dir else cache.store_dir(data_root, STEP, key)
    if (hit := cache.lookup(out_dir, key)) is not None:
        log.info("infer: cache hit %s (%s)", key[:12], out_dir)
        return cache.StepResult(hit, out_dir, cache_hit=True)

    keys = {r.name: sample_key(cfg, r) for r in requests}
    entries: dict[str, Manifest | None] = {
        r.name: cache.lookup(sample_dir(data_root, keys[r.name]), keys[r.name]) for r in requests
    }
    todo = [r for r in requests if entries[r.name] is None]
    warnings: list[str] = []
    with cache.staging(out_dir) as tmp:
        for rel in sorted({rel for r in requests for rel in r.controls.values()}):
            cache.link_or_copy(render_dir / rel, tmp / CONTROLS_DIR / rel)
        spec_dir = tmp / SPEC_DIR
        dicts = {
            r.name: build_sample(
                r.name,
                {cam: tmp / CONTROLS_DIR / rel for cam, rel in r.controls.items()},
                cfg,
                spec_dir,
                prompt=r.prompt,
                seed=r.seed,
            )
            for r in requests
        }
        spec_path = write_spec(list(dicts.values()), spec_dir / ("spec.json" if len(dicts) == 1 else "spec.jsonl"))
        if todo:
            warnings = _launch(cfg, todo, dicts, keys, entries, tmp, data_root, log_line)
        samples: dict[str, InferredSample] = {}
        for r in requests:
            entry = entries[r.name]
            assert entry is not None
            folder = sample_dir(data_root, keys[r.name])
            for rec in entry.files:
                if rec.path.startswith(f"{OUTPUT_DIR}/"):
                    cache.link_or_copy(folder / rec.path, tmp / rec.path)
            samples[r.name] = InferredSample(
                **r.data(),
                reused=r not in todo,
                key=keys[r.name],
                spec=spec_path.relative_to(tmp).as_posix(),
                **payload(entry, SampleCacheData).files.model_dump(),
            )
        logs = sorted(p.relative_to(tmp).as_posix() for p in (tmp / cache.LOGS_DIR).rglob("*") if p.is_file())
        manifest = Manifest(
            step=STEP,
            step_version=STEP_VERSION,
            cache_key=key,
            files=record_tree(tmp),
            settings=settings_of(cfg),
            upstream=UpstreamRef(
                step="render",
                cache_key=upstream.cache_key,
                digest=upstream.digest(),
                manifest_path=str(render_dir / MANIFEST_NAME),
            ),
            timings_s={"total": time.perf_counter() - t0},
            data=dump(
                InferData(
                    engine=cfg.engine,
                    nproc_per_node=cfg.nproc_per_node,
                    spec=spec_path.relative_to(tmp).as_posix(),
                    samples=samples,
                    logs=logs,
                    warnings=warnings,
                )
            ),
            stats={
                "inferred_samples": len(todo),
                "reused_samples": len(requests) - len(todo),
                "launches": 1 if todo else 0,
            },
        )
        write_manifest(tmp, manifest)
        published = cache.publish(tmp, out_dir, key)
    log.info(
        "infer: %d sample(s) inferred, %d reused, with the %s engine in %.1f s",
        len(todo),
        len(requests) - len(todo),
        cfg.engine,
        time.perf_counter() - t0,
    )
    return cache.StepResult(published, out_dir, cache_hit=False)


def _launch(
    cfg: InferConfig,
    todo: list[SampleRequest],
    dicts: Mapping[str, dict[str, Any]],
    keys: Mapping[str, str],
    entries: dict[str, Manifest | None],
    tmp: Path,
    data_root: Path,
    log_line: Callable[[str], None] | None,
) -> list[str]:
    """Infer ``todo`` in one torchrun launch, store each sample in its cache folder; the plan's warnings."""
    from scene2world.inference.run import run_inference
    from scene2world.inference.spec import write_spec

    launch_spec = write_spec([dicts[r.name] for r in todo], tmp / SPEC_DIR / LAUNCH_SPEC)
    try:
        result = run_inference(launch_spec, tmp / LAUNCH_DIR, cfg, log=log_line, keep_failed=tmp / FAILED_LAUNCH)
    finally:
        launch_spec.unlink(missing_ok=True)
    for r in todo:
        entries[r.name] = _store_sample(data_root, keys[r.name], r, result.samples[r.name], tmp)
    logs = tmp / cache.LOGS_DIR
    logs.mkdir(exist_ok=True)
    for path in sorted(result.out_dir.iterdir()):
        if path.name == cache.LOGS_DIR:
            for sub in path.iterdir():
                os.replace(sub, logs / sub.name)
        elif path.is_file():
            os.replace(path, logs / path.name)
    shutil.rmtree(result.out_dir)
    return list(result.warnings)


def _store_sample(data_root: Path, key: str, request: SampleRequest, outputs: Any, tmp: Path) -> Manifest:
    """Publish one sample (its controls, its rebased dump and its videos) to its cache folder."""
    from scene2world.inference.spec import rebase_paths, write_sidecar

    target = sample_dir(data_root, key)
    with cache.staging(target) as st:
        for rel in request.controls.values():
            cache.link_or_copy(tmp / CONTROLS_DIR / rel, st / CONTROLS_DIR / rel)
        out = st / OUTPUT_DIR
        out.mkdir()
        sample_dump = json.loads(Path(outputs.json).read_text(encoding="utf-8"))
        write_sidecar(
            rebase_paths(sample_dump, old_dir=Path(outputs.json).parent, old_root=tmp, new_root=st, new_dir=out),
            out / Path(outputs.json).name,
        )

        def move(path: Path) -> str:
            os.replace(path, out / path.name)
            return f"{OUTPUT_DIR}/{path.name}"

        files = SampleFiles(
            json_=f"{OUTPUT_DIR}/{Path(outputs.json).name}",
            outputs={view: move(p) for view, p in outputs.views.items()},
            grid=move(outputs.grid) if outputs.grid is not None else None,
            combined=move(outputs.combined) if outputs.combined is not None else None,
        )
        manifest = Manifest(
            step=STEP,
            step_version=STEP_VERSION,
            cache_key=key,
            files=record_tree(st),
            data=dump(SampleCacheData(name=request.name, **request.data(), files=files)),
        )
        write_manifest(st, manifest)
        return cache.publish(st, target, key)


def infer_manifest(
    cfg: InferConfig,
    key: str,
    root: Path,
    result: Any,
    spec_path: Path,
    started: float,
    *,
    upstream: UpstreamRef | None = None,
) -> Manifest:
    """The infer manifest of a spec file run as is (``scene2world infer SPEC``), files under ``root``."""

    def rel(path: Path | str) -> str:
        return Path(path).relative_to(root).as_posix()

    spec = rel(spec_path) if Path(spec_path).is_relative_to(root) else str(spec_path)
    samples = {
        name: InferredSample(
            clip_id=None,
            variant=None,
            seed=None,
            reused=False,
            key=key,
            spec=spec,
            json_=rel(sample.json),
            outputs={view: rel(p) for view, p in sample.views.items()},
            grid=rel(sample.grid) if sample.grid is not None else None,
            combined=rel(sample.combined) if sample.combined is not None else None,
        )
        for name, sample in result.samples.items()
    }
    return Manifest(
        step=STEP,
        step_version=STEP_VERSION,
        cache_key=key,
        files=record_tree(root),
        settings=settings_of(cfg),
        upstream=upstream,
        timings_s={"total": time.perf_counter() - started},
        data=dump(
            InferData(
                engine=cfg.engine,
                nproc_per_node=cfg.nproc_per_node,
                spec=spec,
                samples=samples,
                logs=sorted(rel(p) for p in result.logs),
                warnings=list(result.warnings),
            )
        ),
        stats={"inferred_samples": len(samples), "reused_samples": 0, "launches": 1},
    )
