"""Enhance stage: upscale small product photos and sharpen their detail.

Products whose long side is below ``EnhanceSettings.target_long_side`` are upscaled to it
(never by more than ``max_scale``); larger ones are returned unchanged with scale 1.0.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from placewright.backends import Backend, Registry, StageRecord, run_chain
from placewright.settings import EnhanceSettings
from placewright.types import check_image

ENHANCERS: Registry[Enhancer] = Registry("enhance", preference=("spandrel", "lanczos"))


class Enhancer(Backend[EnhanceSettings]):
    """Base of the enhance backends."""

    registry: ClassVar[Registry[Enhancer]] = ENHANCERS

    @abstractmethod
    def __call__(self, image: np.ndarray) -> tuple[np.ndarray, float]:
        """Upscale ``image`` ((H, W, 3|4) uint8); returns the new image and the scale used (1.0: unchanged)."""


@dataclass(frozen=True)
class EnhanceResult:
    """The enhanced image.

    Attributes:
        image: (H', W', C) uint8, same channel count as the input.
        scale: the factor applied to both sides (1.0 when unchanged).
        record: which backend ran.
    """

    image: np.ndarray
    scale: float
    record: StageRecord


def _check(image: np.ndarray) -> None:
    check_image(image, stage="enhance")


def enhance(image: np.ndarray, *, options: EnhanceSettings, raise_transient: bool = False) -> EnhanceResult:
    """Upscale and sharpen a product photo.

    Args:
        image: (H, W, 3) RGB or (H, W, 4) RGBA uint8; not modified.
        options: the enhance settings section.
        raise_transient: re-raise transient backend errors (for orchestrator retries).

    Returns:
        An :class:`EnhanceResult`; for RGBA input the alpha is resampled smoothly and
        never sharpened.

    Raises:
        InvalidInput: for a non-uint8 or wrongly shaped array.
    """
    _check(image)
    (out, scale), record = run_chain(
        "enhance",
        ENHANCERS.chain(options.backend),
        lambda backend: backend(options)(image),
        options=options,
        raise_transient=raise_transient,
    )
    return EnhanceResult(image=out, scale=scale, record=record)


# The backends register themselves when defined (their order here does not matter: see ENHANCERS).
from placewright.enhance import classical, spandrel  # noqa: E402,F401

__all__ = ["ENHANCERS", "EnhanceResult", "Enhancer", "enhance"]
