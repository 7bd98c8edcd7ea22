"""Bounded colour and brightness matching of the product to its local background.

The product's mean luminance moves ``color_match`` of the way toward the luminance of
the scene around where it stands, and the scene's colour cast (its channel means relative
to its luminance) is applied with weight ``color_match * CAST_SHARE``. The result is one
gain per channel, each clamped to ``1 ± max_gain``: the product takes on the scene's light
a little, while its labels and brand colours stay true.
"""

from __future__ import annotations

import numpy as np

from placewright.settings import CompositeSettings
from placewright.types import LUMA_WEIGHTS

# Rec. 601 luma weights.
# Only part of a scene's colour is its light (the rest is the surfaces' own colour: a
# wooden table is brown under white light), so only this share of its cast is transferred.
CAST_SHARE = 0.5
# The local background: the product's box grown by this fraction of its size on each side.
LOCAL_PAD = 0.5
# Luminance (0-1) below which means are treated as this, so near-black products or scenes
# do not produce huge or undefined ratios (the gain clamp would catch them, but not NaN).
MIN_LUMA = 0.02


def local_region(scene_h: int, scene_w: int, x0: int, y0: int, x1: int, y1: int) -> tuple[slice, slice]:
    """Row and column slices of the background around the box ``[x0, x1) x [y0, y1)``."""
    pad_x = round(LOCAL_PAD * (x1 - x0))
    pad_y = round(LOCAL_PAD * (y1 - y0))
    return (
        slice(max(0, y0 - pad_y), min(scene_h, y1 + pad_y)),
        slice(max(0, x0 - pad_x), min(scene_w, x1 + pad_x)),
    )


def match_gains(
    premult: np.ndarray, alpha: np.ndarray, background: np.ndarray, options: CompositeSettings
) -> np.ndarray:
    """Per-channel gains for the product.

    Args:
        premult: (h, w, 3) float32 premultiplied product colour, 0-1.
        alpha: (h, w) float32 product alpha, 0-1.
        background: (m, n, 3) uint8 local scene pixels.
        options: composite settings (``color_match``, ``max_gain``).

    Returns:
        (3,) float32 gains, each within ``[1 - max_gain, 1 + max_gain]``.
    """
    weight = float(alpha.sum())
    if options.color_match <= 0 or weight <= 0 or background.size == 0:
        return np.ones(3, np.float32)
    product_mean = premult.reshape(-1, 3).sum(axis=0) / weight
    scene_mean = background.reshape(-1, 3).mean(axis=0).astype(np.float32) / 255.0
    product_luma = max(float(product_mean @ LUMA_WEIGHTS), MIN_LUMA)
    scene_luma = max(float(scene_mean @ LUMA_WEIGHTS), MIN_LUMA)
    luma_gain = 1.0 + options.color_match * (scene_luma - product_luma) / product_luma
    cast = scene_mean / scene_luma
    cast_gain = 1.0 + options.color_match * CAST_SHARE * (cast - 1.0)
    gains = luma_gain * cast_gain
    return np.clip(gains, 1.0 - options.max_gain, 1.0 + options.max_gain).astype(np.float32)
