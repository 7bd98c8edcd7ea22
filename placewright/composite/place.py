"""Geometry of the placement: product size, resampling and position in the scene.

Size rule
    1. Fraction height: ``h_f = size_fraction * H`` (the analysis' recommendation).
    2. Real-size height, when the analysis gives the product's real height ``height_cm`` and
       the surface box is known: the box is the part of the surface visible in the frame, so
       ``px_per_cm = box.width / surface_width_cm(phrase)``, where :data:`SURFACE_WIDTH_CM`
       gives the width of surface a product shot of that surface typically shows, and
       ``h_r = height_cm * px_per_cm``. The scale is that of the surface's visible width,
       not corrected for perspective (the product stands a little in front of the back edge,
       so this errs slightly small). ``h_r`` is then clamped to
       ``[real_size_min * h_f, real_size_max * h_f]`` (default [0.5, 1.5]): the estimate
       wins inside that band, and a wrong box, an odd surface or a bad size estimate can at
       most halve or grow the fraction height by half. Without a real height or a box (or
       with both bounds set to 1) the height is ``h_f``.
    3. Frame caps, always: the width stays within ``max_width_fraction * W`` (and inside the
       side margins), the top keeps ``margin_fraction * H`` from the top edge when standing
       on the surface line, and the height is at least ``MIN_PRODUCT_PX``.

Position: the base (the lowest row where alpha >= 0.5) lands on the surface line; the product
is centred on the surface's ``center_x`` and clamped horizontally into the frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from placewright.errors import InvalidInput
from placewright.settings import CompositeSettings
from placewright.types import Box

# Alpha (0-1) from which a pixel counts as solid product: the base row is the lowest row
# with such a pixel (the soft anti-aliased fringe below it is not the base).
SOLID_ALPHA = 0.5
# Smallest product height (pixels) we place: below this nothing recognisable is left.
MIN_PRODUCT_PX = 8
# When the surface line is so high that a product could only be a sliver above it, the
# line is lowered so the product keeps at least this fraction of the frame height.
MIN_VISIBLE_FRACTION = 0.10

# Width (cm) of surface a product shot of it typically shows: the surface box spans what is
# visible, which for most furniture is a slice, not the whole piece. First keyword found in
# the surface phrase wins (more specific phrases first).
SURFACE_WIDTH_CM: tuple[tuple[str, float], ...] = (
    ("coffee table", 100.0),  # low table, shot from above and closer: about a metre in view
    ("bedside", 50.0),  # a nightstand top is 40-55 cm wide and usually all in view
    ("nightstand", 50.0),
    ("side table", 55.0),  # small occasional tables, 45-60 cm
    ("countertop", 150.0),  # a kitchen/bathroom run: a shot shows 1.2-1.8 m of it
    ("counter", 150.0),
    ("worktop", 150.0),
    ("bar", 150.0),  # bar tops are long; framed like a counter
    ("desk", 120.0),  # desks are 120-160 cm wide; a shot shows about the 120 cm of a small one
    ("shelf", 80.0),  # one shelf bay between uprights: 60-100 cm
    ("windowsill", 90.0),  # a window sill spans a window, about 0.8-1.2 m
    ("window sill", 90.0),
    ("vanity", 90.0),  # a bathroom vanity, 60-120 cm
    ("dresser", 100.0),  # chest of drawers tops, 80-120 cm
    ("pedestal", 40.0),  # display plinths/podiums are 30-50 cm across
    ("podium", 40.0),
    ("plinth", 40.0),
    ("stool", 35.0),  # a stool seat, 30-40 cm
    ("tray", 45.0),  # a serving tray, 35-55 cm
    ("floor", 250.0),  # a room-scale view of the floor, 2-3 m across
    ("table", 120.0),  # a dining/work table seen in a product shot: about 1.2 m of it in view
)
# Used when the phrase names none of the above: a generic tabletop.
DEFAULT_SURFACE_WIDTH_CM = 120.0
# Narrower surface boxes (pixels) are not trusted as a scale (a detection sliver).
MIN_SCALE_BOX_PX = 16


@dataclass(frozen=True)
class Placement:
    """Where the resized product goes.

    Attributes:
        premult: (h, w, 3) float32 colour premultiplied by alpha, 0-1.
        alpha: (h, w) float32 alpha, 0-1.
        x0, y0: output position of the top-left corner of ``alpha`` (may be partly outside
            the frame only for the soft fringe below the base line).
        base_y: output row of the product's base.
    """

    premult: np.ndarray
    alpha: np.ndarray
    x0: int
    y0: int
    base_y: int

    @property
    def height(self) -> int:
        return self.alpha.shape[0]

    @property
    def width(self) -> int:
        return self.alpha.shape[1]


def crop_premultiplied(cutout: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Crop an RGBA cut-out to its visible pixels and premultiply.

    Args:
        cutout: (h, w, 4) RGBA or (h, w, 3) RGB (opaque) uint8.

    Returns:
        ``(premult, alpha)``: (h', w', 3) and (h', w') float32 in 0-1.

    Raises:
        InvalidInput: when the cut-out is fully transparent.
    """
    if cutout.shape[2] == 4:
        alpha_u8 = cutout[..., 3]
        rows = np.flatnonzero(alpha_u8.any(axis=1))
        if rows.size == 0:
            raise InvalidInput("the cut-out is fully transparent", stage="composite")
        cols = np.flatnonzero(alpha_u8.any(axis=0))
        crop = cutout[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
        alpha = crop[..., 3].astype(np.float32) * (1.0 / 255.0)
    else:
        crop = cutout
        alpha = np.ones(crop.shape[:2], np.float32)
    premult = crop[..., :3].astype(np.float32) * (1.0 / 255.0) * alpha[..., None]
    return premult, alpha


def surface_width_cm(phrase: str | None) -> float:
    """Typical visible width (cm) of the surface named by ``phrase`` (see :data:`SURFACE_WIDTH_CM`)."""
    text = " ".join((phrase or "").lower().split())
    for keyword, width in SURFACE_WIDTH_CM:
        if keyword in text:
            return width
    return DEFAULT_SURFACE_WIDTH_CM


def target_height(
    scene_h: int, size_fraction: float, options: CompositeSettings, *, real_height_cm: float | None = None,
    surface_box: Box | None = None, surface_phrase: str | None = None,
) -> float:  # fmt: skip
    """The product height (pixels) before the frame caps: steps 1-2 of the module's size rule.

    Args:
        scene_h: output height.
        size_fraction: recommended product height / output height.
        options: composite settings (``real_size_min``/``real_size_max`` bound the real-size height).
        real_height_cm: the product's estimated real height, or None.
        surface_box: the visible surface region in output pixels, or None.
        surface_phrase: what the surface is ("table", "marble countertop"); None: a table.
    """
    fraction_height = size_fraction * scene_h
    if real_height_cm is None or real_height_cm <= 0 or surface_box is None or surface_box.width < MIN_SCALE_BOX_PX:
        return fraction_height
    px_per_cm = surface_box.width / surface_width_cm(surface_phrase)
    real_height = real_height_cm * px_per_cm
    low, high = options.real_size_min * fraction_height, options.real_size_max * fraction_height
    return float(min(max(real_height, low), high))


def fit_size(
    crop_h: int, crop_w: int, scene_h: int, scene_w: int, line_y: int, size_fraction: float,
    options: CompositeSettings, *, real_height_cm: float | None = None, surface_box: Box | None = None,
    surface_phrase: str | None = None,
) -> tuple[int, int]:  # fmt: skip
    """The product's output ``(height, width)``, aspect preserved, fitting the frame (the module's size rule)."""
    aspect = crop_h / crop_w
    margin = options.margin_fraction * scene_h
    height = target_height(
        scene_h, size_fraction, options, real_height_cm=real_height_cm, surface_box=surface_box,
        surface_phrase=surface_phrase,
    )  # fmt: skip
    max_width = min(options.max_width_fraction * scene_w, scene_w - 2 * options.margin_fraction * scene_w)
    height = min(height, max_width * aspect, line_y + 1 - margin)
    height = max(height, float(MIN_PRODUCT_PX))
    width = max(1, round(height / aspect))
    return max(1, round(height)), width


def effective_line(line_y: int, scene_h: int, options: CompositeSettings) -> int:
    """The surface line clamped into the frame, low enough for a visible product."""
    lowest_top = options.margin_fraction * scene_h + max(MIN_VISIBLE_FRACTION * scene_h, MIN_PRODUCT_PX)
    return int(min(max(line_y, round(lowest_top)), scene_h - 1))


def resize_premultiplied(
    premult: np.ndarray, alpha: np.ndarray, width: int, height: int
) -> tuple[np.ndarray, np.ndarray]:
    """Resample premultiplied colour and alpha together (area down, Lanczos up).

    Returns (height, width, 3) and (height, width) float32, alpha in 0-1 and colour
    within ``[0, alpha]`` (Lanczos ringing cannot create colour where there is no alpha).
    """
    shrinking = width * height < alpha.shape[0] * alpha.shape[1]
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LANCZOS4
    stack = np.dstack([premult, alpha])
    out = cv2.resize(stack, (width, height), interpolation=interpolation)
    new_alpha = np.clip(out[..., 3], 0.0, 1.0)
    new_alpha[new_alpha < 0.5 / 255.0] = 0.0  # ringing crumbs that would round to 0 anyway
    new_premult = np.clip(out[..., :3], 0.0, new_alpha[..., None])
    return np.ascontiguousarray(new_premult), new_alpha


def feather(premult: np.ndarray, alpha: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Soften the alpha edge inward only (never outward: no halo), keeping colour straight."""
    if sigma <= 0:
        return premult, alpha
    pad = int(np.ceil(3 * sigma))
    blurred = cv2.GaussianBlur(
        cv2.copyMakeBorder(alpha, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0), (0, 0), sigma
    )[pad:-pad, pad:-pad]
    new_alpha = np.minimum(alpha, blurred)
    ratio = np.divide(new_alpha, alpha, out=np.zeros_like(alpha), where=alpha > 0)
    return premult * ratio[..., None], new_alpha


def base_row(alpha: np.ndarray) -> int:
    """Index of the lowest row of ``alpha`` with a solid pixel (alpha >= SOLID_ALPHA)."""
    rows = np.flatnonzero((alpha >= SOLID_ALPHA).any(axis=1))
    if rows.size == 0:
        rows = np.flatnonzero((alpha > 0).any(axis=1))
    return int(rows[-1]) if rows.size else alpha.shape[0] - 1


def place(
    cutout: np.ndarray, scene_h: int, scene_w: int, line_y: int, center_x: int, size_fraction: float,
    options: CompositeSettings, *, real_height_cm: float | None = None, surface_box: Box | None = None,
    surface_phrase: str | None = None,
) -> Placement:  # fmt: skip
    """Resize the cut-out and position it standing on the surface line.

    Args:
        cutout: (h, w, 4) RGBA uint8 cut-out.
        scene_h, scene_w: output size.
        line_y, center_x: the surface line and centre column.
        size_fraction: recommended product height / output height.
        options: composite settings.
        real_height_cm: the product's estimated real height (``Analysis.height_cm``), or None.
        surface_box: the visible surface region (``Surface.box``), or None.
        surface_phrase: what the surface is called; None: a table.

    Returns:
        The :class:`Placement`.
    """
    premult, alpha = crop_premultiplied(cutout)
    line = effective_line(line_y, scene_h, options)
    height, width = fit_size(
        alpha.shape[0], alpha.shape[1], scene_h, scene_w, line, size_fraction, options,
        real_height_cm=real_height_cm, surface_box=surface_box, surface_phrase=surface_phrase,
    )  # fmt: skip
    premult, alpha = resize_premultiplied(premult, alpha, width, height)
    premult, alpha = feather(premult, alpha, options.feather_px)
    base = base_row(alpha)
    y0 = line - base
    side = round(options.margin_fraction * scene_w) if width + 2 * options.margin_fraction * scene_w <= scene_w else 0
    x0 = round(center_x - width / 2)
    x0 = int(min(max(x0, side), scene_w - width - side))
    return Placement(premult=premult, alpha=alpha, x0=x0, y0=int(y0), base_y=line)
