"""Datasets of N clips through the whole pipeline: cost per clip, cached re-runs, one changed clip.

For each N (default 1, 4, 16) the script writes N variants of the bundled example (new clip ids,
each its own content), then times ``scene2world run`` as a user runs it (a subprocess, the CLI):

1. full run on an empty data root;
2. the same run again (every step a cache hit);
3. a run after one clip's ego path moved 50 cm (its cameras re-render, the others are reused).

The largest N also runs on a local Dask cluster (a scheduler and 2 worker processes, started
here; ``render.task_runner=dask``). Runs talk to one ``prefect server`` started here
(``PREFECT_API_URL``), as a user with a server does; ``--ephemeral`` also times a cached re-run
with Prefect's temporary server (what a bare ``scene2world run`` pays). The demo config's cached
re-run (``configs/default.yaml``) is timed last. Prints one table; nothing is asserted.

    .venv/bin/python benchmarks/bench_dataset.py                       # N = 1 4 16, 7 cameras, 30 frames
    .venv/bin/python benchmarks/bench_dataset.py --clips 1 4 --cameras camera_front_wide_120fov
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
BIN = Path(sys.executable).parent


def write_dataset(folder: Path, count: int, changed: int | None = None) -> Path:
    """``count`` variants of the bundled example; clip ``changed`` (if any) with its ego path moved."""
    from scene2world.scene.clipgt_writer import write_clipgt
    from scene2world.scene.load import load_scene

    base = load_scene(REPO / "assets" / "example")
    for i in range(count):
        scene = dataclasses.replace(base, clip_id=f"s2w_bench_{i:03d}")
        if i == changed:
            poses = scene.world_SE3_rig.copy()
            poses[:, 1, 3] += 0.5
            scene = dataclasses.replace(scene, world_SE3_rig=poses)
        write_clipgt(scene, folder / scene.clip_id)
    return folder


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(home: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A ``prefect server`` on 127.0.0.1 for the runs; returns it and its API URL."""
    port = free_port()
    env = {**os.environ, "PREFECT_HOME": str(home)}
    proc = subprocess.Popen(
        [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2):
                return proc, url
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit("prefect server did not start in 180 s")


def run(settings: list[str], env: dict[str, str], config: str | None = None) -> float:
    """``scene2world run`` once; its wall time in seconds (exits on failure with the log tail)."""
    argv = [str(BIN / "scene2world"), "run"]
    if config:
        argv += ["--config", config]
    for s in settings:
        argv += ["--set", s]
    t0 = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, cwd=REPO)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return seconds


def newest_render_stats(data_root: Path) -> dict[str, Any]:
    manifests = sorted((data_root / "render").glob("*/manifest.json"), key=lambda p: p.stat().st_mtime)
    return dict(json.loads(manifests[-1].read_text())["stats"]) if manifests else {}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument("--frames", default="0:30")
    ap.add_argument("--cameras", default=None, help="comma-separated; default: every camera of the rig")
    ap.add_argument("--msaa", type=int, default=1)
    ap.add_argument("--preset", default="ultrafast")
    ap.add_argument("--no-dask", action="store_true")
    ap.add_argument("--no-demo", action="store_true", help="skip the demo config's cached re-run")
    ap.add_argument("--ephemeral", action="store_true", help="also time a cached re-run on a temporary server")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="s2w-bench-dataset-"))
    base_env = {
        **os.environ,
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
        "PREFECT_HOME": str(work / "prefect"),
        "PREFECT_RESULTS_LOCAL_STORAGE_PATH": str(work / "prefect" / "storage"),
        "PREFECT_LOGGING_LEVEL": "WARNING",
    }
    server, url = start_server(work / "prefect")
    env = {**base_env, "PREFECT_API_URL": url}
    rows = []
    cluster = None
    try:
        cases = [(n, "local") for n in args.clips]
        if not args.no_dask:
            cases.append((max(args.clips), "dask"))
        for n, runner in cases:
            case = work / f"n{n}-{runner}"
            data = case / "data"
            common = [
                f"data_root={data}",
                f"runs_dir={case / 'runs'}",
                f"name=bench-{n}-{runner}",
                f"render.frames='{args.frames}'",
                f"render.msaa={args.msaa}",
                f"render.preset={args.preset}",
                "infer.fps=30",  # 30 frames make one 29-frame chunk at 30 fps
                "infer.nproc_per_node=1",
                "package.archive=none",
            ]
            if args.cameras:
                common.append(f"render.cameras=[{args.cameras}]")
            if runner == "dask":
                if cluster is None:
                    from distributed import LocalCluster

                    cluster = LocalCluster(
                        n_workers=2,
                        threads_per_worker=1,
                        processes=True,
                        dashboard_address=None,
                        silence_logs=logging.WARNING,
                    )
                common += ["render.task_runner=dask", f"render.dask_address={cluster.scheduler_address}"]
            first = write_dataset(case / "v1", n)
            full = run([f"download.source={first}", *common], env)
            cams = newest_render_stats(data).get("rendered_cameras", 0)
            cached = run([f"download.source={first}", *common], env)
            changed_src = write_dataset(case / "v2", n, changed=0)
            changed = run([f"download.source={changed_src}", *common], env)
            stats = newest_render_stats(data)
            row = {
                "clips": n,
                "runner": runner,
                "cameras": cams,
                "full_s": full,
                "full_per_clip_s": full / n,
                "cached_s": cached,
                "changed_s": changed,
                "changed_rendered": stats.get("rendered_cameras", 0),
            }
            if args.ephemeral and runner == "local" and n == max(args.clips):
                row["cached_ephemeral_s"] = run([f"download.source={changed_src}", *common], base_env)
            rows.append(row)
            print(json.dumps(row), flush=True)
        demo_cached = None
        if not args.no_demo:
            demo = [f"data_root={work / 'demo' / 'data'}", f"runs_dir={work / 'demo' / 'runs'}"]
            run(demo, env, config="configs/default.yaml")
            demo_cached = run(demo, env, config="configs/default.yaml")
    finally:
        if cluster is not None:
            cluster.close()
        server.terminate()
        server.wait(timeout=30)

    print()
    print(f"{os.cpu_count()} CPU(s); frames {args.frames}, msaa {args.msaa}, x264 {args.preset}; prefect server {url}")
    print("| clips | runner | cameras | full run s | s per clip | cached re-run s | one clip changed s | re-rendered |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['clips']} | {r['runner']} | {r['cameras']} | {r['full_s']:.1f} | {r['full_per_clip_s']:.2f} "
            f"| {r['cached_s']:.1f} | {r['changed_s']:.1f} | {r['changed_rendered']} of {r['cameras']} |"
        )
    for r in rows:
        if "cached_ephemeral_s" in r:
            print(
                f"cached re-run of {r['clips']} clips with a temporary Prefect server: {r['cached_ephemeral_s']:.1f} s"
            )
    if demo_cached is not None:
        print(f"demo config (configs/default.yaml), cached re-run: {demo_cached:.1f} s")


if __name__ == "__main__":
    main()
