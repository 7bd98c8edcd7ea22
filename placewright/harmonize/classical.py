"""Classical harmonisation: light from the product onto its surroundings, nothing more.

In a ring ``ring_px`` wide outside the product, with a weight falling smoothly from
``strength`` at the product's edge to 0 at the ring's outer edge (and lower beside the
product's upper part than near its base, where bounce light lands):

* colour spill: the surroundings take on a little of the product's chroma (its mean colour
  divided by its luminance), as light bouncing off a coloured object does (``spill``);
* light matching: the surroundings' brightness moves a little toward the brightness of
  the product's edge, so a bright product lifts its dark surroundings and vice versa.

Each ring pixel's relative change is clamped to ``max_change * strength``. Product pixels
are pasted back: alpha 255 exactly as input, partial alpha blended with the relit pixels.
"""

from __future__ import annotations

import cv2
import numpy as np

from placewright.harmonize import Harmonizer
from placewright.settings import HarmonizeSettings
from placewright.types import LUMA_WEIGHTS

# Rec. 601 luma weights.
# Light matching moves the ring's brightness this share of the way toward the product
# edge's brightness at full weight (then bounded by max_change).
LIGHT_MATCH = 0.3
# Width (pixels) of the product's edge band whose brightness is matched: the outer part
# of the product is what actually faces the surroundings.
EDGE_BAND_PX = 6
# Luminance floor (0-255) so ratios stay finite on black pixels.
MIN_LUMA = 4.0
# Bounce light lands mostly on the surface the product stands on: rows at and below the
# product's bottom get the full weight, rows higher up less, down to this share at its top
# (so no glow outlines the product against a wall).
UPPER_SHARE = 0.3
# Chroma multipliers of the spill are bounded to this range before use, so a saturated
# product tints its surroundings, but cannot turn them into its own colour.
CHROMA_RANGE = (0.6, 1.4)


def ring_weight(product_alpha: np.ndarray, ring_px: int) -> np.ndarray:
    """(H, W) float32 weight: 1 on product pixels, falling to 0 at ``ring_px`` outside."""
    outside = (product_alpha == 0).astype(np.uint8)
    distance = cv2.distanceTransform(outside, cv2.DIST_L2, 3)
    t = np.clip(1.0 - distance / float(ring_px), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)  # smoothstep: no visible edge at the ring's border


def relight(image: np.ndarray, product_alpha: np.ndarray, options: HarmonizeSettings) -> np.ndarray:
    """The relit (H, W, 3) float32 image (0-255) over the whole input; used in the ring only."""
    rgb = image.astype(np.float32)
    alpha = product_alpha.astype(np.float32) * (1.0 / 255.0)
    solid = product_alpha == 255
    rows = np.flatnonzero(product_alpha.any(axis=1))
    top, bottom = float(rows[0]), float(rows[-1])
    yy = np.arange(product_alpha.shape[0], dtype=np.float32)[:, None]
    height_share = np.clip((yy - top) / max(bottom - top, 1.0), 0.0, 1.0)
    vertical = UPPER_SHARE + (1.0 - UPPER_SHARE) * height_share * height_share
    weight = ring_weight(product_alpha, options.ring_px) * vertical * options.strength
    total = float(alpha.sum())
    product_mean = (rgb * alpha[..., None]).reshape(-1, 3).sum(axis=0) / total
    product_luma = max(float(product_mean @ LUMA_WEIGHTS), MIN_LUMA)
    chroma = np.clip(product_mean / product_luma, *CHROMA_RANGE)

    # Brightness of the product's edge band (the part facing the surroundings).
    inner = cv2.erode(solid.astype(np.uint8), np.ones((2 * EDGE_BAND_PX + 1,) * 2, np.uint8))
    band = solid & (inner == 0)
    if not band.any():
        band = alpha > 0
    edge_luma = max(float(rgb[band].mean(axis=0) @ LUMA_WEIGHTS), MIN_LUMA)

    luma = np.maximum(rgb @ LUMA_WEIGHTS, MIN_LUMA)
    # Compare with the local (blurred) brightness, not each pixel: texture is kept as is.
    local = np.maximum(cv2.GaussianBlur(luma, (0, 0), max(1.0, options.ring_px / 2)), MIN_LUMA)
    light_gain = 1.0 + LIGHT_MATCH * weight * (edge_luma / local - 1.0)
    spill_gain = 1.0 + (options.spill * weight)[..., None] * (chroma - 1.0)
    gain = light_gain[..., None] * spill_gain
    bound = (options.max_change * weight)[..., None]
    np.clip(gain, 1.0 - bound, 1.0 + bound, out=gain)
    return np.clip(rgb * gain, 0.0, 255.0)


class ClassicalHarmonizer(Harmonizer):
    """Colour spill and gentle light matching in a ring around the product."""

    name = "classical"
    version = "1"

    def __call__(self, image: np.ndarray, product_alpha: np.ndarray, *, prompt: str | None, seed: int) -> np.ndarray:
        """Relight around the product; returns an (H, W, 3) uint8 image (deterministic: prompt and seed unused)."""
        options = self.options
        if options.strength <= 0 or options.ring_px <= 0 or not product_alpha.any():
            return image.copy()
        # Work only inside the product's box grown by the ring (and the blur's reach).
        ys, xs = np.nonzero(product_alpha)
        pad = 2 * options.ring_px + EDGE_BAND_PX
        h, w = product_alpha.shape
        y0, y1 = max(0, ys.min() - pad), min(h, ys.max() + 1 + pad)
        x0, x1 = max(0, xs.min() - pad), min(w, xs.max() + 1 + pad)
        crop, crop_alpha = image[y0:y1, x0:x1], product_alpha[y0:y1, x0:x1]
        relit = relight(crop, crop_alpha, options)
        a = crop_alpha.astype(np.float32)[..., None] * (1.0 / 255.0)
        blended = a * crop.astype(np.float32) + (1.0 - a) * relit
        out_crop = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
        out_crop[crop_alpha == 255] = crop[crop_alpha == 255]  # bit-identical product pixels
        out = image.copy()
        out[y0:y1, x0:x1] = out_crop
        return out
