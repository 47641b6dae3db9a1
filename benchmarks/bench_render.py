"""Camera-frames per second of the renderer on the bundled example (or another clip).

Runs, for each MSAA setting:
1. a single-process breakdown on a sample of frames: geometry (``frame.build_frame``) and
   rasterisation (``Rasterizer.render``) in ms per camera-frame, triangles per frame;
2. render-only throughput: W spawned processes (each its own EGL context) take (camera,
   frame-chunk) tasks from a queue, build + rasterise, and drop the images; timed from a barrier
   once every process is ready (start-up reported apart);
3. render+encode: ``render_clip`` end to end (processes, mp4 files, libx264 CRF 18 ``--preset``),
   wall time for the whole clip.

Same script on the GPU machine: ``--device gpu --workers 4 8 16``. Prints a table and, with
``--json``, writes the figures.

    .venv/bin/python benchmarks/bench_render.py                      # here, defaults
    .venv/bin/python benchmarks/bench_render.py --msaa 4 --no-encode --workers 2
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from unittest import mock

REPO = Path(__file__).resolve().parents[1]
CODE_ROOT_ENV = "S2W_BENCH_CODE_ROOT"
"""A tree whose ``scene2world`` the benchmarks import instead of this checkout's (a baseline exported
with ``bench_render_speed.py --export-baseline``); processes they start inherit it."""
sys.path.insert(0, os.environ.get(CODE_ROOT_ENV) or str(REPO))


def code_root() -> Path:
    """The tree this process imported ``scene2world`` from (a baseline must not measure this one)."""
    import scene2world

    return Path(scene2world.__file__).resolve().parents[1]


def load_bench_scene(spec: str, num_frames: int | None):
    """``example`` (assets/example via load_scene), ``demo`` (scene.demo), ``s1`` (synthetic 7 cams) or a path."""
    if spec == "example":
        example = REPO / "assets" / "example"
        try:
            from scene2world.scene.load import load_scene

            clips = sorted(p for p in example.iterdir() if p.is_dir()) if example.is_dir() else []
            if clips:
                return _trim(load_scene(clips[0]), num_frames)
        except ImportError:
            pass
        spec = "demo"
    if spec == "demo":
        from scene2world.scene.demo import build_demo_scene

        return _trim(build_demo_scene(), num_frames)
    if spec == "s1":
        from scene2world.scene.synthetic import build_s1_7cam

        return build_s1_7cam(num_frames or 60)
    from scene2world.scene.load import load_scene

    return _trim(load_scene(spec), num_frames)


def _trim(scene, num_frames):
    if num_frames is None or num_frames >= scene.num_frames:
        return scene
    import dataclasses

    return dataclasses.replace(
        scene,
        frame_timestamps_us=scene.frame_timestamps_us[:num_frames],
        world_SE3_rig=scene.world_SE3_rig[:num_frames],
        world_SE3_cam_direct={k: v[:num_frames] for k, v in scene.world_SE3_cam_direct.items()},
    )


def breakdown(scene, msaa: int, device: str, samples: int = 3) -> dict:
    """Single-process ms per camera-frame: geometry, rasterisation; triangles per frame."""
    from scene2world.renderer.frame import build_frame, prepare_static
    from scene2world.renderer.raster import Rasterizer

    t0 = time.perf_counter()
    static = prepare_static(scene, "nvidia")
    prep_s = time.perf_counter() - t0
    frames = [int(f) for f in range(0, scene.num_frames, max(1, scene.num_frames // samples))][:samples]
    jobs = [(cam, f) for cam in scene.camera_names for f in frames]
    t0 = time.perf_counter()
    with Rasterizer(msaa=msaa, device=device) as raster:
        init_s = time.perf_counter() - t0
        raster.render(build_frame(scene, jobs[0][0], jobs[0][1], "nvidia", static))  # shader compile
        build_s = render_s = 0.0
        tris = 0
        for cam, f in jobs:
            t1 = time.perf_counter()
            batches = build_frame(scene, cam, f, "nvidia", static)
            t2 = time.perf_counter()
            raster.render(batches)
            t3 = time.perf_counter()
            build_s += t2 - t1
            render_s += t3 - t2
            tris += sum(len(b.faces) for b in batches)
        name = raster.renderer_name
    n = len(jobs)
    return {
        "renderer": name,
        "prepare_static_s": round(prep_s, 3),
        "context_s": round(init_s, 3),
        "build_ms": round(build_s / n * 1e3, 2),
        "raster_ms": round(render_s / n * 1e3, 2),
        "triangles_per_frame": int(tris / n),
    }


GL_VARIANT_ENV = "S2W_BENCH_GL_VARIANT"
"""Diagnosis of the read-back (render-only processes): ``rgba-read`` reads RGBA (the driver's
native layout) instead of RGB; ``no-read`` resolves and waits for the GPU but reads nothing back;
``no-resolve`` reads back the single-sample image without resolving the MSAA one; ``pbo-read``
resolves and reads every image of the pass into its own pixel-pack buffer first, then waits once
and copies them out (one wait per pass instead of one per image); ``gl-read`` is the production
read-back with ``glReadPixels`` instead of CUDA (``Rasterizer(readback="gl")``; not for baselines
older than the ``readback`` argument)."""
GL_VARIANTS = ("rgba-read", "no-read", "no-resolve", "pbo-read", "gl-read")


def _gl_variant(variant: str) -> None:
    """Replace FastRenderer's read-back in this process by ``variant`` (timing only: the images of
    ``no-read`` and ``no-resolve`` are not the picture)."""
    import ctypes

    import numpy as np
    from OpenGL import GL

    from scene2world.renderer.gl import fast_renderer_class

    def resolve(fb: int, fb_ms: int, w: int, h: int) -> None:
        if fb_ms != fb and variant != "no-resolve":  # whole images, as on the GPU
            GL.glBindFramebuffer(GL.GL_READ_FRAMEBUFFER, fb_ms)
            GL.glBindFramebuffer(GL.GL_DRAW_FRAMEBUFFER, fb)
            GL.glBlitFramebuffer(0, 0, w, h, 0, 0, w, h, GL.GL_COLOR_BUFFER_BIT, GL.GL_NEAREST)

    def read_pbo(self, scene, flags):
        w, h = self._main_fb_dims
        size = w * h * 3
        if getattr(self, "_bench_pbos", None) is None:
            self._bench_pbos = [int(b) for b in np.ravel(GL.glGenBuffers(self.tiles))]
            for pbo in self._bench_pbos:
                GL.glBindBuffer(GL.GL_PIXEL_PACK_BUFFER, pbo)
                GL.glBufferData(GL.GL_PIXEL_PACK_BUFFER, size, None, GL.GL_STREAM_READ)
        GL.glPixelStorei(GL.GL_PACK_ALIGNMENT, 1)
        for (fb, fb_ms), pbo in zip(self._tile_fbs, self._bench_pbos, strict=True):
            resolve(fb, fb_ms, w, h)
            GL.glBindFramebuffer(GL.GL_READ_FRAMEBUFFER, fb)
            GL.glBindBuffer(GL.GL_PIXEL_PACK_BUFFER, pbo)
            GL.glReadPixels(0, 0, w, h, GL.GL_RGB, GL.GL_UNSIGNED_BYTE, ctypes.c_void_p(0))
        image = np.empty((self.tiles, h, w, 3), dtype=np.uint8)
        for k, pbo in enumerate(self._bench_pbos):
            GL.glBindBuffer(GL.GL_PIXEL_PACK_BUFFER, pbo)
            ptr = GL.glMapBufferRange(GL.GL_PIXEL_PACK_BUFFER, 0, size, GL.GL_MAP_READ_BIT)
            ctypes.memmove(image[k].ctypes.data, ptr, size)
            GL.glUnmapBuffer(GL.GL_PIXEL_PACK_BUFFER)
        GL.glBindBuffer(GL.GL_PIXEL_PACK_BUFFER, 0)
        return np.ascontiguousarray(image[:, ::-1]).reshape(self.tiles * h, w, 3)

    def read(self, scene, flags):
        w, h = self._main_fb_dims
        GL.glPixelStorei(GL.GL_PACK_ALIGNMENT, 1)
        channels = 4 if variant == "rgba-read" else 3
        image = np.empty((self.tiles, h, w, channels), dtype=np.uint8)
        for k, (fb, fb_ms) in enumerate(self._tile_fbs):
            resolve(fb, fb_ms, w, h)
            if variant != "no-read":
                GL.glBindFramebuffer(GL.GL_READ_FRAMEBUFFER, fb)
                fmt = GL.GL_RGBA if channels == 4 else GL.GL_RGB
                GL.glReadPixels(0, 0, w, h, fmt, GL.GL_UNSIGNED_BYTE, image[k])
        if variant == "no-read":
            GL.glFinish()
        return np.zeros((self.tiles * h, w, 3), np.uint8)

    fast_renderer_class()._read_main_framebuffer = read_pbo if variant == "pbo-read" else read


def render_only_worker(scene, msaa, device, per_pass, gl, blas_1, tasks, results, barrier):
    """A render-only process, as ``render_clip``'s workers: tasks' frames, ``per_pass`` images per
    pass (consecutive frames of the task's cameras when it exceeds them), one pass ahead on a GL
    thread; ``gl`` False builds the geometry only; ``blas_1``: ``blas.one_blas_thread`` as render
    processes do. Puts (camera-frames, wall s, process CPU s, main-thread CPU s, renderer name)."""
    from scene2world.renderer.blas import one_blas_thread
    from scene2world.renderer.frame import build_frame, prepare_static
    from scene2world.renderer.raster_thread import one_pass_ahead, open_rasterizer

    if blas_1:
        one_blas_thread()
    variant = os.environ.get(GL_VARIANT_ENV) if gl else None
    if variant and variant != "gl-read":
        _gl_variant(variant)
    settings = {"readback": "gl"} if variant == "gl-read" else {}
    static = prepare_static(scene, "nvidia")

    def passes():
        while (task := tasks.get()) is not None:
            step = max(1, per_pass // len(task.cameras))
            for f in range(task.start, task.end, step):
                frames = range(f, min(f + step, task.end))
                yield [build_frame(scene, cam, g, "nvidia", static) for g in frames for cam in task.cameras]

    def timed(run, name):
        barrier.wait()
        t0, c0, m0 = time.perf_counter(), time.process_time(), time.thread_time()
        done = run()
        results.put((done, time.perf_counter() - t0, time.process_time() - c0, time.thread_time() - m0, name))

    if not gl:
        build_frame(scene, scene.camera_names[0], 0, "nvidia", static)
        timed(lambda: sum(len(images) for images in passes()), None)
        return
    with open_rasterizer(per_pass, msaa=msaa, device=device, **settings) as raster:
        raster.submit([build_frame(scene, scene.camera_names[0], 0, "nvidia", static)]).result()
        timed(lambda: sum(len(images) for images in one_pass_ahead(raster, passes())), raster.renderer_name)


def _wait_ready(barrier, procs: list, timeout: float = 300) -> None:
    """Pass the start barrier with the workers; if one ends before it (a failed start: its
    traceback is on stderr), break the barrier, stop the others and raise at once."""
    passed = threading.Event()

    def wait() -> None:
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait(timeout=timeout)
            passed.set()

    waiter = threading.Thread(target=wait, daemon=True)
    waiter.start()
    while waiter.is_alive():
        if any(p.exitcode is not None for p in procs):
            waiter.join(1.0)  # a worker with nothing to do may end right after the barrier
            if not passed.is_set():
                barrier.abort()
            break
        waiter.join(0.2)
    if not passed.is_set():
        for p in procs:
            p.terminate()
            p.join()
        codes = [p.exitcode for p in procs]
        raise RuntimeError(f"a benchmark process ended before it was ready (exit codes {codes}): see its traceback")


def timed_processes(target, args: tuple, plan: list, workers: int, env: dict[str, str] | None = None):
    """Run ``target(*args, tasks, results, barrier)`` in ``workers`` spawned processes fed with
    ``plan`` (then one None each), with ``env`` added to their environment; timed from a barrier
    once every process is ready. Returns (what each put on ``results``, wall s, start-up s)."""
    ctx = mp.get_context("spawn")
    tasks, results = ctx.Queue(), ctx.Queue()
    for task in plan:
        tasks.put(task)
    workers = min(workers, len(plan))
    for _ in range(workers):
        tasks.put(None)
    barrier = ctx.Barrier(workers + 1)
    with mock.patch.dict(os.environ, env or {}):  # spawned processes copy the environment when they start
        t_spawn = time.perf_counter()
        procs = [ctx.Process(target=target, args=(*args, tasks, results, barrier)) for _ in range(workers)]
        for p in procs:
            p.start()
    _wait_ready(barrier, procs)
    t0 = time.perf_counter()
    out = [results.get(timeout=1200) for _ in procs]
    wall = time.perf_counter() - t0
    for p in procs:
        p.join()
    return out, wall, t0 - t_spawn


def render_only(scene, msaa: int, device: str, workers: int, per_pass: int = 1) -> dict:
    """Throughput of W processes building + rasterising every camera-frame of the clip.

    The tasks are ``render_clip``'s (``plan_tasks``): ``per_pass`` 1 = camera by camera, more =
    that many cameras drawn in one pass, frame by frame.
    """
    from scene2world.renderer.render import plan_tasks

    plan = plan_tasks(scene.camera_names, 0, scene.num_frames, workers, "bench", per_pass)
    args = (scene, msaa, device, per_pass, True, True)
    out, wall, startup = timed_processes(render_only_worker, args, plan, workers)
    total = sum(o[0] for o in out)
    return {
        "workers": len(out),
        "per_pass": per_pass,
        "camera_frames": total,
        "startup_s": round(startup, 2),
        "seconds": round(wall, 2),
        "camera_frames_per_s": round(total / wall, 1),
        "renderer": out[0][4],
    }


def render_encode(scene, msaa: int, device: str, workers: int, preset: str, crf: int) -> dict:
    """``render_clip`` end to end: processes, geometry, raster, libx264 mp4 files."""
    from scene2world.renderer.render import default_workers, render_clip

    out_dir = Path(tempfile.mkdtemp(prefix="s2w-bench-"))
    try:
        t0 = time.perf_counter()
        res = render_clip(
            scene,
            out_dir,
            msaa=msaa,
            device=device,
            workers=workers,
            preset=preset,
            crf=crf,  # type: ignore[arg-type]
        )
        wall = time.perf_counter() - t0
        size = sum(r.path.stat().st_size for r in res)
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
    total = sum(r.frames for r in res)
    return {
        "workers": workers or default_workers(len(scene.camera_names)),
        "preset": preset,
        "camera_frames": total,
        "seconds": round(wall, 2),
        "camera_frames_per_s": round(total / wall, 1),
        "mp4_bytes": size,
        "renderer": res[0].renderer,
    }


def _have_ffmpeg() -> bool:
    try:
        import imageio_ffmpeg

        return bool(imageio_ffmpeg.get_ffmpeg_exe())
    except (ImportError, RuntimeError):
        return False


def save_frames(scene, msaa: int, device: str, folder: Path) -> None:
    """PNGs of two frames of the first two cameras (compare CPU and GPU rasterisers)."""
    from PIL import Image

    from scene2world.renderer.render import render_png_frame

    folder.mkdir(parents=True, exist_ok=True)
    for cam in scene.camera_names[:2]:
        for frame in (0, scene.num_frames // 2):
            img = render_png_frame(scene, cam, frame, msaa=msaa, device=device)  # type: ignore[arg-type]
            Image.fromarray(img).save(folder / f"{cam}_f{frame}_msaa{msaa}.png")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scene", default="example", help="example | demo | s1 | a clip path")
    ap.add_argument("--frames", type=int, default=None, help="use only the first N frames")
    ap.add_argument("--msaa", type=int, nargs="+", default=[4, 1])
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "gpu"])
    ap.add_argument("--workers", type=int, nargs="+", default=None, help="render-only process counts")
    ap.add_argument(
        "--encode-workers", type=int, nargs="+", default=[0], help="render_clip workers (0 = default; > cameras splits)"
    )
    ap.add_argument("--preset", default="slow")
    ap.add_argument("--crf", type=int, default=18)
    ap.add_argument("--no-encode", action="store_true")
    ap.add_argument("--no-breakdown", action="store_true")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--save-frames", type=Path, default=None, help="save a few PNG frames per MSAA (parity checks)")
    args = ap.parse_args(argv)

    cores = len(os.sched_getaffinity(0))
    scene = load_bench_scene(args.scene, args.frames)
    workers = args.workers or [min(cores, 16)]
    report: dict = {
        "machine": {
            "cpu_cores": cores,
            "platform": platform.platform(),
            "python": platform.python_version(),
            "loadavg_1m_before": round(os.getloadavg()[0], 2),  # other work on the machine skews figures
        },
        "scene": {"clip_id": scene.clip_id, "frames": scene.num_frames, "cameras": len(scene.camera_names)},
        "runs": [],
    }
    print(f"scene {scene.clip_id}: {len(scene.camera_names)} cameras x {scene.num_frames} frames; {cores} cores")
    if not args.no_encode and not _have_ffmpeg():
        print("no ffmpeg (imageio-ffmpeg binary or IMAGEIO_FFMPEG_EXE): render+encode skipped")
        args.no_encode = True
    for msaa in args.msaa:
        if not args.no_breakdown:
            b = breakdown(scene, msaa, args.device)
            report["runs"].append({"kind": "breakdown", "msaa": msaa, **b})
            print(
                f"[msaa {msaa}] 1 process: geometry {b['build_ms']} ms + raster {b['raster_ms']} ms per camera-frame, "
                f"{b['triangles_per_frame']} triangles/frame; {b['renderer']}"
            )
        for w in workers:
            r = render_only(scene, msaa, args.device, w)
            report["runs"].append({"kind": "render_only", "msaa": msaa, **r})
            print(
                f"[msaa {msaa}] render-only, {w} process(es): {r['camera_frames_per_s']} camera-frames/s "
                f"({r['camera_frames']} in {r['seconds']} s; start-up {r['startup_s']} s)"
            )
        if args.save_frames:
            save_frames(scene, msaa, args.device, args.save_frames)
        for ew in [] if args.no_encode else args.encode_workers:
            e = render_encode(scene, msaa, args.device, ew, args.preset, args.crf)
            report["runs"].append({"kind": "render_encode", "msaa": msaa, **e})
            print(
                f"[msaa {msaa}] render+encode (render_clip, workers {ew or 'default'}, preset {args.preset}): "
                f"{e['seconds']} s for {e['camera_frames']} camera-frames = {e['camera_frames_per_s']} camera-frames/s"
            )
    report["machine"]["loadavg_1m_after"] = round(os.getloadavg()[0], 2)
    m = report["machine"]
    print(f"load average (1 min) before {m['loadavg_1m_before']}, after {m['loadavg_1m_after']}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
