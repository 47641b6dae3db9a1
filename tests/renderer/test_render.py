"""render_clip / render_png_frame: real EGL (llvmpipe), real ffmpeg, real worker processes."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import pytest

from scene2world.errors import RenderError
from scene2world.renderer.batch import DrawBatch
from scene2world.renderer.render import RenderedCamera, render_clip, render_png_frame
from scene2world.scene.model import CameraSpec, FThetaIntrinsics, Scene

pytestmark = pytest.mark.timeout(120)

CAMS = ("camera_front_wide_120fov", "camera_cross_left_120fov", "camera_rear_tele_30fov")
REPO = Path(__file__).resolve().parents[2]


def make_scene(n_frames: int = 10, clip_id: str = "clip0") -> Scene:
    intr = FThetaIntrinsics(640.0, 360.0, 1280, 720, [0.0, 1e-3, 0.0, 0.0, 0.0, 0.0], True)
    return Scene(
        clip_id=clip_id,
        source_format="synthetic",
        frame_timestamps_us=np.arange(n_frames) * 33_333,
        world_SE3_rig=np.tile(np.eye(4), (n_frames, 1, 1)),
        cameras={name: CameraSpec(name, intr, np.eye(4)) for name in CAMS},
    )


class BarBuilder:
    """A test geometry: a bar whose position encodes the frame and whose colour the camera."""

    delay_s = 0.0

    def prepare(self, scene, look):
        return {"look": look}

    def build(self, scene, camera, frame, look, prepared):
        assert prepared == {"look": look}
        if self.delay_s:
            time.sleep(self.delay_s)
        u0 = 40.0 * frame
        color = np.eye(3, dtype=np.float32)[CAMS.index(camera)]
        vertices = np.array([[u0, 0, 5], [u0 + 40, 0, 5], [u0 + 40, 720, 5], [u0, 720, 5]], np.float32)
        return [DrawBatch(vertices, np.tile(color, (4, 1)), np.array([[0, 1, 2], [0, 2, 3]]))]


class SlowBarBuilder(BarBuilder):
    delay_s = 0.05


def read_video(path: Path) -> np.ndarray:
    reader = imageio.get_reader(path, "ffmpeg")
    assert reader.get_meta_data()["fps"] == 30.0
    out = np.stack([f for f in reader])
    reader.close()
    return out


def test_in_process_mp4_frames_progress(tmp_path):
    calls = []
    res = render_clip(
        make_scene(),
        tmp_path,
        cameras=CAMS[:2],
        frames=(2, 6),
        msaa=1,
        device="cpu",
        preset="ultrafast",
        workers=1,
        progress=lambda done, total: calls.append((done, total)),
        frame_builder=BarBuilder(),
    )
    assert [r.camera for r in res] == list(CAMS[:2])
    assert all(isinstance(r, RenderedCamera) and r.frames == 4 and r.frame_range == (2, 6) for r in res)
    assert "llvmpipe" in res[0].renderer
    assert calls[0] == (0, 8) and calls[-1] == (8, 8)
    assert res[0].path == tmp_path / "clip0" / f"clip0.{CAMS[0]}.mp4"
    video = read_video(res[0].path)
    assert video.shape == (4, 720, 1280, 3)
    # frame k of the video is timeline frame 2 + k: the red bar sits at u = 40 * (2 + k)
    for k in range(4):
        col = 40 * (2 + k) + 20
        assert video[k, 360, col, 0] > 200 and video[k, 360, col, 1:].max() < 40
    assert sorted(p.name for p in (tmp_path / "clip0").iterdir()) == sorted(r.path.name for r in res)


def test_worker_processes_png(tmp_path):
    calls = []
    res = render_clip(
        make_scene(),
        tmp_path,
        cameras=CAMS,
        frames=(7, None),
        msaa=4,
        device="cpu",
        png=True,
        workers=2,
        progress=lambda done, total: calls.append((done, total)),
        frame_builder=BarBuilder(),
    )
    assert [r.camera for r in res] == list(CAMS)
    assert calls[-1] == (9, 9)
    for i, r in enumerate(res):
        assert r.path == tmp_path / "clip0" / CAMS[i]
        assert sorted(p.name for p in r.path.iterdir()) == ["000007.png", "000008.png", "000009.png"]
        img = imageio.imread(r.path / "000008.png")
        assert img.shape == (720, 1280, 3)
        assert tuple(img[360, 40 * 8 + 20]) == tuple(255 * np.eye(3, dtype=int)[i])
    assert sorted(p.name for p in (tmp_path / "clip0").iterdir()) == sorted(CAMS)


@pytest.mark.parametrize("png", [False, True])
def test_more_workers_than_cameras_split_frames_into_segments(tmp_path, png):
    res = render_clip(
        make_scene(40),
        tmp_path,
        cameras=CAMS[:1],
        frames=(1, 33),
        msaa=1,
        device="cpu",
        preset="ultrafast",
        png=png,
        workers=2,
        frame_builder=BarBuilder(),
    )
    (r,) = res
    assert r.frames == 32 and r.frame_range == (1, 33)
    assert [p.name for p in (tmp_path / "clip0").iterdir()] == [r.path.name]  # segments joined, none left
    if png:
        names = sorted(p.name for p in r.path.iterdir())
        assert names == [f"{i:06d}.png" for i in range(1, 33)]
        frames = [imageio.imread(r.path / n) for n in (names[0], names[20])]
        timeline = [1, 21]
    else:
        video = read_video(r.path)
        assert video.shape[0] == 32
        frames, timeline = [video[0], video[20]], [1, 21]
    for img, f in zip(frames, timeline):  # bar of frame f at u = 40 f (off-screen after frame 31)
        assert img[360, 40 * f + 20, 0] > 200


def test_plan_tasks_segments():
    from scene2world.renderer.render import plan_tasks

    assert [(t.cameras, t.start, t.end) for t in plan_tasks(["a", "b"], 0, 100, 2, "x")] == [
        (("a",), 0, 100),
        (("b",), 0, 100),
    ]
    tasks = plan_tasks(["a", "b"], 10, 110, 5, "x")
    assert [(t.cameras, t.start, t.end, t.index, t.count) for t in tasks][:3] == [
        (("a",), 10, 43, 0, 3),
        (("a",), 43, 77, 1, 3),
        (("a",), 77, 110, 2, 3),
    ]
    assert len(plan_tasks(["a"], 0, 20, 16, "x")) == 1  # segments stay >= 16 frames


def test_plan_tasks_groups_cameras_drawn_in_one_pass():
    from scene2world.renderer.render import plan_tasks

    seven = [f"c{i}" for i in range(7)]

    def shape(tasks):
        return sorted({t.cameras for t in tasks}), sorted({(t.start, t.end) for t in tasks})

    # as many cameras per pass as allowed, the frames cut so that every worker has a task
    groups, ranges = shape(plan_tasks(seven, 0, 151, 8, "x", per_pass=7))
    assert groups == [tuple(seven)] and len(ranges) == 8
    # 16 workers but at most 9 segments of >= 16 frames: two groups of cameras, 8 segments each
    tasks = plan_tasks(seven, 0, 151, 16, "x", per_pass=7)
    groups, ranges = shape(tasks)
    assert groups == [tuple(seven[:4]), tuple(seven[4:])] and len(ranges) == 8 and len(tasks) == 16
    # per_pass bounds a group; one worker: one task per group over the whole range
    tasks = plan_tasks(seven, 5, 40, 1, "x", per_pass=3)
    assert [(t.cameras, t.start, t.end, t.count) for t in tasks] == [
        (("c0", "c1", "c2"), 5, 40, 1),
        (("c3", "c4"), 5, 40, 1),
        (("c5", "c6"), 5, 40, 1),
    ]
    # every camera-frame exactly once
    for workers in (1, 2, 5, 16, 40):
        for per_pass in (1, 2, 7, 16):
            covered = [
                (c, f)
                for t in plan_tasks(seven, 3, 100, workers, "x", per_pass)
                for c in t.cameras
                for f in range(t.start, t.end)
            ]
            assert sorted(covered) == sorted((c, f) for c in seven for f in range(3, 100))


def test_render_png_frame_matches_video_frame(tmp_path):
    img = render_png_frame(make_scene(), CAMS[2], 3, msaa=4, device="cpu", frame_builder=BarBuilder())
    assert img.shape == (720, 1280, 3) and img.dtype == np.uint8
    assert tuple(img[100, 140]) == (0, 0, 255) and not img[:, :120].any()


def test_unknown_camera_lists_rig(tmp_path):
    with pytest.raises(RenderError, match=r"camera_front_tele_30fov.*camera_front_wide_120fov"):
        render_clip(make_scene(), tmp_path, cameras=["camera_front_tele_30fov"], frame_builder=BarBuilder())
    with pytest.raises(RenderError, match="in the rig"):
        render_png_frame(make_scene(), "nope", 0, frame_builder=BarBuilder())


@pytest.mark.parametrize("frames", [(0, 11), (10, 12), (5, 5), (-1, 3), (8, 4)])
def test_frames_outside_clip_name_its_length(tmp_path, frames):
    with pytest.raises(RenderError, match="has 10 frames"):
        render_clip(make_scene(10), tmp_path, cameras=CAMS[:1], frames=frames, frame_builder=BarBuilder())
    assert not tmp_path.joinpath("clip0").exists()


def test_empty_scene_warns_and_renders_black(tmp_path, caplog):
    pytest.importorskip("scene2world.renderer.frame")
    with caplog.at_level(logging.WARNING, logger="scene2world.renderer.render"):
        res = render_clip(
            make_scene(3), tmp_path, cameras=CAMS[:1], msaa=1, device="cpu", preset="ultrafast", workers=1
        )
    assert "no map elements and no objects" in caplog.text
    video = read_video(res[0].path)
    assert video.shape[0] == 3 and video.max() <= 2


def test_builder_error_leaves_no_file(tmp_path):
    class Broken(BarBuilder):
        def build(self, *args):
            raise RenderError("geometry exploded")

    with pytest.raises(RenderError, match="geometry exploded"):
        render_clip(make_scene(), tmp_path, cameras=CAMS[:1], device="cpu", workers=1, frame_builder=Broken())
    assert not any(p.is_file() for p in tmp_path.rglob("*"))


KILL_SCRIPT = textwrap.dedent(
    """
    import signal, sys
    signal.signal(signal.SIGINT, signal.default_int_handler)  # as at a terminal, even if the suite runs with it ignored
    sys.path.insert(0, {test_dir!r})
    from test_render import SlowBarBuilder, make_scene, CAMS
    from scene2world.renderer.render import render_clip
    render_clip(make_scene(300), {out!r}, cameras=CAMS[:2], msaa=1, device="cpu", preset="ultrafast",
                workers={workers}, frame_builder=SlowBarBuilder())
    """
)


def _marked_pids(marker: str) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if marker.encode() in (proc / "environ").read_bytes():
                    pids.append(int(proc.name))
            except OSError:
                pass
    return pids


@pytest.mark.parametrize(("workers", "sig"), [(2, signal.SIGTERM), (2, signal.SIGINT), (1, signal.SIGTERM)])
def test_killed_midway_leaves_no_partial_file(tmp_path, workers, sig):
    marker = f"S2W_TEST_{uuid.uuid4().hex}"
    env = {**os.environ, marker: "1", "PYTHONPATH": str(REPO)}
    script = KILL_SCRIPT.format(test_dir=str(Path(__file__).parent), out=str(tmp_path), workers=workers)
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not list(tmp_path.rglob(".*partial*")):  # frames are being encoded
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.3)
        proc.send_signal(sig)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0
    stderr = proc.stderr.read()
    assert any(word in stderr for word in ("RenderCancelledError", "KeyboardInterrupt", "stopped by SIG")), stderr[
        -2000:
    ]
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]
    time.sleep(0.2)
    assert _marked_pids(marker) == []  # workers and ffmpeg are gone too


def test_line_caps_all_is_nvidias_geometry_and_culled_the_same_picture(tmp_path):
    """``line_caps="all"`` draws NVIDIA's 18 triangles per segment, ``culled`` far fewer with the
    same picture but for a few samples; both through the real worker path (PNG frames)."""
    from scene2world.renderer.frame import build_frame, prepare_static
    from scene2world.renderer.render import GeometryBuilder
    from scene2world.scene.load import load_scene

    scene = load_scene(REPO / "assets" / "example" / "s2w_demo_curve_0001")
    camera = "camera_front_wide_120fov"
    static = prepare_static(scene, "nvidia")
    full = GeometryBuilder(cull_caps=False).build(scene, camera, 40, "nvidia", static)
    culled = GeometryBuilder().build(scene, camera, 40, "nvidia", static)
    assert full[0].num_triangles == build_frame(scene, camera, 40, "nvidia", static, cull_caps=False)[0].num_triangles
    assert culled[0].num_triangles < full[0].num_triangles / 2.5
    images = {}
    for caps in ("all", "culled"):
        res = render_clip(
            scene, tmp_path / caps, cameras=[camera], frames=(40, 41), device="cpu", png=True, line_caps=caps
        )
        images[caps] = imageio.imread(res[0].path / "000040.png").astype(np.int16)
    lit = (images["all"].max(axis=-1) > 0) | (images["culled"].max(axis=-1) > 0)
    off = np.abs(images["all"] - images["culled"]).max(axis=-1) > 16
    assert lit.sum() > 50_000 and (off & lit).sum() <= 5
    with pytest.raises(RenderError, match="`line_caps` must be one of"):
        render_clip(scene, tmp_path / "bad", cameras=[camera], line_caps="some")  # type: ignore[arg-type]


@pytest.mark.parametrize("workers", [1, 2])
def test_cameras_drawn_in_one_pass_give_the_same_frames(tmp_path, workers):
    """Frame by frame over several cameras in one pass (the GPU's way) writes each camera's own
    frames, byte for byte: real geometry of the bundled example, PNG, MSAA 4, llvmpipe."""
    from scene2world.scene.load import load_scene
    from tests.conftest import EXAMPLE

    scene = load_scene(EXAMPLE / "s2w_demo_curve_0001")
    cams = scene.camera_names[:3]
    common = {"cameras": cams, "frames": (40, 43), "device": "cpu", "png": True}
    alone = render_clip(scene, tmp_path / "alone", workers=1, cameras_per_pass=1, **common)
    done: list[int] = []
    passes = render_clip(
        scene, tmp_path / "pass", workers=workers, cameras_per_pass=3, progress=lambda d, t: done.append(d), **common
    )
    assert [r.camera for r in passes] == list(cams) and done[-1] == 9
    assert all(r.frames == 3 and r.frame_range == (40, 43) for r in passes)
    for a, b in zip(alone, passes):
        names = sorted(p.name for p in a.path.iterdir())
        assert names == sorted(p.name for p in b.path.iterdir()) == [f"{f:06d}.png" for f in range(40, 43)]
        for name in names:
            assert (a.path / name).read_bytes() == (b.path / name).read_bytes(), f"{a.camera} {name}"


def test_cameras_per_pass_is_checked(tmp_path):
    with pytest.raises(RenderError, match="cameras_per_pass"):
        render_clip(make_scene(), tmp_path, cameras=CAMS, cameras_per_pass=17, frame_builder=BarBuilder())


def test_auto_cameras_per_pass_follows_the_measurements():
    """All cameras per pass on a GPU while one group of them gives every worker a task (measured
    faster there), one camera per pass with more workers (two groups measured slower) and on the CPU."""
    from scene2world.renderer.render import auto_cameras_per_pass

    seven = [f"c{i}" for i in range(7)]
    assert [auto_cameras_per_pass(seven, 0, 151, w, "gpu") for w in (1, 7, 9, 10, 16)] == [7, 7, 7, 1, 1]
    assert auto_cameras_per_pass(seven, 0, 151, 7, "cpu") == 1
    assert auto_cameras_per_pass(seven[:1], 0, 151, 1, "gpu") == 1
    assert auto_cameras_per_pass(seven, 0, 40, 3, "gpu") == 1  # 40 frames: 2 segments of >= 16 at most
