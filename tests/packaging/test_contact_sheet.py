from __future__ import annotations

import cv2
import numpy as np
import pytest
from upstream_data import CAMERAS, CLIP_A, CLIP_B, FRAMES, RED, camera_blue

from scene2world.errors import PackageError
from scene2world.inference.views import VIEWS
from scene2world.packaging.contact_sheet import (
    CELL_H_PX,
    CELL_W_PX,
    TITLE_H_PX,
    ClipViews,
    contact_sheet,
    grid_cameras,
    middle_index,
    read_frame,
    write_contact_sheet,
)

pytestmark = pytest.mark.timeout(30)


def _views(render_dir):
    return [
        ClipViews(clip, {cam: render_dir / f"{clip}/{clip}.{cam}.mp4" for cam in CAMERAS[clip]}, FRAMES[clip])
        for clip in (CLIP_B, CLIP_A)  # given out of order on purpose
    ]


def _centre(sheet, block_top, cell_index):
    row, col = divmod(cell_index, 3)
    return sheet[block_top + TITLE_H_PX + row * CELL_H_PX + 2 * CELL_H_PX // 3, col * CELL_W_PX + CELL_W_PX // 2]


def test_grid_order_middle_frame_and_missing_views(upstream, tmp_path):
    path = write_contact_sheet(tmp_path / "sheet.png", _views(upstream.render_dir))
    sheet = cv2.imread(str(path))
    block_h = TITLE_H_PX + 3 * CELL_H_PX
    assert sheet.shape == (2 * block_h, 3 * CELL_W_PX, 3)
    for block, clip in enumerate((CLIP_A, CLIP_B)):  # sorted by clip id
        top = block * block_h
        for i, view in enumerate(VIEWS):
            blue, green, red = (int(v) for v in _centre(sheet, top, i))
            if view.camera.value in CAMERAS[clip]:
                assert abs(blue - camera_blue(view.camera.value)) <= 4, (clip, view.key)
                assert abs(green - middle_index(FRAMES[clip])) <= 4, (clip, view.key)
                assert abs(red - RED[clip]) <= 4
            else:
                assert (blue, green, red) == (48, 48, 48), (clip, view.key)  # "no video" cell
        for i in (7, 8):
            assert tuple(_centre(sheet, top, i)) == (0, 0, 0)
        label_strip = sheet[top + TITLE_H_PX + 2 : top + TITLE_H_PX + 38, 2:CELL_W_PX]
        assert (label_strip > 200).any()  # label text drawn


def test_grid_cameras_extra_camera_takes_a_free_cell():
    cells = grid_cameras(["camera_front_wide_120fov", "camera_extra"])
    assert cells[:7] == [v.camera.value for v in VIEWS]
    assert cells[7:] == ["camera_extra", None]


def test_read_frame_clamps_to_last_frame_and_png_folders(upstream, tmp_path):
    video = upstream.render_dir / f"{CLIP_B}/{CLIP_B}.camera_rear_tele_30fov.mp4"
    assert abs(int(read_frame(video, 10_000)[0, 0, 1]) - (FRAMES[CLIP_B] - 1)) <= 4
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"{i:06d}.png"), np.full((4, 4, 3), i * 50, np.uint8))
    assert read_frame(tmp_path, 1)[0, 0, 0] == 50
    (tmp_path / "bad.mp4").write_bytes(b"not a video")
    with pytest.raises(PackageError, match=r"bad\.mp4"):
        read_frame(tmp_path / "bad.mp4", 0)


def test_empty_contact_sheet_is_an_error():
    with pytest.raises(PackageError, match="no clip"):
        contact_sheet([])
    assert middle_index(None) == 0 and middle_index(7) == 3
