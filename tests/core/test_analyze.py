"""Tests of the analyze stage: identity from names and prompts, recommended size."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import TypeAdapter

from placewright.analyze import ANALYZERS, Analysis, analyze
from placewright.analyze.heuristic import HEIGHT_FRACTION, MAX_FRACTION, MIN_FRACTION, name_words
from placewright.errors import InvalidInput
from placewright.settings import AnalyzeSettings

OPTIONS = AnalyzeSettings()


def _cutout(height: int, width: int, pad: int = 5) -> np.ndarray:
    """An RGBA cut-out whose visible part is ``height x width``, with transparent padding."""
    image = np.zeros((height + 2 * pad, width + 2 * pad, 4), np.uint8)
    image[pad : pad + height, pad : pad + width] = (120, 60, 30, 255)
    return image


TALL = _cutout(300, 100)  # aspect 3: the aspect rule never applies


def test_smoke() -> None:
    result = analyze(TALL, filename="olive_oil_bottle.png", prompts=[], options=OPTIONS)
    assert result.record.backend == "heuristic"
    assert result.analysis == Analysis("olive oil bottle", "bottle", 0.42, 3.0)
    assert TypeAdapter(Analysis).dump_python(result.analysis, mode="json")["category"] == "bottle"


@pytest.mark.parametrize(
    ("filename", "category", "name"),
    [
        ("olive_oil_bottle.png", "bottle", "olive oil bottle"),
        ("OliveOilBottle_final_v2.PNG", "bottle", "olive oil bottle"),
        ("/uploads/perfume-bottle.jpg", "perfume", "perfume bottle"),
        ("IMG_1234.jpg", "product", "product"),
        ("DSC00123.JPG", "product", "product"),
        ("productPhoto_redSneakers.png", "shoe", "red sneakers"),
        ("coffee_mug-3.jpeg", "cup", "coffee mug"),
        ("lip_balm_tube.webp", "tube", "lip balm tube"),
        ("cola_can_330ml.png", "can", "cola can"),
        ("gift box.png", "box", "gift box"),
        ("iPhone15Pro.png", "phone", "phone pro"),
        ("leather-handbag.png", "bag", "leather handbag"),
        ("smartwatch_black.png", "watch", "smartwatch black"),
        ("wireless_headphones.png", "headphones", "wireless headphones"),
        ("desk-lamp.png", "lamp", "desk lamp"),
        ("potted_plant.png", "plant", "potted plant"),
        ("honey.jar.png", "jar", "honey jar"),
    ],
)
def test_categories_from_names(filename: str, category: str, name: str) -> None:
    analysis = analyze(TALL, filename=filename, prompts=[], options=OPTIONS).analysis
    assert analysis.category == category
    assert analysis.name == name


@pytest.mark.parametrize(
    ("prompts", "category"),
    [
        (["a perfume bottle on a marble vanity"], "perfume"),
        (["studio shot", "running sneakers on a wooden floor"], "shoe"),
        # Scene props and verbs do not count: "plant", "can".
        (["on a table next to a green plant, you can see the sea"], "product"),
        ([], "product"),
    ],
)
def test_category_from_prompts(prompts: list[str], category: str) -> None:
    analysis = analyze(TALL, filename="IMG_0001.png", prompts=prompts, options=OPTIONS).analysis
    assert analysis.category == category


def test_name_beats_prompts() -> None:
    analysis = analyze(TALL, filename="wine_bottle.png", prompts=["a perfume ad"], options=OPTIONS).analysis
    assert analysis.category == "bottle"


@pytest.mark.parametrize("filename", ["IMG_20240101_final_v2_copy.png", "photo-product-hd.jpg", "123.png"])
def test_noise_words_dropped(filename: str) -> None:
    assert name_words(filename) == []


def test_table_in_bounds() -> None:
    assert "product" in HEIGHT_FRACTION
    assert all(MIN_FRACTION <= value <= MAX_FRACTION for value in HEIGHT_FRACTION.values())


@pytest.mark.parametrize(
    ("size_scale", "expected"),
    [(1.0, 0.42), (0.5, 0.21), (0.1, MIN_FRACTION), (3.0, MAX_FRACTION)],
)
def test_size_scale_and_clamp(size_scale: float, expected: float) -> None:
    options = AnalyzeSettings(size_scale=size_scale)
    analysis = analyze(TALL, filename="bottle.png", prompts=[], options=options).analysis
    assert analysis.size_fraction == pytest.approx(expected)


@pytest.mark.parametrize(
    ("height", "width", "expected"),
    [
        (300, 100, 0.42),  # tall: width 0.14 of the frame, table value kept
        (100, 100, 0.42),  # square: width 0.42 < 0.55, kept
        (100, 200, 0.55 * 0.5),  # wide: width would be 0.84, so height shrinks
        (100, 400, 0.55 * 0.25),  # very wide: 0.1375
        (60, 400, MIN_FRACTION),  # 0.0825, clamped at the minimum
        (30, 400, MIN_FRACTION),
    ],
)
def test_aspect_rule(height: int, width: int, expected: float) -> None:
    cutout = _cutout(height, width)
    analysis = analyze(cutout, filename="bottle.png", prompts=[], options=OPTIONS).analysis
    assert analysis.aspect == pytest.approx(height / width)
    assert analysis.size_fraction == pytest.approx(expected)
    assert analysis.size_fraction / analysis.aspect <= 0.55 + 1e-9 or analysis.size_fraction == MIN_FRACTION


def test_rgb_counts_as_opaque() -> None:
    analysis = analyze(np.zeros((200, 100, 3), np.uint8), filename="can.png", prompts=[], options=OPTIONS)
    assert analysis.analysis.aspect == pytest.approx(2.0)


@pytest.mark.parametrize(
    "cutout",
    [np.zeros((50, 50, 4), np.uint8), np.zeros((50, 50), np.uint8), "nope"],
)
def test_invalid_input(cutout) -> None:
    with pytest.raises(InvalidInput):
        analyze(cutout, filename="bottle.png", prompts=[], options=OPTIONS)


def test_registry() -> None:
    assert ANALYZERS.classical == "heuristic"
