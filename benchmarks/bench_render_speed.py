"""Renderer speed: where a camera-frame's time goes, and the geometry before and after (docs/speed.md).

Sections (each prints its figures and, against the first variant, ratios):

1. ``profile``: one process, ms per camera-frame for each stage (the ``nvidia`` look's geometry:
   pose, transform of the static map, f-theta projection, line expansion, static triangles,
   traffic lights, boxes; raster: merge, upload + draw + resolve + readback, and the fixed part of
   that with nothing drawn; x264: NVIDIA's settings, CRF 18 preset ``slow``, one stream);
2. ``geometry``: camera-frames/s of one process building the frames (geometry only, then geometry +
   raster): ``base`` (the geometry of ``--baseline-rev``, from ``git archive``, in a subprocess;
   skipped without git) and ``numpy`` (this tree);
3. ``render-only``: N spawned processes, each its own EGL context, build + rasterise every
   camera-frame of the clip and drop the images; timed from a barrier once all are ready
   (start-up reported apart);
4. ``end-to-end``: ``render_clip`` of the whole clip to mp4 with NVIDIA's encoder settings
   (libx264 CRF 18 ``slow``), default workers; start-up (to the first finished camera-frame)
   reported apart.

Needs only the repository, its pip dependencies and an EGL (NVIDIA's on a GPU machine: docs/gpu.md).

    .venv/bin/python benchmarks/bench_render_speed.py                       # here (2 cores, llvmpipe)
    python3 benchmarks/bench_render_speed.py --device gpu --workers 1 8 16  # on the GPU machine
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import deque
from io import BytesIO
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# bench_render (a sibling script: benchmarks/ is on sys.path) puts the code root first on sys.path
from bench_render import CODE_ROOT_ENV, code_root  # noqa: E402

if __name__ == "__main__" and "--root" in sys.argv:  # the baseline subprocess imports another tree
    os.environ[CODE_ROOT_ENV] = sys.argv[sys.argv.index("--root") + 1]  # and so do its processes
    sys.path.insert(0, os.environ[CODE_ROOT_ENV])

EXAMPLE_CLIP = REPO / "assets" / "example" / "s2w_demo_curve_0001"

CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
clock = time.perf_counter
"""Sections 1-2 time with this: ``wall``, or ``cpu`` (this process's CPU time, all its threads: far
steadier than wall time on a shared machine; the default without CUDA)."""


def machine() -> dict:
    """CPU model, cores, GPU name (torch or nvidia-smi), versions, load."""
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = "none"
    torch_version = "not installed"
    try:
        import torch

        torch_version = torch.__version__
        if torch.cuda.is_available():
            gpu = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    if gpu == "none" and shutil.which("nvidia-smi"):
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True
        )
        gpu = out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else "none"
    import numpy

    return {
        "cpu": cpu,
        "cores": len(os.sched_getaffinity(0)),
        "gpu": gpu,
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "torch": torch_version,
        "loadavg_1m": round(os.getloadavg()[0], 2),
    }


def load_clip(frames: int | None):
    from scene2world.scene.load import load_scene

    scene = load_scene(EXAMPLE_CLIP)
    if frames is None or frames >= scene.num_frames:
        return scene
    import dataclasses

    return dataclasses.replace(
        scene,
        frame_timestamps_us=scene.frame_timestamps_us[:frames],
        world_SE3_rig=scene.world_SE3_rig[:frames],
        world_SE3_cam_direct={k: v[:frames] for k, v in scene.world_SE3_cam_direct.items()},
    )


def sample_jobs(scene, per_camera: int) -> list[tuple[str, int]]:
    step = max(1, scene.num_frames // per_camera)
    return [(cam, f) for cam in scene.camera_names for f in range(0, scene.num_frames, step)]


# --------------------------------------------------------------------------------------------
# 1. profile


def _geometry_stages(scene, static, camera_name: str, frame: int, t: dict) -> list:
    """``frame.build_frame`` (nvidia look, culled caps) step by step, adding each step's seconds to ``t``."""
    import numpy as np

    from scene2world.renderer import frame as frame_mod
    from scene2world.renderer.batch import FAR_CLIP_M, NEAR_CLIP_M
    from scene2world.renderer.lines import expand_finite_lines
    from scene2world.renderer.meshes import project_triangles
    from scene2world.renderer.projection import project_segment_ends, transform_points

    c = clock
    t0 = c()
    camera = frame_mod.camera_model(scene, camera_name)
    cam_SE3_world = np.linalg.inv(np.asarray(scene.world_SE3_cam(camera_name)[frame], dtype=np.float64))
    t1 = c()
    points_cam = transform_points(cam_SE3_world, static.line_points_world)
    t2 = c()
    uvz0, uvz1, shown = project_segment_ends(camera, points_cam, static.line_index, NEAR_CLIP_M, FAR_CLIP_M)
    t3 = c()
    lines = expand_finite_lines(
        uvz0,
        uvz1,
        static.line_colors[shown],
        static.line_widths_px[shown],
        camera.width_px,
        camera.height_px,
        "static_lines",
        segment_ids=shown,
    )
    t4 = c()
    tris = project_triangles(
        camera,
        transform_points(cam_SE3_world, static.triangles_world),
        static.triangle_colors,
        label="static_triangles",
    )
    t5 = c()
    lights = frame_mod._traffic_lights(static, cam_SE3_world, camera, frame)
    t6 = c()
    boxes = frame_mod._dynamic_boxes(scene, frame, "nvidia", cam_SE3_world, camera, static)
    t7 = c()
    for key, dt in (
        ("pose", t1 - t0),
        ("transform static points", t2 - t1),
        ("project static points", t3 - t2),
        ("expand lines", t4 - t3),
        ("static triangles", t5 - t4),
        ("traffic lights", t6 - t5),
        ("boxes", t7 - t6),
    ):
        t[key] = t.get(key, 0.0) + dt
    return [lines, tris, lights, boxes]


def profile(scene, msaa: int, device: str, per_camera: int, encode: bool) -> dict:
    """ms per camera-frame of each stage, one process."""
    import numpy as np

    from scene2world.renderer.frame import build_frame, prepare_static
    from scene2world.renderer.raster import Rasterizer, merge_batches

    static = prepare_static(scene, "nvidia")
    jobs = sample_jobs(scene, per_camera)
    t: dict[str, float] = {}
    images = []
    with Rasterizer(msaa=msaa, device=device) as raster:
        raster.render(build_frame(scene, jobs[0][0], jobs[0][1], "nvidia", static))  # shader compile
        for cam, f in jobs:
            batches = _geometry_stages(scene, static, cam, f, t)
            want = build_frame(scene, cam, f, "nvidia", static)
            assert sum(b.num_triangles for b in batches) == sum(b.num_triangles for b in want), "profile != build_frame"
            t0 = clock()
            merge_batches(batches)
            t1 = clock()
            image = raster.render(batches)
            t2 = clock()
            raster.render([])
            t3 = clock()
            t["raster: merge batches"] = t.get("raster: merge batches", 0.0) + t1 - t0
            t["raster: upload+draw+resolve+readback"] = t.get("raster: upload+draw+resolve+readback", 0.0) + t2 - t1
            t["  of which fixed (nothing drawn)"] = t.get("  of which fixed (nothing drawn)", 0.0) + t3 - t2
            if cam == jobs[0][0]:
                images.append(np.array(image))
        renderer = raster.renderer_name
    n = len(jobs)
    out = {key: round(v / n * 1e3, 3) for key, v in t.items()}
    out["geometry total"] = round(sum(v for k, v in out.items() if not k.startswith(("raster", " "))), 3)
    if encode:
        out.update(encode_cost(images))
    return {"renderer": renderer, "camera_frames": n, "ms_per_camera_frame": out}


def encode_cost(images: list) -> dict:
    """ms per frame of one libx264 CRF 18 ``slow`` stream (wall, and ffmpeg's CPU time)."""
    from scene2world.renderer.video import VideoWriter

    frames = (images * (60 // max(1, len(images)) + 1))[:60]
    folder = Path(tempfile.mkdtemp(prefix="s2w-speed-"))
    try:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        with VideoWriter(folder / "x.mp4", width=1280, height=720, crf=18, preset="slow") as w:
            for image in frames:
                w.write(image)
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return {
        "x264 CRF 18 slow: wall": round(wall / len(frames) * 1e3, 3),
        "x264 CRF 18 slow: ffmpeg CPU": round(cpu / len(frames) * 1e3, 3),
    }


# --------------------------------------------------------------------------------------------
# 2. geometry per process


def geometry_rate(
    scene, variant: str, msaa: int, device: str, per_camera: int, repeats: int = 3, per_pass: int = 1
) -> dict:
    """camera-frames/s of one process: geometry alone (best of ``repeats``), geometry + raster
    (``per_pass`` cameras of a frame drawn in one pass; 1 works with a baseline tree too)."""
    from scene2world.renderer.frame import build_frame, prepare_static

    static = prepare_static(scene, "nvidia")
    jobs = sample_jobs(scene, per_camera)
    for cam, f in jobs[:4]:  # warm-up (caches)
        build_frame(scene, cam, f, "nvidia", static)
    best = float("inf")
    for _ in range(repeats):
        t0 = clock()
        for cam, f in jobs:
            build_frame(scene, cam, f, "nvidia", static)
        best = min(best, clock() - t0)
    out = {"variant": variant, "per_pass": per_pass, "geometry_ms": round(best / len(jobs) * 1e3, 3)}
    if msaa:
        from scene2world.renderer.raster import Rasterizer

        frames = sorted({f for _, f in jobs})
        cams = list(scene.camera_names)
        passes = [[(cam, f) for cam in cams[k : k + per_pass]] for f in frames for k in range(0, len(cams), per_pass)]

        def timed(draw_all):
            total = float("inf")
            for _ in range(2):  # best of two passes (llvmpipe's threads make single passes noisy)
                t0 = clock()
                draw_all([build_frame(scene, cam, f, "nvidia", static) for cam, f in g] for g in passes)
                total = min(total, clock() - t0)
            return total

        if per_pass == 1:  # the baseline's way (its Rasterizer may know nothing else)
            with Rasterizer(msaa=msaa, device=device) as raster:
                raster.render(build_frame(scene, *passes[0][0], "nvidia", static))
                total = timed(lambda images: deque((raster.render(i[0]) for i in images), maxlen=0))
        else:  # render_clip's way on a GPU: a GL thread drawing one pass behind the geometry
            from scene2world.renderer.raster_thread import one_pass_ahead, open_rasterizer

            with open_rasterizer(per_pass, msaa=msaa, device=device) as raster:
                raster.submit([build_frame(scene, *passes[0][0], "nvidia", static)]).result()
                total = timed(lambda images: deque(one_pass_ahead(raster, images), maxlen=0))
        n = sum(len(g) for g in passes)
        out["geometry_raster_ms"] = round(total / n * 1e3, 3)
        out["camera_frames_per_s"] = round(n / total, 1)
    return out


def export_baseline(rev: str, folder: Path) -> bool:
    """``git archive`` the package at ``rev`` into ``folder`` (for a machine without git: pass it
    there with ``--baseline-root``)."""
    if not (REPO / ".git").exists() or not shutil.which("git"):
        print(f"baseline {rev}: no git checkout here; skipped (pass --baseline-root of an exported tree)")
        return False
    tar = subprocess.run(["git", "-C", str(REPO), "archive", rev, "scene2world"], capture_output=True)
    if tar.returncode != 0:
        print(f"baseline {rev}: git archive failed: {tar.stderr.decode().strip()}")
        return False
    folder.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=BytesIO(tar.stdout)) as archive:
        archive.extractall(folder, filter="data")
    return True


def baseline_rate(
    rev: str,
    scene_frames: int | None,
    msaa: int,
    device: str,
    per_camera: int,
    clock_name: str,
    root: Path | None = None,
) -> dict | None:
    """:func:`geometry_rate` of the code at ``rev`` (exported into a temporary folder unless ``root``
    holds it already), in a subprocess."""
    folder = root or Path(tempfile.mkdtemp(prefix="s2w-base-"))
    try:
        if root is None and not export_baseline(rev, folder):
            return None
        args = [
            sys.executable,
            __file__,
            "--root",
            str(folder),
            "--_baseline",
            "--msaa",
            str(msaa),
            "--clock",
            clock_name,
        ]
        args += ["--device", device, "--per-camera", str(per_camera)]
        if scene_frames:
            args += ["--frames", str(scene_frames)]
        run = subprocess.run(args, capture_output=True, text=True)
        if run.returncode != 0:
            print(f"baseline {rev} failed:\n{run.stderr[-2000:]}")
            return None
        result: dict = json.loads(run.stdout.strip().splitlines()[-1])
        if Path(result["code"]) != folder.resolve():
            raise RuntimeError(f"the baseline subprocess imported scene2world from {result['code']}, not {folder}")
        result["variant"] = f"base ({rev})"
        return result
    finally:
        if root is None:
            shutil.rmtree(folder, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# 3. render-only, N processes


# the render-only measurement is bench_render's (same processes, tasks and barrier)
from bench_render import render_only  # noqa: E402  (a sibling script: benchmarks/ is on sys.path)

# --------------------------------------------------------------------------------------------
# 4. end to end


def end_to_end(scene, msaa: int, device: str, workers: int, per_pass: int = 0) -> dict:
    from scene2world.renderer.render import default_workers, render_clip

    out_dir = Path(tempfile.mkdtemp(prefix="s2w-speed-"))
    first: list[float] = []

    def progress(done: int, _total: int) -> None:
        if done == 1 and not first:
            first.append(time.perf_counter())

    try:
        t0 = time.perf_counter()
        res = render_clip(
            scene,
            out_dir,
            msaa=msaa,
            device=device,  # type: ignore[arg-type]
            workers=workers,
            crf=18,
            preset="slow",
            progress=progress,
            cameras_per_pass=per_pass,
        )
        wall = time.perf_counter() - t0
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
    frames = sum(r.frames for r in res)
    return {
        "workers": workers or default_workers(len(scene.camera_names)),
        "per_pass": per_pass or "auto",
        "seconds": round(wall, 2),
        "to_first_frame_s": round(first[0] - t0, 2) if first else None,
        "camera_frames": frames,
        "camera_frames_per_s": round(frames / wall, 1),
        "renderer": res[0].renderer,
    }


# --------------------------------------------------------------------------------------------


def have_ffmpeg() -> bool:
    """An ffmpeg for the writer: ``IMAGEIO_FFMPEG_EXE`` or imageio-ffmpeg's binary."""
    if os.environ.get("IMAGEIO_FFMPEG_EXE"):
        return True
    try:
        import imageio_ffmpeg

        return bool(imageio_ffmpeg.get_ffmpeg_exe())
    except (ImportError, RuntimeError):
        return False


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=None, help="only the first N frames of the example clip")
    ap.add_argument("--msaa", type=int, default=4)
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "gpu"], help="EGL device")
    ap.add_argument("--per-camera", type=int, default=16, help="sampled frames per camera (sections 1-2)")
    ap.add_argument("--baseline-rev", default="1718edf", help="git revision of the baseline numpy geometry")
    ap.add_argument(
        "--baseline-root", type=Path, default=None, help="the baseline's package, exported (--export-baseline)"
    )
    ap.add_argument("--export-baseline", type=Path, default=None, help="export --baseline-rev here and exit")
    ap.add_argument("--workers", type=int, nargs="*", default=None, help="render-only process counts")
    ap.add_argument(
        "--per-pass", type=int, nargs="*", default=None, help="cameras per pass to compare with 1 (default: all)"
    )
    ap.add_argument("--encode-workers", type=int, default=0, help="end-to-end workers (0 = one per core, <= cameras)")
    ap.add_argument("--sections", nargs="+", default=["profile", "geometry", "render-only", "end-to-end"])
    ap.add_argument(
        "--clock", choices=sorted(CLOCKS), default=None, help="sections 1-2 (default: wall on a GPU, else cpu)"
    )
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--root", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--_baseline", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    global clock
    if args.export_baseline:
        return 0 if export_baseline(args.baseline_rev, args.export_baseline) else 1
    scene = load_clip(args.frames)
    args.clock = args.clock or ("wall" if args.device == "gpu" else "cpu")
    clock = CLOCKS[args.clock]
    if args._baseline:  # subprocess: the old tree's numpy geometry
        rate = geometry_rate(scene, "base", args.msaa, args.device, args.per_camera)
        print(json.dumps(rate | {"code": str(code_root())}))
        return 0
    m = machine()
    report: dict = {"machine": m, "scene": {"cameras": len(scene.camera_names), "frames": scene.num_frames}}
    print(
        f"machine: {m['cpu']}, {m['cores']} cores; GPU: {m['gpu']}; python {m['python']}, numpy {m['numpy']}, ", end=""
    )
    print(f"torch {m['torch']}; load {m['loadavg_1m']}")
    print(f"clip: {len(scene.camera_names)} cameras x {scene.num_frames} frames, MSAA {args.msaa}, EGL {args.device}")

    if "profile" in args.sections:
        encode = have_ffmpeg()
        if not encode:
            print("no ffmpeg (IMAGEIO_FFMPEG_EXE or imageio-ffmpeg): x264 left out of the profile, no end-to-end")
            args.sections = [s for s in args.sections if s != "end-to-end"]
        p = profile(scene, args.msaa, args.device, args.per_camera, encode=encode)
        report["profile"] = p
        n, gl = p["camera_frames"], p["renderer"]
        print(f"\n[1] one process, {args.clock} ms per camera-frame ({n} camera-frames; {gl}):")
        for key, ms in p["ms_per_camera_frame"].items():
            print(f"    {key:42s} {ms:8.3f}")

    if "geometry" in args.sections:
        rows = []
        base = baseline_rate(
            args.baseline_rev, args.frames, args.msaa, args.device, args.per_camera, args.clock, args.baseline_root
        )
        if base is not None:
            rows.append(base)
        for per_pass in sorted({1, *(args.per_pass or [len(scene.camera_names)])}):
            rows.append(geometry_rate(scene, "now", args.msaa, args.device, args.per_camera, per_pass=per_pass))
        report["geometry"] = rows
        ref = rows[0]
        print(f"\n[2] one process, {args.clock} time per camera-frame (ratios against {ref['variant']}):")
        for r in rows:
            geo, both = r["geometry_ms"], r["geometry_raster_ms"]
            print(
                f"    {r['variant']:15s} {r.get('per_pass', 1)} camera(s) per pass: "
                f"geometry {geo:7.3f} ms (x{ref['geometry_ms'] / geo:.2f})"
                f"   geometry+raster {both:7.3f} ms = {r['camera_frames_per_s']:6.1f} camera-frames/s"
                f" (x{ref['geometry_raster_ms'] / both:.2f})"
            )

    if "render-only" in args.sections:
        report["render_only"] = []
        print("\n[3] render-only throughput (start-up apart; ratios against 1 camera per pass, same processes):")
        passes = sorted({1, *(args.per_pass or [len(scene.camera_names)])})
        for w in args.workers or [min(m["cores"], 16)]:
            first = None
            for per_pass in passes:
                r = render_only(scene, args.msaa, args.device, w, per_pass)
                report["render_only"].append(r)
                first = first or r
                print(
                    f"    {w:3d} process(es), {per_pass} camera(s) per pass: {r['camera_frames_per_s']:7.1f} "
                    f"camera-frames/s (x{r['camera_frames_per_s'] / first['camera_frames_per_s']:.2f}; "
                    f"{r['seconds']} s; start-up {r['startup_s']} s)"
                )

    if "end-to-end" in args.sections:
        report["end_to_end"] = []
        print("\n[4] render_clip end to end, libx264 CRF 18 slow (NVIDIA's settings):")
        # cameras per pass: render_clip's choice (auto), and on a GPU also one at a time
        for per_pass in [0] + ([1] if args.device == "gpu" else []):
            e = end_to_end(scene, args.msaa, args.device, args.encode_workers, per_pass)
            report["end_to_end"].append(e)
            print(
                f"    {e['workers']} workers, cameras per pass {e['per_pass']}: {e['seconds']} s for "
                f"{e['camera_frames']} camera-frames = {e['camera_frames_per_s']} camera-frames/s; "
                f"to the first frame {e['to_first_frame_s']} s"
            )
    report["machine"]["loadavg_1m_after"] = round(os.getloadavg()[0], 2)
    print(f"\nload average (1 min) before {m['loadavg_1m']}, after {report['machine']['loadavg_1m_after']}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
