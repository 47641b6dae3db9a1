"""Benchmark: a fully cached ``scene2world run`` (every step a hit), baseline tree vs this one.

Usage: python benchmarks/bench_cached_rerun.py BASELINE_SRC [--runs N]

BASELINE_SRC is a source tree of the baseline (e.g. ``git archive <commit> | tar -x -C DIR``).
Both trees run the same small config (bundled example, one camera, 90 frames, no archive) on
their own data root and Prefect home, one warm-up run each, then N timed runs alternating, so
load on the machine falls on both alike. Prints each median and candidate/baseline.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_once(src: Path, work: Path) -> float:
    sets = [
        f"data_root={work / 'data'}",
        f"runs_dir={work / 'runs'}",
        f"download.source={REPO / 'assets' / 'example'}",
        "render.cameras=[camera_front_wide_120fov]",
        "render.frames='0:90'",
        "render.msaa=1",
        "package.archive=none",
    ]
    env = {**os.environ, "PYTHONPATH": str(src), "PREFECT_HOME": str(work / "prefect-home")}
    env.pop("PREFECT_API_URL", None)
    argv = [sys.executable, "-m", "scene2world.cli", "run", *[a for s in sets for a in ("--set", s)]]
    t0 = time.perf_counter()
    subprocess.run(argv, env=env, check=True, capture_output=True, cwd=work)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("baseline_src", type=Path)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    trees = {"baseline": args.baseline_src.absolute(), "candidate": REPO}
    with tempfile.TemporaryDirectory(prefix="s2w-bench-rerun-") as tmp:
        works = {name: Path(tmp) / name for name in trees}
        for name, src in trees.items():
            works[name].mkdir()
            print(f"{name}: warm-up (not timed) {run_once(src, works[name]):.1f} s", flush=True)
        times: dict[str, list[float]] = {name: [] for name in trees}
        for _ in range(args.runs):
            for name, src in trees.items():
                times[name].append(run_once(src, works[name]))
    for name, values in times.items():
        each = ", ".join(f"{v:.1f}" for v in values)
        print(f"{name}: median {statistics.median(values):.1f} s over {len(values)} ({each})")
    ratio = statistics.median(times["candidate"]) / statistics.median(times["baseline"])
    print(f"candidate / baseline: {ratio:.2f}")


if __name__ == "__main__":
    main()
