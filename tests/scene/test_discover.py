from __future__ import annotations

from pathlib import Path

import pytest

from scene2world.errors import SceneError
from scene2world.scene.clipgt_writer import write_clipgt
from scene2world.scene.discover import ClipRef, clip_ids, detect_format, discover_clips
from scene2world.scene.rdshq_writer import write_rdshq

from .helpers import RDSHQ_CLIP, small_scene

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tree")
    write_clipgt(small_scene("clip_b"), root / "gt")
    write_clipgt(small_scene("clip_a"), root / "gt")  # two bundles in one folder
    write_clipgt(small_scene("nested"), root / "gt" / "deeper" / "nested")
    write_rdshq(small_scene("rds_1"), root / "rds")
    write_rdshq(small_scene("rds_0"), root / "rds")  # two RDS-HQ clips share the attribute folders
    write_clipgt(small_scene("hidden"), root / ".cache" / "hidden")
    (root / "empty").mkdir()
    return root


def test_detect_format(tree):
    assert detect_format(tree / "gt") == "clipgt"
    assert detect_format(tree / "rds") == "rdshq"
    assert detect_format(tree / "empty") is None
    assert detect_format(tree / "missing") is None
    assert detect_format(tree) is None


def test_rdshq_checked_first(tree, tmp_path):
    write_rdshq(small_scene("both"), tmp_path)
    write_clipgt(small_scene("both"), tmp_path)
    assert detect_format(tmp_path) == "rdshq"


def test_rdshq_needs_a_pose_folder_and_a_signal_folder(tmp_path):
    (tmp_path / "vehicle_pose").mkdir()
    assert detect_format(tmp_path) is None
    (tmp_path / "3d_lanes").mkdir()
    assert detect_format(tmp_path) == "rdshq"


def test_discover_clips(tree):
    refs = discover_clips(tree)
    assert refs == [
        ClipRef("clip_a", "clipgt", tree / "gt"),
        ClipRef("clip_b", "clipgt", tree / "gt"),
        ClipRef("nested", "clipgt", tree / "gt" / "deeper" / "nested"),
        ClipRef("rds_0", "rdshq", tree / "rds"),
        ClipRef("rds_1", "rdshq", tree / "rds"),
    ]
    assert clip_ids(tree / "rds", "rdshq") == ["rds_0", "rds_1"]
    assert discover_clips(tree / "empty") == []


def test_discover_real_rdshq_clip():
    if not RDSHQ_CLIP.is_dir():
        pytest.skip("real clip not available")
    (ref,) = discover_clips(RDSHQ_CLIP.parent)
    assert ref.format == "rdshq" and ref.path == RDSHQ_CLIP and ref.clip_id.startswith("2d23a1f4")


def test_discover_bad_root(tmp_path):
    with pytest.raises(SceneError, match="not a folder"):
        discover_clips(tmp_path / "nope")
