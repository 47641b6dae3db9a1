"""Find clips on disk: which format a folder holds, and every clip under a folder tree.

Detection follows NVIDIA's loader registry (rendering reference §1.1), RDS-HQ checked first:

- RDS-HQ: a folder with ≥ 1 of the sub-folders ``pose``/``vehicle_pose`` and ≥ 1 of
  ``all_object_info``, ``3d_lanelines``, ``3d_lanes``, ``3d_road_boundaries``,
  ``ftheta_intrinsic``. Its clips are the tar stems in ``pose/`` and ``vehicle_pose/``.
- ClipGT: a folder holding ``<id>.calibration_estimate.parquet`` with an
  ``<id>.egomotion_estimate.parquet`` sibling; every such ``<id>`` is a clip.

:func:`discover_clips` walks the tree (sorted, hidden folders skipped) and does not descend into
an RDS-HQ clip folder (its sub-folders are attributes, not clips).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from scene2world.errors import SceneError
from scene2world.scene.clipgt import clipgt_clip_id
from scene2world.scene.rdshq import POSE_FOLDERS, SIGNAL_FOLDERS

__all__ = ["ClipFormat", "ClipRef", "clip_ids", "detect_format", "discover_clips"]

ClipFormat = Literal["clipgt", "rdshq"]

_CALIB = ".calibration_estimate.parquet"


@dataclass(frozen=True)
class ClipRef:
    """One clip found on disk: its id, format and the folder holding it."""

    clip_id: str
    format: ClipFormat
    path: Path


def _is_rdshq(folder: Path) -> bool:
    return any((folder / d).is_dir() for d in POSE_FOLDERS) and any((folder / d).is_dir() for d in SIGNAL_FOLDERS)


def detect_format(folder: str | Path) -> ClipFormat | None:
    """``"rdshq"``, ``"clipgt"`` or None for a folder, by NVIDIA's ``can_load`` rules (RDS-HQ first)."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    if _is_rdshq(folder):
        return "rdshq"
    if clipgt_clip_id(folder) is not None:
        return "clipgt"
    return None


def clip_ids(folder: str | Path, fmt: ClipFormat) -> list[str]:
    """Every clip id of format ``fmt`` directly in ``folder`` (sorted)."""
    folder = Path(folder)
    if fmt == "rdshq":
        return sorted({p.stem for d in POSE_FOLDERS if (folder / d).is_dir() for p in (folder / d).glob("*.tar")})
    ids = []
    for calib in sorted(folder.glob(f"*{_CALIB}")):
        clip_id = calib.name[: -len(_CALIB)]
        if (folder / f"{clip_id}.egomotion_estimate.parquet").is_file():
            ids.append(clip_id)
    return ids


def discover_clips(root: str | Path) -> list[ClipRef]:
    """Every ClipGT bundle and RDS-HQ clip under ``root`` (root included), sorted by path then id.

    Raises:
        SceneError: when ``root`` is not a folder.
    """
    root = Path(root)
    if not root.is_dir():
        raise SceneError(f"{root}: not a folder; cannot look for clips in it")
    found: list[ClipRef] = []
    for dirpath, dirnames, _ in os.walk(root):
        folder = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        if _is_rdshq(folder):
            found += [ClipRef(c, "rdshq", folder) for c in clip_ids(folder, "rdshq")]
            dirnames[:] = []
            continue
        found += [ClipRef(c, "clipgt", folder) for c in clip_ids(folder, "clipgt")]
    return sorted(found, key=lambda r: (str(r.path), r.clip_id))
