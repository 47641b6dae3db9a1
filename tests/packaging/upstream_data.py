"""Real upstream outputs for the packaging tests: a render folder and an infer folder with tiny mp4s.

Every control frame is one flat colour: blue = 10 + 30·(camera's index in DEFAULT_CAMERA_NAMES),
green = the frame index, red = 200 (clip A) or 100 (clip B), so a pixel says which camera, frame and clip it is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import imageio.v2 as imageio
import numpy as np

from scene2world.contracts import InferData, InferredSample, RenderData, RenderedClip, dump
from scene2world.manifest import Manifest, record_tree, write_manifest
from scene2world.scene.model import DEFAULT_CAMERA_NAMES

W_PX, H_PX = 64, 36
CLIP_A, CLIP_B = "clipA_0001", "clipB_0002"
FRAMES = {CLIP_A: 250, CLIP_B: 121}
CAMERAS = {CLIP_A: list(DEFAULT_CAMERA_NAMES), CLIP_B: ["camera_front_wide_120fov", "camera_rear_tele_30fov"]}
RED = {CLIP_A: 200, CLIP_B: 100}


def camera_blue(camera: str) -> int:
    return 10 + 30 * DEFAULT_CAMERA_NAMES.index(camera)


def write_video(path: Path, frames: list[np.ndarray], fps: int = 30) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    imageio.mimwrite(path, frames, fps=fps, codec="libx264", macro_block_size=1)
    return path


def control_frames(clip: str, camera: str) -> list[np.ndarray]:
    return [
        np.broadcast_to(np.array([RED[clip], i, camera_blue(camera)], np.uint8), (H_PX, W_PX, 3)).copy()
        for i in range(FRAMES[clip])
    ]


@dataclass(frozen=True)
class Upstream:
    render_dir: Path
    infer_dir: Path


def make_render(root: Path) -> Path:
    clips = {}
    for clip in (CLIP_A, CLIP_B):
        cameras = {}
        for cam in CAMERAS[clip]:
            rel = f"{clip}/{clip}.{cam}.mp4"
            write_video(root / rel, control_frames(clip, cam))
            cameras[cam] = rel
        clips[clip] = RenderedClip(cameras=cameras, num_frames=FRAMES[clip], frames=(0, FRAMES[clip]), format="clipgt")
    manifest = Manifest(
        step="render", step_version="1", cache_key="r" * 64, files=record_tree(root), data=dump(RenderData(clips=clips))
    )
    write_manifest(root, manifest)
    return root


VIEWS = {"front_wide": "camera_front_wide_120fov", "rear": "camera_rear_tele_30fov"}


def _sample(name: str, clip: str, controls: str) -> dict:
    """A spec sample as the infer step writes it: control paths relative to the file's folder."""
    views = {v: {"control_path": f"{controls}/{clip}/{clip}.{cam}.mp4"} for v, cam in VIEWS.items()}
    return {"name": name, "prompt": f"prompt of {name}", "num_conditional_frames": 0, **views}


def make_infer(root: Path, render_dir: Path) -> Path:
    """An infer output laid out like the infer step's: controls/, spec/ and outputs/ (dumps included)."""
    gen = [np.full((H_PX, W_PX, 3), 90, np.uint8)] * 29
    samples = {}
    (root / "spec").mkdir(parents=True)
    (root / "outputs").mkdir()
    for clip in (CLIP_A, CLIP_B):
        for cam in VIEWS.values():
            rel = f"{clip}/{clip}.{cam}.mp4"
            (root / "controls" / clip).mkdir(parents=True, exist_ok=True)
            (root / "controls" / rel).write_bytes((render_dir / rel).read_bytes())
    pairs = (("s_a", CLIP_A), ("s_b", CLIP_B))
    (root / "spec" / "spec.jsonl").write_text(
        "".join(json.dumps(_sample(n, c, "../controls")) + "\n" for n, c in pairs)
    )
    for name, clip in pairs:
        (root / "outputs" / f"{name}.json").write_text(json.dumps(_sample(name, clip, "../controls")))
        outputs = {}
        for view in ("front_wide", "rear"):
            outputs[view] = f"outputs/{name}_{view}.mp4"
            write_video(root / outputs[view], gen, fps=10)
        write_video(root / f"outputs/{name}_grid.mp4", gen, fps=10)
        samples[name] = InferredSample(
            clip_id=clip,
            variant="default",
            seed=0,
            reused=False,
            key=name * 32,
            spec="spec/spec.jsonl",
            json_=f"outputs/{name}.json",
            outputs=outputs,
            grid=f"outputs/{name}_grid.mp4",
            combined=None,
        )
    (root / "outputs" / "console.log").write_text("rank 0: done\n")
    manifest = Manifest(
        step="infer",
        step_version="1",
        cache_key="i" * 64,
        files=record_tree(root),
        data=dump(
            InferData(
                engine="preview",
                nproc_per_node=1,
                spec="spec/spec.jsonl",
                samples=samples,
                logs=["outputs/console.log"],
                warnings=[],
            )
        ),
    )
    write_manifest(root, manifest)
    return root


INFO = {
    "name": "test-run",
    "source": "https://example.com/multiview_example1.zip",
    "config": {"name": "test-run", "render": {"msaa": 4}},
    "cache_key": "k" * 64,
    "operator": "ci",
}
