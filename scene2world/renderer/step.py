"""The render step: control videos for every clip and camera, cached per (clip, camera).

The step key covers the render settings and the upstream content. Inside the step each
(clip, camera) has its own key (settings + the scene's content digest with only that camera),
so changing one camera's calibration re-renders that camera only; unchanged cameras are
hard-linked from the per-camera cache.

The step is three plain parts, used alike by the CLI (:func:`run_render`, every clip in this
process, each clip's cameras over one process per core) and by the pipeline flow (one Prefect
task per clip and per camera, on a local or Dask task runner):

- :func:`plan_clip` loads a clip, picks its cameras (the clip's own rig, restricted by
  ``render.cameras``) and computes each camera's key; :func:`check_plans` rejects a named
  camera that no clip has;
- :func:`render_camera` renders one camera into the per-camera cache (a hit there is reused);
- :func:`assemble` links every camera's output into the step folder and writes its manifest.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scene2world import cache
from scene2world.config import RenderConfig
from scene2world.contracts import DownloadData, RenderData, RenderedClip, dump
from scene2world.errors import RenderError, SceneError
from scene2world.manifest import Manifest, payload, read_manifest, record_tree, write_manifest

if TYPE_CHECKING:  # the scene loaders are imported when a clip is read, not by a cached run
    from scene2world.manifest import UpstreamRef
    from scene2world.renderer.render import RenderedCamera
    from scene2world.scene.discover import ClipRef

STEP = "render"
STEP_VERSION = "1"
CAMERA_CACHE = "render-cameras"

log = logging.getLogger(__name__)

ProgressFn = Callable[[int, int], None]
"""``progress(done, total)``: camera-frames finished so far and in all."""


@dataclass(frozen=True)
class RenderInput:
    """Where the clips come from: a download manifest's folder, or a folder of clips."""

    clips: list[ClipRef]
    content: str
    upstream: Manifest | None
    upstream_dir: Path | None
    origin: str | None = None
    """The dataset source the clips were downloaded from (None for a plain folder)."""


@dataclass(frozen=True)
class ClipPlan:
    """What to render of one clip: its cameras with their per-camera keys, and its frame range.

    ``cameras`` maps camera name → per-camera cache key, in the rig's order; ``frames`` is the
    resolved half-open range of the 30 fps timeline. Plain values only (it travels as a
    Prefect task result and to Dask workers).
    """

    clip_id: str
    format: str
    path: str
    cameras: dict[str, str]
    frames: tuple[int, int]

    @property
    def ref(self) -> ClipRef:
        """The clip on disk."""
        from scene2world.scene.discover import ClipRef

        return ClipRef(self.clip_id, self.format, Path(self.path))  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (Prefect results)."""
        return {**asdict(self), "frames": list(self.frames)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClipPlan:
        """Inverse of :meth:`to_dict`."""
        return cls(data["clip_id"], data["format"], data["path"], dict(data["cameras"]), tuple(data["frames"]))  # type: ignore[arg-type]


def resolve_input(path: Path) -> RenderInput:
    """INPUT of the render step: a manifest (file or folder holding one) or a folder of clips."""
    from scene2world.digest import tree_digest
    from scene2world.manifest import MANIFEST_NAME
    from scene2world.scene.discover import ClipRef, discover_clips

    path = Path(path).absolute()
    if path.name == MANIFEST_NAME or (path / MANIFEST_NAME).is_file():
        folder = path.parent if path.name == MANIFEST_NAME else path
        up = read_manifest(folder)
        if up.step != "download":
            raise RenderError(f"{folder / MANIFEST_NAME}: a `{up.step}` manifest; render takes a download manifest")
        data = payload(up, DownloadData)
        clips = [ClipRef(c.clip_id, c.format, folder / c.path) for c in data.clips]  # type: ignore[arg-type]
        return RenderInput(clips, up.digest(), up, folder, origin=data.source)
    if not path.is_dir():
        raise RenderError(f"{path}: not a folder of clips or a download manifest")
    clips = discover_clips(path)
    if not clips:
        raise RenderError(f"{path}: no ClipGT or RDS-HQ clip found under this folder")
    return RenderInput(clips, tree_digest(path), None, None)


def settings_of(cfg: RenderConfig) -> dict[str, Any]:
    """The render settings that shape pixels (workers, device and where tasks run do not)."""
    return cfg.model_dump(mode="json", exclude={"workers", "device", "task_runner", "dask_address"})


def render_key(cfg: RenderConfig, content: str) -> str:
    """The step key from the render settings and the upstream content digest."""
    return cache.step_key(STEP, STEP_VERSION, settings=settings_of(cfg), content=content)


def camera_key(cfg: RenderConfig, scene_digest: str) -> str:
    """The per-(clip, camera) key: pixel settings (not the camera list) + the clip's content with that camera."""
    per_camera = {k: v for k, v in settings_of(cfg).items() if k != "cameras"}
    return cache.step_key("render-camera", STEP_VERSION, settings=per_camera, scene=scene_digest)


def camera_dir(data_root: Path, key: str) -> Path:
    """Folder of one camera's output in the per-camera cache."""
    return Path(data_root).absolute() / CAMERA_CACHE / key[:20]


def parse_frames(spec: str | None) -> tuple[int, int | None] | None:
    """``"START:END"`` (either side optional) to a half-open (start, end) tuple; None for all frames."""
    if spec is None:
        return None
    start_s, _, end_s = spec.partition(":")
    start = int(start_s) if start_s else 0
    end = int(end_s) if end_s else None
    if end is not None and end <= start:
        raise RenderError(f"render.frames {spec!r}: END must be greater than START")
    return (start, end)


def render_options(cfg: RenderConfig) -> dict[str, Any]:
    """Keyword arguments of ``render.render_clip`` that come from the settings (not cameras/workers)."""
    return {
        "frames": parse_frames(cfg.frames),
        "look": cfg.look,
        "msaa": cfg.msaa,
        "device": cfg.device,
        "crf": cfg.crf,
        "preset": cfg.preset,
        "png": cfg.png,
        "line_caps": cfg.line_caps,
    }


# ------------------------------------------------------------------------------------------------
# plan


def plan_clip(cfg: RenderConfig, clip: ClipRef, origin: str | None = None) -> ClipPlan:
    """Load ``clip`` and plan its render: the rig's cameras (those ``cfg.cameras`` names, if set),
    each with its per-camera key, and the frame range.

    Raises SceneError for an unreadable clip (naming the dataset ``origin`` when given),
    RenderError for a frame range outside the clip.
    """
    from scene2world.renderer.render import resolve_frames
    from scene2world.scene.load import load_scene

    try:
        scene = load_scene(clip.path, clip_id=clip.clip_id)
    except SceneError as e:
        if origin is None:
            raise
        raise SceneError(f"{e} [clip {clip.clip_id!r} of dataset {origin}]") from e
    wanted = scene.camera_names if cfg.cameras is None else [c for c in scene.camera_names if c in cfg.cameras]
    frames = resolve_frames(scene, parse_frames(cfg.frames))
    keys = {cam: camera_key(cfg, scene.content_digest(cam)) for cam in wanted}
    return ClipPlan(clip.clip_id, clip.format, str(Path(clip.path).absolute()), keys, frames)


def check_plans(cfg: RenderConfig, plans: Sequence[ClipPlan]) -> None:
    """RenderError when ``render.cameras`` names a camera no clip has, or leaves a clip with none."""
    if cfg.cameras is None or not plans:
        return
    ids = ", ".join(p.clip_id for p in plans)
    nowhere = [c for c in cfg.cameras if not any(c in p.cameras for p in plans)]
    if nowhere:
        raise RenderError(
            f"render.cameras: no clip has {', '.join(nowhere)} (clips: {ids}); "
            "remove it from render.cameras or leave render.cameras unset to render every clip's own rig"
        )
    empty = [p.clip_id for p in plans if not p.cameras]
    if empty:
        raise RenderError(
            f"render.cameras {list(cfg.cameras)}: clip(s) {', '.join(empty)} have none of these cameras; "
            "add one of their cameras or leave render.cameras unset"
        )


# ------------------------------------------------------------------------------------------------
# one camera


CameraRenderer = Callable[["ClipRef", str, Path, dict[str, Any], "ProgressFn | None"], Any]
"""``renderer(clip, camera, out_dir, options, progress)`` renders one camera into ``out_dir``
(``render.render_clip`` layout) and returns its ``RenderedCamera``."""

_GL_LOCK = threading.Lock()


def render_here(
    clip: ClipRef, camera: str, out_dir: Path, options: dict[str, Any], progress: ProgressFn | None
) -> RenderedCamera:
    """A :data:`CameraRenderer` in this process, one camera at a time per process: where no render
    process can be started (a Dask worker is daemonic, see docs/scale-out.md)."""
    from scene2world.renderer.render import render_clip
    from scene2world.scene.load import load_scene

    scene = load_scene(clip.path, clip_id=clip.clip_id, cameras=[camera])
    with _GL_LOCK:
        (result,) = render_clip(scene, out_dir, cameras=[camera], workers=1, progress=progress, **options)
    return result


@dataclass(frozen=True)
class CameraOutcome:
    """One camera of one clip in the per-camera cache: ``rendered`` False when it was reused."""

    clip_id: str
    camera: str
    key: str
    rendered: bool
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (Prefect results)."""
        return asdict(self)


def render_camera(
    cfg: RenderConfig,
    plan: ClipPlan,
    camera: str,
    *,
    data_root: Path,
    renderer: CameraRenderer = render_here,
    progress: ProgressFn | None = None,
) -> CameraOutcome:
    """Render ``camera`` of ``plan``'s clip into the per-camera cache, unless a valid copy is there."""
    t0 = time.perf_counter()
    key = plan.cameras[camera]
    target = camera_dir(data_root, key)
    if cache.lookup(target, key) is not None:
        return CameraOutcome(plan.clip_id, camera, key, False, time.perf_counter() - t0)
    with cache.staging(target) as tmp:
        scratch = tmp / ".render"
        result = renderer(plan.ref, camera, scratch, render_options(cfg), progress)
        _publish_camera(target, key, Path(result.path), scratch, tmp, cleanup=True)
    return CameraOutcome(plan.clip_id, camera, key, True, time.perf_counter() - t0)


def _publish_camera(
    target: Path, key: str, produced: Path, scratch: Path, tmp: Path, *, cleanup: bool = False
) -> Manifest:
    """Move one camera's output (an mp4 or a folder of PNGs) into staging ``tmp`` and publish it."""
    dest = tmp / produced.relative_to(scratch)
    dest.parent.mkdir(parents=True, exist_ok=True)
    produced.rename(dest)
    if cleanup:  # the scratch folder inside staging: nothing else of it is published
        shutil.rmtree(scratch, ignore_errors=True)
    write_manifest(tmp, Manifest(step=STEP, step_version=STEP_VERSION, cache_key=key, files=record_tree(tmp)))
    return cache.publish(tmp, target, key)


def _render_clip_cameras(
    cfg: RenderConfig, plan: ClipPlan, data_root: Path, progress: ProgressFn | None
) -> dict[str, bool]:
    """The CLI's way: every missing camera of one clip in one ``render_clip`` call (one process per
    core over the cameras). Returns camera → rendered (False = reused)."""
    from scene2world.renderer.render import render_clip
    from scene2world.scene.load import load_scene

    todo = [c for c, k in plan.cameras.items() if cache.lookup(camera_dir(data_root, k), k) is None]
    if todo:
        scene = load_scene(plan.ref.path, clip_id=plan.clip_id, cameras=todo)
        # a scratch folder that is never published: removed when the block ends, whatever happens
        with cache.staging(Path(data_root).absolute() / CAMERA_CACHE / f"clip-{plan.clip_id}") as scratch:
            results = render_clip(
                scene, scratch, cameras=todo, workers=cfg.workers, progress=progress, **render_options(cfg)
            )
            for res in results:
                key = plan.cameras[res.camera]
                target = camera_dir(data_root, key)
                with cache.staging(target) as tmp:
                    _publish_camera(target, key, Path(res.path), scratch, tmp)
    return {c: c in todo for c in plan.cameras}


# ------------------------------------------------------------------------------------------------
# the step output


def assemble(
    cfg: RenderConfig,
    source: RenderInput,
    plans: Sequence[ClipPlan],
    rendered: dict[str, dict[str, bool]],
    *,
    data_root: Path,
    out_dir: Path | None = None,
    seconds: float = 0.0,
) -> cache.StepResult:
    """Publish the step folder: every planned camera linked from the per-camera cache, and the manifest.

    ``rendered[clip][camera]`` tells whether that camera was rendered in this run (else reused).
    Raises RenderError naming a camera whose per-camera output is missing or altered.
    """
    t0 = time.perf_counter()
    data_root = Path(data_root).absolute()
    key = render_key(cfg, source.content)
    out_dir = Path(out_dir) if out_dir else cache.store_dir(data_root, STEP, key)
    if (hit := cache.lookup(out_dir, key)) is not None:
        return cache.StepResult(hit, out_dir, cache_hit=True)
    clips_data: dict[str, RenderedClip] = {}
    n_rendered = n_reused = 0
    with cache.staging(out_dir) as tmp:
        for plan in plans:
            cameras: dict[str, str] = {}
            done = rendered.get(plan.clip_id, {})
            for cam, cam_key in plan.cameras.items():
                folder = camera_dir(data_root, cam_key)
                entry = cache.lookup(folder, cam_key)
                if entry is None:
                    raise RenderError(
                        f"clip {plan.clip_id!r} camera {cam}: no valid output in {folder}; render the clip again"
                    )
                for rec in entry.files:
                    cache.link_or_copy(folder / rec.path, tmp / rec.path)
                cameras[cam] = _output_name(plan.clip_id, cam, cfg.png)
            made = [c for c in plan.cameras if done.get(c, False)]
            kept = [c for c in plan.cameras if not done.get(c, False)]
            n_rendered += len(made)
            n_reused += len(kept)
            start, end = plan.frames
            clips_data[plan.clip_id] = RenderedClip(
                cameras=cameras,
                num_frames=end - start,
                frames=(start, end),
                format=plan.format,
                rendered=made,
                reused=kept,
            )
        manifest = Manifest(
            step=STEP,
            step_version=STEP_VERSION,
            cache_key=key,
            files=record_tree(tmp),
            settings=settings_of(cfg),
            upstream=_upstream_ref(source),
            timings_s={"total": seconds + time.perf_counter() - t0},
            data=dump(RenderData(clips=clips_data)),
            stats={"rendered_cameras": n_rendered, "reused_cameras": n_reused},
        )
        write_manifest(tmp, manifest)
        published = cache.publish(tmp, out_dir, key)
    log.info("render: %d camera video(s) rendered, %d reused", n_rendered, n_reused)
    return cache.StepResult(published, out_dir, cache_hit=False)


def run_render(
    cfg: RenderConfig,
    source: RenderInput,
    *,
    data_root: Path,
    out_dir: Path | None = None,
    progress: ProgressFn | None = None,
) -> cache.StepResult:
    """Render every clip of ``source`` into ``out_dir`` (default: the data root's store), in this process."""
    t0 = time.perf_counter()
    data_root = Path(data_root).absolute()
    key = render_key(cfg, source.content)
    out_dir = Path(out_dir) if out_dir else cache.store_dir(data_root, STEP, key)
    cache.check_replaceable(out_dir)  # a user's folder is refused now, not after rendering
    if (hit := cache.lookup(out_dir, key)) is not None:
        log.info("render: cache hit %s (%s)", key[:12], out_dir)
        return cache.StepResult(hit, out_dir, cache_hit=True)
    plans = [plan_clip(cfg, clip, source.origin) for clip in source.clips]
    check_plans(cfg, plans)
    total = sum(len(p.cameras) * (p.frames[1] - p.frames[0]) for p in plans)
    finished = 0
    rendered: dict[str, dict[str, bool]] = {}
    for plan in plans:
        base = finished

        def clip_progress(done: int, _total: int, base: int = base) -> None:
            if progress is not None:
                progress(base + done, total)

        rendered[plan.clip_id] = _render_clip_cameras(cfg, plan, data_root, clip_progress)
        finished += len(plan.cameras) * (plan.frames[1] - plan.frames[0])
        if progress is not None:
            progress(finished, total)
    return assemble(
        cfg, source, plans, rendered, data_root=data_root, out_dir=out_dir, seconds=time.perf_counter() - t0
    )


def _output_name(clip_id: str, camera: str, png: bool) -> str:
    return f"{clip_id}/{camera}" if png else f"{clip_id}/{clip_id}.{camera}.mp4"


def _upstream_ref(source: RenderInput) -> UpstreamRef | None:
    from scene2world.manifest import MANIFEST_NAME, UpstreamRef

    if source.upstream is None or source.upstream_dir is None:
        return None
    return UpstreamRef(
        step=source.upstream.step,
        cache_key=source.upstream.cache_key,
        digest=source.upstream.digest(),
        manifest_path=str(source.upstream_dir / MANIFEST_NAME),
    )
