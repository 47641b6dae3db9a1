from __future__ import annotations

import pytest

from scene2world.scene.categories import (
    CLIPGT_CATEGORIES,
    clipgt_category_for,
    lane_line_type,
    object_type_from_category,
    rdshq_type_from_category,
    split_lane_type,
)
from scene2world.scene.model import ObjectType

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize(
    ("category", "expected"),
    [
        ("automobile", ObjectType.CAR),
        ("Other_Vehicle", ObjectType.CAR),
        (" CAR ", ObjectType.CAR),
        ("person", ObjectType.PEDESTRIAN),
        ("rider", ObjectType.CYCLIST),
        ("motorcycle", ObjectType.CYCLIST),
        ("bus", ObjectType.TRUCK),
        ("trailer", ObjectType.TRUCK),
        ("train_or_tram_car", ObjectType.TRUCK),
        ("stroller", ObjectType.OTHER),
        ("animal", ObjectType.OTHER),
        ("", ObjectType.OTHER),
        (None, ObjectType.OTHER),
    ],
)
def test_clipgt_categories(category, expected):
    assert object_type_from_category(category) is expected


@pytest.mark.parametrize(
    ("category", "expected"),
    [
        ("Automobile", ObjectType.CAR),
        ("Heavy_truck", ObjectType.TRUCK),
        ("Trolley_bus", ObjectType.TRUCK),
        ("Person", ObjectType.PEDESTRIAN),
        ("Rider", ObjectType.CYCLIST),
        ("Protruding_object", ObjectType.OTHER),
        ("Car", ObjectType.CAR),
        ("Cyclist", ObjectType.CYCLIST),
        ("Other", ObjectType.OTHER),
    ],
)
def test_rdshq_categories(category, expected):
    assert rdshq_type_from_category(category) is expected


def test_writer_category_reads_back():
    for t in ObjectType:
        assert object_type_from_category(clipgt_category_for(t)) is t
        assert rdshq_type_from_category(t.value) is t
    assert len(CLIPGT_CATEGORIES) == 16


@pytest.mark.parametrize(
    ("colors", "styles", "expected"),
    [
        ([], [], "WHITE SOLID_SINGLE"),
        (["WHITE"] * 3, ["SOLID_SINGLE"] * 3, "WHITE SOLID_SINGLE"),
        (["YELLOW", "YELLOW", "WHITE"], ["SOLID_GROUP", "SOLID_GROUP", "DASHED_SINGLE"], "YELLOW SOLID_GROUP"),
        (["WHITE", "YELLOW", "YELLOW"], ["LONG_DASHED_SINGLE", "SOLID_SINGLE", "SOLID_SINGLE"], "YELLOW SOLID_SINGLE"),
        (["white", "white"], ["short_dashed_single", "short_dashed_single"], "WHITE SHORT_DASHED_SINGLE"),
        (["WHITE", "YELLOW"], ["SOLID_SINGLE", "DASHED_SINGLE"], "WHITE SOLID_SINGLE"),  # tie -> first seen
        (["WHITE"] * 2, ["VIRTUAL"] * 2, "OTHER"),  # VIRTUAL is not a known style
        (["PINK"] * 2, ["SOLID_SINGLE"] * 2, "OTHER"),
        (["UNKNOWN"], ["UNKNOWN"], "OTHER"),
        (["WHITE"] * 2, ["DASHED_SINGLE"] * 2, "WHITE DASHED_SINGLE"),  # known, not in the v3 palette: kept
        (["YELLOW"], ["SOLID_SINGLE", "SOLID_SINGLE", "DASHED_SINGLE"], "YELLOW SOLID_SINGLE"),  # one colour for all
        ([], ["LONG_DASHED_SINGLE"], "WHITE LONG_DASHED_SINGLE"),
        (["YELLOW"], [], "YELLOW SOLID_SINGLE"),
        ([None, None], ["SOLID_SINGLE", "SOLID_SINGLE"], "OTHER"),
    ],
)
def test_lane_line_type_rule(colors, styles, expected):
    assert lane_line_type(colors, styles) == expected


@pytest.mark.parametrize("lane_type", ["WHITE SOLID_SINGLE", "YELLOW SOLID_GROUP", "BLUE DOT_DASHED_GROUP", "OTHER"])
def test_split_lane_type_reads_back(lane_type):
    color, style = split_lane_type(lane_type)
    assert lane_line_type([color] * 3, [style] * 3) == lane_type


def test_split_unknown_type():
    assert split_lane_type("WHITE WIGGLY") == ("UNKNOWN", "UNKNOWN")
