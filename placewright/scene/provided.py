"""The user's own background photo, fitted to the output size (cover + centre crop)."""

from __future__ import annotations

import math

import cv2
import numpy as np

from placewright.errors import InvalidInput
from placewright.types import Size


def flatten_over_white(image: np.ndarray) -> np.ndarray:
    """(h, w, 3) uint8 RGB: RGBA composited over white, RGB returned as is (not copied)."""
    if image.shape[2] == 3:
        return image
    alpha = image[..., 3:4].astype(np.float32) / 255.0
    rgb = image[..., :3].astype(np.float32) * alpha + 255.0 * (1.0 - alpha)
    return np.clip(rgb + 0.5, 0, 255).astype(np.uint8)


def cover_crop(image: np.ndarray, size: Size) -> np.ndarray:
    """Scale ``image`` to cover ``size`` (aspect kept), then crop the centre.

    Args:
        image: (h, w, 3) RGB or (h, w, 4) RGBA uint8; not modified.
        size: the output size.

    Returns:
        (size.height, size.width, 3) uint8 RGB, a new array.

    Raises:
        InvalidInput: for a non-uint8 array or a wrong shape.
    """
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise InvalidInput("the background must be a uint8 numpy array", stage="scene")
    if image.ndim != 3 or image.shape[2] not in (3, 4) or min(image.shape[:2]) < 1:
        raise InvalidInput(f"the background must be (H, W, 3|4), got shape {image.shape}", stage="scene")
    rgb = flatten_over_white(image)
    h, w = rgb.shape[:2]
    scale = max(size.width / w, size.height / h)
    # Round up so the scaled image always covers; the crop removes the (< 1 px) excess.
    new_w = max(size.width, math.ceil(w * scale - 1e-6))
    new_h = max(size.height, math.ceil(h * scale - 1e-6))
    if (new_w, new_h) == (w, h):
        scaled = rgb
    else:
        interpolation = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LANCZOS4
        scaled = cv2.resize(np.ascontiguousarray(rgb), (new_w, new_h), interpolation=interpolation)
    x0 = (new_w - size.width) // 2
    y0 = (new_h - size.height) // 2
    return np.ascontiguousarray(scaled[y0 : y0 + size.height, x0 : x0 + size.width]).copy()
