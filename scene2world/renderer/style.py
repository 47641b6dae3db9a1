"""NVIDIA's v3 world-scenario look as one data table (docs/world_scenario.md: "Colours", "Lane-line patterns").

Every colour, width and pattern of the look lives here; nothing else in the renderer holds a
colour literal. Colours are 0..255 RGB tuples as NVIDIA's JSON files list them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import get_args

from scene2world.config import Look
from scene2world.errors import RenderError
from scene2world.renderer.batch import FAR_CLIP_M
from scene2world.scene.model import ObjectType, TrafficLightState

LOOKS: tuple[str, ...] = get_args(Look)

RGB = tuple[int, int, int]

FAR_M = FAR_CLIP_M
"""``depth_max``: colours fade by clamp(1 − z/200, 0, 1); fragments past it are clipped (the far clip plane)."""

MAP_LINE_WIDTH_PX = 12.0
"""Lane lines, road boundaries and wait lines (lane lines × their thickness multiplier)."""

POLE_WIDTH_PX = 5.0
BOX_EDGE_WIDTH_PX = 4.0

POLYLINE_RESAMPLE_M = 0.8
"""Road boundaries, wait lines, poles and polygon outlines are resampled at this spacing."""

LANE_LINE_RESAMPLE_M = 0.05
"""Lane lines are resampled at this spacing before their dash patterns are cut."""

DUAL_OFFSET_M = 0.1
"""Each copy of a dual lane line is offset by this much to its side (0.2 m apart)."""

SINGLE_POINT_POLE_HEIGHT_M = 3.0
"""ClipGT poles given as one point become a 3 m pole (NVIDIA's ClipGT loader)."""

MAP_COLORS: dict[str, RGB] = {
    "road_boundaries": (253, 1, 232),
    "wait_lines": (108, 179, 59),
    "poles": (183, 69, 177),
    "crosswalks": (139, 93, 255),
    "road_markings": (20, 254, 185),
    "traffic_signs": (8, 2, 255),
}
"""``config_color_hdmap.json`` v3 (lane rails, intersection areas and road islands have no v3 colour: not drawn)."""

TRAFFIC_LIGHT_COLORS: dict[str, RGB] = {
    TrafficLightState.RED.value: (240, 50, 50),
    TrafficLightState.YELLOW.value: (255, 200, 0),
    TrafficLightState.GREEN.value: (130, 240, 132),
    TrafficLightState.UNKNOWN.value: (100, 100, 100),
}
"""``config_color_traffic_light.json`` v2. NVIDIA has no colour for ``off`` (KeyError); we draw it as unknown."""

BOX_GRADIENTS: dict[str, tuple[RGB, RGB]] = {
    "Car": ((0, 46, 136), (126, 206, 255)),
    "Truck": ((204, 55, 0), (255, 192, 64)),
    "Pedestrian": ((148, 0, 62), (255, 124, 171)),
    "Cyclist": ((0, 80, 66), (102, 208, 198)),
    "Others": ((53, 26, 20), (166, 136, 125)),
}
"""``config_color_bbox.json`` v3: (front/heading-side colour, rear colour) per palette."""

BOX_EDGE_COLOR: RGB = (200, 200, 200)


@dataclass(frozen=True)
class LaneLineStyle:
    """How one lane-line type is drawn: colour, pattern (or two patterns for ``dual``), width factor."""

    color: RGB
    pattern: str
    thickness_multiplier: float = 1.0
    dual_pattern: tuple[str, str] | None = None


_WHITE: RGB = (255, 255, 255)
_YELLOW: RGB = (255, 255, 0)

LANE_LINE_STYLES: dict[str, LaneLineStyle] = {
    "WHITE SOLID_SINGLE": LaneLineStyle(_WHITE, "solid"),
    "WHITE LONG_DASHED_SINGLE": LaneLineStyle(_WHITE, "long_dashed"),
    "WHITE SHORT_DASHED_SINGLE": LaneLineStyle(_WHITE, "short_dashed"),
    "WHITE DOT_DASHED_SINGLE": LaneLineStyle(_WHITE, "dot_dashed"),
    "WHITE OTHER": LaneLineStyle(_WHITE, "solid", 3.0),
    "WHITE SOLID_GROUP": LaneLineStyle(_WHITE, "dual", 1.0, ("solid", "solid")),
    "YELLOW DOT_SOLID_SINGLE": LaneLineStyle(_YELLOW, "dotted_1_9"),
    "YELLOW DOT_SOLID_GROUP": LaneLineStyle(_YELLOW, "dual", 1.0, ("dotted_1_9", "dotted_1_9")),
    "YELLOW DASHED_SOLID": LaneLineStyle(_YELLOW, "dual", 1.0, ("solid", "long_dashed")),
    "YELLOW SOLID_DASHED": LaneLineStyle(_YELLOW, "dual", 1.0, ("long_dashed", "solid")),
    "YELLOW SOLID_SINGLE": LaneLineStyle(_YELLOW, "solid"),
    "YELLOW SOLID_GROUP": LaneLineStyle(_YELLOW, "dual", 1.0, ("solid", "solid")),
    "YELLOW LONG_DASHED_SINGLE": LaneLineStyle(_YELLOW, "long_dashed"),
    "YELLOW OTHER": LaneLineStyle(_YELLOW, "solid", 3.0),
    "OTHER": LaneLineStyle((181, 164, 71), "solid"),
}
"""``config_color_geometry_laneline.json``; dual patterns are (left copy, right copy)."""

PATTERNS: tuple[str, ...] = ("solid", "long_dashed", "short_dashed", "dot_dashed", "dotted_1_9")

LONG_DASH_ON_M, LONG_DASH_OFF_M = 3.0, 9.0
SHORT_DASH_ON_M, SHORT_DASH_OFF_M = 1.5, 1.5
DOT_DASH_RUN_FT, DOT_DASH_GAP_FT = 3, 9
"""Dot-dash: dots (every 3rd 0.05 m segment) over int(3 ft / 0.05 m) segments, then int(9 ft / 0.05 m) skipped."""
DOTTED_EVERY = 10
"""dotted_1_9: every 10th 0.05 m segment."""


def lane_line_style(lane_type: str) -> LaneLineStyle:
    """The style of NVIDIA lane type ``"<COLOR> <STYLE>"``; unknown types use ``OTHER`` (olive, solid)."""
    return LANE_LINE_STYLES.get(lane_type, LANE_LINE_STYLES["OTHER"])


_NVIDIA_PALETTE: dict[ObjectType, str] = {
    ObjectType.CAR: "Car",
    ObjectType.PEDESTRIAN: "Pedestrian",
    ObjectType.CYCLIST: "Cyclist",
    ObjectType.TRUCK: "Others",  # NVIDIA's _simplify_object_type has no "Truck" entry (quirk)
    ObjectType.OTHER: "Others",
}


def box_palette(object_type: ObjectType | str, look: Look) -> str:
    """The :data:`BOX_GRADIENTS` key of an object type: ``nvidia`` draws Truck with Others' colours."""
    object_type = ObjectType(object_type)
    if look == "fixed" and object_type is ObjectType.TRUCK:
        return "Truck"
    return _NVIDIA_PALETTE[object_type]


def traffic_light_color(state: str) -> RGB:
    """Colour of a light state; ``off`` and unrecognised states are drawn as ``unknown``."""
    return TRAFFIC_LIGHT_COLORS.get(str(state).lower(), TRAFFIC_LIGHT_COLORS[TrafficLightState.UNKNOWN.value])


def check_look(look: str) -> Look:
    """``look`` if it is one of :data:`LOOKS`, else a RenderError."""
    if look not in LOOKS:
        raise RenderError(f"`look` must be one of {list(LOOKS)}, got {look!r}")
    return look  # type: ignore[return-value]
