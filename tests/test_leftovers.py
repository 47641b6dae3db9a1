"""Temporaries of killed processes: named with their owner, removed by the next run on this host."""

from __future__ import annotations

import os
import subprocess

import numpy as np

from scene2world import cache
from scene2world.atomic import temporaries_of, temporary_path
from scene2world.leftovers import is_orphan, owner_tag, remove_orphans
from scene2world.renderer.batch import DrawBatch
from scene2world.renderer.render import render_clip
from scene2world.scene.model import CameraSpec, FThetaIntrinsics, Scene

CAMERA = "camera_front_wide_120fov"


def dead_pid() -> int:
    """The pid of a process that has exited (and was reaped)."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def tag(pid: int) -> str:
    return f"{pid}@{owner_tag().split('@', 1)[1]}"


def test_owner_of_a_name_decides_what_is_an_orphan():
    host = owner_tag().split("@", 1)[1]
    assert owner_tag() == f"{os.getpid()}@{host}"
    name = ".clip-7@x-.cam.mp4.partial-{}-1a2b3c4d.mp4"  # the owner is the last -pid@host- in the name
    assert is_orphan(name.format(f"{dead_pid()}@{host}"))
    assert not is_orphan(name.format(f"{os.getpid()}@{host}"))  # this process
    assert not is_orphan(name.format(f"{os.getppid()}@{host}"))  # alive
    assert not is_orphan(name.format(f"{dead_pid()}@another_host"))  # a shared disk: not ours to judge
    assert not is_orphan(".clip.cam.mp4.partial-1a2b3c4d.mp4")  # no owner (an older version's name)
    assert not is_orphan(f".clip.cam.mp4.partial-x{os.getppid()}{dead_pid()}@{host}-1a2b.mp4")  # no '-' before


def test_remove_orphans_files_and_folders(tmp_path):
    dead, live = tag(dead_pid()), tag(os.getppid())
    files = [tmp_path / f".a.mp4.partial-{dead}-00000001.mp4", tmp_path / f".a.mp4.partial-{live}-00000002.mp4"]
    for f in files:
        f.write_bytes(b"x")
    folder = tmp_path / f".cam.partial-{dead}-00000003"
    (folder / "sub").mkdir(parents=True)
    removed = remove_orphans([*files, folder])
    assert removed == [files[0], folder] and not files[0].exists() and not folder.exists() and files[1].exists()


class BarBuilder:
    def prepare(self, scene, look):
        return None

    def build(self, scene, camera, frame, look, prepared):
        vertices = np.array([[0, 0, 5], [40, 0, 5], [40, 720, 5], [0, 720, 5]], np.float32)
        return [DrawBatch(vertices, np.ones((4, 3), np.float32), np.array([[0, 1, 2], [0, 2, 3]]))]


def test_render_removes_partials_of_killed_renders(tmp_path):
    intr = FThetaIntrinsics(640.0, 360.0, 1280, 720, [0.0, 1e-3, 0.0, 0.0, 0.0, 0.0], True)
    scene = Scene(
        clip_id="clip0",
        source_format="synthetic",
        frame_timestamps_us=np.arange(2) * 33_333,
        world_SE3_rig=np.tile(np.eye(4), (2, 1, 1)),
        cameras={CAMERA: CameraSpec(CAMERA, intr, np.eye(4))},
    )
    folder = tmp_path / "clip0"
    folder.mkdir()
    orphan = folder / f".clip0.{CAMERA}.mp4.partial-{tag(dead_pid())}-0000000a.mp4"
    running = folder / f".clip0.{CAMERA}.mp4.partial-{tag(os.getppid())}-0000000b.mp4"
    for f in (orphan, running):
        f.write_bytes(b"half a video")
    options = {"device": "cpu", "msaa": 1, "preset": "ultrafast", "workers": 1, "frame_builder": BarBuilder()}
    (res,) = render_clip(scene, tmp_path, cameras=[CAMERA], **options)
    assert res.path.is_file() and not orphan.exists() and running.exists()


def test_staging_removes_folders_of_killed_runs(tmp_path):
    out = tmp_path / "render" / "abc"
    out.parent.mkdir()
    orphan = out.parent / f".abc.staging-{tag(dead_pid())}-0123456789ab"
    running = out.parent / f".abc.staging-{tag(os.getppid())}-0123456789ac"
    other_output = out.parent / f".abcd.staging-{tag(dead_pid())}-0123456789ad"
    partial_of_other = out.parent / f".abc.d.staging-{tag(dead_pid())}-0123456789ae"  # of the output `abc.d`
    for d in (orphan, running, other_output, partial_of_other):
        d.mkdir()
    with cache.staging(out) as tmp:
        assert tmp.name.startswith(f".abc.staging-{owner_tag()}-")
        assert not orphan.exists() and running.exists()
    assert other_output.exists() and partial_of_other.exists()  # other outputs' staging folders: not swept here


def test_one_temporary_name_convention(tmp_path):
    final = tmp_path / "clip.cam.mp4"
    made = [temporary_path(final), temporary_path(final, "staging"), temporary_path(final, "seg", token="run-seg0001")]
    assert made[0].name.startswith(f".clip.cam.mp4.partial-{owner_tag()}-") and made[0].suffix == ".mp4"
    assert made[2].name == f".clip.cam.mp4.seg-{owner_tag()}-run-seg0001.mp4"
    assert all(not is_orphan(p.name) for p in made)  # this process owns them
    for p in made:
        p.write_bytes(b"x")
    (tmp_path / "clip.cam.mp4.partial-no-owner").write_bytes(b"x")  # not hidden: not ours
    (tmp_path / f".clip.cam.mp4.x.partial-{owner_tag()}-1").write_bytes(b"x")  # another final name
    assert temporaries_of(final) == sorted(made)
    assert temporaries_of(final, "staging") == [made[1]]
    dead = tmp_path / f".clip.cam.mp4.partial-{tag(dead_pid())}-0123"
    dead.write_bytes(b"x")
    assert remove_orphans(temporaries_of(final)) == [dead] and not dead.exists()
