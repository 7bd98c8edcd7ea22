"""Tests of the cut-out stage on synthetic product photos with known ground truth."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from placewright.cutout import CUTTERS, CutoutResult, cut_out
from placewright.cutout.classical import GrabCutCutter
from placewright.cutout.refine import clean_mask, unmix_colors
from placewright.errors import InvalidInput
from placewright.settings import CutoutSettings
from placewright.types import Box
from tests.synth import iou, make_product_photo, make_rgba_cutout, render_product_photo

OPTIONS = CutoutSettings()
SIZE = (384, 384)
MIN_IOU = 0.95

# (shape, product colour, backdrop, backdrop colour, shadow)
CASES = {
    "red-bottle-plain-shadow": ("bottle", (200, 40, 40), "plain", (236, 236, 236), True),
    "dark-box-on-light-gradient-shadow": ("box", (30, 30, 35), "gradient", (240, 240, 240), True),
    "light-can-on-dark-texture": ("can", (230, 230, 220), "texture", (40, 40, 45), False),
    "close-colour-jar-plain-shadow": ("jar", (200, 205, 225), "plain", (228, 228, 228), True),
    "green-ellipse-tinted-gradient": ("ellipse", (40, 120, 60), "gradient", (220, 225, 235), False),
    "black-bottle-white-texture-shadow": ("bottle", (20, 20, 20), "texture", (245, 245, 245), True),
    "purple-jar-grey-texture-shadow": ("jar", (90, 60, 140), "texture", (200, 200, 200), True),
    "grey-can-white-plain": ("can", (120, 120, 125), "plain", (236, 236, 236), False),
    "orange-box-dark-plain-shadow": ("box", (230, 120, 30), "plain", (35, 35, 40), True),
    "close-colour-ellipse-gradient-shadow": ("ellipse", (175, 190, 160), "gradient", (215, 215, 220), True),
}


def _photo(case: str, seed: int = 0):
    shape, product, backdrop, backdrop_rgb, shadow = CASES[case]
    return render_product_photo(
        shape,
        product_rgb=product,
        backdrop=backdrop,
        backdrop_rgb=backdrop_rgb,
        shadow=shadow,
        size=SIZE,
        seed=seed,
    )


def _full_alpha(result: CutoutResult, shape: tuple[int, int]) -> np.ndarray:
    """The result's alpha placed back into the input frame (H, W) uint8."""
    full = np.zeros(shape, np.uint8)
    b = result.box
    full[b.y0 : b.y1, b.x0 : b.x1] = result.rgba[..., 3]
    return full


def _full_rgb(result: CutoutResult, shape: tuple[int, int]) -> np.ndarray:
    full = np.zeros((*shape, 3), np.uint8)
    b = result.box
    full[b.y0 : b.y1, b.x0 : b.x1] = result.rgba[..., :3]
    return full


def _composite(rgb: np.ndarray, alpha: np.ndarray, color: tuple[int, int, int]) -> np.ndarray:
    a = alpha.astype(np.float32)[..., None] / 255.0
    return a * rgb.astype(np.float32) + (1.0 - a) * np.asarray(color, np.float32)


def _ring_share(composite: np.ndarray, photo, new_color: tuple[int, int, int]) -> float:
    """Share of edge-band pixels that look like the OLD backdrop.

    The edge band is every pixel within 2 px of the true product outline. A pixel is
    "ringed" when it is closer to the old backdrop's colour there than to both the true
    product colour there and the new background colour: exactly the halo a marketer sees.
    """
    mask = photo.mask.astype(np.uint8)
    kernel = np.ones((5, 5), np.uint8)
    band = (cv2.dilate(mask, kernel) > 0) & ~(cv2.erode(mask, kernel) > 0)
    pix = composite[band]
    d_old = np.linalg.norm(pix - photo.backdrop[band], axis=1)
    d_fg = np.linalg.norm(pix - photo.foreground[band], axis=1)
    d_new = np.linalg.norm(pix - np.asarray(new_color, np.float32), axis=1)
    return float(np.mean(d_old < np.minimum(d_fg, d_new)))


@pytest.mark.parametrize("case", list(CASES))
def test_iou(case: str) -> None:
    photo = _photo(case)
    result = cut_out(photo.rgb, options=OPTIONS)
    assert result.record.backend == "grabcut"
    assert result.record.fallback_from is None
    found = _full_alpha(result, photo.mask.shape) >= 128
    assert iou(found, photo.mask) >= MIN_IOU


@pytest.mark.parametrize("case", [c for c, spec in CASES.items() if spec[4]])
def test_shadow_not_kept(case: str) -> None:
    photo = _photo(case)
    result = cut_out(photo.rgb, options=OPTIONS)
    # Where the shadow darkens the backdrop by 15% or more, away from the product.
    clean = render_product_photo(
        CASES[case][0],
        product_rgb=CASES[case][1],
        backdrop=CASES[case][2],
        backdrop_rgb=CASES[case][3],
        shadow=False,
        size=SIZE,
        seed=0,
    )
    darkened = photo.backdrop.mean(axis=2) <= 0.85 * clean.backdrop.mean(axis=2)
    away = ~(cv2.dilate(photo.mask.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0)
    region = darkened & away
    if CASES[case][3][0] > 128:  # a shadow on a dark backdrop is invisible; nothing to check
        assert region.sum() > 200
    alpha = _full_alpha(result, photo.mask.shape)
    if region.any():
        assert float(alpha[region].mean()) < 5.0


def test_smoke_make_product_photo() -> None:
    rgb, mask = make_product_photo("can", size=(256, 320))
    result = cut_out(rgb, options=OPTIONS)
    assert iou(_full_alpha(result, mask.shape) >= 128, mask) >= MIN_IOU


def test_shape() -> None:
    photo = _photo("red-bottle-plain-shadow")
    result = cut_out(photo.rgb, options=OPTIONS)
    assert result.rgba.dtype == np.uint8
    assert result.rgba.shape == (result.box.height, result.box.width, 4)
    assert 0 <= result.box.x0 < result.box.x1 <= SIZE[0]
    assert 0 <= result.box.y0 < result.box.y1 <= SIZE[1]


@pytest.mark.parametrize(
    "case", ["red-bottle-plain-shadow", "light-can-on-dark-texture", "purple-jar-grey-texture-shadow"]
)
def test_crop_box_tight(case: str) -> None:
    photo = _photo(case)
    result = cut_out(photo.rgb, options=OPTIONS)
    alpha = result.rgba[..., 3]
    assert alpha[0].any() and alpha[-1].any() and alpha[:, 0].any() and alpha[:, -1].any()
    assert Box.from_mask(_full_alpha(result, photo.mask.shape)) == result.box
    # The box hugs the true product's box within a couple of pixels.
    x0, y0, x1, y1 = Box.from_mask(photo.mask.astype(np.uint8)).as_list()
    assert max(abs(result.box.x0 - x0), abs(result.box.y0 - y0)) <= 2
    assert max(abs(result.box.x1 - x1), abs(result.box.y1 - y1)) <= 2


def test_soft_edge() -> None:
    photo = _photo("red-bottle-plain-shadow")
    alpha = cut_out(photo.rgb, options=OPTIONS).rgba[..., 3]
    partial = (alpha > 0) & (alpha < 255)
    # A soft edge exists, and it is thin: a small share of the product's area.
    assert partial.sum() > 100
    assert partial.sum() < 0.1 * (alpha == 255).sum()


@pytest.mark.parametrize(
    ("case", "new_color"),
    [
        ("dark-box-on-light-gradient-shadow", (40, 160, 70)),
        ("black-bottle-white-texture-shadow", (40, 90, 200)),
        ("red-bottle-plain-shadow", (20, 60, 160)),
        ("light-can-on-dark-texture", (250, 200, 40)),
        ("orange-box-dark-plain-shadow", (120, 200, 250)),
    ],
)
def test_no_backdrop_ring(case: str, new_color: tuple[int, int, int]) -> None:
    photo = _photo(case)
    result = cut_out(photo.rgb, options=OPTIONS)
    shape = photo.mask.shape
    composite = _composite(_full_rgb(result, shape), _full_alpha(result, shape), new_color)
    assert _ring_share(composite, photo, new_color) <= 0.03


def test_ring_metric_detects_a_naive_cutout() -> None:
    """The ring metric is not vacuous: a hard mask grown by 1 px over the raw photo fails it."""
    photo = _photo("dark-box-on-light-gradient-shadow")
    grown = cv2.dilate(photo.mask.astype(np.uint8), np.ones((3, 3), np.uint8)) * 255
    composite = _composite(photo.rgb, grown, (40, 160, 70))
    assert _ring_share(composite, photo, (40, 160, 70)) > 0.2


def test_existing_alpha_kept() -> None:
    rgba = make_rgba_cutout("bottle", size=(200, 240))
    result = cut_out(rgba, options=OPTIONS)
    assert result.record.backend == "existing-alpha"
    box = Box.from_mask(rgba[..., 3])
    assert result.box == box
    np.testing.assert_array_equal(result.rgba, rgba[box.y0 : box.y1, box.x0 : box.x1])
    soft = (result.rgba[..., 3] > 0) & (result.rgba[..., 3] < 255)
    assert soft.sum() > 20  # soft edge values preserved, not binarized


def test_opaque_alpha_is_cut_out() -> None:
    photo = _photo("red-bottle-plain-shadow")
    rgba = np.dstack([photo.rgb, np.full(photo.mask.shape, 255, np.uint8)])
    rgba[:3, :3, 3] = 0  # a few stray transparent pixels do not make a cut-out
    result = cut_out(rgba, options=OPTIONS)
    assert result.record.backend == "grabcut"
    assert iou(_full_alpha(result, photo.mask.shape) >= 128, photo.mask) >= MIN_IOU


def test_invalid_input_fully_transparent() -> None:
    rgba = make_rgba_cutout("can")
    rgba[..., 3] = 0
    with pytest.raises(InvalidInput, match="fully transparent"):
        cut_out(rgba, options=OPTIONS)


def test_invalid_input_almost_nothing_visible() -> None:
    rgba = np.zeros((200, 200, 4), np.uint8)
    rgba[100:103, 100:103] = 255
    with pytest.raises(InvalidInput, match="transparent"):
        cut_out(rgba, options=OPTIONS)


def test_invalid_input_no_product() -> None:
    rng = np.random.default_rng(0)
    blank = np.clip(236 + rng.normal(0, 1.5, (256, 256, 3)), 0, 255).astype(np.uint8)
    with pytest.raises(InvalidInput, match="could not find a product"):
        cut_out(blank, options=OPTIONS)


@pytest.mark.parametrize(
    "image",
    [
        np.zeros((64, 64), np.uint8),
        np.zeros((64, 64, 2), np.uint8),
        np.zeros((64, 64, 3), np.float32),
    ],
    ids=["gray", "two-channel", "float"],
)
def test_invalid_input_shape_dtype(image: np.ndarray) -> None:
    with pytest.raises(InvalidInput):
        cut_out(image, options=OPTIONS)


def test_input_not_mutated() -> None:
    photo = _photo("purple-jar-grey-texture-shadow")
    rgb = photo.rgb.copy()
    cut_out(rgb, options=OPTIONS)
    np.testing.assert_array_equal(rgb, photo.rgb)
    rgba = make_rgba_cutout("jar")
    before = rgba.copy()
    result = cut_out(rgba, options=OPTIONS)
    result.rgba[...] = 0  # the result does not alias the input either
    np.testing.assert_array_equal(rgba, before)


def test_registry() -> None:
    assert "grabcut" in CUTTERS.names()
    assert CUTTERS.chain("auto")[-1] is GrabCutCutter
    assert GrabCutCutter.unavailable_reason(CutoutSettings()) is None


def test_clean_mask_fills_enclosed_hole_keeps_open_gap() -> None:
    mask = np.zeros((60, 60), bool)
    mask[10:50, 10:50] = True
    mask[20:30, 20:30] = False  # enclosed: filled
    mask[35:40, 30:50] = False  # open to the outside: kept
    mask[2:4, 55:57] = True  # a far speck: dropped
    cleaned = clean_mask(mask)
    assert cleaned[20:30, 20:30].all()
    assert not cleaned[35:40, 32:50].any()
    assert not cleaned[2:4, 55:57].any()


def test_unmix_colors_recovers_foreground() -> None:
    fg = np.full((4, 4, 3), (30.0, 60.0, 200.0), np.float32)
    bg = np.full((4, 4, 3), (240.0, 240.0, 240.0), np.float32)
    alpha = np.linspace(0.25, 1.0, 16, dtype=np.float32).reshape(4, 4)
    observed = alpha[..., None] * fg + (1.0 - alpha[..., None]) * bg
    np.testing.assert_allclose(unmix_colors(observed, alpha, fg, bg), fg, atol=1e-3)


def test_same_photo_same_cutout_every_time() -> None:
    """GrabCut's k-means draws from OpenCV's RNG: repeated calls must not drift."""
    rgb, _ = make_product_photo("bottle", backdrop="gradient", shadow=True, seed=3)
    first = cut_out(rgb, options=CutoutSettings())
    for _ in range(4):
        again = cut_out(rgb, options=CutoutSettings())
        assert again.box == first.box and np.array_equal(again.rgba, first.rgba)
