"""Soft drop shadow and contact shadow under the product.

Both are density maps in 0-1 over a region of interest (ROI) of the output; the scene is
darkened by multiplying with ``(1 - shadow_opacity * drop) * (1 - contact_opacity * contact)``,
so shadows take the colour of the surface they fall on (no grey paint).

Drop shadow: the light comes from the upper left and front, so the silhouette is projected
back (up in the image, squashed to ``shadow_length`` of its height) and to the right
(``shadow_skew`` per unit height), then blurred: sharper near the base, softer and fainter
far from it, as real shadows are. Contact shadow: a flat blurred ellipse as wide as the
product's base, centred on the base line. Nothing is drawn above the product's top.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from placewright.settings import CompositeSettings

# The drop shadow is computed with the product this tall (pixels) at most: it is blurred
# heavily, so more resolution is invisible and only costs time.
WORK_HEIGHT = 160
# Blur (sigma) of the drop shadow where it touches the base, as a fraction of product height.
NEAR_SOFTNESS = 0.012
# How much fainter the drop shadow gets at its far end (0 = uniform, 1 = vanishes).
FAR_FADE = 0.6
# Rows of the product's bottom (fraction of its height) whose solid width is the base width.
BASE_ROWS_FRACTION = 0.04
# Contact ellipse: half-width relative to the base half-width, half-height relative to the
# base width (a flat pool of darkness), and blur relative to the half-height.
CONTACT_WIDTH_FACTOR = 1.08
CONTACT_HEIGHT_FACTOR = 0.07
CONTACT_BLUR_FACTOR = 0.6
# Smallest contact half-height and blur, in pixels, so tiny products still get a contact.
CONTACT_MIN_PX = 2.0
# Alpha (0-1) counted as solid when measuring the base width.
SOLID_ALPHA = 0.5


@dataclass(frozen=True)
class ShadowMaps:
    """Shadow densities (0-1) over the ROI ``rows x cols`` of the output."""

    rows: slice
    cols: slice
    drop: np.ndarray
    contact: np.ndarray

    def factor(self, options: CompositeSettings) -> np.ndarray:
        """(h, w, 1) float32 multiplier for the scene ROI (1 = untouched)."""
        drop = 1.0 - options.shadow_opacity * self.drop
        contact = 1.0 - options.contact_opacity * self.contact
        return (drop * contact)[..., None]


def _base_extent(alpha: np.ndarray, base: int) -> tuple[float, float]:
    """(centre column, half-width) of the product's solid base, in ``alpha`` coordinates."""
    rows = max(1, round(BASE_ROWS_FRACTION * alpha.shape[0]))
    band = alpha[max(0, base - rows + 1) : base + 1] >= SOLID_ALPHA
    cols = np.flatnonzero(band.any(axis=0))
    if cols.size == 0:
        cols = np.flatnonzero((alpha > 0).any(axis=0))
    return (cols[0] + cols[-1] + 1) / 2.0, (cols[-1] + 1 - cols[0]) / 2.0


def shadow_maps(
    alpha: np.ndarray, x0: int, y0: int, base_y: int, scene_h: int, scene_w: int, options: CompositeSettings
) -> ShadowMaps | None:
    """Drop and contact shadow densities for a product placed at ``(x0, y0)``.

    Args:
        alpha: (h, w) float32 product alpha, 0-1, as placed.
        x0, y0: output position of ``alpha``'s top-left corner.
        base_y: output row of the product's base.
        scene_h, scene_w: output size.
        options: composite settings.

    Returns:
        The maps, or None when the ROI is empty (nothing to draw).
    """
    height, width = alpha.shape
    base = base_y - y0  # base row in alpha coordinates
    far_sigma = options.shadow_softness * height
    reach_x = max(0.0, options.shadow_skew) * height
    reach_left = max(0.0, -options.shadow_skew) * height
    pad = int(np.ceil(3 * far_sigma + CONTACT_MIN_PX * 3 + 2))
    # The ROI: from the product's top to below the base, wide enough for shadow and blur.
    top = max(0, y0)
    bottom = min(scene_h, base_y + pad + 1)
    left = max(0, int(x0 - reach_left - pad))
    right = min(scene_w, int(np.ceil(x0 + width + reach_x + pad)))
    if bottom <= top or right <= left:
        return None
    roi_h, roi_w = bottom - top, right - left

    # Drop shadow, at reduced resolution.
    scale = min(1.0, WORK_HEIGHT / max(height, 1))
    work_w, work_h = max(1, round(roi_w * scale)), max(1, round(roi_h * scale))
    canvas = np.zeros((roi_h, roi_w), np.float32)
    ay0, ax0 = y0 - top, x0 - left
    sy0, sx0 = max(0, -ay0), max(0, -ax0)
    sy1, sx1 = min(height, roi_h - ay0), min(width, roi_w - ax0)
    canvas[ay0 + sy0 : ay0 + sy1, ax0 + sx0 : ax0 + sx1] = alpha[sy0:sy1, sx0:sx1]
    small = cv2.resize(canvas, (work_w, work_h), interpolation=cv2.INTER_AREA)
    b = (base_y - top + 0.5) * scale - 0.5
    k, s = options.shadow_skew, options.shadow_length
    matrix = np.float32([[1.0, -k, k * b], [0.0, s, (1.0 - s) * b]])
    projected = cv2.warpAffine(small, matrix, (work_w, work_h), flags=cv2.INTER_LINEAR)
    near = cv2.GaussianBlur(projected, (0, 0), max(0.5, NEAR_SOFTNESS * height * scale))
    far = cv2.GaussianBlur(projected, (0, 0), max(0.5, far_sigma * scale))
    reach = max(s * height * scale, 1.0)
    yy = np.arange(work_h, dtype=np.float32)[:, None]
    t = np.clip((b - yy) / reach, 0.0, 1.0)  # 0 at the base, 1 at the shadow's far end
    drop_small = ((1.0 - t) * near + t * far) * (1.0 - FAR_FADE * t)
    drop = cv2.resize(drop_small, (roi_w, roi_h), interpolation=cv2.INTER_LINEAR)

    # Contact shadow, at full resolution (it is small and must be precise at the base).
    centre, half_w = _base_extent(alpha, base)
    half_h = max(CONTACT_MIN_PX, CONTACT_HEIGHT_FACTOR * 2 * half_w)
    contact = np.zeros((roi_h, roi_w), np.float32)
    cv2.ellipse(
        contact,
        (round(x0 + centre - left), round(base_y - top)),
        (max(1, round(CONTACT_WIDTH_FACTOR * half_w)), max(1, round(half_h))),
        0, 0, 360, 1.0, thickness=-1, lineType=cv2.LINE_AA,
    )  # fmt: skip
    contact = cv2.GaussianBlur(contact, (0, 0), max(CONTACT_MIN_PX / 2, CONTACT_BLUR_FACTOR * half_h))

    # Never above the product's top (the ROI starts there) nor outside 0-1.
    np.clip(drop, 0.0, 1.0, out=drop)
    np.clip(contact, 0.0, 1.0, out=contact)
    return ShadowMaps(rows=slice(top, bottom), cols=slice(left, right), drop=drop, contact=contact)
