"""build_frame / prepare_static: draw order, looks, quirks, errors (no GL needed)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from scene2world.errors import RenderError
from scene2world.renderer.frame import BATCH_LABELS, build_frame, camera_model, prepare_static
from scene2world.renderer.style import BOX_GRADIENTS, MAP_COLORS
from scene2world.scene.model import MapElements, Polygon, Polyline, Scene
from scene2world.scene.synthetic import build_s1, build_s2

pytestmark = pytest.mark.timeout(60)

CAM = "camera_front_wide_120fov"


@pytest.fixture(scope="module")
def s1() -> Scene:
    return build_s1()


def _with_map(scene: Scene, source_format: str = "synthetic", **elements) -> Scene:
    return dataclasses.replace(scene, map=MapElements(**elements), tracks=(), source_format=source_format)


def test_batches_in_nvidia_order(s1: Scene) -> None:
    batches = build_frame(s1, CAM, 0)
    assert tuple(b.label for b in batches) == BATCH_LABELS
    assert all(not b.is_empty for b in batches)
    for b in batches:
        assert b.vertices_px.dtype == np.float32 and b.faces.dtype == np.int32
        assert np.all(b.colors >= 0) and np.all(b.colors <= 1)


def test_static_line_groups(s1: Scene) -> None:
    """Width-12 group (road boundaries, wait line, lane lines) before the width-5 poles."""
    static = prepare_static(s1, "nvidia")
    widths = static.line_widths_px
    first_pole = int(np.flatnonzero(widths == 5)[0])
    assert np.all(widths[:first_pole] == 12) and np.all(widths[first_pole:] == 5)
    road = np.asarray(MAP_COLORS["road_boundaries"]) / 255
    np.testing.assert_allclose(static.line_colors[0], road)
    n_tri = len(static.triangles_world)
    assert n_tri > 12 and np.allclose(static.triangle_colors[-12:], np.asarray(MAP_COLORS["traffic_signs"]) / 255)


def test_traffic_light_state_per_frame(s1: Scene) -> None:
    red = build_frame(s1, CAM, 0)[2].colors
    green = build_frame(s1, CAM, 1)[2].colors
    assert red[:, 0].max() > red[:, 1].max()  # the +3 m light: red at frame 0
    assert green[:, 1].max() > green[:, 0].max()  # green at frame 1


def test_truck_palette_by_look(s1: Scene) -> None:
    def has_color(batch, rgb) -> bool:
        target = np.asarray(rgb) / 255
        ratio = batch.colors / np.maximum(target, 1e-6)
        return bool(np.any(np.all(np.abs(batch.colors - target * ratio[:, :1]) < 2e-3, axis=1) & (ratio[:, 0] > 0.5)))

    nvidia = build_frame(s1, CAM, 0, "nvidia")[3]
    fixed = build_frame(s1, CAM, 0, "fixed", prepare_static(s1, "fixed"))[3]
    truck_front = BOX_GRADIENTS["Truck"][0]
    assert not has_color(nvidia, truck_front)
    assert has_color(fixed, truck_front)


def test_clipgt_quirks_dual_lines_and_poles(s1: Scene) -> None:
    dual = (s1.map.lane_lines[2],)  # YELLOW SOLID_GROUP
    pole = (Polyline(np.array([[30.0, 17.0, 0.0]])),)
    rdshq = prepare_static(_with_map(s1, "rdshq", lane_lines=dual, poles=pole), "nvidia")
    clipgt = prepare_static(_with_map(s1, "clipgt", lane_lines=dual, poles=pole), "nvidia")
    fixed = prepare_static(_with_map(s1, "clipgt", lane_lines=dual, poles=pole), "fixed")
    lanes = lambda st: st.line_segments_world[st.line_widths_px == 12]  # noqa: E731
    poles = lambda st: st.line_segments_world[st.line_widths_px == 5]  # noqa: E731
    assert np.ptp(lanes(rdshq)[..., 1]) == pytest.approx(0.2, abs=1e-6)  # two copies 0.2 m apart
    assert np.ptp(lanes(clipgt)[..., 1]) == pytest.approx(0.0, abs=1e-6)  # collapsed
    assert np.ptp(lanes(fixed)[..., 1]) == pytest.approx(0.2, abs=1e-6)
    assert len(poles(rdshq)) == 0  # a one-point pole is dropped
    assert np.ptp(poles(clipgt)[..., 0]) == pytest.approx(3.0) and np.ptp(poles(clipgt)[..., 2]) == 0  # forward
    assert np.ptp(poles(fixed)[..., 2]) == pytest.approx(3.0) and np.ptp(poles(fixed)[..., 0]) == 0  # up


def test_clipgt_flat_polygon_falls_back_to_ground_plane(s1: Scene) -> None:
    flat = s1.map.crosswalks
    ground = prepare_static(_with_map(s1, "rdshq", crosswalks=flat), "nvidia").triangles_world
    clipgt = prepare_static(_with_map(s1, "clipgt", crosswalks=flat), "nvidia").triangles_world
    np.testing.assert_allclose(clipgt, ground)
    jittered = build_s2().map.crosswalks
    tilted = prepare_static(_with_map(s1, "clipgt", crosswalks=jittered), "nvidia").triangles_world
    upright = prepare_static(_with_map(s1, "rdshq", crosswalks=jittered), "nvidia").triangles_world
    assert len(tilted) != len(upright)  # triangulated in RDF x-y = FLU (−y, −z)


def test_boxes_sorted_by_track_id_faces_then_edges(s1: Scene) -> None:
    boxes = build_frame(s1, CAM, 0)[3]
    grey = np.all(np.isclose(boxes.colors[boxes.faces[:, 0]], boxes.colors[boxes.faces[:, 0], :1]), axis=1)
    # faces (coloured) and edges (grey) alternate box by box: more than one run of each
    changes = np.count_nonzero(np.diff(grey.astype(int)))
    assert changes >= 2 * 5 - 1


def test_empty_scene_and_single_point_inputs(s1: Scene) -> None:
    empty = _with_map(s1)
    batches = build_frame(empty, CAM, 0)
    assert [b.is_empty for b in batches] == [True, True, True, True]
    one = _with_map(s1, road_boundaries=(Polyline(np.array([[5.0, 2.0, 0.0]])),))
    assert build_frame(one, CAM, 0)[0].is_empty


def test_errors(s1: Scene) -> None:
    with pytest.raises(RenderError, match=r"frame 2 outside 0\.\.1"):
        build_frame(s1, CAM, 2)
    with pytest.raises(RenderError, match="no camera"):
        build_frame(s1, "camera_rear_tele_30fov", 0)
    with pytest.raises(RenderError, match="look"):
        build_frame(s1, CAM, 0, "fixed", prepare_static(s1, "nvidia"))
    with pytest.raises(RenderError, match="`look` must be one of"):
        build_frame(s1, CAM, 0, "shiny")  # type: ignore[arg-type]
    singular = dataclasses.replace(s1, world_SE3_rig=np.zeros((2, 4, 4)))
    with pytest.raises(RenderError, match="not invertible"):
        build_frame(singular, CAM, 0)


def test_camera_model_is_cached(s1: Scene) -> None:
    assert camera_model(s1, CAM) is camera_model(s1, CAM)


def test_fixed_look_clips_geometry_behind_the_camera(s1: Scene) -> None:
    ring = np.array([[-5.0, -14, 0.0], [-5.0, 14, 0.0], [10.0, 14, 0.0], [10.0, -14, 0.0], [-5.0, -14, 0.0]])
    scene = _with_map(s1, crosswalks=(Polygon(ring),))
    nvidia = build_frame(scene, CAM, 0, "nvidia")[1]
    fixed = build_frame(scene, CAM, 0, "fixed", prepare_static(scene, "fixed"))[1]
    assert nvidia.vertices_px[:, 2].min() < 0  # NVIDIA leaves near clipping to the rasteriser
    assert fixed.vertices_px[:, 2].min() >= 0.05 - 1e-6
    assert fixed.num_triangles > nvidia.num_triangles  # clipped and subdivided
