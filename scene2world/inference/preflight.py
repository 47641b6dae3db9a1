"""Check a Cosmos spec before any GPU is booked, and plan what the launch will do.

The checks follow Cosmos's own runtime rules (``docs/cosmos.md``: the spec model, frames, GPUs
per view count, seeds) and are stricter where that is safe: a missing prompt, negative seeds or
step counts, an autoregressive overlap that leaves no new frames, input videos shorter than the
frames the model reads, and the autoregressive ``input_path`` quirk fail here instead of after
the model has loaded.

:func:`plan_samples` is pure: it takes validated samples and the probed videos and returns a
:class:`Plan` (frames per view, chunks, source frame indices per chunk, ranks, view → rank) or
raises one :class:`~scene2world.errors.InferenceError` listing every problem, each naming the spec
file, the sample, the field and the fix. :func:`preflight` loads, probes and plans a spec file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from scene2world.config import MAX_SEED, VIDEO_HEIGHT_PX, VIDEO_WIDTH_PX, Engine, InferConfig
from scene2world.errors import InferenceError
from scene2world.inference.spec import MultiviewInferenceArguments, check_sample_name, load_spec

CHUNK_FRAMES = 29
"""Pixel frames per view per chunk: 8 latent frames, (8 − 1)·4 + 1."""

COSMOS_RANK_COUNTS = (1, 2, 4, 8)
"""``--nproc_per_node`` values Cosmos's context parallelism allows at 720p."""

COSMOS_NUM_HEADS = 16
"""DiT attention heads; Ulysses all-to-all needs ``16 % ranks == 0``."""

MAX_CONDITIONAL_FRAMES = CHUNK_FRAMES - 1
"""More input frames than this would leave no frame of a chunk to generate."""

MODEL_SIZE_PX = (VIDEO_HEIGHT_PX, VIDEO_WIDTH_PX)
"""(height, width) every frame is resized to, bilinear, no crop."""

FPS_TOLERANCE = 1e-3
"""A probed fps within this of a whole number counts as that number."""


@dataclass(frozen=True)
class VideoInfo:
    """What preflight needs to know about a video file."""

    path: Path
    fps: float
    num_frames: int
    width_px: int
    height_px: int


def probe_video(path: Path) -> VideoInfo:
    """Read fps, frame count and size of a video (OpenCV, falling back to imageio-ffmpeg).

    Raises InferenceError when the file cannot be read as a video.
    """
    path = Path(path)
    info = _probe_cv2(path)
    if info is None:
        info = _probe_ffmpeg(path)
    if info is None or info.fps <= 0 or info.num_frames <= 0:
        raise InferenceError(f"{path}: not a readable video (no fps or frame count); re-encode it as H.264 mp4")
    return info


def _probe_cv2(path: Path) -> VideoInfo | None:
    import cv2

    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            return None
        fps = float(cap.get(cv2.CAP_PROP_FPS))
        frames = round(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    finally:
        cap.release()
    if fps <= 0 or frames <= 0 or width <= 0 or height <= 0:
        return None
    return VideoInfo(path, fps, frames, width, height)


def _probe_ffmpeg(path: Path) -> VideoInfo | None:
    import imageio_ffmpeg

    try:
        reader = imageio_ffmpeg.read_frames(str(path))
        meta = next(reader)
        reader.close()
        frames, _ = imageio_ffmpeg.count_frames_and_secs(str(path))
    except (OSError, RuntimeError, StopIteration):
        return None
    width, height = meta.get("size", (0, 0))
    return VideoInfo(path, float(meta.get("fps", 0.0)), int(frames), int(width), int(height))


# ---------------------------------------------------------------- chunk arithmetic


def fps_factor(video_fps: float, fps: int) -> int | None:
    """The subsampling factor ``k = video_fps / fps``, or None when ``fps`` does not divide it.

    ``video_fps`` must be a whole number (within :data:`FPS_TOLERANCE`), as NVIDIA's float modulo
    check only passes for those (29.97 fails).
    """
    whole = round(video_fps)
    if fps <= 0 or abs(video_fps - whole) > FPS_TOLERANCE or whole <= 0 or whole % fps:
        return None
    return whole // fps


def max_chunks(available_frames: int, chunk_overlap: int) -> int:
    """Chunks the controls allow: ``max(1, 1 + (available − 29) // (29 − overlap))``."""
    return max(1, 1 + (available_frames - CHUNK_FRAMES) // (CHUNK_FRAMES - chunk_overlap))


def frames_per_view(num_chunks: int, chunk_overlap: int) -> int:
    """Output frames per view: ``29 + (29 − overlap)·(n − 1)`` (29, 57, 85, … for overlap 1)."""
    return CHUNK_FRAMES + (CHUNK_FRAMES - chunk_overlap) * (num_chunks - 1)


def chunk_windows(num_chunks: int, chunk_overlap: int) -> tuple[tuple[int, int], ...]:
    """Half-open windows ``[i·(29 − o), i·(29 − o) + 29)`` of subsampled frame indices per chunk."""
    step = CHUNK_FRAMES - chunk_overlap
    return tuple((i * step, i * step + CHUNK_FRAMES) for i in range(num_chunks))


def cosmos_rank_problem(num_views: int, nproc: int) -> str | None:
    """Why Cosmos cannot run ``num_views`` active views on ``nproc`` ranks, or None if it can."""
    if nproc not in COSMOS_RANK_COUNTS or COSMOS_NUM_HEADS % nproc:
        return (
            f"{nproc} ranks: Cosmos runs only on 1, 2, 4 or 8 ranks "
            f"({COSMOS_NUM_HEADS} attention heads must divide evenly, no width split)"
        )
    if num_views > nproc:
        return f"{num_views} active views need at least {num_views} ranks (one view per rank in the VAE)"
    return None


def cosmos_ranks_for(num_views: int) -> int:
    """The fewest ranks Cosmos accepts for ``num_views`` active views (1, 2, 4 or 8)."""
    for n in COSMOS_RANK_COUNTS:
        if n >= num_views:
            return n
    raise InferenceError(f"{num_views} active views: Cosmos has at most 7 views")


def assign_views(views: Sequence[str], nproc: int) -> dict[str, int]:
    """View → rank: the j-th active view (canonical order) goes to rank ``j % nproc``.

    With Cosmos's ``views ≤ ranks`` this is its VAE's one-view-per-rank assignment.
    """
    return {key: j % nproc for j, key in enumerate(views)}


# ---------------------------------------------------------------- the plan


@dataclass(frozen=True)
class SamplePlan:
    """What one sample will do: the frames read per view, chunk by chunk, and who reads them."""

    name: str
    origin: str
    views: tuple[str, ...]
    video_fps: int
    fps: int
    fps_factor: int
    available_frames: int
    autoregressive: bool
    requested_chunks: int
    num_chunks: int
    chunk_overlap: int
    frames_per_view: int
    chunk_windows: tuple[tuple[int, int], ...]
    chunk_source_frames: tuple[tuple[int, ...], ...]
    output_source_frames: tuple[int, ...]
    view_ranks: Mapping[str, int]
    save_combined_views: bool
    control_videos: Mapping[str, VideoInfo] = field(repr=False)
    warnings: tuple[str, ...] = ()

    def output_files(self) -> tuple[str, ...]:
        """File names Cosmos writes for this sample in the output folder."""
        if self.save_combined_views:
            return (f"{self.name}.json", f"{self.name}.mp4")
        return (
            f"{self.name}.json",
            *(f"{self.name}_{v}.mp4" for v in self.views),
            f"{self.name}_grid.mp4",
        )


@dataclass(frozen=True)
class Plan:
    """The plan of a launch: one :class:`SamplePlan` per sample, the engine and the rank count."""

    spec_path: Path
    engine: Engine
    nproc: int
    samples: tuple[SamplePlan, ...]
    warnings: tuple[str, ...] = ()

    RUN_FILES = ("config.yaml", "console.log")

    @property
    def ranks(self) -> int:
        """The number of torchrun ranks (``--nproc_per_node``)."""
        return self.nproc

    def output_files(self) -> tuple[str, ...]:
        """Every file name the run must leave in its output folder."""
        return (*self.RUN_FILES, *(f for s in self.samples for f in s.output_files()))


class _Problems:
    """Collects one line per problem: ``<spec>: sample 'n' (<origin>): `field`: what; fix: how``."""

    def __init__(self, spec_path: Path) -> None:
        self.spec_path = spec_path
        self.lines: list[str] = []

    def add(self, sample: MultiviewInferenceArguments | None, fld: str, what: str, fix: str) -> None:
        who = "" if sample is None else f" sample {sample.name!r}"
        origin = f" ({sample.origin})" if sample is not None and sample.origin else ""
        self.lines.append(f"{self.spec_path}:{who}{origin}: `{fld}`: {what}; fix: {fix}")

    def raise_if_any(self) -> None:
        if self.lines:
            head = f"{self.spec_path}: {len(self.lines)} problem(s) found before launching:\n"
            raise InferenceError(head + "\n".join(self.lines))


def _check_values(s: MultiviewInferenceArguments, p: _Problems) -> None:
    """Checks on values NVIDIA's loader accepts but its runtime does not."""
    try:
        check_sample_name(s.name)
    except InferenceError as e:
        p.add(s, "name", str(e), "rename the sample")
    if s.prompt is None:
        p.add(
            s,
            "prompt",
            "neither `prompt` nor `prompt_path` is given (NVIDIA fails only after loading the model)",
            "set `prompt` or `prompt_path`",
        )
    if s.seed < 0:
        p.add(s, "seed", f"{s.seed} is negative", "use a seed ≥ 0")
    if s.num_steps < 1:
        p.add(s, "num_steps", f"{s.num_steps} sampler steps", "use at least 1 step (35 is the default)")
    if not 0 <= s.num_conditional_frames <= MAX_CONDITIONAL_FRAMES:
        p.add(
            s,
            "num_conditional_frames",
            f"{s.num_conditional_frames} is outside 0-{MAX_CONDITIONAL_FRAMES} (a chunk has {CHUNK_FRAMES} frames)",
            "use 0 (control only), 1 or 5",
        )
    if s.enable_autoregressive and not 0 <= s.chunk_overlap < CHUNK_FRAMES:
        p.add(
            s,
            "chunk_overlap",
            f"{s.chunk_overlap} must be 0-{CHUNK_FRAMES - 1} so that each chunk adds new frames",
            "use 1 (the default)",
        )
    if s.enable_autoregressive and s.num_conditional_frames > 0:
        per_view = [s.view(k).num_conditional_frames_per_view for k in s.active_views()]
        missing = [k for k in s.active_views() if s.view(k).input_path is None]
        if not any(per_view) and missing:
            p.add(
                s,
                "num_conditional_frames",
                f"{s.num_conditional_frames} in autoregressive mode needs `input_path` on every active view "
                f"(NVIDIA's validator lets this pass, its dataset then fails); missing on {', '.join(missing)}",
                "set `num_conditional_frames` to 0 for control-only generation, or give every view an input_path",
            )


def plan_sample(
    s: MultiviewInferenceArguments,
    videos: Mapping[Path, VideoInfo],
    *,
    nproc: int,
    engine: Engine,
    problems: _Problems,
) -> SamplePlan | None:
    """Check one validated sample against its probed videos; None when it has problems (recorded)."""
    before = len(problems.lines)
    _check_values(s, problems)
    views = s.active_views()
    warnings: list[str] = []

    if len(views) > nproc:
        what = f"{len(views)} active views ({', '.join(views)}) on {nproc} rank(s); Cosmos gives each view a rank"
        fix = f"launch with --nproc {cosmos_ranks_for(len(views))} or use fewer views"
        if engine == "cosmos":
            problems.add(s, "nproc_per_node", what, fix)
        else:
            warnings.append(f"sample {s.name!r}: Cosmos would not run this spec: {what}; fix: {fix}")

    # fps: one value over every active control and input video, divisible by the spec fps
    used: list[tuple[str, VideoInfo]] = []
    unprobed = False
    for key in views:
        cfg = s.view(key)
        for fld, path in ((f"{key}.control_path", cfg.control_path), (f"{key}.input_path", cfg.input_path)):
            if path is None:
                continue
            info = videos.get(path)
            if info is None:
                problems.add(s, fld, f"{path} was not probed", "call probe_samples() before plan_samples()")
                unprobed = True
            else:
                used.append((fld, info))
    if unprobed:
        return None
    fps_values = sorted({round(info.fps, 3) for _, info in used})
    if len(fps_values) > 1:
        listing = ", ".join(f"{fld}={info.fps:g}" for fld, info in used)
        problems.add(
            s, "fps", f"inconsistent video fps ({listing})", "re-encode every control and input video at one fps"
        )
        return None
    video_fps = used[0][1].fps
    k = fps_factor(video_fps, s.fps)
    if k is None:
        whole = round(video_fps)
        divisors = [d for d in range(1, whole + 1) if whole % d == 0] if abs(video_fps - whole) <= FPS_TOLERANCE else []
        fix = f"use an fps dividing {whole}: {divisors}" if divisors else "re-encode the videos at a whole fps (30)"
        problems.add(s, "fps", f"{s.fps} does not divide the videos' {video_fps:g} fps", fix)
        return None

    # frames: only the control lengths count; inputs must hold the frames read from them
    controls = {key: videos[s.view(key).control_path] for key in views}  # type: ignore[index]
    shortest_key = min(controls, key=lambda key: controls[key].num_frames)
    min_frames = controls[shortest_key].num_frames
    available = min_frames // k
    if available < CHUNK_FRAMES:
        problems.add(
            s,
            f"{shortest_key}.control_path",
            f"only {available} frames at fps {s.fps} ({min_frames} frames at {video_fps:g} fps, factor {k}); "
            f"a chunk needs {CHUNK_FRAMES}, i.e. {CHUNK_FRAMES * k} source frames",
            f"render at least {CHUNK_FRAMES * k} control frames or lower `fps`",
        )
        return None

    overlap = s.chunk_overlap if s.enable_autoregressive else 0
    if not 0 <= overlap < CHUNK_FRAMES:  # reported by _check_values; no chunk arithmetic possible
        return None
    requested = s.num_chunks if s.enable_autoregressive else 1
    n = min(requested, max_chunks(available, overlap)) if s.enable_autoregressive else 1
    if n < requested:
        warnings.append(
            f"sample {s.name!r}: `num_chunks` {requested} clamped to {n}: the controls hold {available} frames "
            f"at fps {s.fps}, enough for {n} chunk(s) of {CHUNK_FRAMES} with overlap {overlap}"
        )
    if s.seed + n - 1 > MAX_SEED:
        problems.add(
            s,
            "seed",
            f"{s.seed} + {n - 1} (chunk i uses seed + i) exceeds {MAX_SEED}, the largest seed NVIDIA's generator takes",
            f"use a seed ≤ {MAX_SEED - (n - 1)}",
        )
    total = frames_per_view(n, overlap)
    windows = chunk_windows(n, overlap)
    chunk_sources = tuple(tuple(j * k for j in range(a, b)) for a, b in windows)
    output_sources = tuple(j * k for j in range(total))
    needed = output_sources[-1] + 1
    for key in views:
        path = s.view(key).input_path
        if path is not None and videos[path].num_frames < needed:
            problems.add(
                s,
                f"{key}.input_path",
                f"{videos[path].num_frames} frames, but frames up to {needed - 1} are read (factor {k})",
                f"give an input video of at least {needed} frames",
            )
    for key, info in controls.items():
        h, w = MODEL_SIZE_PX
        if info.width_px * h != info.height_px * w:
            warnings.append(
                f"sample {s.name!r}: {key} control is {info.width_px}x{info.height_px}; frames are resized to "
                f"{w}x{h} without crop, so the picture is stretched"
            )
    if len(problems.lines) > before:
        return None
    return SamplePlan(
        name=s.name,
        origin=s.origin,
        views=views,
        video_fps=round(video_fps),
        fps=s.fps,
        fps_factor=k,
        available_frames=available,
        autoregressive=s.enable_autoregressive,
        requested_chunks=requested,
        num_chunks=n,
        chunk_overlap=overlap,
        frames_per_view=total,
        chunk_windows=windows,
        chunk_source_frames=chunk_sources,
        output_source_frames=output_sources,
        view_ranks=assign_views(views, nproc),
        save_combined_views=s.save_combined_views,
        control_videos=controls,
        warnings=tuple(warnings),
    )


def plan_samples(
    samples: Sequence[MultiviewInferenceArguments],
    videos: Mapping[Path, VideoInfo],
    *,
    nproc: int,
    engine: Engine,
    spec_path: Path,
) -> Plan:
    """Check validated ``samples`` against their probed ``videos`` and plan the launch (pure).

    Args:
        samples: from :func:`~scene2world.inference.spec.load_spec`.
        videos: absolute video path → :class:`VideoInfo` for every active control and input video.
        nproc: torchrun ranks.
        engine: ``cosmos`` enforces Cosmos's rank rules; ``preview`` runs on any ``nproc ≥ 1`` and
            only warns where Cosmos would refuse.
        spec_path: named in every message.

    Raises InferenceError listing every problem found.
    """
    spec_path = Path(spec_path)
    problems = _Problems(spec_path)
    warnings: list[str] = []
    if nproc < 1:
        problems.add(None, "nproc_per_node", f"{nproc} ranks", "use at least 1")
        problems.raise_if_any()
    run_rank_problem = cosmos_rank_problem(1, nproc)
    if run_rank_problem is not None:
        fix = f"use --nproc {max(n for n in COSMOS_RANK_COUNTS if n <= nproc)} or 8"
        if engine == "cosmos":
            problems.add(None, "nproc_per_node", run_rank_problem, fix)
        else:
            warnings.append(f"Cosmos would not run on {nproc} ranks: {run_rank_problem}")
    if not samples:
        problems.add(None, "(spec)", "no samples", "write at least one sample")
    names = [s.name for s in samples]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.add(None, "name", f"sample name {name!r} is used more than once", "give every sample its own name")
    plans = []
    for s in samples:
        plan = plan_sample(s, videos, nproc=nproc, engine=engine, problems=problems)
        if plan is not None:
            plans.append(plan)
            warnings.extend(plan.warnings)
    problems.raise_if_any()
    return Plan(spec_path=spec_path, engine=engine, nproc=nproc, samples=tuple(plans), warnings=tuple(warnings))


def sample_videos(
    samples: Iterable[MultiviewInferenceArguments],
) -> list[tuple[MultiviewInferenceArguments, str, Path]]:
    """(sample, field, path) of every active control and input video, in sample and canonical order."""
    out = []
    for s in samples:
        for key in s.active_views():
            cfg = s.view(key)
            out.append((s, f"{key}.control_path", cfg.control_path))
            if cfg.input_path is not None:
                out.append((s, f"{key}.input_path", cfg.input_path))
    return out  # type: ignore[return-value]


def probe_samples(
    samples: Sequence[MultiviewInferenceArguments],
    *,
    spec_path: Path,
    probe: Callable[[Path], VideoInfo] = probe_video,
) -> dict[Path, VideoInfo]:
    """Probe every active control and input video once; InferenceError names the sample and field."""
    problems = _Problems(Path(spec_path))
    infos: dict[Path, VideoInfo] = {}
    failed: set[Path] = set()
    for s, fld, path in sample_videos(samples):
        if path in infos or path in failed:
            continue
        try:
            infos[path] = probe(path)
        except InferenceError as e:
            failed.add(path)
            problems.add(s, fld, str(e), "re-render or re-encode the video")
    problems.raise_if_any()
    return infos


def preflight(spec_path: Path, cfg: InferConfig, *, probe: Callable[[Path], VideoInfo] = probe_video) -> Plan:
    """Load, probe and plan the spec file at ``spec_path`` for ``cfg.engine`` on ``cfg.nproc_per_node`` ranks.

    Raises InferenceError naming the spec file, the sample, the field and the fix of every problem.
    """
    spec_path = Path(spec_path)
    samples = load_spec(spec_path)
    videos = probe_samples(samples, spec_path=spec_path, probe=probe)
    return plan_samples(samples, videos, nproc=cfg.nproc_per_node, engine=cfg.engine, spec_path=spec_path)


def describe(plan: Plan) -> list[str]:
    """Human-readable lines summarising ``plan`` (for the run log)."""
    lines = [f"{plan.spec_path}: {len(plan.samples)} sample(s), engine {plan.engine}, {plan.nproc} rank(s)"]
    for s in plan.samples:
        chunks = ", ".join(f"[{a}, {b})" for a, b in s.chunk_windows)
        ranks = ", ".join(f"{v}→{r}" for v, r in s.view_ranks.items())
        lines.append(
            f"  {s.name}: {len(s.views)} view(s), {s.video_fps} fps / {s.fps} = factor {s.fps_factor}, "
            f"{s.available_frames} frames available, {s.num_chunks} chunk(s) {chunks}, "
            f"{s.frames_per_view} frames per view ({s.frames_per_view / s.fps:.1f} s at {s.fps} fps); "
            f"ranks {ranks}"
        )
    return lines
