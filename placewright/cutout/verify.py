"""The cut-out, checked against a second opinion, and replaced by it when only it is sound.

:func:`verified_cut_out` runs the stage (:func:`~placewright.cutout.cut_out`), then cuts the same
photo out with another backend that can run here (the classical one behind an AI model, the best
AI model behind the classical one) and compares the two masks with
:func:`~placewright.quality.check_cutout`. When the chosen cut-out has a hole or a halo and the
second opinion, checked the other way round, has neither, the second opinion is used and the stage
record says why (only when the backend is chosen automatically: a backend the settings name is
kept, and its variants flagged). Either way the check goes with the cut-out into every variant's
quality report.

A product photo with its own transparency keeps it: its alpha is the user's, and is not second-guessed.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace

import numpy as np

from placewright.backends import StageRecord
from placewright.cutout import CUTTERS, EXISTING_ALPHA, CutoutResult, cut_out
from placewright.errors import first_line
from placewright.quality import Check, check_cutout, enabled, skipped
from placewright.settings import CutoutSettings, QualitySettings
from placewright.types import Box

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class VerifiedCutout:
    """The cut-out and its integrity check (``cutout`` in every variant's quality report)."""

    result: CutoutResult
    check: Check


def second_opinion_backends(used: str, options: CutoutSettings) -> list[str]:
    """Backends that may give a second opinion on ``used``'s cut-out, best first.

    Behind an AI backend the classical one (independent, always there); behind the classical one the
    AI backends that can run here, in preference order.
    """
    classical = CUTTERS.classical
    if used != classical:
        return [classical]
    return [
        name for name in CUTTERS.preference if name != used and CUTTERS.get(name).unavailable_reason(options) is None
    ]


def _uncropped_alpha(result: CutoutResult, shape: tuple[int, int]) -> np.ndarray:
    alpha = np.zeros(shape, np.uint8)
    box = result.box
    alpha[box.y0 : box.y1, box.x0 : box.x1] = result.rgba[..., 3]
    return alpha


def _second_opinion(rgb: np.ndarray, used: str, options: CutoutSettings) -> tuple[str, np.ndarray] | None:
    for name in second_opinion_backends(used, options):
        try:
            return name, CUTTERS.get(name)(options)(rgb)
        except Exception as exc:  # found nothing, or a broken model file: a second opinion never fails the stage
            logger.info("no second opinion from %s: %s", name, first_line(exc))
            continue
    return None


def verified_cut_out(
    image: np.ndarray,
    *,
    options: CutoutSettings,
    quality: QualitySettings,
    raise_transient: bool = False,
) -> VerifiedCutout:
    """Cut the product out (see :func:`~placewright.cutout.cut_out`) and check it against a second opinion.

    Args:
        image: (H, W, 3|4) uint8 product photo.
        options: the cut-out settings.
        quality: the gate's limits; with the ``cutout`` check off, no second opinion is made.
        raise_transient: re-raise transient backend errors (for orchestrator retries).
    """
    result = cut_out(image, options=options, raise_transient=raise_transient)
    used = result.record.backend
    if used == EXISTING_ALPHA:
        return VerifiedCutout(result, skipped("cutout", "the product image's own transparency is kept"))
    if not enabled("cutout", quality):
        return VerifiedCutout(result, skipped("cutout", "check turned off"))
    started = time.perf_counter()
    rgb = np.ascontiguousarray(image[..., :3])
    alpha = _uncropped_alpha(result, rgb.shape[:2])
    opinion = _second_opinion(rgb, used, options)
    if opinion is None:
        return VerifiedCutout(result, check_cutout(rgb, alpha, None, quality, reference_name="-"))
    other, other_rgba = opinion
    check = check_cutout(rgb, alpha, other_rgba[..., 3], quality, reference_name=f"{other}'s cut-out")
    if check.failed and options.backend == "auto":  # a backend the settings name is kept (and flagged)
        swapped = check_cutout(rgb, other_rgba[..., 3], alpha, quality, reference_name=f"{used}'s cut-out")
        box = Box.from_mask(other_rgba[..., 3])
        if not swapped.failed and box is not None:
            seconds = result.record.seconds + time.perf_counter() - started
            record = StageRecord(
                backend=other,
                seconds=seconds,
                skipped=result.record.skipped,
                note=f"quality gate: {used}'s cut-out failed ({check.detail}); {other}'s was used",
            )
            crop = np.ascontiguousarray(other_rgba[box.y0 : box.y1, box.x0 : box.x1])
            return VerifiedCutout(CutoutResult(rgba=crop, box=box, record=record), swapped)
    seconds = result.record.seconds + time.perf_counter() - started
    return VerifiedCutout(replace(result, record=replace(result.record, seconds=seconds)), check)
