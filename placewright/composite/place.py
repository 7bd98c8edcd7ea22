"""Geometry of the placement: product size, resampling and position in the scene.

The product's height is ``size_fraction * H``, then capped so that its width stays within
``max_width_fraction * W`` (and inside the side margins) and so that, standing on the
surface line, its top keeps ``margin_fraction * H`` from the top edge. Its base (the
lowest row where alpha >= 0.5) lands on the surface line; it is centred on the surface's
``center_x`` and clamped horizontally into the frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from placewright.errors import InvalidInput
from placewright.settings import CompositeSettings

# Alpha (0-1) from which a pixel counts as solid product: the base row is the lowest row
# with such a pixel (the soft anti-aliased fringe below it is not the base).
SOLID_ALPHA = 0.5
# Smallest product height (pixels) we place: below this nothing recognisable is left.
MIN_PRODUCT_PX = 8
# When the surface line is so high that a product could only be a sliver above it, the
# line is lowered so the product keeps at least this fraction of the frame height.
MIN_VISIBLE_FRACTION = 0.10


@dataclass(frozen=True)
class Placement:
    """Where the resized product goes.

    Attributes:
        premult: (h, w, 3) float32 colour premultiplied by alpha, 0-1.
        alpha: (h, w) float32 alpha, 0-1.
        x0, y0: output position of the top-left corner of ``alpha`` (may be partly outside
            the frame only for the soft fringe below the base line).
        base_y: output row of the product's base.
    """

    premult: np.ndarray
    alpha: np.ndarray
    x0: int
    y0: int
    base_y: int

    @property
    def height(self) -> int:
        return self.alpha.shape[0]

    @property
    def width(self) -> int:
        return self.alpha.shape[1]


def crop_premultiplied(cutout: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Crop an RGBA cut-out to its visible pixels and premultiply.

    Args:
        cutout: (h, w, 4) RGBA or (h, w, 3) RGB (opaque) uint8.

    Returns:
        ``(premult, alpha)``: (h', w', 3) and (h', w') float32 in 0-1.

    Raises:
        InvalidInput: when the cut-out is fully transparent.
    """
    if cutout.shape[2] == 4:
        alpha_u8 = cutout[..., 3]
        rows = np.flatnonzero(alpha_u8.any(axis=1))
        if rows.size == 0:
            raise InvalidInput("the cut-out is fully transparent", stage="composite")
        cols = np.flatnonzero(alpha_u8.any(axis=0))
        crop = cutout[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
        alpha = crop[..., 3].astype(np.float32) * (1.0 / 255.0)
    else:
        crop = cutout
        alpha = np.ones(crop.shape[:2], np.float32)
    premult = crop[..., :3].astype(np.float32) * (1.0 / 255.0) * alpha[..., None]
    return premult, alpha


def fit_size(
    crop_h: int, crop_w: int, scene_h: int, scene_w: int, line_y: int, size_fraction: float,
    options: CompositeSettings,
) -> tuple[int, int]:  # fmt: skip
    """The product's output ``(height, width)``, aspect preserved, fitting the frame."""
    aspect = crop_h / crop_w
    margin = options.margin_fraction * scene_h
    height = size_fraction * scene_h
    max_width = min(options.max_width_fraction * scene_w, scene_w - 2 * options.margin_fraction * scene_w)
    height = min(height, max_width * aspect, line_y + 1 - margin)
    height = max(height, float(MIN_PRODUCT_PX))
    width = max(1, round(height / aspect))
    return max(1, round(height)), width


def effective_line(line_y: int, scene_h: int, options: CompositeSettings) -> int:
    """The surface line clamped into the frame, low enough for a visible product."""
    lowest_top = options.margin_fraction * scene_h + max(MIN_VISIBLE_FRACTION * scene_h, MIN_PRODUCT_PX)
    return int(min(max(line_y, round(lowest_top)), scene_h - 1))


def resize_premultiplied(
    premult: np.ndarray, alpha: np.ndarray, width: int, height: int
) -> tuple[np.ndarray, np.ndarray]:
    """Resample premultiplied colour and alpha together (area down, Lanczos up).

    Returns (height, width, 3) and (height, width) float32, alpha in 0-1 and colour
    within ``[0, alpha]`` (Lanczos ringing cannot create colour where there is no alpha).
    """
    shrinking = width * height < alpha.shape[0] * alpha.shape[1]
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LANCZOS4
    stack = np.dstack([premult, alpha])
    out = cv2.resize(stack, (width, height), interpolation=interpolation)
    new_alpha = np.clip(out[..., 3], 0.0, 1.0)
    new_alpha[new_alpha < 0.5 / 255.0] = 0.0  # ringing crumbs that would round to 0 anyway
    new_premult = np.clip(out[..., :3], 0.0, new_alpha[..., None])
    return np.ascontiguousarray(new_premult), new_alpha


def feather(premult: np.ndarray, alpha: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Soften the alpha edge inward only (never outward: no halo), keeping colour straight."""
    if sigma <= 0:
        return premult, alpha
    pad = int(np.ceil(3 * sigma))
    blurred = cv2.GaussianBlur(
        cv2.copyMakeBorder(alpha, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0), (0, 0), sigma
    )[pad:-pad, pad:-pad]
    new_alpha = np.minimum(alpha, blurred)
    ratio = np.divide(new_alpha, alpha, out=np.zeros_like(alpha), where=alpha > 0)
    return premult * ratio[..., None], new_alpha


def base_row(alpha: np.ndarray) -> int:
    """Index of the lowest row of ``alpha`` with a solid pixel (alpha >= SOLID_ALPHA)."""
    rows = np.flatnonzero((alpha >= SOLID_ALPHA).any(axis=1))
    if rows.size == 0:
        rows = np.flatnonzero((alpha > 0).any(axis=1))
    return int(rows[-1]) if rows.size else alpha.shape[0] - 1


def place(
    cutout: np.ndarray, scene_h: int, scene_w: int, line_y: int, center_x: int, size_fraction: float,
    options: CompositeSettings,
) -> Placement:  # fmt: skip
    """Resize the cut-out and position it standing on the surface line.

    Args:
        cutout: (h, w, 4) RGBA uint8 cut-out.
        scene_h, scene_w: output size.
        line_y, center_x: the surface line and centre column.
        size_fraction: recommended product height / output height.
        options: composite settings.

    Returns:
        The :class:`Placement`.
    """
    premult, alpha = crop_premultiplied(cutout)
    line = effective_line(line_y, scene_h, options)
    height, width = fit_size(alpha.shape[0], alpha.shape[1], scene_h, scene_w, line, size_fraction, options)
    premult, alpha = resize_premultiplied(premult, alpha, width, height)
    premult, alpha = feather(premult, alpha, options.feather_px)
    base = base_row(alpha)
    y0 = line - base
    side = round(options.margin_fraction * scene_w) if width + 2 * options.margin_fraction * scene_w <= scene_w else 0
    x0 = round(center_x - width / 2)
    x0 = int(min(max(x0, side), scene_w - width - side))
    return Placement(premult=premult, alpha=alpha, x0=x0, y0=int(y0), base_y=line)
