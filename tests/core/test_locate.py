"""Locate stage: the surface the product stands on."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from placewright.errors import InvalidInput
from placewright.locate import LOCATORS, locate
from placewright.scene import generate_scene
from placewright.settings import LocateSettings, SceneSettings
from placewright.types import Box, Size, Surface

OPTIONS = LocateSettings()


def _photo(width: int, height: int, edge: int, seed: int = 0, front: int | None = None) -> np.ndarray:
    """A photo-like table scene whose tabletop starts at row ``edge``.

    A lit, slightly mottled wall with a picture and a shelf box on it; a brown tabletop
    with grain running towards the viewer; a vase standing on the table across the edge;
    camera noise. With ``front``, a dark floor below the table's front edge at that row.
    """
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    image = np.empty((height, width, 3), np.float32)
    light = 1.0 - 0.25 * (((xs - width / 2) / width) ** 2 + ((ys - edge / 2) / height) ** 2)
    mottle = cv2.resize(rng.normal(0, 6, (8, 8)).astype(np.float32), (width, height), interpolation=cv2.INTER_CUBIC)
    wall = np.array([205, 196, 184], np.float32)
    image[:] = wall * light[..., None] + mottle[..., None]
    grain = 12 * np.sin(xs / width * 90 + 3 * np.sin(ys / 37.0)) + 6 * np.sin(xs / width * 230)
    table = np.array([140, 96, 62], np.float32)
    image[edge:] = (table + grain[edge:, :, None]) * light[edge:, :, None]
    if front is not None:
        image[front:] = np.array([60, 58, 56], np.float32)
    # A framed picture high on the wall and a small box on a shelf: short horizontal edges.
    image[int(0.12 * height) : int(0.3 * height), int(0.6 * width) : int(0.8 * width)] = (90, 110, 140)
    image[int(0.4 * height) : int(0.46 * height), int(0.7 * width) : int(0.82 * width)] = (150, 150, 160)
    # A vase standing on the table, crossing the edge: strong vertical clutter.
    vx0, vx1 = int(0.15 * width), int(0.26 * width)
    image[int(0.3 * height) : edge + int(0.06 * height), vx0:vx1] = (40, 70, 110)
    image += rng.normal(0, 5, image.shape).astype(np.float32)
    return np.clip(image, 0, 255).astype(np.uint8)


def test_smoke() -> None:
    result = locate(_photo(640, 480, 280), phrase="table", known=None, options=OPTIONS)
    assert result.record.backend == "horizontal-edge"
    assert result.surface.backend == "horizontal-edge"
    assert LOCATORS.classical == "classical"


@pytest.mark.parametrize(
    ("width", "height", "edge_fraction"),
    [(640, 480, 0.58), (1024, 1024, 0.6), (1280, 720, 0.5), (512, 768, 0.66), (800, 600, 0.42)],
)
@pytest.mark.parametrize("seed", [0, 1])
def test_finds_table_edge(width: int, height: int, edge_fraction: float, seed: int) -> None:
    edge = round(edge_fraction * height)
    scene = _photo(width, height, edge, seed)
    before = scene.copy()
    surface = locate(scene, phrase="table", known=None, options=OPTIONS).surface
    assert np.array_equal(scene, before)
    assert surface.backend == "horizontal-edge"
    assert surface.box is not None
    assert abs(surface.box.y0 - edge) <= 3
    assert surface.box.y1 == height
    assert surface.box.width >= 0.5 * width
    assert edge < surface.line_y < height
    expected = edge + OPTIONS.line_offset * (height - edge)
    assert abs(surface.line_y - expected) <= 4
    assert 0.5 < surface.confidence <= 1.0


def test_topmost_edge_wins_and_line_stays_on_the_table() -> None:
    height, edge, front = 800, 440, 700
    surface = locate(_photo(800, height, edge, front=front), phrase="table", known=None, options=OPTIONS).surface
    assert abs(surface.box.y0 - edge) <= 3
    assert abs(surface.box.y1 - front) <= 3
    assert edge < surface.line_y < front


def test_rgba_scene() -> None:
    scene = _photo(640, 480, 300)
    rgba = np.dstack([scene, np.full(scene.shape[:2], 255, np.uint8)])
    surface = locate(rgba, phrase="table", known=None, options=OPTIONS).surface
    assert abs(surface.box.y0 - 300) <= 3


@pytest.mark.parametrize(
    "scene",
    [
        np.random.default_rng(0).integers(0, 256, (600, 800, 3), dtype=np.uint8),
        np.full((480, 640, 3), 128, np.uint8),
        np.clip(np.random.default_rng(1).normal(128, 20, (512, 512, 3)), 0, 255).astype(np.uint8),
    ],
    ids=["noise", "flat", "soft-noise"],
)
def test_band_fallback(scene: np.ndarray) -> None:
    result = locate(scene, phrase="table", known=None, options=OPTIONS)
    height, width = scene.shape[:2]
    assert result.record.backend == "band"
    surface = result.surface
    assert surface.backend == "band" and surface.box is None
    assert surface.line_y == round(height * sum(OPTIONS.band) / 2)
    assert surface.center_x == width // 2


def test_band_setting_is_used() -> None:
    options = LocateSettings(band=(0.8, 0.9))
    surface = locate(np.full((100, 200, 3), 90, np.uint8), phrase="table", known=None, options=options).surface
    assert surface.line_y == 85
    assert 0 <= surface.line_y < 100


def test_known_passes_through() -> None:
    known = Surface(line_y=400, center_x=300, box=Box(0, 350, 640, 480), backend="scene-geometry")
    result = locate(_photo(640, 480, 200), phrase="table", known=known, options=OPTIONS)
    assert result.surface == known
    assert result.record.backend == "scene-geometry"


def test_known_is_kept_inside_the_frame() -> None:
    known = Surface(line_y=999, center_x=-5, box=None, backend="scene-geometry")
    surface = locate(np.zeros((100, 120, 3), np.uint8), phrase="table", known=known, options=OPTIONS).surface
    assert surface.line_y == 99 and surface.center_x == 0


@pytest.mark.parametrize("prompt", ["wooden table", "white marble", "concrete", "pastel", "dark night", "beach"])
@pytest.mark.parametrize(("width", "height"), [(1024, 1024), (1280, 720), (768, 1024)])
def test_finds_procedural_back_edge(prompt: str, width: int, height: int) -> None:
    scene = generate_scene(prompt, size=Size(width, height), seed=11, surface="table", options=SceneSettings())
    result = locate(scene.image, phrase="table", known=None, options=OPTIONS)
    assert result.record.backend == "horizontal-edge"
    assert abs(result.surface.box.y0 - scene.surface.box.y0) <= 3
    assert abs(result.surface.line_y - scene.surface.line_y) <= 0.1 * height


def test_always_inside_the_frame() -> None:
    for seed in range(5):
        scene = np.random.default_rng(seed).integers(0, 256, (70, 90, 3), dtype=np.uint8)
        surface = locate(scene, phrase="table", known=None, options=OPTIONS).surface
        assert 0 <= surface.line_y < 70 and 0 <= surface.center_x < 90


def test_invalid_input() -> None:
    with pytest.raises(InvalidInput):
        locate(np.zeros((10, 10, 3), np.float32), phrase="table", known=None, options=OPTIONS)
    with pytest.raises(InvalidInput):
        locate(np.zeros((10, 10), np.uint8), phrase="table", known=None, options=OPTIONS)
