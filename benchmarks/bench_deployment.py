"""Benchmark: the demo as a Prefect deployment run through a process worker, cached, and regenerated.

Usage: python benchmarks/bench_deployment.py [--lean]

Starts a temporary `prefect server` on 127.0.0.1, the `scene2world` process pool,
`prefect deploy --all` and a worker (all in a temporary folder), then times with `--watch`:

1. `scene2world/pipeline` with no parameters but a temporary data root and runs folder
   (configs/default.yaml: what `make demo` runs), cold cache;
2. the same run again (every step a cache hit);
3. `scene2world-regenerate/regenerate` on the bundled example served as a zip by a local HTTP
   server, first (renders) and again with nothing changed (304, every step a hit).

Prints wall times (from the command's start to `--watch` returning) and the cached/cold ratios.
`--lean` renders one camera and 90 frames instead of the whole demo.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lean", action="store_true", help="one camera, 90 frames")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="s2w-bench-deploy-"))
    api = f"http://127.0.0.1:{_port()}/api"
    env = {
        **os.environ,
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_HOME": str(tmp / "home"),
        "PREFECT_RESULTS_LOCAL_STORAGE_PATH": str(tmp / "results"),
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        "PREFECT_CLI_PROMPT": "false",
    }
    env.pop("PREFECT_API_URL", None)
    procs: list[subprocess.Popen] = []

    def start(*argv: str, cwd: Path, log: str) -> None:
        out = open(tmp / log, "w")  # noqa: SIM115 - lives as long as the process
        procs.append(
            subprocess.Popen(argv, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        )

    def prefect(*argv: str, cwd: Path = tmp) -> float:
        t0 = time.perf_counter()
        cmd = [sys.executable, "-m", "prefect", *argv]
        done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"prefect {' '.join(argv[:3])} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
        return time.perf_counter() - t0

    port = int(api.split(":")[2].split("/")[0])
    start(sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port), "--no-ui",
          cwd=tmp, log="server.log")  # fmt: skip
    deadline = time.monotonic() + 90
    while True:
        try:
            if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit("prefect server did not start")
        time.sleep(0.5)
    env["PREFECT_API_URL"] = api
    zipped = Path(shutil.make_archive(str(tmp / "www" / "example"), "zip", REPO / "assets" / "example"))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(zipped.parent))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/{zipped.name}"
    try:
        prefect("work-pool", "create", "scene2world", "--type", "process")
        prefect("--no-prompt", "deploy", "--all", cwd=REPO)
        start(sys.executable, "-m", "prefect", "worker", "start", "--pool", "scene2world", cwd=tmp, log="worker.log")
        base: dict = {"data_root": str(tmp / "data"), "runs_dir": str(tmp / "runs")}
        if args.lean:
            base["render"] = {"cameras": ["camera_front_wide_120fov"], "frames": "0:90"}
        run = ("deployment", "run", "--watch", "--watch-timeout", "1800", "--params")
        cold = prefect(*run, json.dumps(base), "scene2world/pipeline")
        cached = prefect(*run, json.dumps(base), "scene2world/pipeline")
        regen = {**base, "sources": [url], "download": {"retries": 0}}
        first = prefect(*run, json.dumps(regen), "scene2world-regenerate/regenerate")
        unchanged = prefect(*run, json.dumps(regen), "scene2world-regenerate/regenerate")
    finally:
        for proc in reversed(procs):  # the worker before the server
            _stop(proc)
        httpd.shutdown()
    what = "1 camera x 90 frames" if args.lean else "the demo (7 cameras x 151 frames)"
    print(f"deployment runs through a process worker, {what}, {os.cpu_count()} CPU cores")
    print(f"  pipeline, cold cache         {cold:6.1f} s")
    print(f"  pipeline, cached re-run      {cached:6.1f} s   ({cached / cold:.2f}x of cold)")
    print(f"  regenerate, first            {first:6.1f} s")
    print(f"  regenerate, nothing changed  {unchanged:6.1f} s   ({unchanged / cold:.2f}x of the cold pipeline run)")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
