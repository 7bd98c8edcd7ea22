"""Analyze stage: what the product is and how large it should appear in the scene.

See :mod:`placewright.analyze.heuristic` for the category table and the size rule.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from pydantic import Field, FieldSerializationInfo, field_serializer
from pydantic.dataclasses import dataclass as validated_dataclass

from placewright.backends import Backend, Registry, StageRecord, run_chain
from placewright.errors import InvalidInput
from placewright.settings import AnalyzeSettings

ANALYZERS: Registry[Analyzer] = Registry("analyze", preference=("openai-vision", "heuristic"))
# Digits kept in the manifest (the pipeline itself uses the full values).
_ROUNDING = {"size_fraction": 4, "aspect": 4, "width_cm": 1, "height_cm": 1, "confidence": 3}


@validated_dataclass(frozen=True)
class Analysis:
    """What the product is and its recommended size; recorded as is in the manifest.

    Attributes:
        name: a short human name, e.g. "olive oil bottle".
        category: one of the size-table categories, "product" when unknown.
        size_fraction: product height as a fraction of the output image height.
        aspect: height / width of the cut-out's visible pixels.
        width_cm, height_cm: estimated real-world size of the product as shown (None: unknown;
            the heuristic does not estimate it). The compositor sizes by ``height_cm`` when the
            scene's surface box is known (see :mod:`placewright.composite.place`).
        placement: a short phrase on how the product should stand ("upright, label to camera").
        confidence: the backend's confidence in this analysis, 0..1 (None: not reported).
    """

    name: str
    category: str
    size_fraction: float = Field(description="Product height as a fraction of the output height.")
    aspect: float = Field(description="Cut-out height / width.")
    width_cm: float | None = Field(default=None, description="Estimated real-world width (None: not estimated).")
    height_cm: float | None = Field(default=None, description="Estimated real-world height (None: not estimated).")
    placement: str | None = Field(default=None, description="How the product should stand, when the backend says.")
    confidence: float | None = Field(default=None, description="The backend's confidence, 0..1 (None: not reported).")

    @field_serializer(*_ROUNDING)
    def _rounded(self, value: float | None, info: FieldSerializationInfo) -> float | None:
        return None if value is None else round(float(value), _ROUNDING[info.field_name])


class Analyzer(Backend[AnalyzeSettings]):
    """Base of the analyze backends."""

    registry: ClassVar[Registry[Analyzer]] = ANALYZERS

    @abstractmethod
    def __call__(self, cutout: np.ndarray, filename: str, prompts: list[str]) -> Analysis:
        """Name the product in ``cutout`` ((H, W, 4) uint8) and recommend its size."""


@dataclass(frozen=True)
class AnalyzeResult:
    """The analysis and which backend produced it."""

    analysis: Analysis
    record: StageRecord


def analyze(
    cutout: np.ndarray,
    *,
    filename: str,
    prompts: list[str],
    options: AnalyzeSettings,
    raise_transient: bool = False,
) -> AnalyzeResult:
    """Name and categorise the product and recommend its size.

    Args:
        cutout: (H, W, 4) RGBA uint8 cut-out (an (H, W, 3) array counts as fully opaque).
        filename: the product photo's file name (folders and extension are ignored).
        prompts: the scene prompts, searched when the file name gives no category.
        options: the analyze settings section.
        raise_transient: re-raise transient backend errors (for orchestrator retries).

    Returns:
        An :class:`AnalyzeResult`.

    Raises:
        InvalidInput: for a wrongly shaped array or a fully transparent cut-out.
    """
    if not isinstance(cutout, np.ndarray) or cutout.ndim != 3 or cutout.shape[2] not in (3, 4):
        shape = getattr(cutout, "shape", None)
        raise InvalidInput(f"analyze expects an (H, W, 3|4) array, got shape {shape}", stage="analyze")
    analysis, record = run_chain(
        "analyze",
        ANALYZERS.chain(options.backend),
        lambda backend: backend(options)(cutout, filename, list(prompts)),
        options=options,
        raise_transient=raise_transient,
    )
    return AnalyzeResult(analysis=analysis, record=record)


# The backends register themselves when defined (their order here does not matter: see ANALYZERS).
from placewright.analyze import heuristic, llm  # noqa: E402,F401

__all__ = ["ANALYZERS", "Analysis", "AnalyzeResult", "Analyzer", "analyze"]
