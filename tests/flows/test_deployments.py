"""prefect.yaml end to end: a real server, `prefect deploy --all`, a process worker, deployment runs,
the scheduled regeneration against a real HTTP server, and cancellation (serve: test_serve.py).

One server + pool + worker serves the whole module; runs use one camera and 90 frames.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from scene2world import cache
from scene2world.regeneration.state import read_generation
from tests.conftest import EXAMPLE
from tests.datasets.conftest import FileServer, Resource

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

CAMERA = "camera_front_wide_120fov"
LEAN = {
    "render": {"cameras": [CAMERA], "frames": "0:90", "msaa": 1, "preset": "ultrafast"},
    "package": {"archive": "none"},
}
EXAMPLE_CLIP = "s2w_demo_curve_0001"


def lean(root: Path, **extra: object) -> dict:
    return {**LEAN, "data_root": str(root / "data"), "runs_dir": str(root / "runs"), **extra}


def run_deployment(stack, name: str, params: dict, *, watch: bool = True) -> tuple[subprocess.CompletedProcess, str]:
    args = ["deployment", "run", name, "--params", json.dumps(params)]
    if watch:
        args += ["--watch", "--watch-timeout", "600"]
    done = stack.prefect(*args, timeout=700)
    found = re.search(r"UUID:\s*([0-9a-f-]{36})", done.stdout)
    assert found, done.stdout[-2000:] + done.stderr[-2000:]
    return done, found.group(1)


def task_states(stack, flow_run_id: str) -> dict[str, str]:
    runs = stack.post("/task_runs/filter", {"flow_runs": {"id": {"any_": [flow_run_id]}}})
    return {r["name"]: (r["state"] or {}).get("name") for r in runs}


def flow_state(stack, flow_run_id: str) -> str:
    return stack.get(f"/flow_runs/{flow_run_id}")["state"]["name"]


def run_logs(stack, flow_run_id: str) -> list[str]:
    logs = stack.post("/logs/filter", {"logs": {"flow_run_id": {"any_": [flow_run_id]}}, "sort": "TIMESTAMP_ASC"})
    return [entry["message"] for entry in logs]


def wait_for(what: str, check, timeout: float, every: float = 0.2, detail=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(every)
    pytest.fail(f"timed out after {timeout:.1f} s waiting for {what}" + (f": {detail()}" if detail else ""))


def _processes() -> dict[int, tuple[int, bytes]]:
    """pid -> (parent pid, environment) of every live (not zombie) process."""
    table = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            env = (proc / "environ").read_bytes()
        except OSError:
            continue
        if fields[0] != "Z":
            table[int(proc.name)] = (int(fields[1]), env)
    return table


def run_pids(flow_run_id: str) -> list[int]:
    """Every live process of a flow run: those whose environment names the run, and their descendants
    (torchrun's ranks get an explicit environment, so they are found as children)."""
    mark = f"PREFECT__FLOW_RUN_ID={flow_run_id}".encode()
    table = _processes()
    found = {pid for pid, (_, env) in table.items() if mark in env.split(b"\0")}
    grew = True
    while grew:
        more = {pid for pid, (ppid, _) in table.items() if ppid in found} - found
        found |= more
        grew = bool(more)
    return sorted(found)


def alive(pids: list[int]) -> list[int]:
    table = _processes()
    return [p for p in pids if p in table]


def assert_nothing_half_written(root: Path) -> None:
    """Every step folder that looks published is a complete output; no staging folder is left."""
    for step in ("render", "infer", "render-cameras"):
        for folder in (root / "data" / step).glob("*") if (root / "data" / step).is_dir() else []:
            assert folder.name[0] != ".", folder  # a hidden temporary (staging, trash) left behind
            manifest = folder / "manifest.json"
            assert manifest.is_file(), f"{folder} has no manifest"
            assert cache.lookup(folder, json.loads(manifest.read_text())["cache_key"]) is not None, folder
    assert not (root / "runs").exists() or not any((root / "runs").iterdir())


# ------------------------------------------------------------------------------------------------ pipeline


def test_pipeline_deployment_through_the_worker_then_all_cached(stack):
    root = stack.tmp / "pipeline"
    params = lean(root, name="e2e")
    t0 = time.monotonic()
    first, run_id = run_deployment(stack, "scene2world/pipeline", params)
    t_first = time.monotonic() - t0
    assert first.returncode == 0, first.stdout[-3000:] + stack.worker_log.read_text()[-3000:]
    assert flow_state(stack, run_id) == "Completed"
    states = task_states(stack, run_id)  # the four steps and the mapped render's sub-flow
    assert set(states.values()) == {"Completed"} and len(states) >= 4, states
    (run_dir,) = [p for p in (root / "runs").iterdir() if not p.name.startswith(".")]  # .locks: docs/caching.md
    verify = subprocess.run(
        [sys.executable, "-m", "scene2world.cli", "verify", str(run_dir)], capture_output=True, text=True, timeout=120
    )
    assert verify.returncode == 0, verify.stderr
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["data"]["config"]["name"] == "e2e"  # the parameter won over configs/default.yaml
    assert manifest["data"]["config"]["infer"]["prompt"].startswith("A sunny afternoon")  # from the file

    t0 = time.monotonic()
    second, run_id2 = run_deployment(stack, "scene2world/pipeline", params)
    t_second = time.monotonic() - t0
    assert second.returncode == 0, second.stdout[-3000:]
    assert sorted(task_states(stack, run_id2).values()) == ["Cached"] * 4
    assert [p.name for p in (root / "runs").iterdir() if not p.name.startswith(".")] == [run_dir.name]
    print(f"\ndeployment run (1 camera, 90 frames): {t_first:.1f} s; cached re-run: {t_second:.1f} s")


def test_invalid_parameter_is_rejected_before_a_run_exists(stack):
    done = stack.prefect("deployment", "run", "scene2world/pipeline", "--params", '{"render": {"msaa": 3}}')
    assert done.returncode != 0
    assert "msaa" in done.stdout + done.stderr


def test_user_error_under_the_worker_is_one_line(stack):
    root = stack.tmp / "bad"
    done, run_id = run_deployment(stack, "scene2world/pipeline", lean(root, download={"source": str(root / "gone")}))
    assert done.returncode != 0
    assert flow_state(stack, run_id) == "Failed"
    logs = run_logs(stack, run_id)
    assert any("does not exist" in m for m in logs), logs
    assert not any("Traceback" in m for m in logs), "\n".join(logs)


# ------------------------------------------------------------------------------------------------ regenerate


def _dataset_zip(tmp: Path, trim_b: bool) -> bytes:
    """Two ClipGT clips (the bundled example under two ids); ``trim_b`` drops half the obstacle rows of clip_b."""
    folder = tmp / ("ds-trimmed" if trim_b else "ds")
    shutil.rmtree(folder, ignore_errors=True)
    for clip in ("clip_a", "clip_b"):
        (folder / clip).mkdir(parents=True)
        for f in (EXAMPLE / EXAMPLE_CLIP).iterdir():
            shutil.copy(f, folder / clip / f.name.replace(EXAMPLE_CLIP, clip))
    if trim_b:
        obstacles = folder / "clip_b" / "clip_b.obstacle.parquet"
        table = pq.read_table(obstacles)
        pq.write_table(table.slice(0, table.num_rows // 2), obstacles)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for f in sorted(folder.rglob("*")):
            if f.is_file():
                zf.write(f, f.relative_to(folder).as_posix())
    return buf.getvalue()


@pytest.fixture
def http_dataset(tmp_path):
    server = FileServer()
    server.thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()


def test_regenerate_renders_then_304_all_cached_then_only_the_changed_clip(stack, http_dataset, tmp_path):
    url = http_dataset.add("/ds.zip", _dataset_zip(tmp_path, trim_b=False), etag='"v1"')
    root = stack.tmp / "regen"
    params = lean(root, sources=[url], download={"retries": 0})

    first, _run1 = run_deployment(stack, "scene2world-regenerate/regenerate", params)
    assert first.returncode == 0, first.stdout[-3000:] + stack.worker_log.read_text()[-3000:]
    gen = read_generation(root / "data", url)
    assert gen is not None and sorted(gen.clips) == ["clip_a", "clip_b"]
    assert gen.report["clips"]["added"] == ["clip_a", "clip_b"]
    assert gen.report["cameras"] == {"rendered": 2, "reused": 0}
    run_dir = gen.run_dir

    t0 = time.monotonic()
    second, _run2 = run_deployment(stack, "scene2world-regenerate/regenerate", params)
    t_unchanged = time.monotonic() - t0
    assert second.returncode == 0, second.stdout[-3000:]
    assert http_dataset.requests_for("/ds.zip")[-1].status == 304
    assert len(http_dataset.requests_for("/ds.zip")) == 2  # one request per regeneration
    gen = read_generation(root / "data", url)
    assert gen.report["not_modified"] is True and gen.report["new_run"] is False
    assert set(gen.report["steps"].values()) == {"cached"}
    assert gen.report["clips"]["unchanged"] == ["clip_a", "clip_b"]
    assert gen.report["cameras"] == {"rendered": 0, "reused": 2}
    assert gen.run_dir == run_dir

    http_dataset.resources["/ds.zip"] = Resource(_dataset_zip(tmp_path, trim_b=True), etag='"v2"')
    third, run3 = run_deployment(stack, "scene2world-regenerate/regenerate", params)
    assert third.returncode == 0, third.stdout[-3000:]
    gen = read_generation(root / "data", url)
    assert gen.report["not_modified"] is False
    assert gen.report["clips"]["changed"] == ["clip_b"] and gen.report["clips"]["unchanged"] == ["clip_a"]
    assert gen.report["cameras"] == {"rendered": 1, "reused": 1}
    assert gen.report["new_run"] is True and gen.report["samples"]["inferred"] >= 1
    artifacts = stack.post("/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [run3]}}})
    markdown = next(a["data"] for a in artifacts if a["type"] == "markdown" and a["key"].startswith("regenerate-"))
    assert "| changed | 1 | clip_b |" in markdown and "1 rendered, 1 reused" in markdown

    # the dataset disappears: that source fails with one line, the last generation stays as it was
    before = read_generation(root / "data", url)
    runs_before = sorted(p.name for p in (root / "runs").iterdir())
    del http_dataset.resources["/ds.zip"]
    gone, run4 = run_deployment(stack, "scene2world-regenerate/regenerate", params)
    assert gone.returncode != 0
    assert flow_state(stack, run4) == "Failed"
    logs = run_logs(stack, run4)
    assert any("HTTP 404" in m and "left as they were" in m for m in logs), logs
    assert not any("Traceback" in m for m in logs), "\n".join(logs)
    assert read_generation(root / "data", url) == before
    assert sorted(p.name for p in (root / "runs").iterdir()) == runs_before
    print(f"\nregenerate with nothing changed (304, all cached): {t_unchanged:.1f} s")


# ------------------------------------------------------------------------------------------------ cancel


def _cancel(stack, run_id: str) -> None:
    stack.post(f"/flow_runs/{run_id}/set_state", {"state": {"type": "CANCELLING", "name": "Cancelling"}})


def _cancel_when(stack, params: dict, what: str, ready) -> tuple[str, list[int]]:
    _, run_id = run_deployment(stack, "scene2world/pipeline", params, watch=False)
    pids = wait_for(what, lambda: ready(run_id), timeout=300, every=0.1)
    _cancel(stack, run_id)
    t0 = time.monotonic()
    wait_for(
        "every process of the run to end",
        lambda: not alive(pids) and not run_pids(run_id),
        timeout=10,
        every=0.1,
        detail=lambda: f"left: {alive(pids)} {run_pids(run_id)}",
    )
    wait_for(
        "state Cancelled",
        lambda: flow_state(stack, run_id) == "Cancelled",
        timeout=60,
        detail=lambda: f"state {flow_state(stack, run_id)}; logs: {run_logs(stack, run_id)[-12:]}",
    )
    print(f"\ncancelled after {time.monotonic() - t0:.1f} s; {flow_state(stack, run_id)}")
    return run_id, pids


def test_cancel_mid_render_and_mid_infer_leaves_no_process_and_nothing_half_written(stack):
    root = stack.tmp / "cancel-render"
    params = lean(root, render={**LEAN["render"], "cameras": [CAMERA, "camera_rear_tele_30fov"], "frames": None})

    def rendering(run_id: str) -> list[int] | None:
        # the mapped render runs as a sub-flow: its task in this run is `scene2world-render-<n>`
        states = task_states(stack, run_id).items()
        running = any(n.startswith(("render", "scene2world-render")) and s == "Running" for n, s in states)
        pids = run_pids(run_id)
        return pids if running and len(pids) >= 2 else None  # the flow process and its render workers

    run_id, pids = _cancel_when(stack, params, "the render step to run", rendering)
    assert len(pids) >= 1
    assert_nothing_half_written(root)
    logs = run_logs(stack, run_id)
    assert any(m.startswith("cancelled: stopped") and "render" in m.split(";")[0] for m in logs), logs
    assert not any("Traceback" in m for m in logs), "\n".join(logs)

    root = stack.tmp / "cancel-infer"

    def inferring(run_id: str) -> list[int] | None:
        pids = run_pids(run_id)
        ranks = []
        for pid in pids:
            try:
                if b"preview_worker" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    ranks.append(pid)
            except OSError:
                continue
        return pids if len(ranks) >= 2 else None

    run_id, pids = _cancel_when(stack, lean(root), "the torchrun ranks", inferring)
    assert len(pids) >= 4  # flow process, torchrun agent, two ranks
    assert_nothing_half_written(root)
    logs = run_logs(stack, run_id)
    assert any(m.startswith("cancelled: stopped infer") for m in logs), logs
    # torchrun's agent prints its own traceback on SIGTERM, streamed line by line into the run log;
    # no record of the engine or of scene2world carries one (it would be one multi-line message)
    assert not any("Traceback" in m and "\n" in m for m in logs), "\n".join(logs)
