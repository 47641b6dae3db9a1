"""Where the renderer's throughput per machine goes as processes are added (docs/speed.md, "Per machine").

For W processes on the bundled 7 x 151 clip, timed from a barrier once every process is ready
(start-up apart), each row prints camera-frames/s and the CPU it cost (core-ms per camera-frame,
split into the worker's main thread and everything else in the process: the GL thread, the
driver's threads):

1. ``geometry, no GL``: ``build_frame`` alone: the ceiling the CPU sets for the numpy geometry;
2. ``render 1 per pass``: geometry + raster, one camera per pass (``render_clip``'s plan);
3. ``render 7 per pass, W segments``: all cameras in each pass, the clip cut into W frame ranges
   (the same work in every process); and ``render_clip``'s own plan for all cameras per pass
   where it differs (camera groups when W exceeds the clip's 16-frame segments).

Each case runs under the settings asked for (``--settings``): ``before`` is the NVIDIA driver's
own wait (it spins; ``__GL_YIELD`` set empty) with OpenBLAS's thread pool of one thread per core;
``now`` is what render processes do (``gl.configure_environment``'s ``__GL_YIELD=USLEEP`` and
``blas.one_blas_thread``); ``gl-yield-usleep`` and ``blas-1-thread`` are each change alone.
Ratios: against the first setting of the same case, then against the first render row of W.
With ``--baseline-root DIR`` (a tree exported by ``bench_render_speed.py --export-baseline``) every
case first runs with that tree's ``scene2world`` in a subprocess, and a last table gives this
checkout's camera-frames/s against it. Run on the GPU machine:

    python3 benchmarks/bench_scaling.py --device gpu --workers 1 8 16 --baseline-root build/base
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_render import (  # noqa: E402
    CODE_ROOT_ENV,
    GL_VARIANT_ENV,
    GL_VARIANTS,
    code_root,
    render_only_worker,
    timed_processes,
)
from bench_render_speed import load_clip, machine  # noqa: E402

SETTINGS: dict[str, tuple[dict[str, str], bool]] = {
    # name: (environment of the processes, one BLAS thread per process)
    "before": ({"__GL_YIELD": ""}, False),  # the driver's own wait (sched_yield spin), one BLAS thread per core
    "gl-yield-usleep": ({}, False),  # gl.configure_environment's default alone
    "blas-1-thread": ({"__GL_YIELD": ""}, True),  # blas.one_blas_thread alone
    "now": ({}, True),  # what render_clip's and the render pool's processes do
    # diagnosis of the GPU's share (bench_render.GL_VARIANT_ENV), with `now`'s settings
    **{variant: ({GL_VARIANT_ENV: variant}, True) for variant in GL_VARIANTS},
}


def run(scene, msaa: int, device: str, workers: int, plan: list, per_pass: int, gl: bool, setting: str) -> dict:
    env, blas_1 = SETTINGS[setting]
    args = (scene, msaa, device, per_pass, gl, blas_1)
    out, wall, _ = timed_processes(render_only_worker, args, plan, workers, env)
    frames = sum(o[0] for o in out)
    cpu, main = sum(o[2] for o in out), sum(o[3] for o in out)
    return {
        "workers": len(out),
        "per_pass": per_pass,
        "tasks": len(plan),
        "camera_frames": frames,
        "seconds": round(wall, 3),
        "camera_frames_per_s": round(frames / wall, 1),
        "core_ms_per_camera_frame": round(cpu / frames * 1e3, 2),
        "main_thread_ms": round(main / frames * 1e3, 2),
        "other_threads_ms": round((cpu - main) / frames * 1e3, 2),
        "cores_busy": round(cpu / wall, 1),
    }


def median_rows(runs: list[dict]) -> list[dict]:
    """One row per (case, workers): the round of median camera-frames/s, with every round's figure."""
    rows = []
    for key in dict.fromkeys((r["case"], r["workers"]) for r in runs):
        same = sorted((r for r in runs if (r["case"], r["workers"]) == key), key=lambda r: r["camera_frames_per_s"])
        rows.append(same[len(same) // 2] | {"rounds_cf_per_s": [r["camera_frames_per_s"] for r in same]})
    return rows


def segments_plan(cameras, frames: int, segments: int) -> list:
    """All cameras in one group, the clip cut into ``segments`` equal frame ranges."""
    import numpy as np

    from scene2world.renderer.render import _Task

    edges = np.linspace(0, frames, segments + 1).round().astype(int)
    return [_Task(tuple(cameras), int(edges[i]), int(edges[i + 1]), i, segments, "") for i in range(segments)]


def run_baseline(root: Path, argv: list[str]) -> list[dict]:
    """The same cases with ``root``'s scene2world, in a subprocess (its output printed as it comes)."""
    drop = {"--baseline-root", "--json"}
    keep = [a for i, a in enumerate(argv) if a not in drop and (i == 0 or argv[i - 1] not in drop)]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "baseline.json"
        env = os.environ | {CODE_ROOT_ENV: str(root.resolve())}
        print(f"baseline: {root}", flush=True)
        subprocess.run([sys.executable, __file__, *keep, "--json", str(out)], env=env, check=True)
        report = json.loads(out.read_text())
    if Path(report["code"]) != root.resolve():
        raise RuntimeError(f"the baseline imported scene2world from {report['code']}, not {root}")
    rows: list[dict] = report["rows"]
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "gpu"])
    ap.add_argument("--msaa", type=int, default=4)
    ap.add_argument("--frames", type=int, default=None)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--settings", nargs="+", default=["before", "now"], choices=list(SETTINGS))
    ap.add_argument("--cases", nargs="+", default=["geometry", "one", "segments", "plan"])
    ap.add_argument("--frames-per-pass", type=int, nargs="+", default=[1], help="segments cases: frames per pass")
    ap.add_argument("--repeat", type=int, default=1, help="rounds of every case; rows give the median round")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--baseline-root", type=Path, default=None, help="first run every case with this tree's code")
    args = ap.parse_args(argv)
    baseline = run_baseline(args.baseline_root, sys.argv[1:] if argv is None else argv) if args.baseline_root else None

    from scene2world.renderer.render import plan_tasks

    scene = load_clip(args.frames)
    cams, n = scene.camera_names, scene.num_frames
    m = machine()
    print(f"machine: {m['cpu']}, {m['cores']} cores; GPU: {m['gpu']}; load {m['loadavg_1m']}")
    print(f"clip: {len(cams)} cameras x {n} frames, MSAA {args.msaa}, EGL {args.device}; code: {code_root()}")
    runs: list[dict] = []
    for w in args.workers:
        one, rr = plan_tasks(cams, 0, n, w, "", 1), plan_tasks(cams, 0, n, w, "", len(cams))
        frames = segments_plan(cams, n, w)
        cases = []
        if "geometry" in args.cases:
            cases += [(f"geometry, no GL, {v}", one, 1, False, v) for v in args.settings]
        if "one" in args.cases:
            cases += [(f"render 1 per pass, {v}", one, 1, True, v) for v in args.settings]
        for k in args.frames_per_pass if "segments" in args.cases else []:
            label = f"render {k * len(cams)} per pass ({k} frame{'s' * (k > 1)}), {w} segments"
            cases += [(f"{label}, {v}", frames, k * len(cams), True, v) for v in args.settings]
        if "plan" in args.cases and rr != frames:
            cases.append((f"render {len(cams)} per pass, render_clip's plan, now", rr, len(cams), True, "now"))
        for rnd in range(args.repeat):  # rounds: every setting once per round, so drift hits all alike
            render_first = None
            for label, plan, per_pass, gl, setting in cases:
                r = run(scene, args.msaa, args.device, w, plan, per_pass, gl, setting) | {"case": label, "round": rnd}
                runs.append(r)
                case = label.rsplit(", ", 1)[0]  # the same case under the first setting, this round
                ref = next(
                    x
                    for x in runs
                    if x["case"].rsplit(", ", 1)[0] == case and x["workers"] == r["workers"] and x["round"] == rnd
                )
                render_first = render_first or (r if gl else None)
                ratio = r["camera_frames_per_s"] / ref["camera_frames_per_s"]
                vs_first = r["camera_frames_per_s"] / render_first["camera_frames_per_s"] if gl else 1.0
                print(
                    f"  W={w:2d} {label:44s} {r['camera_frames_per_s']:7.1f} cf/s (x{ratio:.2f}; x{vs_first:.2f})"
                    f"  core-ms/cf {r['core_ms_per_camera_frame']:6.2f} (main {r['main_thread_ms']:5.2f},"
                    f" other {r['other_threads_ms']:5.2f})  cores busy {r['cores_busy']:5.1f}",
                    flush=True,
                )
    rows = median_rows(runs)
    if args.repeat > 1:
        print(f"medians of {args.repeat} rounds, camera-frames/s (range):")
        for r in rows:
            lo, hi = min(r["rounds_cf_per_s"]), max(r["rounds_cf_per_s"])
            print(f"  W={r['workers']:2d} {r['case']:60s} {r['camera_frames_per_s']:7.1f} ({lo:.1f}-{hi:.1f})")
    if baseline is not None:
        print(f"this checkout against the baseline ({args.baseline_root}), camera-frames/s:")
        for r in rows:
            base = next((b for b in baseline if (b["case"], b["workers"]) == (r["case"], r["workers"])), None)
            if base is not None:
                ratio = r["camera_frames_per_s"] / base["camera_frames_per_s"]
                print(
                    f"  W={r['workers']:2d} {r['case']:60s} {base['camera_frames_per_s']:7.1f} -> "
                    f"{r['camera_frames_per_s']:7.1f} (x{ratio:.2f})"
                )
    print(f"load after: {round(os.getloadavg()[0], 2)}; children rusage user+sys s:", end=" ")
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(round(ru.ru_utime + ru.ru_stime, 1))
    if args.json:
        args.json.write_text(json.dumps({"machine": m, "code": str(code_root()), "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
