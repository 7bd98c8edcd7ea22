"""Classical enhancement: Lanczos upscaling plus a halo-free unsharp mask.

Sharpening works on luminance only (the same delta is added to R, G and B, so no colour
fringes appear), ignores differences below ``sharpen_threshold`` (noise and JPEG blocks
are not amplified) and is then clamped to the local minimum/maximum of the upscaled image
plus ``overshoot_limit`` levels: edges get steeper, but never grow bright or dark halos.
(The clamp acts on luminance; the final R, G, B are also clipped to 0-255.)
An alpha channel is resampled smoothly (bilinear: no ringing) and never sharpened.
"""

from __future__ import annotations

import cv2
import numpy as np

from placewright.enhance import Enhancer
from placewright.settings import EnhanceSettings
from placewright.types import LUMA_WEIGHTS

# Rec. 601 luma weights: the classic perceptual weighting of R, G and B.
# Alpha at or above this (0-255) counts as "has a trustworthy colour" when colour is bled
# into transparent pixels before resampling (so transparent black does not darken edges).
OPAQUE_ENOUGH = 8
# Gaussian sigmas (pixels, at input resolution) of the normalised convolutions used to bleed
# edge colours outward into transparent pixels: a small one for detail, a wide one to fill.
BLEED_SIGMAS = (2.0, 8.0, 32.0)
# Wide bleed blurs run at a resolution where sigma spans this many pixels: plenty for a
# fill colour that is hidden by alpha anyway, and 4-16x cheaper than full resolution.
BLEED_PIXELS_PER_SIGMA = 2.0
# The local min/max used to bound overshoot is taken over this window (pixels): 3x3 is the
# neighbourhood an edge's two sides live in after sharpening.
CLAMP_WINDOW = 3


def output_size(width: int, height: int, options: EnhanceSettings) -> tuple[int, int, float]:
    """The upscaled ``(width, height, scale)``; scale 1.0 when no upscaling is wanted."""
    long_side = max(width, height)
    if long_side >= options.target_long_side:
        return width, height, 1.0
    scale = min(options.target_long_side / long_side, options.max_scale)
    if scale <= 1.0:
        return width, height, 1.0
    return max(1, round(width * scale)), max(1, round(height * scale)), float(scale)


def _blur_reduced(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of ``image``, computed at a resolution reduced in step with ``sigma``."""
    factor = max(1, int(sigma / BLEED_PIXELS_PER_SIGMA))
    if factor == 1:
        return cv2.GaussianBlur(image, (0, 0), sigma)
    height, width = image.shape[:2]
    small = cv2.resize(image, (max(1, width // factor), max(1, height // factor)), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), sigma / factor)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)


def bleed_colour(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Replace the colour of (nearly) transparent pixels by nearby opaque colours.

    Args:
        rgb: (H, W, 3) float32 colour.
        alpha: (H, W) uint8 alpha.

    Returns:
        (H, W, 3) float32 colour, unchanged where ``alpha >= OPAQUE_ENOUGH``.
    """
    known = (alpha >= OPAQUE_ENOUGH).astype(np.float32)
    if known.all() or not known.any():
        return rgb
    filled = rgb * known[..., None]
    weight = known.copy()
    out = rgb.copy()
    todo = known < 1
    for sigma in BLEED_SIGMAS:
        num, den = _blur_reduced(filled, sigma), _blur_reduced(weight, sigma)
        ok = todo & (den > 1e-3)
        out[ok] = num[ok] / den[ok][:, None]
        todo &= ~ok
        if not todo.any():
            break
    if todo.any():  # very far from any opaque pixel: the mean opaque colour
        out[todo] = rgb[known > 0].mean(axis=0)
    return out


def sharpen(rgb: np.ndarray, options: EnhanceSettings, scale: float = 1.0) -> np.ndarray:
    """Unsharp-mask the luminance of an (H, W, 3) float32 image (0-255), halo-free.

    The Gaussian sigma is ``sharpen_radius + sharpen_radius_per_scale * (scale - 1)``: an
    image upscaled by ``scale`` has edges about ``scale`` pixels wide, which a 1-pixel mask
    barely touches.

    Returns an (H, W, 3) float32 image in 0-255.
    """
    if options.sharpen_amount <= 0:
        return rgb
    sigma = options.sharpen_radius + options.sharpen_radius_per_scale * max(0.0, scale - 1.0)
    luma = cv2.transform(rgb, LUMA_WEIGHTS[None, :])  # (H, W) float32
    detail = luma - cv2.GaussianBlur(luma, (0, 0), sigma)
    threshold = float(options.sharpen_threshold)
    if threshold > 0:
        # Soft knee: nothing below the threshold, full strength from twice the threshold.
        knee = np.abs(detail)
        knee -= threshold
        knee *= 1.0 / threshold
        np.clip(knee, 0.0, 1.0, out=knee)
        detail *= knee
    detail *= options.sharpen_amount
    sharp = luma + detail
    # Halo limit on luminance: stay within the local min/max (plus a few levels).
    kernel = np.ones((CLAMP_WINDOW, CLAMP_WINDOW), np.uint8)
    limit = float(options.overshoot_limit)
    np.minimum(sharp, cv2.dilate(luma, kernel) + limit, out=sharp)
    np.maximum(sharp, cv2.erode(luma, kernel) - limit, out=sharp)
    sharp -= luma  # the delta, added equally to R, G and B: no colour fringes
    out = rgb + sharp[..., None]
    return np.clip(out, 0.0, 255.0, out=out)


class LanczosEnhancer(Enhancer):
    """Lanczos-4 upscaling, luminance unsharp mask, bilinear alpha."""

    name = "lanczos"
    version = "1"

    def __call__(self, image: np.ndarray) -> tuple[np.ndarray, float]:
        """Upscale ``image`` ((H, W, 3|4) uint8); returns the new image and the scale used."""
        height, width = image.shape[:2]
        new_w, new_h, scale = output_size(width, height, self.options)
        if scale == 1.0:
            return image.copy(), 1.0
        rgb = image[..., :3].astype(np.float32)
        alpha = image[..., 3] if image.shape[2] == 4 else None
        if alpha is not None:
            rgb = bleed_colour(rgb, alpha)
        up = cv2.resize(rgb, (new_w, new_h), interpolation=cv2.INTER_LANCZOS4)
        # Lanczos rings a little at hard edges; bound it by the input's own range first.
        np.clip(up, 0.0, 255.0, out=up)
        up = sharpen(up, self.options, scale)
        out = np.empty((new_h, new_w, image.shape[2]), np.uint8)
        out[..., :3] = np.rint(up, out=up)
        if alpha is not None:
            out[..., 3] = cv2.resize(alpha, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
        return out, scale
