"""The small values stage tasks hand each other: references to stored images plus their stage's record.

Every stage output has a ``record`` (a :class:`~placewright.backends.StageRecord`): the manifest lists them.
"""

from __future__ import annotations

from dataclasses import dataclass

from placewright.backends import StageRecord
from placewright.quality import Check
from placewright.store import ImageRef
from placewright.types import Box, Surface


@dataclass(frozen=True)
class StagedImage:
    """An image a stage produced, and how."""

    image: ImageRef
    record: StageRecord


@dataclass(frozen=True)
class CutoutOutput:
    """The RGBA cut-out, its crop box in the enhanced product image, and its integrity check."""

    image: ImageRef
    box: Box
    record: StageRecord
    check: Check | None = None


@dataclass(frozen=True)
class SceneOutput:
    """The scene, and its surface when the scene backend knows it (procedural scenes)."""

    image: ImageRef
    surface: Surface | None
    record: StageRecord


@dataclass(frozen=True)
class CompositeOutput:
    """The composite, the product's alpha in it, and the product's box."""

    image: ImageRef
    product_alpha: ImageRef
    product_box: Box
    record: StageRecord
