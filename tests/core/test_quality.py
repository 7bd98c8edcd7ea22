"""The quality gate's checks, each on an image built to pass it and one built to fail it."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from placewright.quality import (
    QualityReport,
    check_cutout,
    check_exposure,
    check_fidelity,
    check_label,
    check_placement,
    check_shadow,
    label_error,
    skipped,
)
from placewright.settings import QualitySettings
from placewright.types import Box

OPTIONS = QualitySettings()


def _studio_shot(height: int = 400, width: int = 300) -> tuple[np.ndarray, np.ndarray]:
    """A dark bottle on a spotlit grey backdrop, and its true alpha."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    radius = np.hypot((xx - width / 2) / width, (yy - height / 2) / height)
    backdrop = np.clip(225 - 160 * radius, 0, 255)
    image = np.dstack([backdrop, backdrop, backdrop * 0.97]).astype(np.uint8)
    alpha = np.zeros((height, width), np.uint8)
    cv2.rectangle(alpha, (110, 120), (190, 360), 255, -1)
    cv2.rectangle(alpha, (135, 60), (165, 120), 255, -1)
    image[alpha > 0] = (40, 90, 50)
    return image, alpha


def test_fidelity_passes_untouched_product_pixels_and_fails_changed_ones() -> None:
    composite = np.full((100, 100, 3), 120, np.uint8)
    alpha = np.zeros((100, 100), np.uint8)
    alpha[20:80, 30:70] = 255
    final = composite.copy()
    final[alpha == 0] = 200  # harmonize may relight the surroundings
    box = Box.from_mask(alpha)
    assert box is not None
    assert check_fidelity(composite, final, alpha, box, OPTIONS).status == "pass"
    final[40:50, 40:50] = 160  # ... but not the product
    result = check_fidelity(composite, final, alpha, box, OPTIONS)
    assert result.status == "fail" and result.score == 40


def test_cutout_with_a_band_missing_fails_against_a_whole_second_opinion() -> None:
    image, truth = _studio_shot()
    holed = truth.copy()
    holed[150:330, 125:140] = 0  # a band of the body missing, the hole the dark-on-dark shot got
    result = check_cutout(image, holed, truth, OPTIONS, reference_name="grabcut")
    assert result.status == "fail"
    assert "missing part" in result.detail and result.score > 1
    # the reference's own mask checked against the holed one is sound: that is how the stage picks it
    assert check_cutout(image, truth, holed, OPTIONS, reference_name="x").status == "pass"


def test_cutout_keeping_a_disc_of_backdrop_fails_as_a_halo() -> None:
    image, truth = _studio_shot()
    halo = cv2.dilate(truth, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (31, 31)))
    result = check_cutout(image, halo, truth, OPTIONS, reference_name="grabcut")
    assert result.status == "fail"
    assert "halo" in result.detail
    halo_px = float(result.detail.rsplit("halo ", 1)[1].split(" px")[0])
    assert 8 <= halo_px <= 25  # the band is 15 px wide


def test_cutout_keeps_a_see_through_hole_the_second_opinion_filled() -> None:
    """A mug handle's hole shows the backdrop: the mask that keeps it open is not missing product."""
    image, truth = _studio_shot()
    filled = truth.copy()
    cv2.rectangle(filled, (190, 180), (240, 260), 255, -1)  # a handle...
    backdrop = image.copy()
    cv2.rectangle(image, (190, 180), (240, 260), (40, 90, 50), -1)
    image[195:245, 200:228] = backdrop[195:245, 200:228]  # ...whose hole shows the backdrop
    open_mask = filled.copy()
    open_mask[195:245, 200:228] = 0
    assert check_cutout(image, open_mask, filled, OPTIONS, reference_name="u2net").status == "pass"


def test_cutout_without_a_second_opinion_is_skipped_not_passed() -> None:
    image, truth = _studio_shot()
    assert check_cutout(image, truth, None, OPTIONS, reference_name="-").status == "skip"


def _placed(line_y: int, top: int, height: int = 400, width: int = 400) -> tuple[Box, np.ndarray]:
    alpha = np.zeros((height, width), np.uint8)
    alpha[top : line_y + 1, 150:250] = 255
    box = Box.from_mask(alpha)
    assert box is not None
    return box, alpha


def test_placement_passes_a_product_standing_on_the_line_at_its_size() -> None:
    box, alpha = _placed(line_y=300, top=180)
    result = check_placement(box, alpha, 300, size_fraction=0.3, options=OPTIONS)
    assert result.status == "pass", result.detail


def test_placement_fails_a_floating_product_a_wrong_size_and_a_cropped_one() -> None:
    box, alpha = _placed(line_y=200, top=80)
    floating = check_placement(box, alpha, 300, size_fraction=0.3, options=OPTIONS)
    assert floating.status == "fail" and "off the surface line" in floating.detail
    box, alpha = _placed(line_y=300, top=280)
    tiny = check_placement(box, alpha, 300, size_fraction=0.3, options=OPTIONS)
    assert tiny.status == "fail" and "recommended" in tiny.detail
    box, alpha = _placed(line_y=300, top=0)
    cropped = check_placement(box, alpha, 300, size_fraction=0.75, options=OPTIONS)
    assert cropped.status == "fail" and "top edge" in cropped.detail


def test_label_error_ignores_line_order_case_and_spaces() -> None:
    assert label_error(["ORTO VERDE", "Extra virgin"], ["extra virgin", "Orto  Verde"]) == 0.0
    assert label_error(["ORTO VERDE"], ["ORT0 VERDE"]) == pytest.approx(1 / 9)
    assert label_error(["ORTO VERDE"], []) == 1.0


def test_label_check_fails_a_rewritten_label_and_skips_without_ocr_or_text() -> None:
    assert check_label(["ORTO VERDE", "500 ml"], ["ORTO VERDE", "500 ml"], OPTIONS).status == "pass"
    rewritten = check_label(["ORTO VERDE", "500 ml"], ["OPTO VFRDF", "5OO rnl"], OPTIONS)
    assert rewritten.status == "fail" and rewritten.score > OPTIONS.label_max_cer
    assert check_label(None, [], OPTIONS).status == "skip"
    assert check_label([], [], OPTIONS).status == "skip"


def test_shadow_check_needs_the_surface_under_the_product_darker_than_the_scene() -> None:
    scene = np.full((400, 400, 3), 180, np.uint8)
    box, alpha = _placed(line_y=300, top=180)
    final = scene.copy()
    final[alpha > 0] = 60
    assert check_shadow(scene, final, alpha, box, OPTIONS).status == "fail"
    shadowed = final.copy()
    shadowed[295:310, 130:270][alpha[295:310, 130:270] == 0] = 120
    result = check_shadow(scene, shadowed, alpha, box, OPTIONS)
    assert result.status == "pass" and result.score > 0.1


def test_exposure_fails_a_blown_out_image() -> None:
    image = np.full((100, 100, 3), 128, np.uint8)
    assert check_exposure(image, OPTIONS).status == "pass"
    image[:30] = 255
    result = check_exposure(image, OPTIONS)
    assert result.status == "fail" and result.score == pytest.approx(0.3)


def test_a_report_lists_failed_checks_in_gate_order() -> None:
    image = np.full((100, 100, 3), 255, np.uint8)
    report = QualityReport.of([check_exposure(image, OPTIONS), skipped("label", "no OCR models")])
    assert [c.name for c in report.checks] == ["label", "exposure"]
    assert not report.passed and report.failed == ["exposure"]
    assert report.summary().startswith("exposure: 100.0% blown out")


def test_unknown_check_names_are_refused_in_settings() -> None:
    with pytest.raises(ValueError, match="unknown check 'sharpness'"):
        QualitySettings(skip=["sharpness"])


def test_a_contact_shadow_kept_by_the_second_opinion_is_not_missing_product() -> None:
    """The bundled jar: u2netp cut it out clean, GrabCut kept its contact shadow. The clean one passes;
    the one with the shadow fails as a halo (a darker copy of the backdrop under the product's base)."""
    image, truth = _studio_shot()
    with_shadow = truth.copy()
    base = int(np.nonzero(truth.any(axis=1))[0].max())
    shadow = np.zeros_like(truth)
    shadow[base + 1 : base + 14, 95:205] = 255  # a sharp-edged contact shadow under the base
    image[shadow > 0] = (image[shadow > 0] * 0.72).astype(np.uint8)
    with_shadow[shadow > 0] = 255
    assert check_cutout(image, truth, with_shadow, OPTIONS, reference_name="grabcut").status == "pass"
    kept = check_cutout(image, with_shadow, truth, OPTIONS, reference_name="u2net")
    assert kept.status == "fail" and "halo" in kept.detail


def test_a_broken_ocr_model_skips_the_label_check_instead_of_losing_the_variant(tmp_path) -> None:
    from placewright.quality import check_variant
    from placewright.settings import ModelSpec, OcrSettings
    from placewright.types import Surface

    folder = tmp_path / "pp-ocrv4"
    folder.mkdir()
    (folder / "det.onnx").write_bytes(b"not a model")
    (folder / "rec.onnx").write_bytes(b"not a model")
    ocr = OcrSettings(model=ModelSpec(model=str(folder)))
    image, alpha = _studio_shot()
    box = Box.from_mask(alpha)
    assert box is not None
    report = check_variant(
        source=image,
        source_sha256="broken-ocr",
        enhance_scale=1.0,
        cutout_box=box,
        cutout_sha256="x",
        cutout_check=None,
        size_fraction=0.6,
        scene=image,
        surface=Surface(line_y=box.y1 - 1, center_x=150, box=None, backend="test"),
        composite=image,
        product_alpha=alpha,
        product_box=box,
        final=image,
        options=OPTIONS,
        ocr=ocr,
    )
    label = next(c for c in report.checks if c.name == "label")
    assert label.status == "skip" and label.detail.startswith("OCR failed:")
