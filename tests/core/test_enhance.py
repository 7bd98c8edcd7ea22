"""Tests of the enhance stage: Lanczos upscaling plus halo-free sharpening."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from placewright.enhance import ENHANCERS, enhance
from placewright.errors import InvalidInput
from placewright.settings import EnhanceSettings

OPTIONS = EnhanceSettings(target_long_side=512)


def _pattern(height: int = 96, width: int = 160) -> np.ndarray:
    """Text and edges on mid-grey, slightly soft (as a small product photo is); 30..200."""
    img = np.full((height, width, 3), 200, np.uint8)
    cv2.putText(img, "Oliva 5L", (6, 40), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (60, 30, 30), 2, cv2.LINE_AA)
    cv2.rectangle(img, (10, 60), (150, 85), (40, 120, 60), -1)
    return cv2.GaussianBlur(img, (0, 0), 0.6)


def _gradient_energy(image: np.ndarray) -> float:
    grey = image[..., :3].astype(np.float32).mean(axis=2)
    gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0)
    gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1)
    return float((gx * gx + gy * gy).mean())


def test_smoke() -> None:
    result = enhance(_pattern(), options=OPTIONS)
    assert result.record.backend == "lanczos"
    assert result.image.dtype == np.uint8


@pytest.mark.parametrize(
    ("shape", "target", "max_scale", "expected_shape", "expected_scale"),
    [
        ((100, 50, 3), 400, 8.0, (400, 200, 3), 4.0),
        ((50, 100, 3), 400, 2.0, (100, 200, 3), 2.0),  # bounded by max_scale
        ((300, 200, 4), 600, 4.0, (600, 400, 4), 2.0),
        ((64, 64, 3), 1024, 4.0, (256, 256, 3), 4.0),
    ],
)
def test_shape(shape, target, max_scale, expected_shape, expected_scale) -> None:
    image = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    options = EnhanceSettings(target_long_side=target, max_scale=max_scale)
    result = enhance(image, options=options)
    assert result.image.shape == expected_shape
    assert result.scale == pytest.approx(expected_scale)
    assert result.image.dtype == np.uint8


@pytest.mark.parametrize("shape", [(512, 300, 3), (700, 900, 4), (512, 512, 3)])
def test_large_unchanged(shape) -> None:
    image = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    before = image.copy()
    result = enhance(image, options=OPTIONS)
    assert result.scale == 1.0
    assert np.array_equal(result.image, image)
    assert np.array_equal(image, before)


def test_input_not_mutated() -> None:
    image = _pattern()
    before = image.copy()
    enhance(image, options=OPTIONS)
    assert np.array_equal(image, before)


def test_sharper_than_lanczos_without_overshoot() -> None:
    image = _pattern()
    result = enhance(image, options=OPTIONS)
    plain = cv2.resize(image, result.image.shape[1::-1], interpolation=cv2.INTER_LANCZOS4)
    assert _gradient_energy(result.image) > 1.1 * _gradient_energy(plain)
    # No halos: never brighter/darker than the input's own range by more than a few levels.
    bound = 6
    assert int(result.image.max()) <= int(image.max()) + bound
    assert int(result.image.min()) >= int(image.min()) - bound
    # Flat areas stay flat (no ringing far from edges).
    assert np.ptp(result.image[-20:, -20:].astype(int)) <= 2


def test_sharpen_amount_zero_is_plain_lanczos() -> None:
    image = _pattern()
    options = EnhanceSettings(target_long_side=512, sharpen_amount=0.0)
    result = enhance(image, options=options)
    plain = cv2.resize(image, result.image.shape[1::-1], interpolation=cv2.INTER_LANCZOS4)
    assert np.abs(result.image.astype(int) - plain.astype(int)).max() <= 1


def test_alpha_smooth_not_sharpened() -> None:
    rgb = _pattern()
    alpha = np.zeros(rgb.shape[:2], np.uint8)
    cv2.circle(alpha, (80, 48), 30, 255, -1)
    rgb[alpha == 0] = 0  # transparent black, as many cut-outs store it
    result = enhance(np.dstack([rgb, alpha]), options=OPTIONS)
    out_alpha = result.image[..., 3]
    assert result.image.shape[2] == 4
    expected = cv2.resize(alpha, out_alpha.shape[::-1], interpolation=cv2.INTER_LINEAR)
    assert np.array_equal(out_alpha, expected)
    # Opaque inside, transparent outside, a smooth ramp between (no ringing values).
    assert out_alpha[int(48 * result.scale), int(80 * result.scale)] == 255
    assert out_alpha[0, 0] == 0
    # No dark fringe: colour just inside the edge is not pulled toward the transparent black.
    ramp = (out_alpha > 64) & (out_alpha < 192)
    inner = cv2.resize(rgb, out_alpha.shape[::-1], interpolation=cv2.INTER_NEAREST)[ramp]
    assert result.image[..., :3][ramp].mean() > 0.8 * inner.mean()


@pytest.mark.parametrize(
    "image",
    [
        np.zeros((10, 10), np.uint8),
        np.zeros((10, 10, 2), np.uint8),
        np.zeros((10, 10, 3), np.float32),
        "not an array",
    ],
)
def test_invalid_input(image) -> None:
    with pytest.raises(InvalidInput):
        enhance(image, options=OPTIONS)


def test_registry() -> None:
    assert ENHANCERS.classical == "lanczos"
    assert "lanczos" in ENHANCERS.names()
