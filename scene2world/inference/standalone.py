"""``scene2world infer SPEC``: run a Cosmos spec file as it is, with the same cache and manifest.

The key covers the spec file, every video and prompt file it names (by content) and the
inference settings, so re-running an unchanged spec is a hit.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pathlib import Path

from scene2world import cache
from scene2world.config import InferConfig
from scene2world.inference.spec import load_spec
from scene2world.inference.step import OUTPUT_DIR, STEP, STEP_VERSION, infer_manifest, settings_of
from scene2world.manifest import sha256_file, write_manifest


def spec_content_digest(spec_path: Path) -> str:
    """sha256 over the spec's bytes and the content of every file its samples name."""
    h = hashlib.sha256(Path(spec_path).read_bytes())
    for sample in load_spec(spec_path):
        files = [sample.prompt_path] if sample.prompt_path else []
        for key in sample.active_views():
            view = sample.view(key)
            files += [p for p in (view.control_path, view.input_path) if p is not None]
        for path in files:
            h.update(f"{sample.name}:{Path(path).name}:{sha256_file(Path(path))}".encode())
    return h.hexdigest()


def infer_spec(
    spec_path: Path,
    cfg: InferConfig,
    *,
    data_root: Path,
    out_dir: Path | None = None,
    log_line: Callable[[str], None] | None = None,
) -> Path:
    """Run ``spec_path`` with the configured engine; returns the manifest path."""
    from scene2world.inference.run import run_inference

    t0 = time.perf_counter()
    spec_path = Path(spec_path).absolute()
    key = cache.step_key(STEP, STEP_VERSION, settings=settings_of(cfg), spec=spec_content_digest(spec_path))
    out_dir = Path(out_dir) if out_dir else cache.store_dir(Path(data_root).absolute(), STEP, key)
    if cache.lookup(out_dir, key) is not None:
        if log_line:
            log_line(f"infer: cache hit {key[:12]} ({out_dir})")
        return out_dir / "manifest.json"
    with cache.staging(out_dir) as tmp:
        result = run_inference(spec_path, tmp / OUTPUT_DIR, cfg, log=log_line)
        manifest = infer_manifest(cfg, key, tmp, result, spec_path, t0)
        write_manifest(tmp, manifest)
        cache.publish(tmp, out_dir, key)
    return out_dir / "manifest.json"
