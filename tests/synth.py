"""Synthetic product photos with known ground truth, for tests of every stage.

Everything is drawn in code (no files), deterministic for a given ``seed``:

* :func:`render_product_photo` builds a studio product photo and returns every layer
  (:class:`SynthPhoto`): the photo, the ground-truth mask, the anti-aliased coverage,
  the product colour layer and the backdrop layer (with its shadow, without the product).
* :func:`make_product_photo` is the short form: ``(rgb, mask)``.
* :func:`make_rgba_cutout` builds an already cut-out product (RGBA, soft edges).
* :func:`iou` compares two masks.

The product is not flat: it has cylindrical shading across it, a label band of another
colour with rows of text-like marks, and a highlight stripe. The optional soft shadow is
cast on the backdrop below and beside the product and is NOT part of the mask.

Conventions: images are uint8 (H, W, 3) RGB / (H, W, 4) RGBA; masks are (H, W) bool;
sizes are ``(width, height)``; colours are RGB tuples 0..255.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

Shape = Literal["bottle", "box", "can", "ellipse", "jar"]
Backdrop = Literal["plain", "gradient", "texture"]
RGB = tuple[int, int, int]

SHAPES: tuple[str, ...] = ("bottle", "box", "can", "ellipse", "jar")
BACKDROPS: tuple[str, ...] = ("plain", "gradient", "texture")

# Shapes are drawn this many times larger, then area-averaged down: anti-aliased edges.
_SUPERSAMPLE = 4
# Width/height of each shape's bounding box.
_ASPECT = {"bottle": 0.36, "box": 0.7, "can": 0.5, "ellipse": 0.75, "jar": 0.62}
# Sensor noise added to the whole photo (std, 0..255 levels).
_SENSOR_NOISE = 1.5


@dataclass(frozen=True)
class SynthPhoto:
    """One synthetic photo and its ground truth.

    Attributes:
        rgb: (H, W, 3) uint8, the photo.
        mask: (H, W) bool, ground truth: pixels at least half covered by the product.
        coverage: (H, W) float32 in [0, 1], the anti-aliased product coverage.
        foreground: (H, W, 3) float32 0..255, the product colour layer (meaningful where
            coverage > 0).
        backdrop: (H, W, 3) float32 0..255, the backdrop including its shadow, without the
            product.
        box: (x0, y0, x1, y1) the product's bounding box (exclusive ends).
    """

    rgb: np.ndarray
    mask: np.ndarray
    coverage: np.ndarray
    foreground: np.ndarray
    backdrop: np.ndarray
    box: tuple[int, int, int, int]


def product_box(shape: str, size: tuple[int, int], scale: float = 0.6) -> tuple[int, int, int, int]:
    """The product's box: ``scale`` of the height, the shape's aspect, centred slightly high."""
    if shape not in _ASPECT:
        raise ValueError(f"unknown shape {shape!r}; choose one of {', '.join(SHAPES)}")
    width, height = size
    box_h = scale * height
    box_w = min(_ASPECT[shape] * box_h, 0.8 * width)
    cx, cy = width / 2, height * 0.47
    return (int(cx - box_w / 2), int(cy - box_h / 2), int(cx + box_w / 2), int(cy + box_h / 2))


def shape_coverage(shape: str, size: tuple[int, int], box: tuple[int, int, int, int]) -> np.ndarray:
    """Anti-aliased coverage (H, W) float32 in [0, 1] of ``shape`` drawn inside ``box``."""
    width, height = size
    s = _SUPERSAMPLE
    canvas = np.zeros((height * s, width * s), np.uint8)
    x0, y0, x1, y1 = (v * s for v in box)
    w, h = x1 - x0, y1 - y0
    cx = (x0 + x1) // 2

    def rect(ax: float, ay: float, bx: float, by: float) -> None:
        cv2.rectangle(canvas, (int(ax), int(ay)), (int(bx) - 1, int(by) - 1), 255, -1)

    def ellipse(ex: float, ey: float, rx: float, ry: float) -> None:
        cv2.ellipse(canvas, (int(ex), int(ey)), (max(1, int(rx)), max(1, int(ry))), 0, 0, 360, 255, -1)

    if shape == "bottle":
        body_top = y0 + 0.38 * h
        rect(x0, body_top, x1, y1 - 0.04 * h)
        ellipse(cx, y1 - 0.04 * h, w / 2, 0.04 * h)  # rounded base
        ellipse(cx, body_top, w / 2, 0.12 * h)  # shoulder
        neck_w = 0.36 * w
        rect(cx - neck_w / 2, y0 + 0.08 * h, cx + neck_w / 2, body_top)
        cap_w = 0.42 * w
        rect(cx - cap_w / 2, y0, cx + cap_w / 2, y0 + 0.11 * h)
    elif shape == "box":
        # A carton seen slightly from above: front face plus a sheared top face.
        top = 0.14 * h
        rect(x0, y0 + top, x1 - 0.12 * w, y1)
        pts = np.array([[x0, y0 + top], [x0 + 0.12 * w, y0], [x1, y0], [x1, y1 - top], [x1 - 0.12 * w, y1]], np.int32)
        cv2.fillPoly(canvas, [pts], 255)
    elif shape == "can":
        ry = 0.07 * w
        rect(x0, y0 + ry, x1, y1 - ry)
        ellipse(cx, y0 + ry, w / 2, ry)
        ellipse(cx, y1 - ry, w / 2, ry)
    elif shape == "ellipse":
        ellipse(cx, (y0 + y1) / 2, w / 2, h / 2)
    elif shape == "jar":
        lid_w, lid_h = 0.8 * w, 0.16 * h
        rect(cx - lid_w / 2, y0, cx + lid_w / 2, y0 + lid_h)
        rr = 0.12 * w
        cv2.rectangle(canvas, (int(x0 + rr), int(y0 + lid_h)), (int(x1 - rr), int(y1)), 255, -1)
        cv2.rectangle(canvas, (int(x0), int(y0 + lid_h + rr)), (int(x1), int(y1 - rr)), 255, -1)
        for ex, ey in ((x0 + rr, y0 + lid_h + rr), (x1 - rr, y0 + lid_h + rr), (x0 + rr, y1 - rr), (x1 - rr, y1 - rr)):
            ellipse(ex, ey, rr, rr)
    else:
        raise ValueError(f"unknown shape {shape!r}; choose one of {', '.join(SHAPES)}")
    small = cv2.resize(canvas, (width, height), interpolation=cv2.INTER_AREA)
    return small.astype(np.float32) / 255.0


def _contrast_label(product_rgb: RGB) -> RGB:
    """A label colour that stands out from the product (light on dark, dark on light)."""
    luma = 0.299 * product_rgb[0] + 0.587 * product_rgb[1] + 0.114 * product_rgb[2]
    return (236, 214, 120) if luma < 128 else (40, 52, 110)


def _product_layer(
    size: tuple[int, int], box: tuple[int, int, int, int], product_rgb: RGB, label_rgb: RGB, rng: np.random.Generator
) -> np.ndarray:
    """The product's colour (H, W, 3) float32: shading, a label band with marks, a highlight."""
    width, height = size
    x0, y0, x1, y1 = box
    layer = np.empty((height, width, 3), np.float32)
    layer[:] = np.asarray(product_rgb, np.float32)
    bw, bh = max(1, x1 - x0), max(1, y1 - y0)
    # Label band: 30% of the height, below the middle, with rows of dark "text" marks.
    ly0, ly1 = y0 + int(0.48 * bh), y0 + int(0.78 * bh)
    layer[ly0:ly1, x0:x1] = np.asarray(label_rgb, np.float32)
    ink = np.asarray(product_rgb, np.float32) * 0.5
    rows = 3
    mark_h = max(1, (ly1 - ly0) // (3 * rows))
    for r in range(rows):
        ty = ly0 + (r * 3 + 1) * mark_h
        tx = x0 + int(0.18 * bw)
        while tx < x1 - int(0.18 * bw):
            word = int(rng.integers(2, 6)) * max(1, bw // 40)
            layer[ty : ty + mark_h, tx : min(tx + word, x1 - int(0.18 * bw))] = ink
            tx += word + max(1, bw // 30)
    # Cylindrical shading across the product, darker at the sides; a highlight stripe.
    xs = (np.arange(width, dtype=np.float32) - (x0 + x1) / 2) / (bw / 2)
    shade = 0.72 + 0.3 * np.clip(np.cos(np.clip(xs, -1.0, 1.0) * np.pi / 2), 0.0, 1.0) ** 0.7
    highlight = 0.18 * np.exp(-(((xs + 0.45) / 0.08) ** 2))
    layer = layer * shade[None, :, None] + 255.0 * highlight[None, :, None]
    return np.clip(layer, 0, 255)


def _backdrop_layer(kind: str, size: tuple[int, int], backdrop_rgb: RGB, rng: np.random.Generator) -> np.ndarray:
    """The studio backdrop (H, W, 3) float32: plain, vertical gradient or lightly textured."""
    width, height = size
    base = np.asarray(backdrop_rgb, np.float32)
    layer = np.empty((height, width, 3), np.float32)
    layer[:] = base
    if kind == "plain":
        return layer
    if kind == "gradient":
        ys = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
        xs = np.linspace(-1.0, 1.0, width, dtype=np.float32)[None, :, None]
        # Lighter at the top, a "sweep" darker towards the floor, slightly uneven across.
        gain = 1.06 - 0.22 * ys - 0.03 * xs
        return np.clip(layer * gain, 0, 255)
    if kind == "texture":
        coarse = rng.normal(0.0, 1.0, (max(2, height // 16), max(2, width // 16))).astype(np.float32)
        coarse = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
        fine = cv2.GaussianBlur(rng.normal(0.0, 1.0, (height, width)).astype(np.float32), (0, 0), 1.0)
        return np.clip(layer + (5.0 * coarse + 3.0 * fine)[..., None], 0, 255)
    raise ValueError(f"unknown backdrop {kind!r}; choose one of {', '.join(BACKDROPS)}")


def _shadow_gain(coverage: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """Multiplicative darkening (H, W) float32 of a soft shadow cast down and to the right."""
    height, width = coverage.shape
    x0, y0, x1, y1 = box
    bw, bh = x1 - x0, y1 - y0
    # The silhouette shifted right and squashed onto the floor, plus a contact ellipse.
    matrix = np.float32([[1.0, -0.55, bw * 0.12 + 0.55 * y1], [0.0, 0.25, 0.75 * y1]])
    cast = cv2.warpAffine(coverage, matrix, (width, height))
    contact = np.zeros_like(coverage)
    cv2.ellipse(contact, ((x0 + x1) // 2, y1), (int(bw * 0.55), max(2, int(bh * 0.04))), 0, 0, 360, 1.0, -1)
    shadow = np.maximum(0.8 * cast, contact)
    sigma = max(1.5, 0.025 * min(width, height))
    shadow = cv2.GaussianBlur(shadow, (0, 0), sigma)
    return 1.0 - 0.45 * np.clip(shadow, 0, 1)


def render_product_photo(
    shape: Shape | str = "bottle",
    *,
    product_rgb: RGB = (200, 40, 40),
    label_rgb: RGB | None = None,
    backdrop: Backdrop | str = "plain",
    backdrop_rgb: RGB = (236, 236, 236),
    size: tuple[int, int] = (512, 512),
    scale: float = 0.6,
    shadow: bool = False,
    seed: int = 0,
) -> SynthPhoto:
    """A studio photo of one product with its ground truth.

    Args:
        shape: "bottle", "box", "can", "ellipse" or "jar".
        product_rgb: the product body colour.
        label_rgb: the label band colour; None picks one contrasting with the product.
        backdrop: "plain", "gradient" (a lit sweep) or "texture" (paper-like grain).
        backdrop_rgb: the backdrop's base colour.
        size: (width, height) of the photo.
        scale: the product's height as a fraction of the photo's height.
        shadow: cast a soft shadow on the backdrop (not part of the mask).
        seed: makes label marks, texture and noise reproducible.

    Returns:
        A :class:`SynthPhoto`.
    """
    rng = np.random.default_rng(seed)
    box = product_box(shape, size, scale)
    coverage = shape_coverage(shape, size, box)
    fg = _product_layer(size, box, product_rgb, label_rgb or _contrast_label(product_rgb), rng)
    bg = _backdrop_layer(backdrop, size, backdrop_rgb, rng)
    if shadow:
        bg = bg * _shadow_gain(coverage, box)[..., None]
    cov = coverage[..., None]
    photo = cov * fg + (1.0 - cov) * bg
    photo = photo + rng.normal(0.0, _SENSOR_NOISE, photo.shape).astype(np.float32)
    rgb = np.clip(np.rint(photo), 0, 255).astype(np.uint8)
    return SynthPhoto(rgb=rgb, mask=coverage >= 0.5, coverage=coverage, foreground=fg, backdrop=bg, box=box)


def make_product_photo(
    shape: Shape | str = "bottle",
    *,
    product_rgb: RGB = (200, 40, 40),
    label_rgb: RGB | None = None,
    backdrop: Backdrop | str = "plain",
    backdrop_rgb: RGB = (236, 236, 236),
    size: tuple[int, int] = (512, 512),
    scale: float = 0.6,
    shadow: bool = False,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """A studio product photo and its ground-truth mask.

    Same arguments as :func:`render_product_photo`.

    Returns:
        ``(rgb, mask)``: (H, W, 3) uint8 photo and (H, W) bool mask of the product
        (the shadow is not in it).
    """
    photo = render_product_photo(
        shape,
        product_rgb=product_rgb,
        label_rgb=label_rgb,
        backdrop=backdrop,
        backdrop_rgb=backdrop_rgb,
        size=size,
        scale=scale,
        shadow=shadow,
        seed=seed,
    )
    return photo.rgb, photo.mask


def make_rgba_cutout(
    shape: Shape | str = "bottle",
    *,
    product_rgb: RGB = (200, 40, 40),
    label_rgb: RGB | None = None,
    size: tuple[int, int] = (256, 256),
    scale: float = 0.8,
    seed: int = 0,
) -> np.ndarray:
    """An already cut-out product: (H, W, 4) uint8 RGBA with soft anti-aliased edges.

    The product sits in a transparent margin; transparent pixels have RGB 0. Edge pixels
    have alpha strictly between 0 and 255 (the shape's coverage).
    """
    rng = np.random.default_rng(seed)
    box = product_box(shape, size, scale)
    coverage = shape_coverage(shape, size, box)
    fg = _product_layer(size, box, product_rgb, label_rgb or _contrast_label(product_rgb), rng)
    alpha = np.clip(np.rint(coverage * 255.0), 0, 255).astype(np.uint8)
    rgb = np.where(alpha[..., None] > 0, np.clip(np.rint(fg), 0, 255), 0).astype(np.uint8)
    return np.dstack([rgb, alpha])


def iou(mask_a: np.ndarray, mask_b: np.ndarray) -> float:
    """Intersection over union of two same-shape masks (truthy = inside); 1.0 for two empty masks."""
    a, b = np.asarray(mask_a).astype(bool), np.asarray(mask_b).astype(bool)
    if a.shape != b.shape:
        raise ValueError(f"masks differ in shape: {a.shape} vs {b.shape}")
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)
