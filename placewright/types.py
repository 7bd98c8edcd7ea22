"""Image and geometry conventions shared by every stage.

Images are ``numpy.ndarray`` of dtype uint8, shape (H, W, 3) for RGB or (H, W, 4) for RGBA.
Masks and alpha channels are (H, W) uint8 with 0 = background and 255 = product.
Boxes are pixel boxes ``Box(x0, y0, x1, y1)``: x0/y0 inclusive, x1/y1 exclusive.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from placewright.errors import InvalidInput

# Rec. 601 luma: how bright a pixel looks (every stage that weighs brightness uses these).
LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)

OutputFormat = Literal["webp", "jpeg", "png"]
# How the manifest's URLs are made: see StorageSettings.urls.
UrlMode = Literal["auto", "presigned", "public", "plain"]


@dataclass(frozen=True)
class Box:
    """An axis-aligned pixel box: columns ``x0 <= x < x1``, rows ``y0 <= y < y1``."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    @property
    def center_x(self) -> float:
        return (self.x0 + self.x1) / 2

    def as_list(self) -> list[int]:
        return [self.x0, self.y0, self.x1, self.y1]

    @classmethod
    def from_mask(cls, mask: np.ndarray, threshold: int = 0) -> Box | None:
        """The tight box around ``mask > threshold``, or None when the mask is empty."""
        rows = np.flatnonzero((mask > threshold).any(axis=1))
        if rows.size == 0:
            return None
        cols = np.flatnonzero((mask > threshold).any(axis=0))
        return cls(int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)


@dataclass(frozen=True)
class Size:
    """An image size in pixels (the run contract's ``OutputSize`` also reads ``"WIDTHxHEIGHT"`` text)."""

    width: int
    height: int

    def __str__(self) -> str:
        return f"{self.width}x{self.height}"


@dataclass(frozen=True)
class Surface:
    """Where the product stands in a scene.

    ``line_y`` is the row the product's base rests on (output pixels). ``box`` is the
    surface region found (a tabletop), or None when only the line is known.
    ``center_x`` is the column the product is centred on.
    """

    line_y: int
    center_x: int
    box: Box | None
    backend: str
    confidence: float = 1.0


def check_image(
    image: object, *, stage: str, what: str = "image", channels: tuple[int, ...] = (3, 4), min_side: int = 1
) -> None:
    """Raise :class:`InvalidInput` unless ``image`` is a uint8 (H, W, C) array with C in ``channels``."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise InvalidInput(f"{stage} expects a uint8 {what} array", stage=stage)
    if image.ndim != 3 or image.shape[2] not in channels or min(image.shape[:2]) < min_side:
        wanted = "|".join(map(str, channels))
        raise InvalidInput(f"{stage} expects an (H, W, {wanted}) {what}, got shape {image.shape}", stage=stage)
