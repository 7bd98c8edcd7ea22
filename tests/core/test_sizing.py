"""The size rule: real-world size and the surface's scale, bounded around the size fraction."""

from __future__ import annotations

import numpy as np
import pytest

from placewright.composite.place import (
    DEFAULT_SURFACE_WIDTH_CM,
    fit_size,
    place,
    surface_width_cm,
    target_height,
)
from placewright.settings import CompositeSettings
from placewright.types import Box

OPTIONS = CompositeSettings()
TABLE = Box(0, 560, 1024, 1024)  # a tabletop across the whole 1024 px frame: 1024 px ~ 120 cm


def _bottle(height: int = 300, width: int = 100) -> np.ndarray:
    image = np.zeros((height + 8, width + 8, 4), np.uint8)
    image[4:-4, 4:-4] = (40, 90, 40, 255)
    return image


@pytest.mark.parametrize(
    ("phrase", "width"),
    [
        ("table", 120.0),
        ("rustic wooden table", 120.0),
        ("Coffee  Table", 100.0),
        ("marble kitchen countertop", 150.0),
        ("bathroom counter", 150.0),
        ("floating shelf", 80.0),
        ("office desk", 120.0),
        ("nightstand", 50.0),
        ("the moon", DEFAULT_SURFACE_WIDTH_CM),
        (None, DEFAULT_SURFACE_WIDTH_CM),
    ],
)
def test_surface_width_table(phrase: str | None, width: float) -> None:
    assert surface_width_cm(phrase) == width


def test_real_height_sets_the_scale() -> None:
    # 30 cm on a 120 cm table spanning 1024 px: 30 * 1024 / 120 = 256 px (fraction height 430).
    assert target_height(1024, 0.42, OPTIONS, real_height_cm=30.0, surface_box=TABLE) == pytest.approx(256.0)
    # The same bottle on a 150 cm countertop is smaller; on an 80 cm shelf larger.
    counter = target_height(1024, 0.42, OPTIONS, real_height_cm=35.0, surface_box=TABLE, surface_phrase="countertop")
    shelf = target_height(1024, 0.42, OPTIONS, real_height_cm=35.0, surface_box=TABLE, surface_phrase="shelf")
    assert counter == pytest.approx(35 * 1024 / 150) and shelf == pytest.approx(35 * 1024 / 80)
    # A narrower visible surface means a closer view: the product grows with px per cm.
    half = Box(256, 560, 768, 1024)
    assert target_height(1024, 0.42, OPTIONS, real_height_cm=60.0, surface_box=half) == pytest.approx(60 * 512 / 120)


def test_real_height_is_bounded_around_the_fraction() -> None:
    fraction_height = 0.42 * 1024
    tiny = target_height(1024, 0.42, OPTIONS, real_height_cm=2.0, surface_box=TABLE)
    huge = target_height(1024, 0.42, OPTIONS, real_height_cm=250.0, surface_box=TABLE)
    assert tiny == pytest.approx(0.5 * fraction_height) and huge == pytest.approx(1.5 * fraction_height)
    wide = CompositeSettings(real_size_min=0.25, real_size_max=3.0)
    assert target_height(1024, 0.42, wide, real_height_cm=2.0, surface_box=TABLE) == pytest.approx(0.25 * 430.08)
    off = CompositeSettings(real_size_min=1.0, real_size_max=1.0)
    assert target_height(1024, 0.42, off, real_height_cm=30.0, surface_box=TABLE) == pytest.approx(fraction_height)


@pytest.mark.parametrize(
    ("real_height_cm", "box"),
    [(None, TABLE), (30.0, None), (0.0, TABLE), (30.0, Box(500, 560, 510, 1024))],
)
def test_without_a_usable_real_size_the_fraction_rule_holds(real_height_cm: float | None, box: Box | None) -> None:
    assert target_height(1024, 0.42, OPTIONS, real_height_cm=real_height_cm, surface_box=box) == pytest.approx(430.08)
    assert fit_size(300, 100, 1024, 1024, 700, 0.42, OPTIONS, real_height_cm=real_height_cm, surface_box=box) == (
        fit_size(300, 100, 1024, 1024, 700, 0.42, OPTIONS)
    )


def test_frame_caps_still_apply_to_a_real_size() -> None:
    # 1.5x the fraction height would reach above the frame: the top margin caps it.
    height, width = fit_size(300, 100, 1024, 1024, 500, 0.42, OPTIONS, real_height_cm=250.0, surface_box=TABLE)
    assert height == round(500 + 1 - 0.03 * 1024) and width == round(height / 3)
    # A wide product keeps its width within max_width_fraction of the frame.
    height, width = fit_size(100, 400, 1024, 1024, 900, 0.3, OPTIONS, real_height_cm=60.0, surface_box=TABLE)
    assert width <= 0.6 * 1024 + 1


def test_place_uses_the_real_size() -> None:
    plain = place(_bottle(), 1024, 1024, 800, 512, 0.42, OPTIONS)
    sized = place(_bottle(), 1024, 1024, 800, 512, 0.42, OPTIONS, real_height_cm=30.0, surface_box=TABLE)
    shelf = place(
        _bottle(), 1024, 1024, 800, 512, 0.42, OPTIONS, real_height_cm=30.0, surface_box=TABLE, surface_phrase="shelf"
    )
    assert plain.height == 430 and sized.height == 256 and shelf.height == 384
    assert sized.width == round(256 / 3) and sized.base_y == 800
    solid = np.flatnonzero((sized.alpha >= 0.5).any(axis=1))
    assert sized.y0 + solid[-1] == 800, "the base still rests on the surface line"


def test_composite_uses_the_analysis_real_height_and_the_surface_phrase() -> None:
    from placewright.analyze import Analysis
    from placewright.composite import composite
    from placewright.types import Surface

    scene = np.full((600, 800, 3), 180, np.uint8)
    cutout = np.zeros((200, 80, 4), np.uint8)
    cutout[..., :3] = (200, 40, 40)
    cutout[..., 3] = 255
    surface = Surface(line_y=450, center_x=400, box=Box(0, 380, 800, 600), backend="test")
    options = CompositeSettings()

    def height(analysis: Analysis, phrase: str = "table") -> int:
        result = composite(scene, cutout, surface=surface, analysis=analysis, options=options, surface_phrase=phrase)
        return result.product_box.height

    by_fraction = height(Analysis("bottle", "bottle", 0.40, 2.5))
    tall = height(Analysis("bottle", "bottle", 0.40, 2.5, height_cm=40.0))
    short = height(Analysis("bottle", "bottle", 0.40, 2.5, height_cm=20.0))
    assert short < by_fraction < tall, "a real size changes the product's pixel size"
    assert tall > short * 1.3
    # The same real height looks smaller on a wider kind of surface (a countertop is wider than a table).
    assert height(Analysis("bottle", "bottle", 0.40, 2.5, height_cm=30.0), "countertop") < height(
        Analysis("bottle", "bottle", 0.40, 2.5, height_cm=30.0), "table"
    )
