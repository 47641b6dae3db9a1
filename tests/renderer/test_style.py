"""NVIDIA's v3 look table (docs/world_scenario.md: "Colours", "Lane-line patterns") and the look choice."""

from __future__ import annotations

import pytest

from scene2world.errors import RenderError
from scene2world.renderer.style import (
    BOX_EDGE_COLOR,
    BOX_EDGE_WIDTH_PX,
    BOX_GRADIENTS,
    FAR_M,
    LANE_LINE_STYLES,
    MAP_COLORS,
    MAP_LINE_WIDTH_PX,
    POLE_WIDTH_PX,
    box_palette,
    check_look,
    lane_line_style,
    traffic_light_color,
)
from scene2world.scene.model import ObjectType

pytestmark = pytest.mark.timeout(30)


def test_widths_and_far_plane() -> None:
    assert (MAP_LINE_WIDTH_PX, POLE_WIDTH_PX, BOX_EDGE_WIDTH_PX, FAR_M) == (12, 5, 4, 200)


def test_v3_map_colors() -> None:
    assert MAP_COLORS == {
        "road_boundaries": (253, 1, 232),
        "wait_lines": (108, 179, 59),
        "poles": (183, 69, 177),
        "crosswalks": (139, 93, 255),
        "road_markings": (20, 254, 185),
        "traffic_signs": (8, 2, 255),
    }
    assert BOX_EDGE_COLOR == (200, 200, 200)


def test_box_gradients_and_truck_quirk() -> None:
    assert BOX_GRADIENTS["Car"] == ((0, 46, 136), (126, 206, 255))
    assert BOX_GRADIENTS["Others"] == ((53, 26, 20), (166, 136, 125))
    assert box_palette(ObjectType.TRUCK, "nvidia") == "Others"
    assert box_palette(ObjectType.TRUCK, "fixed") == "Truck"
    for kind, palette in [("Car", "Car"), ("Pedestrian", "Pedestrian"), ("Cyclist", "Cyclist"), ("Other", "Others")]:
        assert box_palette(kind, "nvidia") == box_palette(kind, "fixed") == palette


def test_lane_line_table() -> None:
    assert len(LANE_LINE_STYLES) == 15
    s = lane_line_style("YELLOW SOLID_DASHED")
    assert (s.color, s.pattern, s.dual_pattern) == ((255, 255, 0), "dual", ("long_dashed", "solid"))
    assert lane_line_style("WHITE OTHER").thickness_multiplier == 3.0
    assert lane_line_style("YELLOW DOT_SOLID_SINGLE").pattern == "dotted_1_9"
    for unknown in ("WHITE DASHED_SINGLE", "BLUE SOLID_SINGLE", "WHITE SOLID_DOUBLE", "OTHER", ""):
        assert lane_line_style(unknown) == LANE_LINE_STYLES["OTHER"]
        assert lane_line_style(unknown).color == (181, 164, 71)


def test_traffic_light_colors() -> None:
    assert traffic_light_color("red") == (240, 50, 50)
    assert traffic_light_color("GREEN") == (130, 240, 132)
    assert traffic_light_color("yellow") == (255, 200, 0)
    assert traffic_light_color("unknown") == traffic_light_color("off") == (100, 100, 100)


def test_check_look() -> None:
    assert check_look("nvidia") == "nvidia"
    with pytest.raises(RenderError, match="'nvidia', 'fixed'"):
        check_look("pretty")
