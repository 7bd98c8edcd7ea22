"""Scene stage: procedural studio scenes and fitting the user's own background."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from placewright.errors import InvalidInput
from placewright.scene import SCENES, fit_background, generate_scene
from placewright.scene.palettes import KEYWORDS, PALETTES, palettes_for
from placewright.settings import SceneSettings
from placewright.types import Size

OPTIONS = SceneSettings()


def _scene(prompt: str = "a wooden table", size: Size = Size(512, 512), seed: int = 0):
    return generate_scene(prompt, size=size, seed=seed, surface="table", options=OPTIONS)


def _luma(image: np.ndarray) -> np.ndarray:
    return image.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)


def test_smoke() -> None:
    result = _scene()
    assert result.record.backend == "procedural"
    assert result.record.fallback_from is None
    assert result.surface is not None and result.surface.backend == "scene-geometry"
    assert SCENES.classical == "procedural"


@pytest.mark.parametrize(
    ("width", "height"), [(1024, 1024), (768, 1024), (1280, 720), (64, 64), (333, 517), (1000, 250)]
)
def test_shape(width: int, height: int) -> None:
    image = _scene(size=Size(width, height)).image
    assert image.shape == (height, width, 3)
    assert image.dtype == np.uint8


@pytest.mark.parametrize("prompt", ["wooden table", "white marble", "dark night", "beach at sunset"])
def test_deterministic(prompt: str) -> None:
    first, second = _scene(prompt, seed=7), _scene(prompt, seed=7)
    assert np.array_equal(first.image, second.image)
    assert first.surface == second.surface


@pytest.mark.parametrize("prompt", ["wooden table", "marble", "pastel", "something unusual"])
def test_seeds_differ(prompt: str) -> None:
    a, b = _scene(prompt, seed=1).image, _scene(prompt, seed=2).image
    assert np.abs(a.astype(np.int16) - b.astype(np.int16)).mean() > 3.0


def test_palettes_differ_in_colour() -> None:
    marble = _luma(_scene("marble").image).mean()
    night = _luma(_scene("dark night").image).mean()
    assert marble > night + 100
    pink = _scene("pink studio").image.reshape(-1, 3).mean(axis=0)
    blue = _scene("blue studio").image.reshape(-1, 3).mean(axis=0)
    assert pink[0] - pink[2] > 10 and blue[2] - blue[0] > 10
    wood = _scene("wooden table").image
    table = wood[int(0.8 * wood.shape[0]) :].reshape(-1, 3).mean(axis=0)
    assert table[0] > table[2] + 30  # a brown tabletop


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("a product on a wooden table", ("wood", "wood")),
        ("marble table", ("marble", "marble")),
        ("on a table", ("wood", "wood")),
        ("wooden table at sunset", ("wood", "warm")),
        ("Christmas morning", ("christmas", "christmas")),
        ("sandy beaches", ("sand", "sand")),
        ("qwerty zxcvb", ("neutral", "neutral")),
        ("", ("neutral", "neutral")),
    ],
)
def test_keywords(prompt: str, expected: tuple[str, str]) -> None:
    assert palettes_for(prompt) == expected


def test_palette_table_is_consistent() -> None:
    assert set(KEYWORDS.values()) <= set(PALETTES)
    for palette in PALETTES.values():
        assert palette.walls and palette.tables


@pytest.mark.parametrize(("width", "height"), [(1024, 1024), (768, 1024), (1280, 720)])
@pytest.mark.parametrize("seed", [0, 5])
def test_surface_on_the_tabletop(width: int, height: int, seed: int) -> None:
    result = _scene("marble kitchen", size=Size(width, height), seed=seed)
    surface = result.surface
    assert surface is not None and surface.box is not None
    back = surface.box.y0
    assert 0.55 * height - 1 <= back <= 0.62 * height + 1
    assert surface.box == type(surface.box)(0, back, width, height)
    assert back < surface.line_y < height
    depth = (surface.line_y - back) / (height - back)
    assert 0.3 <= depth <= 0.5
    assert 0.4 * width <= surface.center_x <= 0.6 * width


@pytest.mark.parametrize("prompt", ["wooden table", "white marble", "concrete", "dark night", "beach"])
def test_wall_meets_table_at_the_back_edge(prompt: str) -> None:
    result = _scene(prompt, size=Size(512, 512), seed=3)
    back = result.surface.box.y0
    profile = _luma(result.image).mean(axis=1)
    steps = np.abs(np.diff(profile[int(0.4 * 512) : int(0.9 * 512)]))
    assert abs(int(np.argmax(steps)) + int(0.4 * 512) + 1 - back) <= 2


def _mean_abs_laplacian(image: np.ndarray) -> float:
    return float(np.abs(cv2.Laplacian(_luma(image), cv2.CV_32F)).mean())


@pytest.mark.parametrize("prompt", ["wooden table", "marble", "concrete", "sand", "pastel", "christmas"])
def test_not_noise(prompt: str) -> None:
    image = _scene(prompt, size=Size(1024, 1024), seed=1).image
    noise = np.random.default_rng(0).integers(0, 256, image.shape, dtype=np.uint8)
    assert _mean_abs_laplacian(noise) > 100
    # The anti-banding grain alone (std 1.2 levels) gives about 4.3; textures add little.
    assert _mean_abs_laplacian(image) < 6.0
    clean = generate_scene(prompt, size=Size(1024, 1024), seed=1, surface="table", options=SceneSettings(grain=0)).image
    assert _mean_abs_laplacian(clean) < 1.5


def test_no_clipping() -> None:
    image = _scene("white minimal studio", seed=2).image
    assert (image == 255).mean() < 0.01


def test_blank_prompt_uses_default() -> None:
    blank = _scene("  ", seed=4).image
    default = _scene(OPTIONS.default_prompt, seed=4).image
    assert np.array_equal(blank, default)


def test_invalid_input() -> None:
    with pytest.raises(InvalidInput):
        generate_scene("wood", size=Size(8, 8), seed=0, surface="table", options=OPTIONS)
    with pytest.raises(InvalidInput):
        fit_background(np.zeros((10, 10, 3), np.float32), size=Size(64, 64))
    with pytest.raises(InvalidInput):
        fit_background(np.zeros((10, 10), np.uint8), size=Size(64, 64))


def _circle_source(width: int, height: int, radius: int) -> np.ndarray:
    image = np.full((height, width, 3), 255, np.uint8)
    cv2.circle(image, (width // 2, height // 2), radius, (20, 40, 200), -1, lineType=cv2.LINE_AA)
    return image


@pytest.mark.parametrize(
    ("source", "size"),
    [((400, 300), (1024, 1024)), ((400, 300), (300, 500)), ((1600, 900), (512, 512)), ((300, 600), (1280, 720))],
)
def test_fit_background_keeps_aspect(source: tuple[int, int], size: tuple[int, int]) -> None:
    sw, sh = source
    radius = min(sw, sh) // 5
    image = _circle_source(sw, sh, radius)
    before = image.copy()
    result = fit_background(image, size=Size(*size))
    assert np.array_equal(image, before)
    assert result.image.shape == (size[1], size[0], 3)
    assert result.surface is None and result.record.backend == "provided"
    mask = result.image[..., 2] > 128
    mask &= result.image[..., 0] < 128
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    box_h, box_w = rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1
    scale = max(size[0] / sw, size[1] / sh)
    assert abs(box_w - box_h) <= 2 + 0.02 * box_w  # still a circle
    assert abs(box_w - 2 * radius * scale) <= 2 + 0.03 * box_w  # scaled to cover
    area = mask.sum() / (np.pi * (radius * scale) ** 2)
    assert 0.95 < area < 1.05
    centre = ((cols[0] + cols[-1]) / 2, (rows[0] + rows[-1]) / 2)
    # cv2.circle centres on a pixel, half a source pixel off the image centre.
    tolerance = 1 + 0.5 * scale
    assert abs(centre[0] - (size[0] - 1) / 2) <= tolerance and abs(centre[1] - (size[1] - 1) / 2) <= tolerance


def test_fit_background_exact_size_odd_ratios() -> None:
    image = np.random.default_rng(0).integers(0, 256, (333, 517, 3), dtype=np.uint8)
    for size in [Size(64, 64), Size(1023, 511), Size(517, 333), Size(2000, 100)]:
        assert fit_background(image, size=size).image.shape == (size.height, size.width, 3)


def test_fit_background_flattens_rgba_over_white() -> None:
    image = np.zeros((100, 100, 4), np.uint8)
    image[..., 0] = 200
    image[:, 50:, 3] = 255
    out = fit_background(image, size=Size(100, 100)).image
    assert np.all(out[:, :45] == 255)
    assert np.all(out[:, 55:] == (200, 0, 0))
