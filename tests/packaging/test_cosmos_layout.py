from __future__ import annotations

import os

import cv2
import pytest
from upstream_data import CAMERAS, CLIP_A, CLIP_B, INFO, camera_blue

from scene2world.config import PackageConfig
from scene2world.errors import PackageError
from scene2world.packaging.cosmos_layout import Chunk, chunk_path, chunk_ranges, count_frames
from scene2world.packaging.run_folder import package_run

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize(
    ("frames", "starts"),
    [
        (0, []),
        (120, []),
        (121, [0]),
        (241, [0]),
        (242, [0, 121]),
        (250, [0, 121]),
        (121 * 12, list(range(0, 1210, 121))),
    ],
)
def test_chunk_ranges_whole_chunks_only_at_most_ten(frames, starts):
    chunks = chunk_ranges(frames)
    assert [c.start for c in chunks] == starts
    assert all(c.num_frames == 121 and c.end == c.start + 121 for c in chunks)
    assert [c.index for c in chunks] == list(range(len(starts)))


def test_chunk_ranges_with_overlap_and_errors():
    assert chunk_ranges(10, chunk_frames=4, overlap=1, max_chunks=10) == [
        Chunk(0, 0, 4),
        Chunk(1, 3, 7),
        Chunk(2, 6, 10),
    ]
    with pytest.raises(PackageError, match="overlap < chunk_frames"):
        chunk_ranges(10, chunk_frames=4, overlap=4)


def test_chunk_path():
    assert chunk_path(__import__("pathlib").Path("/r"), "c", "camera_rear_tele_30fov", 3).as_posix() == (
        "/r/control_input_hdmap_bbox/ftheta_camera_rear_tele_30fov/c_3.mp4"
    )


@pytest.fixture(scope="module")
def layout_run(upstream, tmp_path_factory):
    run = tmp_path_factory.mktemp("layout") / "run"
    m = package_run(
        upstream.render_dir, upstream.infer_dir, run, PackageConfig(archive="none", cosmos_layout=True), INFO
    )
    return run, m


def test_chunk_counts_and_frames(layout_run):
    run, m = layout_run
    root = run / "cosmos_layout" / "control_input_hdmap_bbox"
    found = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.mp4"))
    expected = sorted(
        [f"ftheta_{cam}/{CLIP_A}_{k}.mp4" for cam in CAMERAS[CLIP_A] for k in (0, 1)]
        + [f"ftheta_{cam}/{CLIP_B}_0.mp4" for cam in CAMERAS[CLIP_B]]
    )
    assert found == expected
    assert m.data["cosmos_layout"]["clips"] == {
        CLIP_A: {"chunks": 2, "left_out_frames": 8},
        CLIP_B: {"chunks": 1, "left_out_frames": 0},
    }
    assert {count_frames(root / rel) for rel in found} == {121}
    listed = {r.path for r in m.files}
    assert all(f"cosmos_layout/control_input_hdmap_bbox/{rel}" in listed for rel in found)


def test_chunks_start_at_the_right_frame(layout_run):
    run, _ = layout_run
    cam = "camera_rear_left_70fov"
    cap = cv2.VideoCapture(str(run / f"cosmos_layout/control_input_hdmap_bbox/ftheta_{cam}/{CLIP_A}_1.mp4"))
    ok, first = cap.read()
    cap.release()
    assert ok
    blue, green, _red = (int(v) for v in first[18, 32])
    assert abs(green - 121) <= 3 and abs(blue - camera_blue(cam)) <= 3


def test_whole_video_chunk_is_linked_not_reencoded(layout_run):
    run, _ = layout_run
    cam = "camera_front_wide_120fov"
    assert os.path.samefile(
        run / f"cosmos_layout/control_input_hdmap_bbox/ftheta_{cam}/{CLIP_B}_0.mp4",
        run / f"controls/{CLIP_B}/{CLIP_B}.{cam}.mp4",
    )


def test_video_shorter_than_its_manifest_is_refused(tmp_path):
    from upstream_data import make_render

    from scene2world.manifest import read_manifest

    render = make_render(tmp_path / "render")
    m = read_manifest(render)
    m.data["clips"][CLIP_A]["num_frames"] = 400  # the videos hold 250
    (render / "manifest.json").write_text(m.model_dump_json())
    with pytest.raises(PackageError, match="chunk 2 has 8 frames instead of 121"):
        package_run(render, None, tmp_path / "runs" / "run", PackageConfig(archive="none", cosmos_layout=True), INFO)
    # nothing published or staged; only the failed attempt's logs are kept aside (docs/caching.md)
    assert [p.name for p in (tmp_path / "runs").iterdir()] in ([], ["failed"])
