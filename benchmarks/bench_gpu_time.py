"""The GPU's own time for a render pass, by stage, from OpenGL timer queries (docs/speed.md, "The GPU's share").

One process, one ``Rasterizer`` of ``--tiles`` images per pass at each ``--msaa``: the bundled clip's
frames are built first (geometry is not timed here), then drawn pass by pass. GPU timestamps
(``glQueryCounter(GL_TIMESTAMP)``: the moment the GPU has finished every command before it) are
taken when the forward pass starts and around each MSAA resolve (``glBlitFramebuffer``) and each
read-back (``glReadPixels``), so the production read-back runs unchanged. Per image it prints
the GPU ms of clear + draw, resolve and read-back, the pass's wall ms in this process, and the
ceiling the GPU time sets for one GPU if passes of all processes ran back to back
(1000 / GPU ms per image).

    python3 benchmarks/bench_gpu_time.py --device gpu --msaa 1 2 4 --tiles 1 7
"""

from __future__ import annotations

import argparse
import ctypes
import inspect
import json
import multiprocessing as mp
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_render import code_root  # noqa: E402
from bench_render_speed import load_clip, machine  # noqa: E402

STAGES = ("clear", "draw", "resolve", "read")


class Stamps:
    """GPU timestamps taken in order, each labelled with the stage that ends at it."""

    def __init__(self, GL) -> None:
        self.GL = GL
        self.labels: list[str] = []
        self.queries: list[int] = []

    def stamp(self, label: str) -> None:
        import numpy as np

        query = int(np.ravel(self.GL.glGenQueries(1))[0])
        self.GL.glQueryCounter(query, self.GL.GL_TIMESTAMP)
        self.labels.append(label)
        self.queries.append(query)

    def collect(self, totals: dict[str, float]) -> None:
        """Add each interval's GPU seconds to the stage of its end stamp; forget the stamps."""
        out = ctypes.c_uint64()
        times = []
        for query in self.queries:
            self.GL.glGetQueryObjectui64v(query, self.GL.GL_QUERY_RESULT, ctypes.byref(out))
            times.append(out.value)
        for label, t0, t1 in zip(self.labels[1:], times[:-1], times[1:], strict=True):
            totals[label] += (t1 - t0) * 1e-9
        self.GL.glDeleteQueries(len(self.queries), self.queries)
        self.labels, self.queries = [], []


def instrument(GL, stamps: Stamps) -> None:
    """Stamp the forward pass's start and both sides of every clear, blit and read (this process only)."""
    import pyrender.renderer

    from scene2world.renderer.gl import fast_renderer_class

    cls = fast_renderer_class()
    configure = cls._configure_forward_pass_viewport

    def start(self, flags):
        stamps.stamp("start")
        return configure(self, flags)

    cls._configure_forward_pass_viewport = start
    # pyrender calls glClear through its own module's globals, FastRenderer through OpenGL.GL
    for module, name, stage in (
        (GL, "glClear", "clear"),
        (pyrender.renderer, "glClear", "clear"),
        (GL, "glBlitFramebuffer", "resolve"),
        (GL, "glReadPixels", "read"),
    ):
        call = getattr(module, name)

        def timed(*args, _call=call, _stage=stage):
            stamps.stamp("draw")  # whatever ran since the last stamp: the draws
            result = _call(*args)
            stamps.stamp(_stage)
            return result

        setattr(module, name, timed)


def covered_px(batches) -> float:
    """Sum of the triangles' pixel areas (overdraw counted): the fragments the draws make."""
    import numpy as np

    from scene2world.renderer.raster import merge_batches

    v, _, f = merge_batches(batches)
    a, b, c = (v[f[:, k], :2].astype(np.float64) for k in range(3))
    cross = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    return float(np.abs(cross).sum() / 2)


def measure(scene, msaa: int, tiles: int, device: str, passes: int, empty: bool = False) -> dict:
    from OpenGL import GL

    from scene2world.renderer.frame import build_frame, prepare_static
    from scene2world.renderer.raster import Rasterizer

    static = prepare_static(scene, "nvidia")
    cameras = scene.camera_names
    jobs = [(cameras[i % len(cameras)], (i // len(cameras)) % scene.num_frames) for i in range(passes * tiles)]
    frames = [[] if empty else build_frame(scene, cam, f, "nvidia", static) for cam, f in jobs]
    stamps = Stamps(GL)
    totals = dict.fromkeys(STAGES, 0.0)
    # glReadPixels, the read-back these timer queries see (a tree older than `readback` has no other)
    gl_read = {"readback": "gl"} if "readback" in inspect.signature(Rasterizer).parameters else {}
    with Rasterizer(msaa=msaa, device=device, tiles=tiles, **gl_read) as raster:
        raster.render_tiles(frames[:tiles])  # shaders, buffers
        instrument(GL, stamps)
        wall = 0.0
        for p in range(passes):
            t0 = time.perf_counter()
            raster.render_tiles(frames[p * tiles : (p + 1) * tiles])
            wall += time.perf_counter() - t0
            stamps.collect(totals)
        name = raster.renderer_name
    images = passes * tiles
    gpu = {k: round(v / images * 1e3, 3) for k, v in totals.items()}
    gpu_ms = sum(gpu.values())
    return {
        "renderer": name,
        "code": str(code_root()),
        "msaa": msaa,
        "empty": empty,
        "tiles": tiles,
        "images": images,
        "gpu_ms_per_image": gpu,
        "gpu_total_ms": round(gpu_ms, 3),
        "wall_ms_per_image": round(wall / images * 1e3, 3),
        "covered_mpx_per_image": round(sum(covered_px(b) for b in frames) / images / 1e6, 3),
        "triangles_per_image": int(sum(sum(len(x.faces) for x in b) for b in frames) / images),
        "gpu_ceiling_images_per_s": round(1e3 / gpu_ms, 1) if gpu_ms else None,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "gpu"])
    ap.add_argument("--msaa", type=int, nargs="+", default=[4])
    ap.add_argument("--tiles", type=int, nargs="+", default=[1, 7])
    ap.add_argument("--passes", type=int, default=40)
    ap.add_argument("--frames", type=int, default=None, help="first N frames of the clip")
    ap.add_argument("--empty", action="store_true", help="also time passes with nothing drawn (the fixed cost)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    scene = load_clip(args.frames)
    print(json.dumps(machine()))
    rows = []
    for msaa in args.msaa:
        for tiles, empty in ((t, e) for t in args.tiles for e in (False, True)[: 1 + args.empty]):
            # each measurement in a fresh process: the instrumented GL calls stay in it
            with mp.get_context("spawn").Pool(1) as pool:
                row = pool.apply(measure, (scene, msaa, tiles, args.device, args.passes, empty))
            rows.append(row)
            g = row["gpu_ms_per_image"]
            print(
                f"MSAA {msaa} tiles {tiles:2d}{' empty' if empty else ''}: GPU ms/image "
                f"clear {g['clear']:.3f} draw {g['draw']:.3f} "
                f"resolve {g['resolve']:.3f} read {g['read']:.3f} = {row['gpu_total_ms']:.3f} "
                f"(ceiling {row['gpu_ceiling_images_per_s']} images/s); wall {row['wall_ms_per_image']:.3f} ms/image "
                f"; {row['triangles_per_image']} triangles, {row['covered_mpx_per_image']} Mpx drawn "
                f"[{row['renderer']}; code {row['code']}]",
                flush=True,
            )
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
