"""The small values stage tasks hand each other: references to stored images plus metadata."""

from __future__ import annotations

from dataclasses import dataclass

from placewright.backends import StageRecord
from placewright.store import ImageRef
from placewright.types import Box, Surface


@dataclass(frozen=True)
class StagedImage:
    """An image a stage produced, and how."""

    image: ImageRef
    record: StageRecord


@dataclass(frozen=True)
class CutoutOutput:
    """The RGBA cut-out, and its crop box in the enhanced product image."""

    image: ImageRef
    box: Box
    record: StageRecord


@dataclass(frozen=True)
class VariantSpec:
    """What one variant is made from: a prompt or a provided background, and its seed."""

    index: int
    seed: int
    prompt: str | None = None
    background: ImageRef | None = None
    background_source: str | None = None


@dataclass(frozen=True)
class SceneOutput:
    image: ImageRef
    surface: Surface | None
    record: StageRecord


@dataclass(frozen=True)
class CompositeOutput:
    image: ImageRef
    product_alpha: ImageRef
    product_box: Box
    record: StageRecord
