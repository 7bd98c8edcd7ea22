"""Tests of the harmonize stage: relight around the product, never the product itself."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from placewright.errors import InvalidInput
from placewright.harmonize import HARMONIZERS, harmonize
from placewright.settings import HarmonizeSettings

OPTIONS = HarmonizeSettings()  # strength 0.35, ring 24 px


def _scene_and_alpha(size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """A textured beige/wood scene with a saturated green product and a soft edge."""
    rng = np.random.default_rng(3)
    image = np.empty((size, size, 3), np.uint8)
    image[: size // 2] = (220, 212, 198)
    image[size // 2 :] = (150, 105, 70)
    image = np.clip(image.astype(int) + rng.integers(-6, 7, image.shape), 0, 255).astype(np.uint8)
    alpha = np.zeros((size, size), np.uint8)
    cv2.rectangle(alpha, (size // 2 - 30, size // 4), (size // 2 + 30, 3 * size // 4), 255, -1)
    alpha = cv2.GaussianBlur(alpha, (0, 0), 1.0)
    product = np.empty_like(image)
    product[:] = (30, 160, 50)
    a = alpha.astype(np.float32)[..., None] / 255
    image = np.rint(a * product + (1 - a) * image).astype(np.uint8)
    return image, alpha


def _far_mask(alpha: np.ndarray, ring_px: int) -> np.ndarray:
    distance = cv2.distanceTransform((alpha == 0).astype(np.uint8), cv2.DIST_L2, 3)
    return distance > ring_px + 1


def test_smoke() -> None:
    image, alpha = _scene_and_alpha()
    result = harmonize(image, alpha, seed=0, prompt=None, options=OPTIONS)
    assert result.record.backend == "classical"
    assert result.image.shape == image.shape
    assert result.image.dtype == np.uint8


@pytest.mark.parametrize("strength", [0.2, 0.35, 1.0])
@pytest.mark.parametrize("ring_px", [8, 24, 60])
def test_product_pixels_bit_identical(strength: float, ring_px: int) -> None:
    image, alpha = _scene_and_alpha()
    options = HarmonizeSettings(strength=strength, ring_px=ring_px)
    result = harmonize(image, alpha, seed=0, prompt=None, options=options)
    solid = alpha == 255
    assert np.array_equal(result.image[solid], image[solid])


@pytest.mark.parametrize("ring_px", [8, 24, 60])
def test_far_pixels_unchanged(ring_px: int) -> None:
    image, alpha = _scene_and_alpha()
    result = harmonize(image, alpha, seed=0, prompt=None, options=HarmonizeSettings(strength=1.0, ring_px=ring_px))
    far = _far_mask(alpha, ring_px)
    assert np.array_equal(result.image[far], image[far])


@pytest.mark.parametrize("strength", [0.35, 1.0])
def test_ring_changed_a_little(strength: float) -> None:
    image, alpha = _scene_and_alpha()
    options = HarmonizeSettings(strength=strength)
    result = harmonize(image, alpha, seed=0, prompt=None, options=options)
    distance = cv2.distanceTransform((alpha == 0).astype(np.uint8), cv2.DIST_L2, 3)
    ring = (alpha == 0) & (distance <= options.ring_px)
    diff = np.abs(result.image.astype(int) - image.astype(int))[ring]
    assert diff.max() > 0  # something happened
    # Bounded: at most max_change * strength of the pixel value, plus rounding.
    bound = options.max_change * strength * image[ring].astype(int) + 1
    assert (diff <= bound).all()
    # The spill is green: near the product, green rises relative to red.
    near = ring & (distance <= 4) & (np.arange(alpha.shape[0])[:, None] > alpha.shape[0] // 2)
    before = image[near].astype(float).mean(axis=0)
    after = result.image[near].astype(float).mean(axis=0)
    assert after[1] / after[0] > before[1] / before[0]


def test_partial_alpha_blends() -> None:
    image, alpha = _scene_and_alpha()
    options = HarmonizeSettings(strength=1.0)
    result = harmonize(image, alpha, seed=0, prompt=None, options=options)
    edge = (alpha > 0) & (alpha < 255)
    diff = np.abs(result.image.astype(int) - image.astype(int))[edge].max(axis=1)
    a = alpha[edge].astype(float) / 255
    # A pixel can change by at most (1 - alpha) times the ring bound.
    assert (diff <= (1 - a) * options.max_change * 255 + 1).all()


def test_strength_zero_is_identity() -> None:
    image, alpha = _scene_and_alpha()
    result = harmonize(image, alpha, seed=0, prompt=None, options=HarmonizeSettings(strength=0.0))
    assert np.array_equal(result.image, image)


def test_empty_alpha_is_identity() -> None:
    image, _ = _scene_and_alpha()
    result = harmonize(image, np.zeros(image.shape[:2], np.uint8), seed=0, prompt=None, options=OPTIONS)
    assert np.array_equal(result.image, image)


def test_inputs_not_mutated() -> None:
    image, alpha = _scene_and_alpha()
    image_before, alpha_before = image.copy(), alpha.copy()
    harmonize(image, alpha, seed=0, prompt=None, options=HarmonizeSettings(strength=1.0))
    assert np.array_equal(image, image_before)
    assert np.array_equal(alpha, alpha_before)


def test_product_at_frame_edge() -> None:
    image, _ = _scene_and_alpha()
    alpha = np.zeros(image.shape[:2], np.uint8)
    alpha[200:, :40] = 255
    result = harmonize(image, alpha, seed=0, prompt=None, options=HarmonizeSettings(strength=1.0))
    assert np.array_equal(result.image[alpha == 255], image[alpha == 255])


@pytest.mark.parametrize(
    ("image", "alpha"),
    [
        (np.zeros((32, 32, 3), np.uint8), np.zeros((16, 16), np.uint8)),
        (np.zeros((32, 32, 4), np.uint8), np.zeros((32, 32), np.uint8)),
        (np.zeros((32, 32, 3), np.float32), np.zeros((32, 32), np.uint8)),
        (np.zeros((32, 32, 3), np.uint8), np.zeros((32, 32), np.float32)),
    ],
)
def test_invalid_input(image, alpha) -> None:
    with pytest.raises(InvalidInput):
        harmonize(image, alpha, seed=0, prompt=None, options=OPTIONS)


def test_registry() -> None:
    assert HARMONIZERS.classical == "classical"
