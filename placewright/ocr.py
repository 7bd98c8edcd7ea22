"""Offline OCR: PP-OCRv4 text detection and recognition through onnxruntime.

The two ONNX models (``det.onnx``: DB text detection, ``rec.onnx``: CRNN/SVTR recognition with
its character dictionary in the model's ``character`` metadata) lie in one folder named by
``OcrSettings.model`` (``<models_dir>/pp-ocrv4`` by default; ``placewright models pull pp-ocrv4``
puts them there). They are loaded once per process. Pre- and post-processing follow PP-OCR's
own (as in RapidOCR): detection on the BGR image resized to multiples of 32 and normalised to
-1..1, a probability map thresholded at ``det_thresh``, minimum-area boxes scored on the map
and kept above ``box_thresh``, then grown by ``area * unclip_ratio / perimeter`` on every side
(the exact offset of a rectangle, so no polygon clipper is needed); recognition on each box's
rotated crop resized to height 48, greedy CTC decoding.

OCR is scale-sensitive: the same label reads differently at 8 and at 40 pixels of text height.
:func:`read_at_text_height` rescales an image so that its median text height is a fixed one
before reading, so that two versions of a label (a photo and its upscaled copy) are compared
at the same text height. :func:`compare_labels` matches lines by position and returns their
character error rate (CER).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from placewright.errors import BackendUnavailable
from placewright.models.cache import MODELS
from placewright.models.runtime import missing_packages, onnx_providers, onnx_session_options
from placewright.settings import ModelSpec, OcrSettings

DET_FILE, REC_FILE = "det.onnx", "rec.onnx"
PULL_HINT = "placewright models pull pp-ocrv4"
# PP-OCR recognition input: 3 x 48 x (48 * aspect), at least 320 wide (PaddleOCR's rec_image_shape).
REC_HEIGHT, REC_MIN_WIDTH = 48, 320
REC_BATCH = 6
# DB post-processing constants of PP-OCR: boxes thinner than this (detection-map pixels) are noise,
# at most this many contours are looked at.
MIN_BOX_SIDE = 3
MAX_CANDIDATES = 1000
# Detection never runs on less than this side (pixels): DB needs some context around text.
DET_MIN_SIDE = 64
# An image is never rescaled for reading beyond this long side (memory bound).
MAX_READ_SIDE = 4096


@dataclass(frozen=True, eq=False)
class TextLine:
    """One line (or word group) of text read in an image.

    Attributes:
        text: the recognised characters.
        score: mean probability of the recognised characters (0..1).
        box: (4, 2) float32 corners, top-left, top-right, bottom-right, bottom-left, in the
            pixels of the image that was read.
        height: the box's height in those pixels (the detector's box, a little taller than the
            letters).
    """

    text: str
    score: float
    box: np.ndarray = field(repr=False)
    height: float

    def scaled(self, factor: float) -> TextLine:
        """The same line with its box and height multiplied by ``factor`` (another image size)."""
        return TextLine(self.text, self.score, (self.box * factor).astype(np.float32), self.height * factor)


@dataclass(frozen=True)
class LabelComparison:
    """How a label reads in an image compared with a reference reading.

    Attributes:
        cer: edit distance of all reference lines over their total length (0: identical).
        lines: ``(reference text, text read at the same place, CER)`` per reference line.
    """

    cer: float
    lines: tuple[tuple[str, str, float], ...]


class _Reader:
    """The two onnxruntime sessions and the recognition dictionary."""

    def __init__(self, folder: Path, providers: list[str], threads: int) -> None:
        import onnxruntime as ort

        opts = onnx_session_options(threads)
        self.det = ort.InferenceSession(str(folder / DET_FILE), sess_options=opts, providers=providers)
        self.rec = ort.InferenceSession(str(folder / REC_FILE), sess_options=opts, providers=providers)
        meta = self.rec.get_modelmeta().custom_metadata_map
        if "character" in meta:
            characters = meta["character"].splitlines()
        elif (folder / "dict.txt").is_file():
            characters = (folder / "dict.txt").read_text(encoding="utf-8").splitlines()
        else:
            raise ValueError(f"{folder / REC_FILE} has no 'character' metadata and {folder} has no dict.txt")
        # CTC: index 0 is the blank; PP-OCR appends the space as the last class.
        self.characters = ["", *characters, " "]
        classes = self.rec.get_outputs()[0].shape[-1]
        if isinstance(classes, int) and classes != len(self.characters):
            raise ValueError(f"{REC_FILE} has {classes} classes but its dictionary {len(self.characters)}")
        self.det_input = self.det.get_inputs()[0].name
        self.rec_input = self.rec.get_inputs()[0].name


def model_folder(spec: ModelSpec) -> Path:
    """The folder ``spec.model`` names: as given (absolute or relative to the working directory), else in models_dir."""
    given = Path(spec.model).expanduser()
    if given.is_absolute() or spec.models_dir is None or (given / DET_FILE).is_file():
        return given
    return Path(spec.models_dir) / given


def ocr_unavailable_reason(options: OcrSettings) -> str | None:
    """None when OCR can run here with ``options``, else a sentence saying why not (cheap: nothing is loaded)."""
    missing = missing_packages("onnxruntime")
    if missing is not None:
        return missing
    folder = model_folder(options.model)
    absent = [name for name in (DET_FILE, REC_FILE) if not (folder / name).is_file()]
    if absent:
        return f"no OCR models ({', '.join(absent)} not in {folder}; {PULL_HINT})"
    return None


def load_reader(options: OcrSettings) -> Any:
    """The loaded detection and recognition sessions for ``options``, loaded once per process."""
    folder = model_folder(options.model).resolve()
    providers = onnx_providers(options.model.device)
    stamps = tuple((folder / name).stat().st_mtime_ns for name in (DET_FILE, REC_FILE))
    key = ("pp-ocr", str(folder), stamps, tuple(providers), options.threads)
    return MODELS.get(key, lambda: _Reader(folder, providers, options.threads))


def to_bgr(image: np.ndarray) -> np.ndarray:
    """An (H, W, 3) BGR uint8 copy of a grey, RGB or RGBA (composited over white) uint8 image."""
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        alpha = image[..., 3:].astype(np.float32) / 255.0
        rgb = image[..., :3].astype(np.float32) * alpha + 255.0 * (1.0 - alpha)
        return cv2.cvtColor(np.rint(rgb).astype(np.uint8), cv2.COLOR_RGB2BGR)
    return cv2.cvtColor(image, cv2.COLOR_RGB2BGR)


def _order_corners(points: np.ndarray) -> np.ndarray:
    """Corners as top-left, top-right, bottom-right, bottom-left (PP-OCR's order)."""
    by_x = points[np.argsort(points[:, 0], kind="stable")]
    left, right = by_x[:2], by_x[2:]
    tl, bl = left[np.argsort(left[:, 1], kind="stable")]
    tr, br = right[np.argsort(right[:, 1], kind="stable")]
    return np.array([tl, tr, br, bl], dtype=np.float32)


def _box_score(prob: np.ndarray, box: np.ndarray) -> float:
    """Mean probability inside ``box`` (PP-OCR's "fast" score)."""
    h, w = prob.shape
    x0, x1 = (int(np.clip(f(box[:, 0]), 0, w - 1)) for f in (lambda v: np.floor(v.min()), lambda v: np.ceil(v.max())))
    y0, y1 = (int(np.clip(f(box[:, 1]), 0, h - 1)) for f in (lambda v: np.floor(v.min()), lambda v: np.ceil(v.max())))
    mask = np.zeros((y1 - y0 + 1, x1 - x0 + 1), np.uint8)
    cv2.fillPoly(mask, [(box - [x0, y0]).astype(np.int32)], 1)
    return float(cv2.mean(prob[y0 : y1 + 1, x0 : x1 + 1], mask)[0])


def _box_height(box: np.ndarray) -> float:
    return float((np.linalg.norm(box[3] - box[0]) + np.linalg.norm(box[2] - box[1])) / 2)


def _det_size(height: int, width: int, options: OcrSettings) -> tuple[int, int]:
    """Detection input size: long side at most ``det_max_side``, both sides multiples of 32."""
    ratio = min(1.0, options.det_max_side / max(height, width))
    ratio = max(ratio, DET_MIN_SIDE / min(height, width))
    return (max(32, round(height * ratio / 32) * 32), max(32, round(width * ratio / 32) * 32))


def detect(reader: Any, bgr: np.ndarray, options: OcrSettings) -> list[tuple[np.ndarray, float]]:
    """Text boxes of a BGR image: ``[(corners (4, 2) float32 in image pixels, score)]``, unsorted."""
    height, width = bgr.shape[:2]
    det_h, det_w = _det_size(height, width, options)
    resized = cv2.resize(bgr, (det_w, det_h), interpolation=cv2.INTER_AREA if det_h < height else cv2.INTER_LINEAR)
    x = resized.astype(np.float32).transpose(2, 0, 1)[None] * (2.0 / 255.0) - 1.0
    prob = reader.det.run(None, {reader.det_input: x})[0][0, 0]
    mask = cv2.dilate((prob > options.det_thresh).astype(np.uint8), np.ones((2, 2), np.uint8))
    contours, _ = cv2.findContours(mask, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    sx, sy = width / det_w, height / det_h
    boxes = []
    for contour in contours[:MAX_CANDIDATES]:
        (cx, cy), (rw, rh), angle = cv2.minAreaRect(contour)
        if min(rw, rh) < MIN_BOX_SIDE:
            continue
        score = _box_score(prob, cv2.boxPoints(((cx, cy), (rw, rh), angle)))
        if score < options.box_thresh:
            continue
        # Unclip: PP-OCR offsets the polygon by area * ratio / perimeter (round joins); for a
        # rectangle the minimum-area box of that offset is the rectangle grown by it on every side.
        grow = rw * rh * options.unclip_ratio / (2.0 * (rw + rh))
        rw, rh = rw + 2 * grow, rh + 2 * grow
        if min(rw, rh) < MIN_BOX_SIDE + 2:
            continue
        box = cv2.boxPoints(((cx, cy), (rw, rh), angle)) * np.float32([sx, sy])
        box[:, 0] = np.clip(box[:, 0], 0, width)
        box[:, 1] = np.clip(box[:, 1], 0, height)
        box = _order_corners(box)
        if np.linalg.norm(box[1] - box[0]) <= 3 or np.linalg.norm(box[3] - box[0]) <= 3:
            continue
        boxes.append((box, score))
    return boxes


def _crop(bgr: np.ndarray, box: np.ndarray) -> np.ndarray:
    """The box's content, straightened (perspective warp); vertical crops turned a quarter."""
    width = int(max(np.linalg.norm(box[0] - box[1]), np.linalg.norm(box[2] - box[3])))
    height = int(max(np.linalg.norm(box[0] - box[3]), np.linalg.norm(box[1] - box[2])))
    target = np.float32([[0, 0], [width, 0], [width, height], [0, height]])
    matrix = cv2.getPerspectiveTransform(box.astype(np.float32), target)
    crop = cv2.warpPerspective(
        bgr, matrix, (max(1, width), max(1, height)), borderMode=cv2.BORDER_REPLICATE, flags=cv2.INTER_CUBIC
    )
    if crop.shape[0] >= 1.5 * crop.shape[1]:
        crop = np.rot90(crop)
    return crop


def recognise(reader: Any, crops: list[np.ndarray]) -> list[tuple[str, float]]:
    """``(text, score)`` of each BGR text crop (CTC greedy decoding), in the order given."""
    results: list[tuple[str, float]] = [("", 0.0)] * len(crops)
    order = np.argsort([c.shape[1] / c.shape[0] for c in crops], kind="stable")
    for start in range(0, len(crops), REC_BATCH):
        batch = [crops[i] for i in order[start : start + REC_BATCH]]
        ratio = max(REC_MIN_WIDTH / REC_HEIGHT, *(c.shape[1] / c.shape[0] for c in batch))
        full_w = int(REC_HEIGHT * ratio)
        x = np.zeros((len(batch), 3, REC_HEIGHT, full_w), np.float32)
        for k, crop in enumerate(batch):
            w = min(full_w, math.ceil(REC_HEIGHT * crop.shape[1] / crop.shape[0]))
            resized = cv2.resize(crop, (w, REC_HEIGHT)).astype(np.float32)
            x[k, :, :, :w] = resized.transpose(2, 0, 1) * (2.0 / 255.0) - 1.0
        probs = reader.rec.run(None, {reader.rec_input: x})[0]
        for k, seq in enumerate(probs):
            index, prob = seq.argmax(axis=1), seq.max(axis=1)
            keep = np.ones(len(index), bool)
            keep[1:] = index[1:] != index[:-1]
            keep &= index != 0
            text = "".join(reader.characters[i] for i in index[keep])
            results[order[start + k]] = (text, float(prob[keep].mean()) if keep.any() else 0.0)
    return results


def _reading_order(boxes: list[tuple[np.ndarray, float]]) -> list[tuple[np.ndarray, float]]:
    """Top to bottom, then left to right within a line (boxes whose tops differ by under half a text height)."""
    rows: list[list[tuple[np.ndarray, float]]] = []
    for item in sorted(boxes, key=lambda b: (b[0][0, 1], b[0][0, 0])):
        if rows and abs(item[0][0, 1] - rows[-1][0][0][0, 1]) < 0.5 * _box_height(rows[-1][0][0]):
            rows[-1].append(item)
        else:
            rows.append([item])
    return [item for row in rows for item in sorted(row, key=lambda b: b[0][0, 0])]


def read_text(image: np.ndarray, *, options: OcrSettings) -> list[TextLine]:
    """Every text line detected in ``image`` with what it reads, in reading order.

    Args:
        image: (H, W) grey, (H, W, 3) RGB or (H, W, 4) RGBA uint8 (transparent parts read as white).
        options: the OCR settings (models, thresholds).

    Returns:
        The lines, boxes in ``image``'s pixels; lines read as nothing are left out.

    Raises:
        BackendUnavailable: no OCR models or onnxruntime (see :func:`ocr_unavailable_reason`).
    """
    _require(options)
    reader = load_reader(options)
    bgr = to_bgr(image)
    boxes = _reading_order(detect(reader, bgr, options))
    if not boxes:
        return []
    texts = recognise(reader, [_crop(bgr, box) for box, _ in boxes])
    return [
        TextLine(text=text, score=score, box=box, height=_box_height(box))
        for (box, _), (text, score) in zip(boxes, texts, strict=True)
        if text.strip()
    ]


def median_text_height(image: np.ndarray, *, options: OcrSettings) -> float | None:
    """The median height (pixels) of the text boxes detected in ``image``; None when it has none."""
    _require(options)
    boxes = detect(load_reader(options), to_bgr(image), options)
    return float(np.median([_box_height(b) for b, _ in boxes])) if boxes else None


def read_at_text_height(
    image: np.ndarray, height: float | None = None, *, options: OcrSettings, current: float | None = None
) -> list[TextLine]:
    """Read ``image`` rescaled so that its median text height is ``height``.

    Two versions of one label (a photo and its upscaled copy) read alike only at the same text
    height: this detects the text once to measure it (unless ``current`` gives it), rescales
    the image (area interpolation down, cubic up) and reads it.

    Args:
        image: grey, RGB or RGBA uint8.
        height: the normalised text-box height in pixels (default ``options.text_height``).
        options: the OCR settings.
        current: the median text height of ``image`` when already known (e.g. the source's
            times the upscale factor): saves a detection pass and fixes the scale.

    Returns:
        The lines with boxes and heights in ``image``'s own pixels.
    """
    height = float(height or options.text_height)
    if current is None:
        current = median_text_height(image, options=options)
        if current is None:
            return []
    h, w = image.shape[:2]
    factor = min(height / current, MAX_READ_SIDE / max(h, w))
    if abs(factor - 1.0) < 0.02:
        return read_text(image, options=options)
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    scaled = cv2.resize(image, size, interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC)
    return [line.scaled(w / size[0]) for line in read_text(scaled, options=options)]


def legible(lines: list[TextLine], options: OcrSettings) -> list[TextLine]:
    """The confident lines: score at least ``min_score`` and at least ``min_chars`` characters."""
    return [
        line for line in lines if line.score >= options.min_score and len(normalise(line.text)) >= options.min_chars
    ]


def label_text(image: np.ndarray, *, options: OcrSettings, height: float | None = None) -> list[TextLine]:
    """The legible lines of ``image`` read at the normalised text height (see :func:`read_at_text_height`)."""
    return legible(read_at_text_height(image, height, options=options), options)


def normalise(text: str) -> str:
    """``text`` without whitespace (OCR puts spaces inconsistently); case and punctuation are kept."""
    return "".join(text.split())


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance between ``a`` and ``b``."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def cer(text: str, reference: str) -> float:
    """Character error rate of ``text`` against ``reference``: edits / reference length (whitespace ignored)."""
    text, reference = normalise(text), normalise(reference)
    return edit_distance(text, reference) / max(1, len(reference))


def similarity(a: str, b: str) -> float:
    """1 - normalised edit distance (0..1; 1: the same characters, whitespace ignored)."""
    a, b = normalise(a), normalise(b)
    return 1.0 - edit_distance(a, b) / max(1, len(a), len(b))


def _rect(box: np.ndarray) -> tuple[float, float, float, float]:
    return float(box[:, 0].min()), float(box[:, 1].min()), float(box[:, 0].max()), float(box[:, 1].max())


def text_at(line: TextLine, lines: list[TextLine]) -> str:
    """What ``lines`` read at ``line``'s place (same pixel grid): the lines overlapping it, left to right.

    A line overlaps when it shares at least half of the smaller height and some width.
    """
    x0, y0, x1, y1 = _rect(line.box)
    found = []
    for other in lines:
        u0, v0, u1, v1 = _rect(other.box)
        vertical = min(y1, v1) - max(y0, v0)
        if vertical >= 0.5 * min(y1 - y0, v1 - v0) and min(x1, u1) > max(x0, u0):
            found.append((u0, other.text))
    return " ".join(text for _, text in sorted(found))


def compare_labels(reference: list[TextLine], lines: list[TextLine], *, scale: float = 1.0) -> LabelComparison:
    """The CER of ``lines`` against ``reference``, line by line at the same places.

    Args:
        reference: the lines that must read the same (e.g. the source's legible lines).
        lines: every line read in the other image.
        scale: the other image's size over the reference image's (its boxes are divided by it).

    Returns:
        A :class:`LabelComparison`; CER 0.0 when ``reference`` is empty.
    """
    mapped = [line.scaled(1.0 / scale) for line in lines] if scale != 1.0 else lines
    rows, errors, total = [], 0, 0
    for line in reference:
        found = text_at(line, mapped)
        ref = normalise(line.text)
        distance = edit_distance(normalise(found), ref)
        errors, total = errors + distance, total + len(ref)
        rows.append((line.text, found, distance / max(1, len(ref))))
    return LabelComparison(cer=errors / total if total else 0.0, lines=tuple(rows))


def read_boxes(image: np.ndarray, boxes: list[np.ndarray], *, options: OcrSettings) -> list[str]:
    """The text in each of ``boxes`` ((4, 2) corners in ``image``'s pixels), recognised without detection.

    For reading known lines again in another image (the quality gate reads the source's label lines
    where the product was placed): one recognition batch, no detection pass.
    """
    _require(options)
    if not boxes:
        return []
    bgr = to_bgr(image)
    crops = [_crop(bgr, box) for box in boxes]
    return [text for text, _ in recognise(load_reader(options), crops)]


def _require(options: OcrSettings) -> None:
    reason = ocr_unavailable_reason(options)
    if reason is not None:
        raise BackendUnavailable(reason, backend="ocr")


__all__ = [
    "LabelComparison",
    "TextLine",
    "cer",
    "compare_labels",
    "label_text",
    "legible",
    "ocr_unavailable_reason",
    "read_at_text_height",
    "read_boxes",
    "read_text",
    "similarity",
]
