"""The quality gate: one function per check, each a score and a verdict against a limit in settings.

Every variant is checked before it is published (``tasks/check.py``); the scores go into the
manifest and a :class:`~placewright.settings.QualitySettings` policy decides what a failure does
(make the variant again with the next seed, then flag it ``needs_review`` or leave it out).

=============  ====================================================================  ===========================
check          score                                                                 passes when
=============  ====================================================================  ===========================
fidelity       largest change (0-255) of the product's own pixels after harmonize    <= fidelity_max_levels
cutout         largest missing product part (share) and backdrop band kept (px)      both within their limits
placement      worst of: base off the surface line, size off the recommended range,  <= 1 (1 = at the limit)
               product cut by the frame
label          character error rate of the final label's text against the source's  <= label_max_cer
shadow         darkening of the surface under the product against the scene          >= shadow_min_darkening
exposure       share of blown-out or crushed pixels                                  <= exposure_max_clipped
=============  ====================================================================  ===========================

The checks are cheap: pixel statistics on the product's box and a band under it; OCR (the label
check) reads only the product's crop. A check that cannot run (no OCR models, no text on the
source's label) is recorded as ``skip`` with the reason, never as a pass.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from typing import Any, Literal

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_serializer

from placewright.cutout.refine import disk, edge_strength, shadow_like
from placewright.errors import first_line
from placewright.ocr import (
    TextLine,
    edit_distance,
    legible,
    model_folder,
    normalise,
    ocr_unavailable_reason,
    read_boxes,
    read_text,
)
from placewright.settings import OcrSettings, QualitySettings
from placewright.types import LUMA_WEIGHTS, Box, Surface

CheckName = Literal["fidelity", "cutout", "placement", "label", "shadow", "exposure"]
CHECKS: tuple[CheckName, ...] = ("fidelity", "cutout", "placement", "label", "shadow", "exposure")
Status = Literal["pass", "fail", "skip"]
# Checks whose failure depends on the scene and the seed: another seed may pass them. The cut-out and
# the label come from the product, the same for every seed.
RESEEDABLE: frozenset[CheckName] = frozenset({"fidelity", "placement", "shadow", "exposure"})

# Product pixels this close to the alpha edge are blended by design: fidelity is measured inside.
FIDELITY_ERODE_PX = 2
# The cut-out's masks are compared at this long side at most (speed), and within this many pixels of
# each other's edge they agree by definition (two backends never put an edge on the same pixel).
CUTOUT_WORK_SIDE = 512
CUTOUT_EDGE_TOLERANCE_PX = 2
# A pixel is backdrop-coloured when it is this close (RGB distance, 0-255) to the backdrop around the
# product, estimated from a ring this wide (work px) outside the union of the masks.
BACKDROP_LIKE_LEVELS = 18.0
BACKDROP_RING_PX = 6
# A part the second opinion has and the mask lacks counts as missing product when fewer than this
# share of its pixels are backdrop-coloured (a mug handle's hole is backdrop; a missing band is not).
MISSING_MAX_BACKDROP_SHARE = 0.5
# A band the mask has and the second opinion lacks counts as halo when at least this share is backdrop-coloured.
HALO_MIN_BACKDROP_SHARE = 0.6
# Where a disputed part meets the backdrop outside both masks, a sharp outline (median step of at least
# max(this, OUTLINE_NOISE_FACTOR x the backdrop's grain), 0-255 levels) says it is product: a pale lid
# on a spotlight is the backdrop's colour but has an edge; a halo of backdrop fades into it. At least
# OUTLINE_MIN_PX pixels of shared outline are needed to judge.
OUTLINE_SHARP_LEVELS = 8.0
OUTLINE_NOISE_FACTOR = 4.0
OUTLINE_MIN_PX = 6
# The grain is measured this far from the masks (work px): between their edges' blur and the far backdrop.
GRAIN_RING_INNER_PX = 6
GRAIN_RING_OUTER_PX = 20
# The shadow check's band: from this share of the product's height above its base to this share below,
# and this share of its width to each side.
SHADOW_BAND_ABOVE = 0.02
SHADOW_BAND_BELOW = 0.06
SHADOW_BAND_SIDE = 0.15
# The label check reads each source line in a box grown by this share of its height on every side.
LABEL_BOX_MARGIN = 0.25
# Exposure: blown out at or above, crushed at or below these levels in every channel.
BLOWN_LEVEL = 253
CRUSHED_LEVEL = 2


class Check(BaseModel):
    """One check of one variant: its score, the limit it was held to, and the verdict."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: CheckName
    status: Status
    score: float | None = Field(description="The check's measure (see placewright.quality); None when skipped.")
    limit: float | None = Field(description="The setting it was held to.")
    detail: str = Field(description="What was found, in words.")

    @field_serializer("score", "limit")
    def _rounded(self, value: float | None) -> float | None:
        return None if value is None else round(float(value), 4)

    @property
    def failed(self) -> bool:
        return self.status == "fail"


class QualityReport(BaseModel):
    """Every check of one variant, in :data:`CHECKS` order, and whether it passed the gate."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    passed: bool
    failed: list[CheckName] = Field(description="The checks that failed (empty when it passed).")
    checks: list[Check]

    @classmethod
    def of(cls, checks: Iterable[Check]) -> QualityReport:
        ordered = sorted(checks, key=lambda c: CHECKS.index(c.name))
        failed = [c.name for c in ordered if c.failed]
        return cls(passed=not failed, failed=failed, checks=ordered)

    def summary(self) -> str:
        """One line: ``ok`` or the failed checks with their details."""
        if self.passed:
            return "ok"
        return "; ".join(f"{c.name}: {c.detail}" for c in self.checks if c.failed)


def skipped(name: CheckName, why: str) -> Check:
    """A check that did not run, and why."""
    return Check(name=name, status="skip", score=None, limit=None, detail=why)


def _verdict(name: CheckName, ok: bool, score: float, limit: float, detail: str) -> Check:
    return Check(name=name, status="pass" if ok else "fail", score=float(score), limit=float(limit), detail=detail)


def check_fidelity(
    composite: np.ndarray, final: np.ndarray, product_alpha: np.ndarray, product_box: Box, options: QualitySettings
) -> Check:
    """Did the product's own pixels (its label) come through harmonize unchanged?

    Args:
        composite: (H, W, 3) uint8, the image before harmonize.
        final: (H, W, 3) uint8, the image after it.
        product_alpha: (H, W) uint8, the product's alpha in the composite; ``product_box`` its box.
    """
    box = product_box
    window = (slice(box.y0, box.y1), slice(box.x0, box.x1))  # the product's box only: cheap on large images
    solid = (product_alpha[window] == 255).astype(np.uint8)
    kernel = np.ones((2 * FIDELITY_ERODE_PX + 1,) * 2, np.uint8)
    inside = cv2.erode(solid, kernel).astype(bool)
    if not inside.any():
        return skipped("fidelity", "no solid product pixels to compare")
    after, before = final[window][inside].astype(np.int16), composite[window][inside].astype(np.int16)
    diff = float(np.abs(after - before).max())
    limit = options.fidelity_max_levels
    return _verdict("fidelity", diff <= limit, diff, limit, f"product pixels changed by up to {diff:.0f} levels")


def _work_scale(shape: Sequence[int]) -> float:
    return min(1.0, CUTOUT_WORK_SIDE / max(shape[0], shape[1]))


def _resized(image: np.ndarray, scale: float, interpolation: int = cv2.INTER_AREA) -> np.ndarray:
    if scale >= 1.0:
        return image
    height, width = image.shape[:2]
    return cv2.resize(image, (max(1, round(width * scale)), max(1, round(height * scale))), interpolation=interpolation)


def backdrop_around(rgb: np.ndarray, mask: np.ndarray, ring_px: int = BACKDROP_RING_PX) -> np.ndarray:
    """The backdrop colour near every pixel: the average of a ring outside ``mask``, spread by a wide blur.

    Returns (H, W, 3) float32. Works for gradients and spotlights, where one backdrop colour for the
    whole image does not.
    """
    mask_u8 = mask.astype(np.uint8)
    ring = (cv2.dilate(mask_u8, disk(ring_px)) > 0) & ~mask
    if not ring.any():
        ring = ~mask
    weight = ring.astype(np.float32)
    sigma = max(4.0, 0.08 * max(rgb.shape[:2]))
    spread_weight = cv2.GaussianBlur(weight, (0, 0), sigma)
    spread = cv2.GaussianBlur(rgb.astype(np.float32) * weight[..., None], (0, 0), sigma)
    return spread / np.maximum(spread_weight, 1e-6)[..., None]


def _grain(work_rgb: np.ndarray, region: np.ndarray) -> float:
    """The backdrop's grain in ``region``: RMS of its grey image minus a slight blur of it (0-255 levels)."""
    grey = _luma(work_rgb)
    residual = grey - cv2.GaussianBlur(grey, (0, 0), 2.0)
    return float(np.sqrt(np.mean(residual[region] ** 2))) if region.any() else 0.0


def _sharp_outline(part: np.ndarray, outside: np.ndarray, edges: np.ndarray, level: float) -> bool:
    """Whether ``part`` meets ``outside`` along a sharp edge (False when they hardly meet)."""
    meeting = part & (cv2.dilate(outside.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0)
    if int(meeting.sum()) < OUTLINE_MIN_PX:
        return False
    return float(np.median(edges[meeting])) >= level


def _under(product: np.ndarray) -> np.ndarray:
    """Pixels below the product's lowest pixel in their column (below its lowest row where it has none)."""
    height = product.shape[0]
    rows = np.arange(height)[:, None]
    has = product.any(axis=0)
    if not has.any():
        return np.zeros_like(product)
    lowest = np.where(has, height - 1 - np.argmax(product[::-1], axis=0), np.nonzero(product.any(axis=1))[0].max())
    return rows > lowest[None, :]


def _parts(mask: np.ndarray) -> list[np.ndarray]:
    count, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    return [labels == i for i in range(1, count)]


def check_cutout(
    rgb: np.ndarray, alpha: np.ndarray, reference: np.ndarray | None, options: QualitySettings, *, reference_name: str
) -> Check:
    """Does the cut-out miss parts of the product (holes, bands) or keep a band of backdrop (a halo)?

    The mask is compared with a second opinion (another backend's mask of the same photo). Where
    they differ, colour and outline decide: a part only the second opinion has is missing product
    unless it looks like the backdrop around it or a shadow on it (a mug handle's hole, a contact
    shadow the other backend kept) and meets that backdrop with no sharp edge; a band only the mask
    has is a halo when it looks like the backdrop or its shadow and fades into it (a pale lid on a
    spotlight has the backdrop's colour, but an outline).

    Args:
        rgb: (H, W, 3) uint8, the photo the product was cut out of.
        alpha: (H, W) uint8, the cut-out's alpha in that photo's pixels.
        reference: (H, W) uint8, the second opinion's alpha; None: none could be had.
        reference_name: where the second opinion came from, for the detail.

    Score: the worse of missing share / its limit and halo width / its limit (1 = at the limit).
    """
    if reference is None:
        return skipped("cutout", "no second opinion available (one cut-out backend runs here)")
    scale = _work_scale(alpha.shape)
    work_rgb = _resized(rgb, scale).astype(np.float32)
    mask = _resized(alpha, scale, cv2.INTER_LINEAR) >= 128
    second = _resized(reference, scale, cv2.INTER_LINEAR) >= 128
    if not mask.any() or not second.any():
        return skipped("cutout", "an empty mask")
    backdrop = backdrop_around(work_rgb, mask | second)
    backdrop_like = np.linalg.norm(work_rgb - backdrop, axis=2) < BACKDROP_LIKE_LEVELS
    # A darker copy of the backdrop under the product both masks agree on: a cast shadow on the surface,
    # which one backend may keep with the product. Its edge can be as sharp as an outline (a contact
    # shadow), so there colour and place decide, not the edge.
    shadow = shadow_like(work_rgb, backdrop, BACKDROP_LIKE_LEVELS) & _under(mask & second)
    tolerance = disk(CUTOUT_EDGE_TOLERANCE_PX)
    grown_mask = cv2.dilate(mask.astype(np.uint8), tolerance) > 0
    grown_second = cv2.dilate(second.astype(np.uint8), tolerance) > 0
    product_area = float(second.sum())
    union = (mask | second).astype(np.uint8)
    outside = union == 0
    # The backdrop's grain, from a ring clear of both masks' edges (blurred edges would count as grain).
    ring = (cv2.dilate(union, disk(GRAIN_RING_OUTER_PX)) > 0) & ~(cv2.dilate(union, disk(GRAIN_RING_INNER_PX)) > 0)
    level = max(OUTLINE_SHARP_LEVELS, OUTLINE_NOISE_FACTOR * _grain(work_rgb, ring))
    # Step heights (0-255 levels), a pixel's offset tolerated: where a part meets the backdrop.
    edges = cv2.dilate(edge_strength(cv2.GaussianBlur(work_rgb, (0, 0), 1.0)), np.ones((3, 3), np.uint8))

    missing = 0.0
    for part in _parts(second & ~grown_mask):
        if float(shadow[part].mean()) >= MISSING_MAX_BACKDROP_SHARE:
            continue  # the other backend kept the product's shadow
        looks_backdrop = float(backdrop_like[part].mean()) >= MISSING_MAX_BACKDROP_SHARE
        if not looks_backdrop or _sharp_outline(part, outside, edges, level):
            missing = max(missing, float(part.sum()) / product_area)
    halo = np.zeros_like(mask)
    for part in _parts(mask & ~grown_second):
        if float(shadow[part].mean()) >= HALO_MIN_BACKDROP_SHARE:
            halo |= part  # a shadow kept as product
            continue
        looks_backdrop = float(backdrop_like[part].mean()) >= HALO_MIN_BACKDROP_SHARE
        if looks_backdrop and not _sharp_outline(part, outside, edges, level):
            halo |= part
    outline = second & ~(cv2.erode(second.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0)
    perimeter = max(1.0, float(outline.sum()))
    # The halo's average width over the whole outline, in the photo's pixels: its area, plus the
    # tolerance band along the stretch of outline it covers (the band starts that far out).
    covered = float((outline & (cv2.dilate(halo.astype(np.uint8), disk(CUTOUT_EDGE_TOLERANCE_PX + 1)) > 0)).sum())
    halo_px = (float(halo.sum()) + covered * CUTOUT_EDGE_TOLERANCE_PX) / perimeter / scale

    missing_limit, halo_limit = options.cutout_max_missing, options.cutout_max_halo_px
    score = max(missing / max(missing_limit, 1e-9), halo_px / max(halo_limit, 1e-9))
    ok = missing <= missing_limit and halo_px <= halo_limit
    detail = f"against {reference_name}: missing part {missing:.1%} of the product, backdrop halo {halo_px:.1f} px"
    return _verdict("cutout", ok, score, 1.0, detail)


def check_placement(
    product_box: Box,
    product_alpha: np.ndarray,
    surface_line_y: int,
    size_fraction: float,
    options: QualitySettings,
) -> Check:
    """Is the product in frame, whole, standing on the surface line, at about the recommended size?

    Args:
        product_box: the product's box in the output (exclusive ``x1``/``y1``).
        product_alpha: (H, W) uint8, its alpha in the output.
        surface_line_y: the row its base should rest on.
        size_fraction: the analysis's recommended height, as a share of the output height.

    Score: the worst of base offset / its limit, size outside the range (relative), and 2 for a
    product cut by the frame; it passes at or below 1.
    """
    height = product_alpha.shape[0]
    problems: list[tuple[float, str]] = []
    edges = {
        "left": product_alpha[:, 0],
        "right": product_alpha[:, -1],
        "top": product_alpha[0, :],
        "bottom": product_alpha[-1, :],
    }
    cut = [side for side, line in edges.items() if int(line.max()) >= 128]
    if cut:
        problems.append((2.0, f"cut by the frame's {' and '.join(cut)} edge"))
    offset = abs((product_box.y1 - 1) - surface_line_y) / height
    problems.append(
        (offset / max(options.placement_max_offset, 1e-9), f"base {offset:.1%} of the height off the surface line")
    )
    low, high = options.placement_size_range
    ratio = product_box.height / max(size_fraction * height, 1.0)
    size_score = max(low / ratio, ratio / high) if ratio > 0 else 9.0
    problems.append((size_score, f"height {ratio:.2f}x the recommended"))
    score, _ = max(problems)
    detail = "; ".join(text for value, text in problems if value > 1.0) or "; ".join(text for _, text in problems)
    return _verdict("placement", score <= 1.0, score, 1.0, detail)


def _normalised(text: str) -> str:
    return normalise(text).lower()


def label_error(source_lines: Sequence[str], read_lines: Sequence[str]) -> float:
    """Character error rate of ``read_lines`` against ``source_lines``, line order ignored.

    Each source line is matched with the read line closest to it; the errors are summed over the
    source's characters (0: every source line was read exactly; 1: none of it).
    """
    sources = [s for s in (_normalised(line) for line in source_lines) if s]
    reads = [r for r in (_normalised(line) for line in read_lines) if r]
    total = sum(len(s) for s in sources)
    if total == 0:
        return 0.0
    errors = 0
    for source in sources:
        errors += min((min(edit_distance(source, read), len(source)) for read in reads), default=len(source))
    return errors / total


def check_label(source_lines: Sequence[str] | None, read_lines: Sequence[str], options: QualitySettings) -> Check:
    """Is the label text read on the source found on the final image?

    Args:
        source_lines: the confident lines OCR read on the source product photo; None: OCR is not available.
        read_lines: the lines read on the final image's product crop (at the same text height).
    """
    if source_lines is None:
        return skipped("label", "no OCR models here (placewright models pull pp-ocrv4)")
    if not any(line.strip() for line in source_lines):
        return skipped("label", "no legible text on the source's label")
    error = label_error(source_lines, read_lines)
    limit = options.label_max_cer
    shown = " / ".join(source_lines)[:80]
    return _verdict("label", error <= limit, error, limit, f"character error rate {error:.2f} reading {shown!r}")


def _luma(rgb: np.ndarray) -> np.ndarray:
    return rgb[..., :3].astype(np.float32) @ LUMA_WEIGHTS


def check_shadow(
    scene: np.ndarray, final: np.ndarray, product_alpha: np.ndarray, product_box: Box, options: QualitySettings
) -> Check:
    """Does the product cast a shadow: is the surface around its base darker than the empty scene?

    Args:
        scene: (H, W, 3) uint8, the scene before the product was put in.
        final: (H, W, 3) uint8, the finished image.
        product_alpha: (H, W) uint8, the product's alpha (its own pixels are left out).
        product_box: the product's box.

    Score: ``1 - mean luma(final) / mean luma(scene)`` over the band around the base.
    """
    height, width = product_alpha.shape
    h, w = product_box.height, product_box.width
    y0 = max(0, round(product_box.y1 - SHADOW_BAND_ABOVE * h))
    y1 = min(height, round(product_box.y1 + SHADOW_BAND_BELOW * h) + 1)
    x0 = max(0, round(product_box.x0 - SHADOW_BAND_SIDE * w))
    x1 = min(width, round(product_box.x1 + SHADOW_BAND_SIDE * w))
    band = product_alpha[y0:y1, x0:x1] == 0
    if y1 <= y0 or x1 <= x0 or band.sum() < 16:
        return skipped("shadow", "no surface visible under the product")
    before = float(_luma(scene[y0:y1, x0:x1])[band].mean())
    after = float(_luma(final[y0:y1, x0:x1])[band].mean())
    darkening = 1.0 - after / max(before, 1.0)
    limit = options.shadow_min_darkening
    return _verdict("shadow", darkening >= limit, darkening, limit, f"surface under the product {darkening:.1%} darker")


def check_exposure(final: np.ndarray, options: QualitySettings) -> Check:
    """Is the image free of large blown-out or crushed areas?"""
    # Every other pixel of every other row: shares of the image, the same to a fraction of a percent.
    red, green, blue = cv2.split(np.ascontiguousarray(final[::2, ::2, :3]))
    darkest, brightest = cv2.min(cv2.min(red, green), blue), cv2.max(cv2.max(red, green), blue)
    pixels = float(darkest.size)
    blown = cv2.countNonZero((darkest >= BLOWN_LEVEL).view(np.uint8)) / pixels
    crushed = cv2.countNonZero((brightest <= CRUSHED_LEVEL).view(np.uint8)) / pixels
    score = max(blown, crushed)
    limit = options.exposure_max_clipped
    return _verdict("exposure", score <= limit, score, limit, f"{blown:.1%} blown out, {crushed:.1%} crushed")


def enabled(name: CheckName, options: QualitySettings) -> bool:
    """Whether the gate runs check ``name`` under ``options``."""
    return options.enabled and name not in options.skip


_SOURCE_LABELS: dict[tuple[str, str], list[TextLine]] = {}
_SOURCE_LABELS_LOCK = threading.Lock()


def source_label(source: np.ndarray, sha256: str, ocr: OcrSettings) -> list[TextLine] | None:
    """The legible lines of the source product photo's label, boxes in its pixels (None: no OCR models here).

    Read once per process and source (the variants of a run share it).
    """
    if ocr_unavailable_reason(ocr) is not None:
        return None
    key = (sha256, ocr.model_dump_json())
    with _SOURCE_LABELS_LOCK:
        if key not in _SOURCE_LABELS:
            # One detection pass at the photo's own scale: the lines are read again where the product
            # was placed (recognition scales every line to the model's height), so no rescaling is needed.
            _SOURCE_LABELS[key] = legible(read_text(source, options=ocr), ocr)
        return _SOURCE_LABELS[key]


_PLACED_LABELS: dict[tuple[Any, ...], list[str]] = {}


def placed_label(
    final: np.ndarray, reference: list[TextLine], boxes: list[np.ndarray], key: tuple[Any, ...], ocr: OcrSettings
) -> list[str]:
    """The text read at ``boxes`` in ``final``, remembered under ``key`` for this process.

    Callers key it by the cut-out's content and the product's placed size, and only when the fidelity
    check passed: then the product's own pixels are the same in every variant of that size, and so is
    what its label reads.
    """
    full_key = (*key, ocr.model_dump_json())
    with _SOURCE_LABELS_LOCK:
        if full_key in _PLACED_LABELS:
            return _PLACED_LABELS[full_key]
    read = read_boxes(final, boxes, options=ocr)
    with _SOURCE_LABELS_LOCK:
        _PLACED_LABELS[full_key] = read
    return read


def placed_boxes(
    lines: Sequence[TextLine], *, enhance_scale: float, cutout_box: Box, product_box: Box
) -> list[np.ndarray]:
    """Where the source's label lines are in the final image: the source's boxes through the enhance
    stage's upscale, the cut-out's crop and the compositor's resize, each grown by
    :data:`LABEL_BOX_MARGIN` of its height so that a pixel's rounding cannot clip a letter.

    Returns (4, 2) float32 corners, axis-aligned, clockwise from the top left.
    """
    scale = product_box.height / max(cutout_box.height, 1)
    boxes = []
    for line in lines:
        corners = line.box.astype(np.float32) * enhance_scale - (cutout_box.x0, cutout_box.y0)
        corners = corners * scale + (product_box.x0, product_box.y0)
        x0, y0 = corners.min(axis=0)
        x1, y1 = corners.max(axis=0)
        grow = LABEL_BOX_MARGIN * (y1 - y0)
        x0, y0, x1, y1 = x0 - grow, y0 - grow, x1 + grow, y1 + grow
        boxes.append(np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float32))
    return boxes


def ocr_signature(ocr: OcrSettings) -> str:
    """The OCR models' identity (file sizes and times), or ``-`` when absent: a label check made without
    OCR models is not reused once they are pulled."""
    if ocr_unavailable_reason(ocr) is not None:
        return "-"
    folder = model_folder(ocr.model)
    stats = [(folder / name).stat() for name in sorted(p.name for p in folder.glob("*.onnx"))]
    return ",".join(f"{st.st_size}:{st.st_mtime_ns}" for st in stats)


def _label_check(
    source: np.ndarray,
    source_sha256: str,
    enhance_scale: float,
    cutout_box: Box,
    cutout_sha256: str,
    product_box: Box,
    final: np.ndarray,
    fidelity: Check,
    options: QualitySettings,
    ocr: OcrSettings,
) -> Check:
    """The label check of :func:`check_variant`: the source's lines read where they were placed."""
    reference = source_label(source, source_sha256, ocr)
    read: list[str] = []
    if reference:
        boxes = placed_boxes(reference, enhance_scale=enhance_scale, cutout_box=cutout_box, product_box=product_box)
        if fidelity.status == "pass":  # the product's pixels are the composite's: one reading per placed size
            size = (product_box.width, product_box.height)
            read = placed_label(final, reference, boxes, (source_sha256, cutout_sha256, size), ocr)
        else:
            read = read_boxes(final, boxes, options=ocr)
    return check_label(None if reference is None else [line.text for line in reference], read, options)


def check_variant(
    *,
    source: np.ndarray,
    source_sha256: str,
    enhance_scale: float,
    cutout_box: Box,
    cutout_sha256: str,
    cutout_check: Check | None,
    size_fraction: float,
    scene: np.ndarray,
    surface: Surface,
    composite: np.ndarray,
    product_alpha: np.ndarray,
    product_box: Box,
    final: np.ndarray,
    options: QualitySettings,
    ocr: OcrSettings,
) -> QualityReport:
    """Every enabled check of one finished variant (the cut-out's was made by the cut-out stage).

    Args:
        source: the product photo as the user gave it (the label's reference).
        source_sha256: its content hash (the source's label is read once per process).
        enhance_scale: the enhance stage's upscale factor; ``cutout_box`` the cut-out's crop in its output,
            ``cutout_sha256`` the cut-out's content hash.
        cutout_check: the cut-out stage's integrity check (see :mod:`placewright.cutout.verify`).
        size_fraction: the analysis's recommended product height / output height.
        scene: the scene before the product was put in; ``surface`` where it should stand.
        composite, product_alpha, product_box: the composite before harmonize, the product's alpha and box.
        final: the finished image.
    """
    checks: list[Check] = []
    fidelity = check_fidelity(composite, final, product_alpha, product_box, options)
    if enabled("fidelity", options):
        checks.append(fidelity)
    if enabled("cutout", options):
        checks.append(cutout_check or skipped("cutout", "the cut-out stage made no check"))
    if enabled("placement", options):
        checks.append(check_placement(product_box, product_alpha, surface.line_y, size_fraction, options))
    if enabled("label", options):
        try:
            checks.append(
                _label_check(
                    source,
                    source_sha256,
                    enhance_scale,
                    cutout_box,
                    cutout_sha256,
                    product_box,
                    final,
                    fidelity,
                    options,
                    ocr,
                )
            )
        except Exception as exc:  # a broken OCR model must not lose the variant: the check says it could not run
            checks.append(skipped("label", f"OCR failed: {type(exc).__name__}: {first_line(exc)}"))
    if enabled("shadow", options):
        checks.append(check_shadow(scene, final, product_alpha, product_box, options))
    if enabled("exposure", options):
        checks.append(check_exposure(final, options))
    return QualityReport.of(checks)


__all__ = [
    "CHECKS",
    "RESEEDABLE",
    "Check",
    "QualityReport",
    "backdrop_around",
    "check_cutout",
    "check_exposure",
    "check_fidelity",
    "check_label",
    "check_placement",
    "check_shadow",
    "check_variant",
    "enabled",
    "label_error",
    "ocr_signature",
    "placed_boxes",
    "skipped",
    "source_label",
]
