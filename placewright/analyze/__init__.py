"""Analyze stage: what the product is and how large it should appear in the scene.

See :mod:`placewright.analyze.heuristic` for the category table and the size rule.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from placewright.backends import Registry, StageRecord, run_chain
from placewright.errors import InvalidInput
from placewright.settings import AnalyzeSettings

ANALYZERS: Registry = Registry("analyze", classical="heuristic")


@dataclass(frozen=True)
class Analysis:
    """What the product is and its recommended size.

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
    size_fraction: float
    aspect: float
    width_cm: float | None = None
    height_cm: float | None = None
    placement: str | None = None
    confidence: float | None = None

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form for the manifest (optional fields are None when unknown)."""

        def rounded(value: float | None, digits: int) -> float | None:
            return None if value is None else round(float(value), digits)

        return {
            "name": self.name,
            "category": self.category,
            "size_fraction": round(float(self.size_fraction), 4),
            "aspect": round(float(self.aspect), 4),
            "width_cm": rounded(self.width_cm, 1),
            "height_cm": rounded(self.height_cm, 1),
            "placement": self.placement,
            "confidence": rounded(self.confidence, 3),
        }


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


# AI backends register before the classical one (preference order).
from placewright.analyze import llm as _llm  # noqa: E402,F401,I001  (registers the backend)
from placewright.analyze import heuristic as _heuristic  # noqa: E402,F401  (registers the backend)

__all__ = ["ANALYZERS", "Analysis", "AnalyzeResult", "analyze"]
