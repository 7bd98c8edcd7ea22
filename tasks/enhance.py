"""The enhance stage's task."""

from __future__ import annotations

from placewright.enhance import enhance
from placewright.settings import EnhanceSettings
from placewright.store import ImageRef
from tasks.common import StageIO, stage_task
from tasks.refs import StagedImage


@stage_task("enhance", gpu=True)
def enhance_product(product: ImageRef, options: EnhanceSettings, ocr_models: str, store_root: str) -> StagedImage:
    """Upscale and sharpen the product photo when it is small, keeping its label (``ocr_models``: the OCR
    files' identity, in the cache key: a result made while the label guard had no models is not reused)."""
    io = StageIO(store_root)
    result = enhance(io.get(product), options=options, raise_transient=io.raise_transient)
    return StagedImage(io.put(result.image), result.record)
