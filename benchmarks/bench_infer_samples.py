"""Benchmark: the per-sample inference cache on the bundled example (preview engine, 2 gloo ranks).

Usage: python benchmarks/bench_infer_samples.py

Renders one camera of ``assets/example`` (29 frames, the length of one chunk at fps 30), then times
the infer step for 3 prompt variants x 2 seeds:

* ``fresh``: 6 samples, one torchrun launch (baseline: what any change cost before, when inference
  was cached per step);
* ``one variant changed``: 2 samples inferred, 4 reused, one launch;
* ``no sample changed``: a setting outside every sample (``infer.prompt``, unused when ``prompts`` is
  set) changes the step key; all 6 samples are reused and nothing is launched;
* ``step hit``: the unchanged step.

Prints seconds per case and the ratio to ``fresh``.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from scene2world.config import DownloadConfig, InferConfig, RenderConfig
from scene2world.datasets.step import run_download
from scene2world.inference.step import run_infer
from scene2world.renderer.step import resolve_input, run_render

EXAMPLE = Path(__file__).resolve().parents[1] / "assets" / "example"
PROMPTS = {"sunny": "A sunny highway.", "rain": "A rainy night in the city.", "fog": "Thick fog at dawn."}


def _cfg(prompts: dict[str, str], prompt: str = "unused") -> InferConfig:
    return InferConfig(
        engine="preview",
        nproc_per_node=2,
        backend="gloo",
        fps=30,
        save_combined_views=True,
        prompts=prompts,
        prompt=prompt,
        seeds=[0, 1],
    )


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        download = run_download(DownloadConfig(source=str(EXAMPLE)), datasets={}, data_root=data)
        render_cfg = RenderConfig(cameras=["camera_front_wide_120fov"], frames="0:29", msaa=1, preset="ultrafast")
        render = run_render(render_cfg, resolve_input(download.manifest_path), data_root=data)
        changed = {**PROMPTS, "fog": "Thick fog at dusk."}
        cases = [
            ("fresh", _cfg(PROMPTS)),
            ("one variant changed", _cfg(changed)),
            ("no sample changed", _cfg(changed, prompt="another unused prompt")),
            ("step hit", _cfg(changed, prompt="another unused prompt")),
        ]
        times: dict[str, float] = {}
        for name, cfg in cases:
            t0 = time.perf_counter()
            result = run_infer(cfg, render.out_dir, data_root=data)
            times[name] = time.perf_counter() - t0
            stats = result.manifest.stats
            print(
                f"{name:<22} {times[name]:7.2f} s  x{times[name] / times['fresh']:.3f} of fresh  "
                f"inferred {stats.get('inferred_samples')} reused {stats.get('reused_samples')} "
                f"{'(step cache hit)' if result.cache_hit else ''}"
            )


if __name__ == "__main__":
    main()
