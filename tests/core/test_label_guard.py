"""The enhance stage's label guard, with the REAL PP-OCRv4 models.

"An upscaler that rewrites the label" is a stub backend registered for these tests only: it
returns the product drawn at the upscaled size with changed label words (what a GAN does to
small text, made certain). The guard must notice, put the source's label back, and say so.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import cv2
import numpy as np
import pytest

from placewright import ocr
from placewright.enhance import ENHANCERS, Enhancer, enhance, guard_label, text_mask
from placewright.enhance.classical import output_size
from placewright.settings import EnhanceSettings, ModelSpec, OcrSettings
from tests.core.test_ocr import LABEL_SET, Product, pp_ocr_models_dir  # noqa: F401 (a fixture)

REWRITER = "test-label-rewriter"
# What the stub draws instead of each product's label lines.
REWRITTEN = {
    "bottle": ("AOUA", "PUMA", "Sprlng Waiter", "150 ml"),
    "jar": ("MONEY", "Wildflour", "Net Wt 840 g"),
    "box": ("CRUMCH", "Oaf Flukes", "Whole Groin Cereal", "Net 300 g"),
}


class LabelRewriter(Enhancer):
    """Test-only backend: the product redrawn at the upscaled size with other label words."""

    name = REWRITER
    product: ClassVar[Product | None] = None
    texts: ClassVar[tuple[str, ...] | None] = None

    def __call__(self, image: np.ndarray) -> tuple[np.ndarray, float]:
        assert self.product is not None
        width, height, scale = output_size(image.shape[1], image.shape[0], self.options)
        return self.product.render((width, height), texts=self.texts), scale


@pytest.fixture(autouse=True, scope="module")
def _unregister_rewriter() -> Iterator[None]:
    yield
    ENHANCERS._backends.pop(REWRITER, None)


@pytest.fixture
def options(pp_ocr_models_dir: Path) -> EnhanceSettings:  # noqa: F811 (the imported fixture)
    return EnhanceSettings(ocr=OcrSettings(model=ModelSpec(model="pp-ocrv4", models_dir=pp_ocr_models_dir)))


def label_cer(image: np.ndarray, source: np.ndarray, ocr_options: OcrSettings) -> float:
    """CER of ``image``'s label against ``source``'s legible lines, both read at the normalised text height."""
    reference = ocr.label_text(source, options=ocr_options)
    current = ocr.median_text_height(source, options=ocr_options)
    assert reference and current is not None
    scale = image.shape[1] / source.shape[1]
    lines = ocr.read_at_text_height(image, options=ocr_options, current=current * scale)
    return ocr.compare_labels(reference, lines, scale=scale).cer


@pytest.mark.parametrize("product", LABEL_SET, ids=lambda p: p.name)
def test_guard_puts_back_a_rewritten_label(product: Product, options: EnhanceSettings) -> None:
    source = product.render()
    LabelRewriter.product, LabelRewriter.texts = product, REWRITTEN[product.name]
    unguarded = enhance(source, options=options.model_copy(update={"backend": REWRITER, "label_guard": False}))
    assert unguarded.record.backend == REWRITER
    assert unguarded.record.note == "label guard off (enhance.label_guard is false)"
    assert label_cer(unguarded.image, source, options.ocr) > 0.1, "the stub must really change the label"

    result = enhance(source, options=options.model_copy(update={"backend": REWRITER}))
    assert result.record.backend == REWRITER and result.scale > 1
    assert result.image.shape == unguarded.image.shape
    assert result.record.note is not None and result.record.note.startswith("label kept from source:"), (
        result.record.note
    )
    assert label_cer(result.image, source, options.ocr) <= 0.1
    # Away from the label the upscaler's pixels are kept (only text regions are replaced).
    if "text regions" in result.record.note and "whole image" not in result.record.note:
        top = slice(0, result.image.shape[0] // 8)
        assert np.array_equal(result.image[top], unguarded.image[top])


@pytest.mark.parametrize("product", LABEL_SET, ids=lambda p: p.name)
def test_classical_enhance_keeps_labels(product: Product, options: EnhanceSettings) -> None:
    source = product.render()
    result = enhance(source, options=options.model_copy(update={"backend": "lanczos"}))
    assert result.record.backend == "lanczos" and result.record.note is not None
    assert result.record.note.startswith(("label guard: ", "label kept from source:")), result.record.note
    assert label_cer(result.image, source, options.ocr) <= 0.1


def test_example_bottle_label_survives_enhance(example_product: Path, options: EnhanceSettings) -> None:
    source = cv2.cvtColor(cv2.imread(str(example_product)), cv2.COLOR_BGR2RGB)
    result = enhance(source, options=options)  # auto: whatever backend runs here
    assert result.scale > 1 and result.record.note is not None
    assert not result.record.note.startswith("label guard off"), result.record.note
    reference = [line.text for line in ocr.label_text(source, options=options.ocr)]
    assert {"ORTO", "VERDE"} <= set(reference)
    assert label_cer(result.image, source, options.ocr) <= 0.1


def test_guard_off_without_models(tmp_path: Path) -> None:
    options = EnhanceSettings(ocr=OcrSettings(model=ModelSpec(model="pp-ocrv4", models_dir=tmp_path)))
    source = LABEL_SET[0].render()
    result = enhance(source, options=options)
    assert result.record.note == "label guard off: no OCR models (placewright models pull pp-ocrv4)"
    plain = enhance(source, options=options.model_copy(update={"label_guard": False}))
    assert np.array_equal(result.image, plain.image)


def test_no_upscale_no_guard(options: EnhanceSettings) -> None:
    source = LABEL_SET[0].render()
    result = enhance(source, options=options.model_copy(update={"target_long_side": 256}))
    assert result.scale == 1.0 and result.record.note is None


def test_guard_keeps_alpha(options: EnhanceSettings) -> None:
    product = LABEL_SET[1]
    source = product.render()
    alpha = np.full(source.shape[:2], 255, np.uint8)
    alpha[:, :8] = 0
    rgba = np.dstack([source, alpha])
    LabelRewriter.product, LabelRewriter.texts = product, REWRITTEN[product.name]

    class Rgba(LabelRewriter):
        name = f"{REWRITER}-rgba"

        def __call__(self, image: np.ndarray) -> tuple[np.ndarray, float]:
            rgb, scale = super().__call__(image[..., :3])
            size = rgb.shape[1::-1]
            return np.dstack([rgb, cv2.resize(image[..., 3], size, interpolation=cv2.INTER_LINEAR)]), scale

    try:
        result = enhance(rgba, options=options.model_copy(update={"backend": Rgba.name}))
    finally:
        ENHANCERS._backends.pop(Rgba.name, None)
    assert result.image.shape[2] == 4 and result.record.note.startswith("label kept from source:")
    assert (result.image[:, : int(6 * result.scale), 3] == 0).all()


def test_text_mask_covers_boxes_and_feathers() -> None:
    box = np.float32([[20, 40], [80, 40], [80, 60], [20, 60]])
    line = ocr.TextLine("AB", 1.0, box, 20.0)
    mask = text_mask((100, 100), [line], margin=0.3)
    assert mask[50, 50] == 1.0 and mask[40:61, 20:81].min() == 1.0
    assert 0 < mask[35, 50] <= 1 and mask[5, 50] < 0.01 and mask[50, 5] < 0.01


def test_guard_label_direct_call_with_a_faithful_result(options: EnhanceSettings) -> None:
    source = LABEL_SET[2].render()
    width, height, _ = output_size(source.shape[1], source.shape[0], options)
    faithful = LABEL_SET[2].render((width, height))  # the product drawn at the upscaled size: same label
    image, note = guard_label(source, faithful, options=options)
    assert image is faithful and note.startswith("label guard: ") and "read the same" in note
