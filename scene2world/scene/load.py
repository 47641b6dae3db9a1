"""``load_scene``: one entry point for every scene format.

``path`` may be a clip folder (format detected, RDS-HQ first), a ClipGT parquet file of the
clip, a :class:`ClipRef`, or a folder tree holding exactly one clip (or the one named by
``clip_id``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from scene2world.errors import SceneError
from scene2world.scene.clipgt import load_clipgt
from scene2world.scene.discover import ClipRef, detect_format, discover_clips
from scene2world.scene.model import Scene
from scene2world.scene.rdshq import load_rdshq

__all__ = ["load_scene"]


def _load(ref: ClipRef, cameras: Sequence[str] | None) -> Scene:
    if ref.format == "rdshq":
        return load_rdshq(ref.path, ref.clip_id, cameras)
    return load_clipgt(ref.path, ref.clip_id, cameras)


def load_scene(path: str | Path | ClipRef, clip_id: str | None = None, cameras: Sequence[str] | None = None) -> Scene:
    """Load one clip as a :class:`Scene`.

    Args:
        path: clip folder, ClipGT ``<clip_id>.<table>.parquet`` file, :class:`ClipRef`, or a folder
            tree holding the clip.
        clip_id: which clip when the folder holds several (default: NVIDIA's rule for a clip
            folder; the only clip for a tree).
        cameras: camera names to load (underscore or colon form); all rig cameras by default.

    Raises:
        SceneError: no clip found, several clips and no ``clip_id``, unknown ``clip_id``, a
            requested camera missing from the rig, or any loader error.
    """
    if isinstance(path, ClipRef):
        return _load(path if clip_id is None else ClipRef(clip_id, path.format, path.path), cameras)
    path = Path(path)
    if path.is_file() and path.name.endswith(".parquet"):
        stem = path.name[: -len(".parquet")]
        return load_clipgt(path.parent, clip_id or stem.rsplit(".", 1)[0], cameras)
    if not path.exists():
        raise SceneError(f"{path}: no such file or folder")
    fmt = detect_format(path)
    if fmt is not None:
        return load_clipgt(path, clip_id, cameras) if fmt == "clipgt" else load_rdshq(path, clip_id, cameras)
    refs = discover_clips(path)
    if clip_id is not None:
        refs = [r for r in refs if r.clip_id == clip_id]
    if len(refs) == 1:
        return _load(refs[0], cameras)
    if not refs:
        what = f"clip {clip_id!r}" if clip_id else "ClipGT or RDS-HQ clip"
        raise SceneError(f"{path}: no {what} found in this folder tree")
    listing = ", ".join(f"{r.clip_id} ({r.format}, {r.path})" for r in refs[:10])
    raise SceneError(f"{path}: {len(refs)} clips found, pass clip_id to choose one: {listing}")
