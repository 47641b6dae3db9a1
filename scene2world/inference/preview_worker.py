"""The ``preview`` engine: a torchrun worker with Cosmos's CLI contract and output layout, no model.

Run it like NVIDIA's ``examples.multiview``::

    torchrun --nproc-per-node=2 -m scene2world.inference.preview_worker -i spec.json -o out/

Every rank loads and checks the spec (the same rules as :mod:`~scene2world.inference.preflight`),
takes the active views ``j`` with ``j % world_size == rank`` and prepares exactly the control frames
the model would be conditioned on (``docs/cosmos.md``, "GPUs for the views"): source frames
``0, k, 2k, …`` (k = video fps / spec fps), 29-frame chunks, autoregressive windows
``[i·(29 − o), i·(29 − o) + 29)`` whose first ``o`` frames are dropped after chunk 0, each frame resized
to 720×1280 (bilinear, antialiased, no crop). Frame by frame, the ranks' uint8 tensors are gathered
on rank 0 (``torch.distributed.gather``, gloo on CPU, NCCL on GPU), which writes what Cosmos writes
(``docs/cosmos.md``, "Outputs"): ``<name>.json``; ``<name>_<view>.mp4`` per active view and
``<name>_grid.mp4`` (3×3 cells of 1280×720 in canonical order, black where empty, 3840×2160) — or,
with ``save_combined_views``, one ``<name>.mp4`` with the views one after the other in time; plus
``config.yaml`` and ``console.log``. Videos play at the spec fps and are written under a temporary name, then renamed.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import time
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

import imageio_ffmpeg
import numpy as np
import torch
import torch.distributed as dist
import yaml

import scene2world
from scene2world.atomic import atomic_write_text, temporary_path
from scene2world.config import DEFAULT_CRF, Backend, X264Preset
from scene2world.errors import InferenceError, Scene2WorldError
from scene2world.inference import heartbeat
from scene2world.inference.preflight import (
    MODEL_SIZE_PX,
    Plan,
    SamplePlan,
    plan_samples,
    probe_samples,
)
from scene2world.inference.spec import MultiviewInferenceArguments, load_spec
from scene2world.typing import NDArrayByte
from scene2world.video_writer import VideoWriter, concat_videos

GRID_SHAPE = (3, 3)
"""Rows, columns of the ``<name>_grid.mp4`` cells."""

PREVIEW_PRESET: X264Preset = "ultrafast"
"""libx264 preset of the previews: fast rather than small (CRF: :data:`~scene2world.config.DEFAULT_CRF`)."""

X264_OPTIONS = ("-preset", PREVIEW_PRESET, "-crf", str(DEFAULT_CRF))
"""The encoder settings as ``config.yaml`` records them."""

log = logging.getLogger("scene2world.preview")


# ---------------------------------------------------------------- distributed context


@dataclass(frozen=True)
class Dist:
    """The place of this process in the world (a world of one when not started by torchrun)."""

    rank: int
    world_size: int
    backend: str | None
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Rank 0 writes every output file."""
        return self.rank == 0


def init_distributed(backend: str = "auto") -> Dist:
    """Join torchrun's process group (``env://``); gloo on CPU, NCCL on GPU when ``backend`` is auto."""
    if "RANK" not in os.environ:
        return Dist(0, 1, None, torch.device("cpu"))
    if backend == "auto":
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    device = torch.device("cpu")
    if backend == "nccl":
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    dist.init_process_group(backend=backend)
    return Dist(dist.get_rank(), dist.get_world_size(), backend, device)


# ---------------------------------------------------------------- frames


def resize_to_model(frames: NDArrayByte) -> NDArrayByte:
    """``frames`` (T, H, W, 3) uint8 RGB resized to (T, 720, 1280, 3): bilinear, antialiased, no crop."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise InferenceError(f"`frames` must be (T, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
    if frames.shape[1:3] == MODEL_SIZE_PX:
        return frames
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)
    y = torch.nn.functional.interpolate(x, size=MODEL_SIZE_PX, mode="bilinear", antialias=True, align_corners=False)
    return y.permute(0, 2, 3, 1).contiguous().numpy()


class FrameReader:
    """Decode a video once, front to back, handing out frames by increasing source index."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._gen = imageio_ffmpeg.read_frames(str(self.path), pix_fmt="rgb24")
        meta = next(self._gen)
        self.width_px, self.height_px = (int(v) for v in meta["size"])
        self._next = 0

    def frame(self, index: int) -> NDArrayByte:
        """Source frame ``index`` as (H, W, 3) uint8; indices must not go backwards."""
        if index < self._next:
            raise InferenceError(f"{self.path}: frame {index} was already passed (reader at {self._next})")
        while True:
            try:
                raw = next(self._gen)
            except StopIteration:
                raise InferenceError(
                    f"{self.path}: the video ends after {self._next} frames, frame {index} is needed"
                ) from None
            self._next += 1
            if self._next - 1 == index:
                return np.frombuffer(raw, dtype=np.uint8).reshape(self.height_px, self.width_px, 3)

    def close(self) -> None:
        """Stop the decoder."""
        self._gen.close()


def view_frames(plan: SamplePlan, key: str) -> Generator[NDArrayByte, None, None]:
    """The frames of view ``key`` as the model gets them, chunk after chunk, overlaps dropped.

    Yields ``plan.frames_per_view`` frames of (720, 1280, 3) uint8.
    """
    reader = FrameReader(plan.control_videos[key].path)
    kept: dict[int, NDArrayByte] = {}
    try:
        for i, sources in enumerate(plan.chunk_source_frames):
            raw = [kept[j] if j in kept else reader.frame(j) for j in sources]
            chunk = resize_to_model(np.stack(raw))  # the 29 frames chunk i is conditioned on
            log.debug(
                "%s %s: chunk %d, source frames %d..%d step %d",
                plan.name,
                key,
                i,
                sources[0],
                sources[-1],
                plan.fps_factor,
            )
            kept = dict(zip(sources[len(sources) - plan.chunk_overlap :], raw[len(raw) - plan.chunk_overlap :]))
            drop = plan.chunk_overlap if i > 0 else 0
            yield from chunk[drop:]
    finally:
        reader.close()


def grid_frame(cells: Sequence[NDArrayByte | None]) -> NDArrayByte:
    """3×3 grid (2160, 3840, 3) of 720×1280 cells filled row-major; None or missing cells are black."""
    rows, cols = GRID_SHAPE
    h, w = MODEL_SIZE_PX
    if len(cells) > rows * cols:
        raise InferenceError(f"a grid holds {rows * cols} views, got {len(cells)}")
    out = np.zeros((rows * h, cols * w, 3), dtype=np.uint8)
    for i, cell in enumerate(cells):
        if cell is not None:
            r, c = divmod(i, cols)
            out[r * h : (r + 1) * h, c * w : (c + 1) * w] = cell
    return out


# ---------------------------------------------------------------- writing


# ---------------------------------------------------------------- one sample


def run_sample(sample: MultiviewInferenceArguments, plan: SamplePlan, out_dir: Path, ctx: Dist) -> list[Path]:
    """Prepare, gather and (rank 0) write the outputs of one sample; returns the files written."""
    t0 = time.perf_counter()
    if ctx.is_main:
        atomic_write_text(out_dir / f"{sample.name}.json", sample.sidecar_json())
    per_rank = [[v for v in plan.views if plan.view_ranks[v] == r] for r in range(ctx.world_size)]
    mine = per_rank[ctx.rank]
    slots = max(1, *(len(v) for v in per_rank))
    log.info(
        "%s: rank %d prepares %s (%d frames per view, %d chunk(s), factor %d)",
        sample.name,
        ctx.rank,
        ", ".join(mine) or "no view",
        plan.frames_per_view,
        plan.num_chunks,
        plan.fps_factor,
    )
    h, w = MODEL_SIZE_PX
    sources = {key: view_frames(plan, key) for key in mine}
    writers: dict[str, VideoWriter] = {}
    parts_dir: Path | None = None
    try:
        if ctx.is_main:
            if plan.save_combined_views:
                parts_dir = folder = temporary_path(out_dir / sample.name, "parts")  # the views, joined at the end
                folder.mkdir()
                writers = {v: _video_writer(folder / f"{v}.mp4", (w, h), plan.fps) for v in plan.views}
            else:
                writers = {v: _video_writer(out_dir / f"{sample.name}_{v}.mp4", (w, h), plan.fps) for v in plan.views}
                writers["grid"] = _video_writer(
                    out_dir / f"{sample.name}_grid.mp4", (w * GRID_SHAPE[1], h * GRID_SHAPE[0]), plan.fps
                )
        for _ in range(plan.frames_per_view):
            local = torch.zeros((slots, h, w, 3), dtype=torch.uint8)
            for j, key in enumerate(mine):
                local[j] = torch.from_numpy(next(sources[key]))
            gathered = _gather(local, ctx)
            if not ctx.is_main:
                continue
            frames = {key: gathered[r][j] for r, keys in enumerate(per_rank) for j, key in enumerate(keys)}
            for key in plan.views:
                writers[key].write(frames[key])
            if "grid" in writers:
                writers["grid"].write(grid_frame([frames[key] for key in plan.views]))
        written: list[Path] = []
        if ctx.is_main:
            for key in plan.views:
                written.append(writers.pop(key).close())
            if "grid" in writers:
                written.append(writers.pop("grid").close())
            if plan.save_combined_views:
                written = [concat_videos(written, out_dir / f"{sample.name}.mp4")]
            log.info(
                "%s: wrote %s in %.1f s", sample.name, ", ".join(p.name for p in written), time.perf_counter() - t0
            )
        return written
    finally:
        for writer in writers.values():
            writer.abort()
        for gen in sources.values():
            gen.close()
        if parts_dir is not None:
            shutil.rmtree(parts_dir, ignore_errors=True)


def _video_writer(path: Path, size_wh: tuple[int, int], fps: int) -> VideoWriter:
    """An mp4 of the previews: :data:`X264_OPTIONS`, ffmpeg's own thread count, two frames queued."""
    w, h = size_wh
    return VideoWriter(
        path, width=w, height=h, fps=fps, crf=DEFAULT_CRF, preset=PREVIEW_PRESET, threads=None, queue_frames=2
    )


def _gather(local: torch.Tensor, ctx: Dist) -> list[NDArrayByte]:
    """Every rank's (slots, 720, 1280, 3) uint8 tensor on rank 0 (empty list elsewhere)."""
    if ctx.world_size == 1:
        return [local.numpy()]
    tensor = local.to(ctx.device)
    bucket = [torch.empty_like(tensor) for _ in range(ctx.world_size)] if ctx.is_main else None
    dist.gather(tensor, gather_list=bucket, dst=0)
    return [t.cpu().numpy() for t in bucket] if bucket is not None else []


# ---------------------------------------------------------------- the program


def _config_yaml(plans: Sequence[Plan], inputs: Sequence[Path], out_dir: Path, ctx: Dist) -> str:
    """``config.yaml``: what this engine ran with (Cosmos writes its experiment config here)."""
    data: dict[str, Any] = {
        "engine": "preview",
        "scene2world_version": getattr(scene2world, "__version__", "unknown"),
        "torch_version": str(torch.__version__),
        "backend": ctx.backend or "none",
        "world_size": ctx.world_size,
        "input_files": [str(p) for p in inputs],
        "output_dir": str(out_dir),
        "model_size_hw": list(MODEL_SIZE_PX),
        "encoder": {"codec": "libx264", "options": list(X264_OPTIONS)},
        "samples": [
            {
                "name": s.name,
                "views": list(s.views),
                "fps": s.fps,
                "fps_factor": s.fps_factor,
                "num_chunks": s.num_chunks,
                "chunk_overlap": s.chunk_overlap,
                "frames_per_view": s.frames_per_view,
                "chunk_windows": [list(w) for w in s.chunk_windows],
                "view_ranks": dict(s.view_ranks),
            }
            for plan in plans
            for s in plan.samples
        ],
    }
    return yaml.safe_dump(data, sort_keys=False)


def _setup_logging(out_dir: Path, ctx: Dist) -> list[logging.Handler]:
    """Log to stdout (torchrun tees it per rank) and, on rank 0, to ``console.log``."""
    fmt = logging.Formatter(f"[%(asctime)s|rank{ctx.rank}|%(levelname)s] %(message)s", "%H:%M:%S")
    log.setLevel(logging.INFO)
    log.propagate = False
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stdout)]
    if ctx.is_main:
        handlers.append(logging.FileHandler(out_dir / "console.log", encoding="utf-8"))
    for handler in handlers:
        handler.setFormatter(fmt)
        log.addHandler(handler)
    return handlers


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The CLI: NVIDIA's ``-i/--input-files`` and ``-o/--output-dir``, plus ``--backend``."""
    parser = argparse.ArgumentParser(
        prog="python -m scene2world.inference.preview_worker",
        description="Cosmos multiview preview engine: writes the frames the model would be conditioned on.",
    )
    parser.add_argument(
        "-i",
        "--input-files",
        "--input_files",
        nargs="+",
        type=Path,
        required=True,
        help="Spec files: .json (one sample) or .jsonl (one per line).",
    )
    parser.add_argument("-o", "--output-dir", "--output_dir", type=Path, required=True, help="Output folder.")
    parser.add_argument(
        "--backend",
        choices=get_args(Backend),
        default="auto",
        help="torch.distributed backend (auto: nccl on GPU, gloo on CPU).",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the preview engine; returns the exit status (1 on a spec or video problem)."""
    args = parse_args(argv)
    heartbeat.start()  # the launcher's hang watchdog (docs/processes.md)
    ctx = init_distributed(args.backend)
    out_dir = Path(args.output_dir).absolute()
    handlers: list[logging.Handler] = []
    try:
        if ctx.is_main:
            out_dir.mkdir(parents=True, exist_ok=True)
        _barrier(ctx)
        handlers = _setup_logging(out_dir, ctx)
        log.info("preview engine: rank %d of %d, backend %s", ctx.rank, ctx.world_size, ctx.backend or "none")
        work, plans = [], []
        seen: dict[str, Path] = {}
        for spec_path in args.input_files:
            samples = load_spec(spec_path)
            for s in samples:
                if s.name in seen:
                    raise InferenceError(f"{spec_path}: sample name {s.name!r} is also used in {seen[s.name]}")
                seen[s.name] = spec_path
            videos = probe_samples(samples, spec_path=spec_path)
            plan = plan_samples(samples, videos, nproc=ctx.world_size, engine="preview", spec_path=spec_path)
            for warning in plan.warnings:
                log.warning(warning)
            plans.append(plan)
            work += list(zip(samples, plan.samples))
        if ctx.is_main:
            atomic_write_text(out_dir / "config.yaml", _config_yaml(plans, args.input_files, out_dir, ctx))
        for sample, sample_plan in work:
            run_sample(sample, sample_plan, out_dir, ctx)
        _barrier(ctx)
        log.info("preview engine: done, %d sample(s)", len(work))
        return 0
    except Scene2WorldError as e:
        if handlers:
            log.error("%s", e)
        else:
            print(e, file=sys.stderr)
        return 1
    finally:
        for handler in handlers:
            log.removeHandler(handler)
            handler.close()
        if ctx.backend is not None and dist.is_initialized():
            dist.destroy_process_group()


def _barrier(ctx: Dist) -> None:
    if ctx.world_size > 1:
        dist.barrier()


if __name__ == "__main__":
    sys.exit(main())
