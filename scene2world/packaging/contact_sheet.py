"""The contact sheet: every control view of every clip at its middle frame, labelled, in one PNG.

Each clip is one 3x3 block in Cosmos's grid order (docs/cosmos.md, "Views and cameras"; the order of
``inference.views.VIEWS``): row 1 ``front_wide, cross_right, rear_right``; row 2 ``rear, rear_left,
cross_left``; row 3 ``front_tele`` and two free cells. Cameras outside the seven views fill the free cells
and further rows. A camera without a video is a grey cell marked "no video". Clips are stacked top to
bottom in clip-id order, each under a title bar. Images are BGR uint8 (OpenCV's order).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from scene2world.errors import PackageError
from scene2world.inference.views import VIEWS
from scene2world.typing import NDArrayByte

CELL_W_PX = 320
CELL_H_PX = 180
TITLE_H_PX = 30
GRID_COLS = 3
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_WHITE = (255, 255, 255)


@dataclass(frozen=True)
class ClipViews:
    """The control views of one clip: ``cameras`` maps camera name → mp4 file or folder of PNG frames."""

    clip_id: str
    cameras: Mapping[str, Path] = field(default_factory=dict)
    num_frames: int | None = None


def middle_index(num_frames: int | None) -> int:
    """Index of the middle frame of ``num_frames`` frames (0 when unknown or empty)."""
    return max(0, int(num_frames) // 2) if num_frames else 0


def read_frame(path: Path, index: int) -> NDArrayByte:
    """Frame ``index`` of a video (or of a folder of PNG frames, in name order) as (H, W, 3) BGR uint8.

    If the video is shorter, its last frame is returned. PackageError when no frame can be read.
    """
    path = Path(path)
    if path.is_dir():
        frames = sorted(p for p in path.iterdir() if p.suffix.lower() == ".png")
        if not frames:
            raise PackageError(f"{path}: no PNG frame in this folder")
        image = cv2.imread(str(frames[min(index, len(frames) - 1)]), cv2.IMREAD_COLOR)
        if image is None:
            raise PackageError(f"{frames[min(index, len(frames) - 1)]}: not a readable PNG")
        return np.asarray(image, dtype=np.uint8)
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise PackageError(f"{path}: cannot open the video")
        frame = None
        for _ in range(index + 1):
            ok, image = cap.read()
            if not ok:
                break
            frame = image
    finally:
        cap.release()
    if frame is None:
        raise PackageError(f"{path}: no frame could be decoded")
    return np.ascontiguousarray(frame, dtype=np.uint8)


def _label(cell: NDArrayByte, lines: Sequence[str]) -> None:
    """Darken a strip at the top of ``cell`` and write ``lines`` on it, in place."""
    strip_h = 8 + 16 * len(lines)
    cell[:strip_h] = cell[:strip_h] // 3
    for i, text in enumerate(lines):
        cv2.putText(cell, text, (6, 18 + 16 * i), _FONT, 0.42, _WHITE, 1, cv2.LINE_AA)


def _cell(frame: NDArrayByte | None, lines: Sequence[str]) -> NDArrayByte:
    if frame is None:
        cell = np.full((CELL_H_PX, CELL_W_PX, 3), 48, np.uint8)
        cv2.putText(cell, "no video", (CELL_W_PX // 2 - 40, CELL_H_PX // 2 + 5), _FONT, 0.5, _WHITE, 1, cv2.LINE_AA)
    else:
        cell = np.asarray(cv2.resize(frame, (CELL_W_PX, CELL_H_PX), interpolation=cv2.INTER_AREA), dtype=np.uint8)
    _label(cell, lines)
    return cell


def grid_cameras(cameras: Sequence[str]) -> list[str | None]:
    """Cell order of one clip block: the seven views' cameras in grid order, then other cameras; None = black."""
    order: list[str | None] = [v.camera.value for v in VIEWS]
    extra = sorted(c for c in cameras if c not in order)
    order.extend(extra)
    order.extend([None] * (-len(order) % GRID_COLS))
    return order


def clip_block(clip: ClipViews) -> NDArrayByte:
    """The titled 3-column block of one clip, (TITLE_H + rows·CELL_H, 3·CELL_W, 3) BGR uint8."""
    index = middle_index(clip.num_frames)
    view_of = {v.camera.value: v.key for v in VIEWS}
    cells = []
    for camera in grid_cameras(list(clip.cameras)):
        if camera is None:
            cells.append(np.zeros((CELL_H_PX, CELL_W_PX, 3), np.uint8))
            continue
        src = clip.cameras.get(camera)
        frame = read_frame(src, index) if src is not None else None
        key = view_of.get(camera)
        cells.append(_cell(frame, [key, camera] if key else [camera]))
    rows = [np.concatenate(cells[i : i + GRID_COLS], axis=1) for i in range(0, len(cells), GRID_COLS)]
    title = np.full((TITLE_H_PX, CELL_W_PX * GRID_COLS, 3), 24, np.uint8)
    frame_text = f"frame {index}" + (f" of {clip.num_frames}" if clip.num_frames else "")
    cv2.putText(title, f"{clip.clip_id}   {frame_text}", (8, 20), _FONT, 0.5, _WHITE, 1, cv2.LINE_AA)
    return np.concatenate([title, *rows], axis=0)


def contact_sheet(clips: Sequence[ClipViews]) -> NDArrayByte:
    """All clip blocks stacked top to bottom in clip-id order, (H, 3·CELL_W, 3) BGR uint8."""
    if not clips:
        raise PackageError("contact sheet: no clip to show")
    return np.concatenate([clip_block(c) for c in sorted(clips, key=lambda c: c.clip_id)], axis=0)


def write_contact_sheet(path: Path, clips: Sequence[ClipViews]) -> Path:
    """Write :func:`contact_sheet` of ``clips`` to ``path`` as PNG and return ``path``."""
    ok, data = cv2.imencode(".png", contact_sheet(clips))
    if not ok:  # pragma: no cover - PNG encoding of a uint8 image does not fail
        raise PackageError(f"{path}: PNG encoding failed")
    Path(path).write_bytes(data.tobytes())
    return Path(path)
