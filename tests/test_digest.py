from __future__ import annotations

import os
import shutil

import pytest

from scene2world.digest import tree_digest, tree_files
from scene2world.errors import DatasetError

pytestmark = pytest.mark.timeout(10)


def _make(root, files):
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


FILES = {"clip/a.parquet": b"aaa", "clip/sub/b.json": b"{}", "README": b"hi"}


def test_independent_of_location_and_creation_order(tmp_path):
    a = _make(tmp_path / "a", FILES)
    b = _make(tmp_path / "elsewhere" / "b", dict(reversed(list(FILES.items()))))
    assert tree_digest(a) == tree_digest(b)
    moved = shutil.move(str(a), str(tmp_path / "moved"))
    assert tree_digest(moved) == tree_digest(b)
    assert len(tree_digest(b)) == 64


def test_changes_with_content_name_and_membership(tmp_path):
    base = tree_digest(_make(tmp_path / "base", FILES))
    assert tree_digest(_make(tmp_path / "byte", {**FILES, "README": b"ho"})) != base
    renamed = {("clip/c.parquet" if k == "clip/a.parquet" else k): v for k, v in FILES.items()}
    assert tree_digest(_make(tmp_path / "renamed", renamed)) != base
    assert tree_digest(_make(tmp_path / "added", {**FILES, "x": b""})) != base
    empty_dir = _make(tmp_path / "emptydir", FILES)
    (empty_dir / "nothing").mkdir()
    assert tree_digest(empty_dir) == base


def test_no_ambiguity_between_path_and_content(tmp_path):
    assert tree_digest(_make(tmp_path / "a", {"ab": b"", "c": b""})) != tree_digest(
        _make(tmp_path / "b", {"a": b"", "bc": b""})
    )


def test_tree_files_sorted(tmp_path):
    root = _make(tmp_path / "r", FILES)
    assert [rel for rel, _ in tree_files(root)] == ["README", "clip/a.parquet", "clip/sub/b.json"]


def test_empty_folder_has_a_digest(tmp_path):
    (tmp_path / "e").mkdir()
    assert len(tree_digest(tmp_path / "e")) == 64


def test_symlinks_and_non_folders_are_refused(tmp_path):
    root = _make(tmp_path / "r", FILES)
    os.symlink(root / "README", root / "link")
    with pytest.raises(DatasetError, match="symbolic links"):
        tree_digest(root)
    with pytest.raises(DatasetError, match="not a folder"):
        tree_digest(tmp_path / "missing")
