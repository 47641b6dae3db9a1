"""The render step: control videos for every clip and camera, cached per (clip, camera).

The step key covers the render settings and the upstream content. Inside the step each
(clip, camera) has its own key (settings + the scene's content digest with only that camera),
so changing one camera's calibration re-renders that camera only; unchanged cameras are
hard-linked from the per-camera cache.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scene2world import cache
from scene2world.config import RenderConfig
from scene2world.errors import RenderError, SceneError
from scene2world.manifest import Manifest, read_manifest, record_tree, write_manifest
from scene2world.scene.discover import ClipRef, discover_clips
from scene2world.scene.load import load_scene

STEP = "render"
STEP_VERSION = "1"
CAMERA_CACHE = "render-cameras"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RenderInput:
    """Where the clips come from: a download manifest's folder, or a folder of clips."""

    clips: list[ClipRef]
    content: str
    upstream: Manifest | None
    upstream_dir: Path | None


def resolve_input(path: Path) -> RenderInput:
    """INPUT of the render step: a manifest (file or folder holding one) or a folder of clips."""
    from scene2world.datasets.digest import tree_digest
    from scene2world.manifest import MANIFEST_NAME

    path = Path(path).absolute()
    if path.name == MANIFEST_NAME or (path / MANIFEST_NAME).is_file():
        folder = path.parent if path.name == MANIFEST_NAME else path
        up = read_manifest(folder)
        if up.step != "download":
            raise RenderError(f"{folder / MANIFEST_NAME}: a `{up.step}` manifest; render takes a download manifest")
        clips = [ClipRef(c["clip_id"], c["format"], folder / c["path"]) for c in up.data["clips"]]
        return RenderInput(clips, up.digest(), up, folder)
    if not path.is_dir():
        raise RenderError(f"{path}: not a folder of clips or a download manifest")
    clips = discover_clips(path)
    if not clips:
        raise RenderError(f"{path}: no ClipGT or RDS-HQ clip found under this folder")
    return RenderInput(clips, tree_digest(path), None, None)


def settings_of(cfg: RenderConfig) -> dict[str, Any]:
    """The render settings that shape pixels (workers and device selection do not)."""
    return cfg.model_dump(mode="json", exclude={"workers", "device"})


def render_key(cfg: RenderConfig, content: str) -> str:
    """The step key from the render settings and the upstream content digest."""
    return cache.step_key(STEP, STEP_VERSION, settings=settings_of(cfg), content=content)


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


def run_render(
    cfg: RenderConfig,
    source: RenderInput,
    *,
    data_root: Path,
    out_dir: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> cache.StepResult:
    """Render every clip of ``source`` into ``out_dir`` (default: the data root's store)."""
    from scene2world.renderer.render import render_clip

    t0 = time.perf_counter()
    data_root = Path(data_root).absolute()
    key = render_key(cfg, source.content)
    out_dir = Path(out_dir) if out_dir else cache.store_dir(data_root, STEP, key)
    if (hit := cache.lookup(out_dir, key)) is not None:
        log.info("render: cache hit %s (%s)", key[:12], out_dir)
        return cache.StepResult(hit, out_dir, cache_hit=True)

    frames = parse_frames(cfg.frames)
    settings = settings_of(cfg)
    per_camera = {k: v for k, v in settings.items() if k != "cameras"}
    clips_data: dict[str, Any] = {}
    rendered = reused = 0
    with cache.staging(out_dir) as tmp:
        for clip in source.clips:
            scene = _load(clip, cfg, source)
            cam_keys: dict[str, str] = {
                cam: cache.step_key("render-camera", STEP_VERSION, settings=per_camera, scene=scene.content_digest(cam))
                for cam in cfg.cameras
            }
            entries = {cam: cache.lookup(_camera_dir(data_root, k), k) for cam, k in cam_keys.items()}
            todo = [cam for cam, entry in entries.items() if entry is None]
            if todo:
                scratch = tmp / ".render" / clip.clip_id
                results = render_clip(
                    scene,
                    scratch,
                    cameras=todo,
                    frames=frames,
                    look=cfg.look,
                    msaa=cfg.msaa,
                    device=cfg.device,
                    crf=cfg.crf,
                    preset=cfg.preset,
                    png=cfg.png,
                    workers=cfg.workers,
                    line_caps=cfg.line_caps,
                    progress=progress,
                )
                for res in results:
                    entries[res.camera] = _store_camera(data_root, cam_keys[res.camera], Path(res.path), scratch)
                shutil.rmtree(tmp / ".render", ignore_errors=True)
            rendered += len(todo)
            reused += len(cfg.cameras) - len(todo)
            cameras: dict[str, str] = {}
            for cam in cfg.cameras:
                entry = entries[cam]
                if entry is None:
                    raise RenderError(f"clip {clip.clip_id!r}: the renderer produced no output for {cam}")
                folder = _camera_dir(data_root, cam_keys[cam])
                for rec in entry.files:
                    cache.link_or_copy(folder / rec.path, tmp / rec.path)
                cameras[cam] = _output_name(clip.clip_id, cam, cfg.png)
            start, end = frames or (0, None)
            clips_data[clip.clip_id] = {
                "cameras": cameras,
                "num_frames": (end if end is not None else scene.num_frames) - start,
                "frames": [start, end if end is not None else scene.num_frames],
                "format": clip.format,
            }
        manifest = Manifest(
            step=STEP,
            step_version=STEP_VERSION,
            cache_key=key,
            files=record_tree(tmp),
            settings=settings,
            upstream=_upstream_ref(source),
            timings_s={"total": time.perf_counter() - t0},
            data={"clips": clips_data},
            stats={"rendered_cameras": rendered, "reused_cameras": reused},
        )
        write_manifest(tmp, manifest)
        published = cache.publish(tmp, out_dir, key)
    log.info("render: %d camera video(s) rendered, %d reused, %.1f s", rendered, reused, time.perf_counter() - t0)
    return cache.StepResult(published, out_dir, cache_hit=False)


def _load(clip: ClipRef, cfg: RenderConfig, source: RenderInput) -> Any:
    """Load a clip; errors on a downloaded copy also name the dataset it came from."""
    try:
        return load_scene(clip.path, clip_id=clip.clip_id, cameras=list(cfg.cameras))
    except SceneError as e:
        origin = source.upstream.data.get("source") if source.upstream else None
        if origin is None:
            raise
        raise SceneError(f"{e} [clip {clip.clip_id!r} of dataset {origin}]") from e


def _output_name(clip_id: str, camera: str, png: bool) -> str:
    return f"{clip_id}/{camera}" if png else f"{clip_id}/{clip_id}.{camera}.mp4"


def _camera_dir(data_root: Path, key: str) -> Path:
    return data_root / CAMERA_CACHE / key[:20]


def _store_camera(data_root: Path, key: str, produced: Path, scratch: Path) -> Manifest:
    """Publish one camera's output (an mp4 or a folder of PNGs) to the per-camera cache."""
    target = _camera_dir(data_root, key)
    with cache.staging(target) as tmp:
        rel = produced.relative_to(scratch)
        dest = tmp / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        produced.rename(dest)
        write_manifest(
            tmp,
            Manifest(step=STEP, step_version=STEP_VERSION, cache_key=key, files=record_tree(tmp)),
        )
        return cache.publish(tmp, target, key)


def _upstream_ref(source: RenderInput) -> Any:
    from scene2world.manifest import MANIFEST_NAME, UpstreamRef

    if source.upstream is None or source.upstream_dir is None:
        return None
    return UpstreamRef(
        step=source.upstream.step,
        cache_key=source.upstream.cache_key,
        digest=source.upstream.digest(),
        manifest_path=str(source.upstream_dir / MANIFEST_NAME),
    )
