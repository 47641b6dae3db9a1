"""Prove the launcher, the GPU planner and the preview engine on a machine with several GPUs.

One command runs the whole matrix of issue 15 and prints a table (and a JSON report):

    python scripts/multi_gpu_check.py --render7 DIR --render4 DIR --nproc 8 --out report.json

* ``views7``       the 7 control videos of the bundled example, ``--nproc`` ranks, per-view + grid outputs
* ``combined``     the same with ``save_combined_views`` (one time-concatenated video)
* ``autoregressive`` the same with 2 autoregressive chunks (15 fps, so 5 s of controls hold 2 chunks)
* ``views4``       4 active views on 4 ranks
* ``rank_killed``  one rank SIGKILLed while frames are prepared: the launcher must stop the others and say so
* ``cancelled``    SIGINT to ``scene2world infer`` (Ctrl-C): exit 130, no process of the run left (by pid)
* ``refused``      the Cosmos planner refuses 7 views on 4 ranks before anything is launched
* ``doctor``       ``scene2world doctor`` for this machine, when the command exists

``--render7``/``--render4`` are render step outputs (folders holding a render ``manifest.json``),
e.g. ``scene2world render assets/example --out r7`` and the same with ``--cameras`` naming 4 cameras.
Without them the script renders them itself (needs the renderer on this machine).

Every case runs in a data root of its own (no cache hit between cases). NVLink multicast stays
off: the three variables below are set for every command and checked in the ranks' environment
(``/proc/<pid>/environ``) while they run. On a CPU machine, ``--backend gloo --nproc 2`` runs the
same matrix with CPU ranks.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
NO_MULTICAST = {"NCCL_NVLS_ENABLE": "0", "TORCH_SYMM_MEM_DISABLE_MULTICAST": "1", "NVSHMEM_DISABLE_NVLS": "1"}
FOUR_CAMERAS = "camera_front_wide_120fov,camera_cross_left_120fov,camera_cross_right_120fov,camera_rear_tele_30fov"
WORKER = "scene2world.inference.preview_worker"
RANK_LINE = re.compile(r"^\[(\d\d):(\d\d):(\d\d)\|rank(\d+)\|")


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "scene2world.cli", *args]


def environment() -> dict[str, str]:
    env = {**os.environ, **NO_MULTICAST, "PYTHONUNBUFFERED": "1"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    return env


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {"host": platform.node(), "python": platform.python_version(), "cpus": os.cpu_count()}
    with contextlib.suppress(Exception):
        import torch

        info["torch"] = torch.__version__
        info["cuda_devices"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    with contextlib.suppress(Exception):
        info["nvidia_smi"] = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True).stdout.strip()
    return info


def run_pids(marker: str) -> list[int]:
    """Pids of processes whose command line contains ``marker`` (the case's data root)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline:
            found.append(int(entry.name))
    return found


def rank_pids(marker: str) -> dict[int, int]:
    """{rank: pid} of the preview worker ranks of one case."""
    ranks = {}
    for pid in run_pids(marker):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
            items = Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        env = dict(item.split("=", 1) for item in items if "=" in item)
        if WORKER in cmdline and "RANK" in env:
            ranks[int(env["RANK"])] = pid
    return ranks


def rank_environment(pid: int) -> dict[str, str]:
    try:
        items = Path(f"/proc/{pid}/environ").read_bytes().decode().split("\0")
    except OSError:
        return {}
    env = dict(item.split("=", 1) for item in items if "=" in item)
    return {k: env.get(k, "<unset>") for k in NO_MULTICAST}


def per_rank_seconds(root: Path) -> dict[int, float]:
    """Seconds from a rank's first to its last log line (``[HH:MM:SS|rankK|…]``), from every log under ``root``."""
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    for path in root.rglob("*.log"):
        with contextlib.suppress(OSError):
            for line in path.read_text(errors="replace").splitlines():
                m = RANK_LINE.match(line.strip())
                if m:
                    h, mi, s, rank = (int(x) for x in m.groups())
                    t = h * 3600 + mi * 60 + s
                    first[rank] = min(first.get(rank, t), t)
                    last[rank] = max(last.get(rank, t), t)
    return {rank: float(last[rank] - first[rank]) for rank in sorted(first)}


def checksums(manifest_path: Path) -> dict[str, str]:
    """sha256 (first 16 hex) of every video the infer step wrote."""
    folder = manifest_path.parent
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()[:16]
        for p in sorted(folder.rglob("*.mp4"))
        if "controls" not in p.parts
    }


def infer_case(name: str, render: Path, work: Path, nproc: int, backend: str, *settings: str) -> dict[str, Any]:
    root = work / f"data-{name}"
    argv = cli(
        "infer", str(render / "manifest.json"), "--nproc", str(nproc), "--engine", "preview",
        "--set", f"data_root={root}", "--set", f"infer.backend={backend}", *(a for s in settings for a in ("--set", s)),
    )  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, env=environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen_env: dict[str, str] = {}
    while proc.poll() is None:
        if not seen_env:
            ranks = rank_pids(str(root))
            if ranks:
                seen_env = rank_environment(next(iter(ranks.values())))
        time.sleep(0.2)
    out, err = proc.communicate()
    wall = time.perf_counter() - t0
    result: dict[str, Any] = {"case": name, "rc": proc.returncode, "wall_s": round(wall, 2), "rank_env": seen_env}
    if proc.returncode == 0:
        manifest = Path(out.strip().splitlines()[-1])
        result["per_rank_s"] = per_rank_seconds(manifest.parent)
        result["outputs"] = checksums(manifest)
    else:
        result["error"] = err.strip().splitlines()[-1:] if err.strip() else []
    result["left_over_pids"] = run_pids(str(root))
    return result


def interrupted_case(name: str, render: Path, work: Path, nproc: int, backend: str, how: str) -> dict[str, Any]:
    """Start a 7-view run, wait until every rank works, then kill one rank or SIGINT the CLI."""
    root = work / f"data-{name}"
    argv = cli(
        "infer", str(render / "manifest.json"), "--nproc", str(nproc), "--engine", "preview",
        "--set", f"data_root={root}", "--set", f"infer.backend={backend}",
    )  # fmt: skip
    proc = subprocess.Popen(argv, env=environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    ranks: dict[int, int] = {}
    while time.monotonic() < deadline and proc.poll() is None and len(ranks) < nproc:
        ranks = rank_pids(str(root))
        time.sleep(0.1)
    time.sleep(1.5)  # the ranks are past start-up and preparing frames
    pids_before = sorted(set(run_pids(str(root))) | set(ranks.values()))
    t0 = time.perf_counter()
    if how == "kill_rank" and ranks:
        victim = max(ranks)
        os.kill(ranks[victim], signal.SIGKILL)
    else:
        victim = None
        proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    stopped_s = time.perf_counter() - t0
    alive = [pid for pid in pids_before if Path(f"/proc/{pid}").exists() and not _is_zombie(pid)]
    return {
        "case": name,
        "rc": proc.returncode,
        "killed_rank": victim,
        "ranks_seen": len(ranks),
        "seconds_to_exit": round(stopped_s, 2),
        "pids_checked": len(pids_before),
        "left_over_pids": alive,
        "message": err.strip().splitlines()[-1:] if err.strip() else [],
        "published": sorted(str(p.relative_to(root)) for p in root.glob("infer/*/manifest.json")),
    }


def _is_zombie(pid: int) -> bool:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")
    return True


def refused_case(render: Path, work: Path) -> dict[str, Any]:
    """7 views on 4 ranks with the cosmos engine: refused by the planner before any launch."""
    repo = work / "cosmos-stub"
    (repo / "examples").mkdir(parents=True, exist_ok=True)
    (repo / "examples" / "multiview.py").write_text("raise SystemExit('must never be launched')\n")
    root = work / "data-refused"
    argv = cli(
        "infer", str(render / "manifest.json"), "--nproc", "4", "--engine", "cosmos",
        "--set", f"data_root={root}", "--set", f"infer.cosmos.repo_dir={repo}",
        "--set", f"infer.cosmos.python={sys.executable}",
    )  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.run(argv, env=environment(), capture_output=True, text=True)
    launched = any((root / "infer").rglob("torchrun.log")) if (root / "infer").exists() else False
    return {
        "case": "refused",
        "rc": proc.returncode,
        "wall_s": round(time.perf_counter() - t0, 2),
        "launched": launched,
        "message": proc.stderr.strip().splitlines()[-1:] if proc.stderr.strip() else [],
    }


def doctor_case(nproc: int) -> dict[str, Any]:
    proc = subprocess.run(cli("doctor", "--help"), env=environment(), capture_output=True, text=True)
    if proc.returncode != 0:
        return {"case": "doctor", "skipped": "no `scene2world doctor` in this version"}
    proc = subprocess.run(
        cli("doctor", "--set", f"infer.nproc_per_node={nproc}"), env=environment(), capture_output=True, text=True
    )
    return {"case": "doctor", "rc": proc.returncode, "lines": (proc.stdout + proc.stderr).strip().splitlines()}


def render_controls(work: Path, frames: str | None) -> tuple[Path, Path]:
    """Render the bundled example's 7 cameras and a 4-camera subset (the per-camera cache shares them)."""
    root = work / "data-render"
    extra = ["--frames", frames] if frames else []
    outs = []
    for name, cams in (("render7", []), ("render4", ["--cameras", FOUR_CAMERAS])):
        out = work / name
        argv = cli("render", str(REPO / "assets" / "example"), "--out", str(out), "--set", f"data_root={root}")
        subprocess.run([*argv, *cams, *extra], env=environment(), check=True, capture_output=True, text=True)
        outs.append(out)
    return outs[0], outs[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--render7", type=Path, help="render output of the 7 cameras (default: render it here)")
    parser.add_argument("--render4", type=Path, help="render output of 4 cameras (default: render it here)")
    parser.add_argument("--nproc", type=int, default=8, help="ranks for the 7-view cases")
    parser.add_argument("--backend", default="nccl", choices=["nccl", "gloo"])
    parser.add_argument("--frames", help="render only this START:END range when rendering here")
    parser.add_argument("--work", type=Path, help="scratch folder (default: a temporary one, removed)")
    parser.add_argument("--out", type=Path, help="write the JSON report here")
    args = parser.parse_args()
    os.environ.update(NO_MULTICAST)
    work = args.work or Path(tempfile.mkdtemp(prefix="s2w-mgpu-"))
    work.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"machine": machine(), "nproc": args.nproc, "backend": args.backend, "cases": []}
    print(json.dumps(report["machine"]), flush=True)
    try:
        if args.render7 and args.render4:
            render7, render4 = args.render7.absolute(), args.render4.absolute()
        else:
            render7, render4 = render_controls(work, args.frames)
        cases = report["cases"]
        cases.append(infer_case("views7", render7, work, args.nproc, args.backend))
        cases.append(infer_case("combined", render7, work, args.nproc, args.backend, "infer.save_combined_views=true"))
        autoregressive = ("infer.fps=15", "infer.enable_autoregressive=true", "infer.num_chunks=2")
        cases.append(infer_case("autoregressive", render7, work, args.nproc, args.backend, *autoregressive))
        cases.append(infer_case("views4", render4, work, min(4, args.nproc), args.backend))
        cases.append(interrupted_case("rank_killed", render7, work, args.nproc, args.backend, "kill_rank"))
        cases.append(interrupted_case("cancelled", render7, work, args.nproc, args.backend, "sigint"))
        cases.append(refused_case(render7, work))
        cases.append(doctor_case(args.nproc))
        for case in cases:
            print(json.dumps(case), flush=True)
    finally:
        if args.out:
            args.out.write_text(json.dumps(report, indent=2))
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
