"""Category tables: object categories -> :class:`ObjectType`, and the lane-line type rule.

- ClipGT obstacle categories use NVIDIA's loader table (docs/world_scenario.md, "ClipGT tables"), matched
  lower-cased and stripped; anything else is ``Other``.
- RDS-HQ ``object_type`` strings (Cosmos-Drive-Dreams names such as ``Automobile``,
  ``Heavy_truck``, ``Person``, ``Rider``; docs/world_scenario.md, "RDS-HQ clips") are matched
  lower-cased against the same table,
  extended with the RDS-HQ-only names; our own :class:`ObjectType` values (``Car``, ``Truck``…)
  map to themselves, so a scene written by our RDS-HQ writer reads back unchanged.
- Lane-line type (docs/world_scenario.md, "ClipGT tables"): each vertex's colour and style are
  mapped to NVIDIA's enums (upper-cased;
  unknown strings -> ``UNKNOWN``); the polyline takes the most common (colour, style) pair, ties
  going to the pair seen first; the result is ``"<COLOR> <STYLE>"``, or ``"OTHER"`` when either part
  is ``UNKNOWN`` (NVIDIA draws every unknown type as the olive ``OTHER`` line; ``VIRTUAL`` is not
  a known style, so it becomes ``OTHER`` too). Both lists empty -> ``"WHITE SOLID_SINGLE"``; one
  list empty -> that part takes its default (``WHITE`` / ``SOLID_SINGLE``); a one-entry list
  applies to every vertex; otherwise the lists are paired up to the shorter one.
  Known style/colour combinations the v3 palette lacks (e.g. ``WHITE DASHED_SINGLE``) are kept
  as they are: the renderer decides how to draw them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from scene2world.scene.model import ObjectType

__all__ = [
    "CLIPGT_CATEGORIES",
    "DEFAULT_LANE_TYPE",
    "LANE_COLORS",
    "LANE_STYLES",
    "OTHER_LANE_TYPE",
    "RDSHQ_CATEGORIES",
    "clipgt_category_for",
    "lane_line_type",
    "object_type_from_category",
    "rdshq_type_from_category",
    "split_lane_type",
]

CLIPGT_CATEGORIES: dict[str, ObjectType] = {
    "automobile": ObjectType.CAR,
    "other_vehicle": ObjectType.CAR,
    "vehicle": ObjectType.CAR,
    "car": ObjectType.CAR,
    "pedestrian": ObjectType.PEDESTRIAN,
    "person": ObjectType.PEDESTRIAN,
    "bicycle": ObjectType.CYCLIST,
    "cyclist": ObjectType.CYCLIST,
    "motorcycle": ObjectType.CYCLIST,
    "rider": ObjectType.CYCLIST,
    "bus": ObjectType.TRUCK,
    "truck": ObjectType.TRUCK,
    "heavy_truck": ObjectType.TRUCK,
    "train_or_tram_car": ObjectType.TRUCK,
    "trolley_bus": ObjectType.TRUCK,
    "trailer": ObjectType.TRUCK,
}
"""NVIDIA ClipGT loader table (lower-case keys); any other category is ``Other``."""

RDSHQ_CATEGORIES: dict[str, ObjectType] = {
    **CLIPGT_CATEGORIES,
    "stroller": ObjectType.OTHER,
    "animal": ObjectType.OTHER,
    "protruding_object": ObjectType.OTHER,
    "other": ObjectType.OTHER,
}
"""RDS-HQ ``object_type`` names (lower-cased); any other is ``Other``."""

CLIPGT_CATEGORY_FOR_TYPE: dict[ObjectType, str] = {
    ObjectType.CAR: "automobile",
    ObjectType.PEDESTRIAN: "person",
    ObjectType.CYCLIST: "rider",
    ObjectType.TRUCK: "heavy_truck",
    ObjectType.OTHER: "other",
}
"""The category our ClipGT writer emits for each type (the doc's typical names)."""

LANE_COLORS: frozenset[str] = frozenset({"WHITE", "YELLOW", "BLUE"})
LANE_STYLES: frozenset[str] = frozenset(
    {
        "SOLID_SINGLE",
        "DASHED_SINGLE",
        "SOLID_DOUBLE",
        "DASHED_DOUBLE",
        "SOLID_DASHED",
        "DASHED_SOLID",
        "LONG_DASHED_SINGLE",
        "LONG_DASHED_GROUP",
        "SHORT_DASHED_SINGLE",
        "DOT_DASHED_SINGLE",
        "DOT_DASHED_GROUP",
        "SOLID_GROUP",
        "DOT_SOLID_SINGLE",
        "DOT_SOLID_GROUP",
    }
)
"""NVIDIA's known lane-line colours and styles (besides ``UNKNOWN``)."""

DEFAULT_LANE_TYPE = "WHITE SOLID_SINGLE"
OTHER_LANE_TYPE = "OTHER"
_UNKNOWN = "UNKNOWN"


def object_type_from_category(category: str | None) -> ObjectType:
    """ClipGT obstacle category -> object type (case-insensitive, unknown -> ``Other``)."""
    return CLIPGT_CATEGORIES.get(str(category or "").strip().lower(), ObjectType.OTHER)


def rdshq_type_from_category(category: str | None) -> ObjectType:
    """RDS-HQ ``object_type`` -> object type (case-insensitive, unknown -> ``Other``)."""
    return RDSHQ_CATEGORIES.get(str(category or "").strip().lower(), ObjectType.OTHER)


def clipgt_category_for(object_type: ObjectType | str) -> str:
    """The ClipGT category string our writer uses for ``object_type``."""
    return CLIPGT_CATEGORY_FOR_TYPE[ObjectType(object_type)]


def _norm(value: object, known: frozenset[str]) -> str:
    text = str(value).strip().upper() if value is not None else ""
    return text if text in known else _UNKNOWN


def lane_line_type(colors: Sequence[str | None], styles: Sequence[str | None]) -> str:
    """NVIDIA lane type of a polyline from its per-vertex colour and style lists (see module doc)."""
    colors, styles = list(colors), list(styles)
    if not colors and not styles:
        return DEFAULT_LANE_TYPE
    if not colors:
        colors = ["WHITE"]
    if not styles:
        styles = ["SOLID_SINGLE"]
    n = max(len(colors), len(styles)) if 1 in (len(colors), len(styles)) else min(len(colors), len(styles))
    if len(colors) == 1:
        colors = colors * n
    if len(styles) == 1:
        styles = styles * n
    pairs = Counter(zip((_norm(c, LANE_COLORS) for c in colors[:n]), (_norm(s, LANE_STYLES) for s in styles[:n])))
    color, style = pairs.most_common(1)[0][0]
    if _UNKNOWN in (color, style):
        return OTHER_LANE_TYPE
    return f"{color} {style}"


def split_lane_type(lane_type: str) -> tuple[str, str]:
    """(colour, style) strings of a lane type; ``"OTHER"`` -> ``("UNKNOWN", "UNKNOWN")``.

    This is what the writers store per vertex; :func:`lane_line_type` maps it back.
    """
    parts = lane_type.strip().split()
    if len(parts) != 2 or parts[0] not in LANE_COLORS or parts[1] not in LANE_STYLES:
        return _UNKNOWN, _UNKNOWN
    return parts[0], parts[1]
