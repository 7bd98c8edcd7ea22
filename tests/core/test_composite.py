"""Tests of the composite stage: placement, colour matching, shadows, clean edges."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from placewright.analyze import Analysis
from placewright.composite import COMPOSITORS, composite
from placewright.errors import InvalidInput
from placewright.settings import CompositeSettings
from placewright.types import Box, Surface

OPTIONS = CompositeSettings()
NO_SHADOW = CompositeSettings(shadow_opacity=0.0, contact_opacity=0.0, color_match=0.0)


def _scene(height: int = 512, width: int = 512, table_from: float = 0.5) -> np.ndarray:
    """A light wall over a textured wooden table."""
    scene = np.empty((height, width, 3), np.uint8)
    scene[:] = (222, 214, 200)
    top = int(table_from * height)
    grain = (np.sin(np.arange(width) * 0.3) * 6).astype(np.int16)
    wood = np.clip(np.array([150, 105, 70], np.int16)[None, :] + grain[:, None], 0, 255).astype(np.uint8)
    scene[top:] = wood[None]
    return scene


def _bottle(height: int = 300, width: int = 110, colour=(40, 90, 40), pad: int = 6) -> np.ndarray:
    """An RGBA bottle (body, shoulders, neck) with a label and an anti-aliased edge."""
    alpha = np.zeros((height, width), np.uint8)
    cv2.rectangle(alpha, (0, height // 3), (width - 1, height - 1), 255, -1)
    cv2.ellipse(alpha, (width // 2, height // 3), (width // 2 - 1, height // 10), 0, 180, 360, 255, -1)
    cv2.rectangle(alpha, (width // 2 - width // 8, 0), (width // 2 + width // 8, height // 3), 255, -1)
    rgb = np.empty((height, width, 3), np.uint8)
    rgb[:] = colour
    cv2.rectangle(rgb, (0, height // 2), (width - 1, 3 * height // 4), (235, 225, 200), -1)
    image = np.zeros((height + 2 * pad, width + 2 * pad, 4), np.uint8)
    image[..., :3] = colour  # a matte's colour estimate extends past the hard edge
    image[pad:-pad, pad:-pad, :3] = rgb
    image[pad:-pad, pad:-pad, 3] = alpha
    image[..., 3] = cv2.GaussianBlur(image[..., 3], (0, 0), 0.8)
    return image


def _box(width: int, height: int, colour=(200, 60, 60)) -> np.ndarray:
    """A plain RGBA rectangle with a soft one-pixel edge."""
    image = np.zeros((height + 8, width + 8, 4), np.uint8)
    image[..., :3] = colour  # colour is defined wherever alpha may be > 0
    image[4:-4, 4:-4, 3] = 255
    image[..., 3] = cv2.GaussianBlur(image[..., 3], (0, 0), 0.7)
    image[image[..., 3] == 0, :3] = 0  # transparent black beyond the fringe
    return image


def _analysis(size_fraction: float = 0.42, aspect: float = 3.0) -> Analysis:
    return Analysis(name="bottle", category="bottle", size_fraction=size_fraction, aspect=aspect)


def _surface(line_y: int, center_x: int) -> Surface:
    return Surface(line_y=line_y, center_x=center_x, box=None, backend="test")


def _base_row(alpha: np.ndarray) -> int:
    return int(np.flatnonzero((alpha >= 128).any(axis=1))[-1])


def _run(scene=None, cutout=None, line_y=380, center_x=256, fraction=0.42, options=OPTIONS):
    scene = _scene() if scene is None else scene
    cutout = _bottle() if cutout is None else cutout
    return composite(
        scene,
        cutout,
        surface=_surface(line_y, center_x),
        analysis=_analysis(fraction),
        surface_phrase="table",
        options=options,
    )


def test_smoke() -> None:
    result = _run()
    assert result.record.backend == "classical"
    assert result.image.shape == (512, 512, 3)
    assert result.image.dtype == np.uint8
    assert result.product_alpha.shape == (512, 512)
    assert result.product_alpha.dtype == np.uint8
    assert result.product_box == Box.from_mask(result.product_alpha)


@pytest.mark.parametrize(("height", "width"), [(512, 512), (384, 640), (640, 384)])
def test_shape_and_size(height: int, width: int) -> None:
    scene = _scene(height, width)
    result = _run(scene, line_y=int(0.75 * height), center_x=width // 2, fraction=0.4)
    assert result.image.shape == (height, width, 3)
    assert abs(result.product_box.height - 0.4 * height) <= 2


def test_inputs_not_mutated() -> None:
    scene, cutout = _scene(), _bottle()
    scene_before, cutout_before = scene.copy(), cutout.copy()
    _run(scene, cutout)
    assert np.array_equal(scene, scene_before)
    assert np.array_equal(cutout, cutout_before)


@pytest.mark.parametrize(
    ("line_frac", "fraction", "center_x"),
    [(0.75, 0.42, 256), (0.2, 0.75, 256), (0.05, 0.6, 256), (0.99, 0.75, 256), (0.7, 0.5, 0), (0.7, 0.5, 511)],
)
def test_product_fully_in_frame(line_frac: float, fraction: float, center_x: int) -> None:
    result = _run(line_y=int(line_frac * 512), center_x=center_x, fraction=fraction)
    box = result.product_box
    margin = int(OPTIONS.margin_fraction * 512)
    assert box.y0 >= margin - 1
    assert box.x0 >= 0 and box.x1 <= 512 and box.y1 <= 512
    # Nothing was cut: the product's border rows/columns are its soft fringe, not solid.
    alpha = result.product_alpha
    assert alpha[0].max() == 0 and alpha[:, 0].max() == 0 and alpha[:, -1].max() == 0


@pytest.mark.parametrize("line_y", [200, 300, 380, 450, 500])
def test_base_on_line(line_y: int) -> None:
    result = _run(line_y=line_y)
    assert abs(_base_row(result.product_alpha) - line_y) <= 2


@pytest.mark.parametrize("center_x", [150, 256, 330])
def test_centred(center_x: int) -> None:
    result = _run(center_x=center_x)
    assert abs(result.product_box.center_x - center_x) <= 1.5


@pytest.mark.parametrize(
    ("cutout", "fraction"),
    [(_bottle(), 0.42), (_bottle(), 0.2), (_box(300, 120), 0.3), (_box(60, 150), 0.6), (_box(40, 30), 0.3)],
)
def test_aspect_preserved(cutout: np.ndarray, fraction: float) -> None:
    result = _run(cutout=cutout, fraction=fraction)
    source = Box.from_mask(cutout[..., 3])
    placed = result.product_box
    assert placed.height / placed.width == pytest.approx(source.height / source.width, rel=0.02)


def test_wide_product_width_capped() -> None:
    result = _run(cutout=_box(600, 100), fraction=0.4)
    assert result.product_box.width <= OPTIONS.max_width_fraction * 512 + 2


def test_shadow_present_and_local() -> None:
    scene = _scene()
    result = _run(scene)
    box = result.product_box
    base = _base_row(result.product_alpha)
    out, plain = result.image.astype(int), scene.astype(int)
    outside = result.product_alpha == 0
    # Just below the base (contact shadow) and to the right of it (drop shadow): darker.
    below = np.zeros_like(outside)
    below[base + 1 : base + 4, box.x0 + 5 : box.x1 - 5] = True
    assert (out[below & outside].sum(axis=-1) < plain[below & outside].sum(axis=-1)).all()
    right = np.zeros_like(outside)
    right[base - 30 : base - 10, box.x1 + 2 : box.x1 + 12] = True
    assert (out[right].sum(axis=-1) < plain[right].sum(axis=-1) - 6).all()
    # Only darkening, never painting: no pixel outside the product got brighter.
    assert (out[outside] <= plain[outside]).all()
    # Far away and above the product's top: untouched.
    assert np.array_equal(out[: box.y0], plain[: box.y0])
    far = np.ones_like(outside)
    far[box.y0 : box.y1 + box.height, max(0, box.x0 - box.height) : box.x1 + box.height] = False
    assert np.array_equal(out[far], plain[far])


def test_shadow_opacity_zero_leaves_scene() -> None:
    scene = _scene()
    result = _run(scene, options=CompositeSettings(shadow_opacity=0.0, contact_opacity=0.0))
    outside = result.product_alpha == 0
    assert np.array_equal(result.image[outside], scene[outside])


@pytest.mark.parametrize(
    ("scene_colour", "product_colour"),
    [((20, 30, 120), (230, 230, 230)), ((250, 250, 250), (30, 30, 30)), ((200, 120, 40), (60, 90, 200))],
)
def test_colour_gains_bounded(scene_colour, product_colour) -> None:
    options = CompositeSettings(color_match=1.0, max_gain=0.12)
    scene = np.empty((512, 512, 3), np.uint8)
    scene[:] = scene_colour
    result = _run(scene, cutout=_box(120, 240, product_colour), options=options)
    solid = result.product_alpha == 255
    mean = result.image[solid].astype(float).mean(axis=0)
    original = np.array(product_colour, float)
    assert (mean >= original * (1 - 0.12) - 1).all() and (mean <= original * (1 + 0.12) + 1).all()
    assert not np.allclose(mean, original, atol=1)  # it did move toward the scene


def test_colour_match_zero_keeps_colours() -> None:
    result = _run(cutout=_box(120, 240, (10, 200, 90)), options=NO_SHADOW)
    solid = result.product_alpha == 255
    assert np.array_equal(np.unique(result.image[solid], axis=0), [[10, 200, 90]])


def test_no_halo_on_same_colour() -> None:
    colour = (200, 60, 60)
    scene = np.empty((512, 512, 3), np.uint8)
    scene[:] = colour
    result = _run(scene, cutout=_box(120, 240, colour), options=NO_SHADOW)
    assert np.abs(result.image.astype(int) - np.array(colour)).max() <= 1


def test_no_halo_edge_between_neighbours() -> None:
    scene = np.full((512, 512, 3), 90, np.uint8)
    result = _run(scene, cutout=_box(120, 240, (240, 240, 240)), options=CompositeSettings(feather_px=1.5))
    alpha = result.product_alpha
    band = (alpha > 0) & (alpha < 255)
    assert band.any()
    values = result.image[band].astype(int)
    # Edge pixels lie between the (possibly shadowed) scene and the (gain-bounded) product.
    assert values.min() >= 90 * (1 - 0.55) * (1 - 0.3) - 1
    assert values.max() <= 240 * 1.12 + 1
    # And the band is monotone across the edge: no dark ring inside the bright product.
    row = result.product_box.y0 + result.product_box.height // 2
    line = result.image[row, :, 0].astype(int)
    left = result.product_box.x0
    profile = line[left - 2 : left + 4]
    assert (np.diff(profile) >= -1).all()


def test_deterministic() -> None:
    first, second = _run(), _run()
    assert np.array_equal(first.image, second.image)


@pytest.mark.parametrize(
    ("scene", "cutout"),
    [
        (_scene(), np.zeros((50, 50, 4), np.uint8)),  # fully transparent
        (_scene()[..., 0], _bottle()),
        (_scene(), _bottle()[..., 3]),
        (_scene().astype(np.float32), _bottle()),
    ],
)
def test_invalid_input(scene, cutout) -> None:
    with pytest.raises(InvalidInput):
        _run(scene, cutout)


def test_registry() -> None:
    assert COMPOSITORS.classical == "classical"
    assert COMPOSITORS.chain("auto")[-1].name == "classical"
