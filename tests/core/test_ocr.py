"""Offline OCR (PP-OCRv4 through onnxruntime) with the REAL models, on rendered product labels.

The models come from the ``rapidocr-onnxruntime`` wheel on PyPI, pulled once into the persistent
test-model folder by ``placewright models pull``'s own code (:func:`tests.real_models.pulled`).
The label set is drawn here: small product photos (a bottle, a jar, a box) whose labels carry
3-4 lines of text of different heights, rendered at 4x and shrunk as a camera would.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from placewright import ocr
from placewright.errors import BackendUnavailable
from placewright.models.cache import MODELS
from placewright.settings import ModelSpec, OcrSettings, Settings
from tests.real_models import pulled

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
RENDER_SCALE = 4  # labels are drawn at 4x and shrunk with area interpolation (camera-like anti-aliasing)


@pytest.fixture(scope="session")
def pp_ocr_models_dir() -> Path:
    """A models_dir holding ``pp-ocrv4/det.onnx`` and ``pp-ocrv4/rec.onnx`` (the real PP-OCRv4 models, pulled once)."""
    return pulled("pp-ocrv4")


@pytest.fixture(scope="session")
def ocr_options(pp_ocr_models_dir: Path) -> OcrSettings:
    return OcrSettings(model=ModelSpec(model="pp-ocrv4", models_dir=pp_ocr_models_dir))


# --- The label set -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    """One label line: its text, font file, height (fraction of the image height) and centre row (fraction)."""

    text: str
    font: str
    size: float
    row: float


@dataclass(frozen=True)
class Product:
    """A drawn product photo: a body of some shape and colour carrying a light label."""

    name: str
    size: tuple[int, int]  # (width, height) of the photo
    shape: str  # "bottle", "jar" or "box"
    body: tuple[int, int, int]
    label: tuple[float, float, float, float]  # label rectangle, fractions (x0, y0, x1, y1)
    lines: tuple[Line, ...]
    ink: tuple[int, int, int] = (30, 30, 35)

    @property
    def text(self) -> str:
        return " ".join(line.text for line in self.lines)

    def render(self, size: tuple[int, int] | None = None, texts: tuple[str, ...] | None = None) -> np.ndarray:
        """The photo as (H, W, 3) RGB uint8 at ``size`` (default its own), optionally with other ``texts``."""
        width, height = size or self.size
        big_w, big_h = width * RENDER_SCALE, height * RENDER_SCALE
        image = Image.new("RGB", (big_w, big_h), (226, 224, 219))
        draw = ImageDraw.Draw(image)
        for y in range(big_h):  # a soft vertical backdrop gradient
            shade = int(232 - 24 * y / big_h)
            draw.line([(0, y), (big_w, y)], fill=(shade, shade - 2, shade - 6))

        def box(x0: float, y0: float, x1: float, y1: float) -> tuple[int, int, int, int]:
            return round(x0 * big_w), round(y0 * big_h), round(x1 * big_w), round(y1 * big_h)

        if self.shape == "bottle":
            draw.rounded_rectangle(box(0.40, 0.06, 0.60, 0.30), radius=big_w // 30, fill=self.body)
            draw.rectangle(box(0.41, 0.03, 0.59, 0.09), fill=(190, 150, 60))
            draw.rounded_rectangle(box(0.22, 0.26, 0.78, 0.95), radius=big_w // 12, fill=self.body)
        elif self.shape == "jar":
            draw.rounded_rectangle(box(0.18, 0.20, 0.82, 0.92), radius=big_w // 16, fill=self.body)
            draw.rectangle(box(0.20, 0.10, 0.80, 0.22), fill=(80, 70, 60))
        else:
            draw.rectangle(box(0.12, 0.08, 0.88, 0.94), fill=self.body)
            draw.polygon(
                [
                    (round(0.88 * big_w), round(0.08 * big_h)),
                    (round(0.94 * big_w), round(0.12 * big_h)),
                    (round(0.94 * big_w), round(0.97 * big_h)),
                    (round(0.88 * big_w), round(0.94 * big_h)),
                ],
                fill=tuple(int(c * 0.7) for c in self.body),
            )
        draw.rectangle(box(*self.label), fill=(246, 240, 222))
        centre_x = (self.label[0] + self.label[2]) / 2 * big_w
        for line, text in zip(self.lines, texts or tuple(line.text for line in self.lines), strict=True):
            font = ImageFont.truetype(str(FONT_DIR / line.font), max(8, round(line.size * big_h)))
            draw.text((centre_x, line.row * big_h), text, font=font, fill=self.ink, anchor="mm")
        return cv2.resize(np.asarray(image), (width, height), interpolation=cv2.INTER_AREA)


LABEL_SET: tuple[Product, ...] = (
    Product(
        "bottle",
        (240, 320),
        "bottle",
        body=(35, 80, 45),
        label=(0.25, 0.45, 0.75, 0.80),
        lines=(
            Line("AQUA", "DejaVuSans-Bold.ttf", 0.060, 0.52),
            Line("PURA", "DejaVuSans-Bold.ttf", 0.060, 0.59),
            Line("Spring Water", "DejaVuSans.ttf", 0.036, 0.67),
            Line("750 ml", "DejaVuSans.ttf", 0.034, 0.74),
        ),
    ),
    Product(
        "jar",
        (320, 240),
        "jar",
        body=(190, 120, 40),
        label=(0.22, 0.32, 0.78, 0.84),
        lines=(
            Line("HONEY", "DejaVuSerif-Bold.ttf", 0.100, 0.44),
            Line("Wildflower", "DejaVuSerif.ttf", 0.060, 0.60),
            Line("Net Wt 340 g", "DejaVuSans.ttf", 0.048, 0.74),
        ),
    ),
    Product(
        "box",
        (300, 400),
        "box",
        body=(170, 40, 40),
        label=(0.18, 0.20, 0.82, 0.78),
        lines=(
            Line("CRUNCH", "DejaVuSans-Bold.ttf", 0.055, 0.28),
            Line("Oat Flakes", "DejaVuSans.ttf", 0.040, 0.38),
            Line("Whole Grain Cereal", "DejaVuSansCondensed.ttf", 0.030, 0.50),
            Line("Net 500 g", "DejaVuSans.ttf", 0.030, 0.66),
        ),
    ),
)


def read(image: np.ndarray, options: OcrSettings) -> str:
    """Every line read in ``image`` (normalised text height), joined in reading order."""
    return " ".join(line.text for line in ocr.read_at_text_height(image, options=options))


# --- Tests ---------------------------------------------------------------------------------------


def test_text_metrics() -> None:
    assert ocr.edit_distance("kitten", "sitting") == 3
    assert ocr.cer("Olive  Oil", "Olive Oil") == 0.0  # whitespace is not a character here
    assert ocr.cer("Oiive Oil", "Olive Oil") == pytest.approx(1 / 8)
    assert ocr.cer("", "") == 0.0
    assert ocr.similarity("HONEY", "HONEY") == 1.0
    assert ocr.similarity("HONEY", "MONEY") == pytest.approx(0.8)


def test_unavailable_without_models(tmp_path: Path) -> None:
    options = OcrSettings(model=ModelSpec(model="pp-ocrv4", models_dir=tmp_path))
    reason = ocr.ocr_unavailable_reason(options)
    assert reason is not None and "det.onnx" in reason and "placewright models pull pp-ocrv4" in reason
    with pytest.raises(BackendUnavailable, match="no OCR models"):
        ocr.read_text(np.zeros((64, 64, 3), np.uint8), options=options)


def test_settings_give_the_ocr_folder_the_models_dir(tmp_path: Path) -> None:
    settings = Settings(models_dir=tmp_path)
    assert settings.enhance.ocr.model.models_dir == tmp_path
    assert ocr.model_folder(settings.enhance.ocr.model) == tmp_path / "pp-ocrv4"


@pytest.mark.parametrize("product", LABEL_SET, ids=lambda p: p.name)
def test_reads_small_product_labels(product: Product, ocr_options: OcrSettings) -> None:
    image = product.render()
    native = " ".join(line.text for line in ocr.read_text(image, options=ocr_options))
    assert ocr.cer(native, product.text) <= 0.1, native
    normalised = read(image, ocr_options)
    assert ocr.cer(normalised, product.text) <= 0.1, normalised
    labels = ocr.label_text(image, options=ocr_options)
    assert [line.text.replace(" ", "") for line in labels] == [line.text.replace(" ", "") for line in product.lines]


def test_lines_carry_boxes_in_image_pixels(ocr_options: OcrSettings) -> None:
    product = LABEL_SET[0]
    image = product.render()
    lines = ocr.read_text(image, options=ocr_options)
    first = lines[0]
    assert first.text == "AQUA" and 0.9 <= first.score <= 1.0
    x0, y0 = first.box.min(axis=0)
    x1, y1 = first.box.max(axis=0)
    height = image.shape[0]
    assert y0 < 0.52 * height < y1 and x0 < image.shape[1] / 2 < x1  # the line's centre (Line.row)
    assert 0.04 * height < first.height < 0.12 * height
    # The same lines read at another text height come back in this image's pixels.
    scaled = ocr.read_at_text_height(image, 48, options=ocr_options)
    assert scaled[0].text == "AQUA"
    assert np.abs(scaled[0].box.mean(axis=0) - first.box.mean(axis=0)).max() < 0.02 * height


def test_rgba_and_grey_inputs(ocr_options: OcrSettings) -> None:
    image = LABEL_SET[1].render()
    rgba = np.dstack([image, np.full(image.shape[:2], 255, np.uint8)])
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    for variant in (rgba, grey):
        assert ocr.cer(read(variant, ocr_options), LABEL_SET[1].text) <= 0.1


def test_compare_labels_matches_lines_by_place(ocr_options: OcrSettings) -> None:
    product = LABEL_SET[2]
    source = ocr.label_text(product.render(), options=ocr_options)
    big = product.render((600, 800))
    same = ocr.read_at_text_height(big, options=ocr_options)
    assert ocr.compare_labels(source, same, scale=2.0).cer <= 0.05
    changed = product.render((600, 800), texts=("CRUMCH", "Oat Flakes", "Whole Grain Cereal", "Net 900 g"))
    comparison = ocr.compare_labels(source, ocr.read_at_text_height(changed, options=ocr_options), scale=2.0)
    assert 0.03 < comparison.cer < 0.2
    assert [round(row[2], 2) for row in comparison.lines] == [round(1 / 6, 2), 0.0, 0.0, round(1 / 7, 2)]


def test_models_load_once_and_ocr_is_cheap(ocr_options: OcrSettings) -> None:
    image = LABEL_SET[2].render()  # a 300x400 product crop
    ocr.read_text(image, options=ocr_options)
    loads = sum(n for key, n in MODELS.loads.items() if isinstance(key, tuple) and key[0] == "pp-ocr")
    started = time.perf_counter()
    runs = 3
    for _ in range(runs):
        ocr.read_text(image, options=ocr_options)
    per_read = (time.perf_counter() - started) / runs
    assert sum(n for key, n in MODELS.loads.items() if isinstance(key, tuple) and key[0] == "pp-ocr") == loads
    assert per_read < 2.0, f"{per_read * 1000:.0f} ms per 300x400 crop"
