"""Enhance stage: upscale small product photos and sharpen their detail.

Products whose long side is below ``EnhanceSettings.target_long_side`` are upscaled to it
(never by more than ``max_scale``); larger ones are returned unchanged with scale 1.0.

**Label guard.** Upscalers (GANs above all, but also sharpening) can turn small label text
into plausible wrong letters, and in an ad the label must not change. After upscaling, when
the OCR models are present (``enhance.ocr``), the label is read twice at the same normalised
text height (``ocr.text_height``): in the source resized without sharpening (the reference,
which holds exactly the source's information) and in the result. When the result's legible
lines read differently (CER above ``label_max_cer``), the text regions (grown by
``label_margin`` text heights, feathered) take the plain resized source's pixels; the result is
read again, and if it still fails the whole image is the plain resized source. The stage
record's ``note`` says what happened (or that the guard was off).
"""

from __future__ import annotations

import dataclasses
import time
from abc import abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import cv2
import numpy as np

from placewright import ocr
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
        never sharpened. Its record's ``note`` says what the label guard did.

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
    if scale != 1.0:
        started = time.perf_counter()
        out, note = guard_label(image, out, options=options)
        record = dataclasses.replace(record, seconds=record.seconds + time.perf_counter() - started, note=note)
    return EnhanceResult(image=out, scale=scale, record=record)


# Feathering of the protected text regions: Gaussian sigma as a fraction of the text height.
FEATHER_PER_HEIGHT = 0.15


def plain_resize(image: np.ndarray, size: tuple[int, int], options: EnhanceSettings) -> np.ndarray:
    """``image`` resized to ``size`` (width, height) by the classical backend without sharpening.

    It holds exactly the source's information: what the label guard falls back to.
    """
    plain, _ = classical.LanczosEnhancer(options.model_copy(update={"sharpen_amount": 0.0}))(image)
    if plain.shape[1::-1] != size:
        shrink = size[0] < plain.shape[1]
        plain = cv2.resize(plain, size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LANCZOS4)
    return plain


def text_mask(shape: tuple[int, int], lines: list[ocr.TextLine], margin: float) -> np.ndarray:
    """(H, W) float32 0..1 mask of the lines' boxes, each grown by ``margin`` of its height and feathered."""
    mask = np.zeros(shape, np.float32)
    heights = []
    for line in lines:
        along, across = line.box[1] - line.box[0], line.box[3] - line.box[0]
        grow = margin * line.height
        unit_along = along / max(1e-6, float(np.linalg.norm(along)))
        unit_across = across / max(1e-6, float(np.linalg.norm(across)))
        box = np.array(
            [
                line.box[0] - grow * (unit_along + unit_across),
                line.box[1] + grow * (unit_along - unit_across),
                line.box[2] + grow * (unit_along + unit_across),
                line.box[3] - grow * (unit_along - unit_across),
            ],
            np.float32,
        )
        cv2.fillPoly(mask, [np.rint(box).astype(np.int32)], 1.0)
        heights.append(line.height)
    if heights:
        sigma = FEATHER_PER_HEIGHT * float(np.median(heights))
        if sigma >= 0.5:
            mask = cv2.GaussianBlur(mask, (0, 0), sigma)
            # Keep the boxes themselves fully protected: feather outward only.
            solid = np.zeros(shape, np.float32)
            for line in lines:
                cv2.fillPoly(solid, [np.rint(line.box).astype(np.int32)], 1.0)
            np.maximum(mask, solid, out=mask)
    return mask


def _blend(result: np.ndarray, plain: np.ndarray, mask: np.ndarray) -> np.ndarray:
    out = result.copy()
    weight = mask[..., None]
    rgb = result[..., :3] * (1.0 - weight) + plain[..., :3] * weight
    out[..., :3] = np.rint(np.clip(rgb, 0, 255))
    return out


def guard_label(source: np.ndarray, result: np.ndarray, *, options: EnhanceSettings) -> tuple[np.ndarray, str]:
    """Keep the source's label text where ``result`` (``source`` upscaled) reads differently.

    Args:
        source: the enhance stage's input, (H, W, 3|4) uint8.
        result: the chosen backend's output, (H', W', same C) uint8.
        options: the enhance settings (``label_guard``, ``label_max_cer``, ``label_margin``, ``ocr``).

    Returns:
        The image to use (``result``, ``result`` with its text regions from the plain resized
        source, or the plain resized source) and a note for the stage record.
    """
    if not options.label_guard:
        return result, "label guard off (enhance.label_guard is false)"
    reason = ocr.ocr_unavailable_reason(options.ocr)
    if reason is not None:
        why = f"no OCR models ({ocr.PULL_HINT})" if reason.startswith("no OCR models") else reason
        return result, f"label guard off: {why}"
    height, width = result.shape[:2]
    scale = width / source.shape[1]
    plain = plain_resize(source, (width, height), options)
    if np.array_equal(plain, result):
        return result, "label guard: the result is the plain resized source"
    measured = ocr.median_text_height(source, options=options.ocr)
    if measured is None:
        return result, "label guard: no text found"
    current, target = measured * scale, options.ocr.text_height
    regions = ocr.read_at_text_height(plain, target, options=options.ocr, current=current)
    reference = ocr.legible(regions, options.ocr)
    if not reference:
        return result, "label guard: no legible text"

    def reads(image: np.ndarray) -> float:
        return ocr.compare_labels(
            reference, ocr.read_at_text_height(image, target, options=options.ocr, current=current)
        ).cer

    before = reads(result)
    if before <= options.label_max_cer:
        return result, f"label guard: {len(reference)} label lines read the same (CER {before:.2f})"
    protected = _blend(result, plain, text_mask((height, width), regions, options.label_margin))
    after = reads(protected)
    if after <= options.label_max_cer:
        return protected, f"label kept from source: {len(regions)} text regions (CER {before:.2f} -> {after:.2f})"
    return plain, (
        f"label kept from source: whole image resized without enhancement "
        f"(CER {before:.2f}; {after:.2f} with {len(regions)} text regions kept)"
    )


# The backends register themselves when defined (their order here does not matter: see ENHANCERS).
from placewright.enhance import classical, spandrel  # noqa: E402,F401

__all__ = ["ENHANCERS", "EnhanceResult", "Enhancer", "enhance"]
