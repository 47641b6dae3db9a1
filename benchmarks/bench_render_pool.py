"""The pipeline's local render engine against today's ``render_clip`` on the same clip.

Baseline: ``render.render_clip`` of every camera in one call (one process per core, cameras
taken from one queue). Candidate: :class:`scene2world.renderer.pool.RenderPool` with as many
processes, one thread per camera handing it to the pool (what the mapped Prefect render does,
without Prefect). Both write the same mp4s; runs alternate, and the script prints wall times,
the ratio candidate / baseline and whether the videos are byte-identical.

    .venv/bin/python benchmarks/bench_render_pool.py                      # 7 cameras x 151 frames
    .venv/bin/python benchmarks/bench_render_pool.py --frames 0:30 --repeat 1
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")


def digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*.mp4"))}


def main() -> None:
    from scene2world.renderer.pool import RenderPool, default_processes
    from scene2world.renderer.render import render_clip
    from scene2world.renderer.step import parse_frames
    from scene2world.scene.discover import discover_clips
    from scene2world.scene.load import load_scene

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clip", default=str(REPO / "assets" / "example"))
    ap.add_argument("--frames", default=None, help="START:END (default: the whole clip)")
    ap.add_argument("--msaa", type=int, default=4)
    ap.add_argument("--preset", default="slow")
    ap.add_argument("--processes", type=int, default=0, help="0 = one per core")
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()

    (clip,) = discover_clips(args.clip)
    scene = load_scene(clip)
    cameras = list(scene.camera_names)
    processes = args.processes or default_processes()
    options = {"frames": parse_frames(args.frames), "msaa": args.msaa, "preset": args.preset}
    frames = len(
        range(
            *((options["frames"] or (0, scene.num_frames))[0], (options["frames"] or (0, None))[1] or scene.num_frames)
        )
    )
    print(f"{clip.clip_id}: {len(cameras)} cameras x {frames} frames, msaa {args.msaa}, x264 {args.preset}, "
          f"{processes} process(es), {os.cpu_count()} CPU(s)")  # fmt: skip

    times: dict[str, list[float]] = {"render_clip": [], "pool": []}
    outputs: dict[str, dict[str, str]] = {}
    with tempfile.TemporaryDirectory(prefix="s2w-bench-pool-") as tmp:
        for i in range(args.repeat):
            for name in ("render_clip", "pool") if i % 2 == 0 else ("pool", "render_clip"):
                out = Path(tmp) / f"{name}-{i}"
                t0 = time.perf_counter()
                if name == "render_clip":
                    render_clip(scene, out, cameras=cameras, workers=processes, **options)
                else:
                    pool = RenderPool(processes)
                    try:
                        with ThreadPoolExecutor(len(cameras)) as threads:
                            jobs = [threads.submit(pool.render, clip, cam, out, options, None) for cam in cameras]
                            for job in jobs:
                                job.result()
                    finally:
                        pool.close()
                times[name].append(time.perf_counter() - t0)
                outputs[name] = digests(out)
                shutil.rmtree(out, ignore_errors=True)
                print(f"  run {i + 1} {name:12s} {times[name][-1]:7.1f} s", flush=True)
    base, cand = statistics.median(times["render_clip"]), statistics.median(times["pool"])
    print(f"median: render_clip {base:.1f} s, pool {cand:.1f} s, pool / render_clip = {cand / base:.3f}")
    print(f"videos byte-identical: {outputs['render_clip'] == outputs['pool']}")


if __name__ == "__main__":
    main()
