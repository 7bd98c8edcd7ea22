"""A hard set of studio product shots with known masks, for the cut-out backends.

The project's own renders (:mod:`tests.synth`) are plain or gently graded backdrops; real
studio shots are harder. Every case here is drawn in code, deterministic, about 640-880 px,
with sensor noise and a mild JPEG round-trip, and targets one known weakness:

* ``spotlit-jar``: a jar with a pale lid on a spotlit backdrop (a radial pool of light
  behind the product, darker towards the borders): a border-fitted backdrop model misses the
  bright pool and keeps a disc of backdrop around the lid.
* ``dark-can-on-dark-grey``: a dark can whose cylindrical shading crosses the backdrop's
  level: bands of the product nearly the backdrop's colour.
* ``vignette-bottle``, ``sweep-box``: a vignetted backdrop; a two-tone sweep (wall and floor).
* ``white-on-white``: a white bottle on a white backdrop, with a soft shadow.
* ``low-contrast-band``: a box whose middle (a label band) is nearly the backdrop's colour.
* ``glossy-bottle``: a dark glossy bottle with specular streaks nearly the backdrop's
  colour close to its edges.
* ``shadow-can``: a strong soft cast shadow on a graded backdrop.
* ``spray-bottle``: thin parts (a nozzle, a trigger with a gap under it).
* ``mug-handle``: a mug whose handle has a hole through it, which is backdrop in the mask.
* ``grey-can-in-shadow-90-200``, ``grey-can-in-shadow-150-220``, ``grey-can-in-shadow-100-210``:
  :mod:`tests.synth`'s grey can on a lighter grey backdrop (plain; the last a lit sweep) with its cast
  shadow: the can is a darker copy of the backdrop all over but for its label, so its foot under the
  label and the shadow around it form one shadow-like region.

:func:`example_case` gives the photos bundled in ``examples/`` (a jar with a sharp-edged contact
shadow, an olive-oil bottle) with the true masks their generator scripts draw.

:func:`holes` and :func:`halos` measure the two defects that IoU hides: product regions
missing from a mask, and backdrop regions (a band around the product, a filled hole) in it.

Conventions: images are uint8 (H, W, 3) RGB; masks are (H, W) bool; sizes (width, height).
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import cv2
import numpy as np

from tests.synth import iou, product_box, render_product_photo, shape_coverage

__all__ = [
    "HardCase",
    "case_names",
    "example_case",
    "example_names",
    "halo_width",
    "halos",
    "hard_case",
    "hard_cases",
    "holes",
    "iou",
]

# Shapes are drawn this many times larger, then area-averaged down: anti-aliased edges.
_SUPERSAMPLE = 4
# Sensor noise (std, 0..255 levels) and the JPEG quality of the round-trip.
_SENSOR_NOISE = 1.8
_JPEG_QUALITY = 90
# A defect region counts when larger than this share of the product's area ...
DEFECT_MIN_SHARE = 0.002
# ... beyond this many pixels of the true outline (edge placement and anti-aliasing jitter).
DEFECT_EDGE_TOLERANCE_PX = 2


@dataclass(frozen=True)
class HardCase:
    """One hard studio shot and its ground truth.

    Attributes:
        name: the case's name.
        rgb: (H, W, 3) uint8, the photo (after the JPEG round-trip).
        mask: (H, W) bool, the product: pixels at least half covered by it (a hole
            through the product, like a mug handle's, is not in it).
        tags: what makes it hard ("spotlit", "dark-on-dark", "thin-parts", ...).
    """

    name: str
    rgb: np.ndarray
    mask: np.ndarray
    tags: tuple[str, ...]


# ---------------------------------------------------------------------------- drawing


def _canvas(size: tuple[int, int]) -> np.ndarray:
    width, height = size
    return np.zeros((height * _SUPERSAMPLE, width * _SUPERSAMPLE), np.uint8)


def _down(canvas: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return cv2.resize(canvas, size, interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


def _rect(canvas: np.ndarray, x0: float, y0: float, x1: float, y1: float, value: int = 255) -> None:
    s = _SUPERSAMPLE
    cv2.rectangle(canvas, (int(x0 * s), int(y0 * s)), (int(x1 * s) - 1, int(y1 * s) - 1), value, -1)


def _ellipse(canvas: np.ndarray, cx: float, cy: float, rx: float, ry: float, value: int = 255) -> None:
    s = _SUPERSAMPLE
    axes = (max(1, int(rx * s)), max(1, int(ry * s)))
    cv2.ellipse(canvas, (int(cx * s), int(cy * s)), axes, 0, 0, 360, value, -1)


def _mug_coverage(size: tuple[int, int]) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """A mug: a rounded body and a ring handle on its right whose hole shows the backdrop."""
    width, height = size
    canvas = _canvas(size)
    bw, bh = 0.36 * width, 0.46 * height
    x0, y0 = 0.26 * width, 0.26 * height
    x1, y1 = x0 + bw, y0 + bh
    r = 0.08 * bw
    _rect(canvas, x0, y0, x1, y1 - r)
    _rect(canvas, x0 + r, y1 - r, x1 - r, y1)
    _ellipse(canvas, x0 + r, y1 - r, r, r)
    _ellipse(canvas, x1 - r, y1 - r, r, r)
    # The handle: an elliptical ring overlapping the body's right side.
    hcx, hcy = x1, y0 + 0.45 * bh
    _ellipse(canvas, hcx, hcy, 0.24 * bw, 0.30 * bh)
    _ellipse(canvas, hcx, hcy, 0.13 * bw, 0.18 * bh, 0)
    _rect(canvas, x0, y0, x1, y1 - r)  # the body covers the ring's left half again
    box = (int(x0), int(y0), int(hcx + 0.24 * bw) + 1, int(y1))
    return _down(canvas, size), box


def _spray_coverage(size: tuple[int, int]) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """A spray bottle: body, neck, trigger head, a thin nozzle and a trigger with a gap behind it."""
    width, height = size
    canvas = _canvas(size)
    cx = 0.52 * width
    body_w, body_top, base = 0.30 * width, 0.44 * height, 0.86 * height
    r = 0.06 * body_w
    _rect(canvas, cx - body_w / 2, body_top + r, cx + body_w / 2, base - r)
    _rect(canvas, cx - body_w / 2 + r, body_top, cx + body_w / 2 - r, base)
    for ex, ey in ((cx - body_w / 2 + r, body_top + r), (cx + body_w / 2 - r, body_top + r)):
        _ellipse(canvas, ex, ey, r, r)
    for ex, ey in ((cx - body_w / 2 + r, base - r), (cx + body_w / 2 - r, base - r)):
        _ellipse(canvas, ex, ey, r, r)
    neck_w = 0.12 * width
    _rect(canvas, cx - neck_w / 2, 0.30 * height, cx + neck_w / 2, body_top + 1)
    # The head: a block leaning left, and a thin nozzle sticking out of its front.
    head_x0, head_x1 = cx - 0.13 * width, cx + 0.08 * width
    _rect(canvas, head_x0, 0.18 * height, head_x1, 0.30 * height)
    _rect(canvas, head_x0 - 0.07 * width, 0.205 * height, head_x0 + 1, 0.218 * height)  # nozzle
    # The trigger: a slanted bar hanging below the head's front, a gap between it and the neck.
    s = _SUPERSAMPLE
    pts = np.array(
        [
            [head_x0 + 0.005 * width, 0.30 * height],
            [head_x0 + 0.035 * width, 0.30 * height],
            [head_x0 + 0.055 * width, 0.40 * height],
            [head_x0 + 0.030 * width, 0.40 * height],
        ]
    )
    cv2.fillPoly(canvas, [np.rint(pts * s).astype(np.int32)], 255)
    box = (int(head_x0 - 0.07 * width), int(0.18 * height), int(cx + body_w / 2) + 1, int(base))
    return _down(canvas, size), box


def _product_colour(
    size: tuple[int, int],
    box: tuple[int, int, int, int],
    body: tuple[float, float, float],
    *,
    shade: tuple[float, float] = (0.72, 0.30),
    highlight: float = 0.18,
    label: tuple[tuple[float, float, float], float, float] | None = None,
    lid: tuple[tuple[float, float, float], float] | None = None,
    streaks: tuple[float, float, float] | None = None,
    rng: np.random.Generator,
) -> np.ndarray:
    """The product's colour layer (H, W, 3) float32 0..255.

    Args:
        body: the body colour.
        shade: cylindrical shading ``a + b * cos(x)**0.7`` across the box (darker sides).
        highlight: strength of a soft highlight stripe left of the middle.
        label: (colour, top, bottom), a label band between those shares of the box height,
            with rows of ink marks; shading applies to it too.
        lid: (colour, bottom), a lid over the top share of the box, shaded too.
        streaks: (level, centre, width): specular streaks of that absolute level at +-centre
            (share of the half width), drawn over the shading.
        rng: for the ink marks.
    """
    width, height = size
    x0, y0, x1, y1 = box
    bw, bh = max(1, x1 - x0), max(1, y1 - y0)
    layer = np.empty((height, width, 3), np.float32)
    layer[:] = np.asarray(body, np.float32)
    if label is not None:
        colour, top, bottom = label
        ly0, ly1 = y0 + int(top * bh), y0 + int(bottom * bh)
        layer[ly0:ly1] = np.asarray(colour, np.float32)
        ink = np.asarray(colour, np.float32) * 0.55
        rows, mark_h = 3, max(2, (ly1 - ly0) // 10)
        for r in range(rows):
            ty = ly0 + int((r + 1) * (ly1 - ly0) / (rows + 1)) - mark_h // 2
            tx = x0 + int(0.2 * bw)
            while tx < x1 - int(0.2 * bw):
                word = int(rng.integers(2, 6)) * max(1, bw // 45)
                layer[ty : ty + mark_h, tx : min(tx + word, x1 - int(0.2 * bw))] = ink
                tx += word + max(2, bw // 30)
    if lid is not None:
        colour, bottom = lid
        layer[: y0 + int(bottom * bh)] = np.asarray(colour, np.float32)
    xs = (np.arange(width, dtype=np.float32) - (x0 + x1) / 2) / (bw / 2)
    cosine = np.clip(np.cos(np.clip(xs, -1.0, 1.0) * np.pi / 2), 0.0, 1.0) ** 0.7
    gain = shade[0] + shade[1] * cosine
    layer = layer * gain[None, :, None] + 255.0 * highlight * np.exp(-(((xs + 0.45) / 0.08) ** 2))[None, :, None]
    if streaks is not None:
        level, centre, spread = streaks
        weight = np.exp(-(((np.abs(xs) - centre) / spread) ** 2))[None, :, None]
        layer = layer * (1.0 - weight) + level * weight
    return np.clip(layer, 0, 255)


# ---------------------------------------------------------------------------- backdrops


def _grid(size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    width, height = size
    xs = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :]
    ys = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    return xs, ys


def _spotlit(size: tuple[int, int], colour: tuple[float, float, float], centre: tuple[float, float]) -> np.ndarray:
    """A radial pool of light: bright behind the product, ~40% darker at the borders."""
    width, height = size
    xs, ys = _grid(size)
    dx, dy = (xs - centre[0]) * width, (ys - centre[1]) * height
    r2 = (dx * dx + dy * dy) / (0.33 * min(width, height)) ** 2
    gain = 0.58 + 0.48 * np.exp(-0.5 * r2)
    return np.clip(np.asarray(colour, np.float32) * gain[..., None], 0, 255)


def _vignette(size: tuple[int, int], colour: tuple[float, float, float]) -> np.ndarray:
    """An evenly lit backdrop darkened towards the corners (lens vignetting)."""
    xs, ys = _grid(size)
    r = np.sqrt(((xs - 0.5) ** 2 + (ys - 0.5) ** 2) / 0.5)
    gain = 1.0 - 0.38 * r**2.6
    return np.clip(np.asarray(colour, np.float32) * gain[..., None], 0, 255)


def _sweep(
    size: tuple[int, int], wall: tuple[float, float, float], floor: tuple[float, float, float], horizon: float
) -> np.ndarray:
    """A two-tone sweep: a wall above ``horizon`` (share of the height), a floor below, a soft bend."""
    xs, ys = _grid(size)
    t = 1.0 / (1.0 + np.exp(-(ys - horizon) / 0.02))
    wall_c = np.asarray(wall, np.float32) * (1.0 - 0.10 * ys)[..., None]
    floor_c = np.asarray(floor, np.float32) * (1.05 - 0.12 * (ys - horizon))[..., None]
    out = (1.0 - t)[..., None] * wall_c + t[..., None] * floor_c
    return np.clip(out * (1.0 - 0.04 * (xs - 0.5))[..., None], 0, 255)


def _plain_gradient(size: tuple[int, int], colour: tuple[float, float, float], slope: float) -> np.ndarray:
    xs, ys = _grid(size)
    gain = 1.0 + slope * (0.5 - ys) - 0.02 * (xs - 0.5)
    return np.clip(np.asarray(colour, np.float32) * gain[..., None], 0, 255)


def _shadow(coverage: np.ndarray, box: tuple[int, int, int, int], strength: float) -> np.ndarray:
    """Multiplicative darkening (H, W) of a soft shadow cast down and to the right of the product."""
    height, width = coverage.shape
    x0, y0, x1, y1 = box
    bw, bh = x1 - x0, y1 - y0
    matrix = np.float32([[1.0, -0.6, bw * 0.15 + 0.6 * y1], [0.0, 0.22, 0.78 * y1]])
    cast = cv2.warpAffine(coverage, matrix, (width, height))
    contact = np.zeros_like(coverage)
    cv2.ellipse(contact, ((x0 + x1) // 2, y1), (int(bw * 0.58), max(2, int(bh * 0.04))), 0, 0, 360, 1.0, -1)
    shadow = cv2.GaussianBlur(np.maximum(0.8 * cast, contact), (0, 0), max(2.0, 0.03 * min(width, height)))
    return 1.0 - strength * np.clip(shadow, 0, 1)


# ---------------------------------------------------------------------------- photos


def _photo(
    name: str,
    coverage: np.ndarray,
    foreground: np.ndarray,
    backdrop: np.ndarray,
    tags: tuple[str, ...],
    rng: np.random.Generator,
) -> HardCase:
    cov = coverage[..., None]
    photo = cov * foreground + (1.0 - cov) * backdrop
    photo = photo + rng.normal(0.0, _SENSOR_NOISE, photo.shape).astype(np.float32)
    rgb = np.clip(np.rint(photo), 0, 255).astype(np.uint8)
    ok, encoded = cv2.imencode(".jpg", rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, _JPEG_QUALITY])
    if not ok:  # pragma: no cover - OpenCV always encodes a uint8 image
        raise RuntimeError("JPEG encoding failed")
    decoded = cv2.imdecode(encoded, cv2.IMREAD_COLOR)[..., ::-1]
    return HardCase(name=name, rgb=np.ascontiguousarray(decoded), mask=coverage >= 0.5, tags=tags)


def _spotlit_jar(rng: np.random.Generator) -> HardCase:
    size = (720, 800)
    box = product_box("jar", size, 0.52)
    coverage = shape_coverage("jar", size, box)
    fg = _product_colour(
        size, box, (168, 104, 52), label=((238, 232, 214), 0.45, 0.8), lid=((226, 222, 212), 0.16), rng=rng
    )
    cx, cy = (box[0] + box[2]) / 2 / size[0], (box[1] + 0.3 * (box[3] - box[1])) / size[1]
    bg = _spotlit(size, (232, 228, 222), (cx, cy))
    return _photo("spotlit-jar", coverage, fg, bg, ("spotlit", "radial-gradient", "pale-lid"), rng)


def _dark_can(rng: np.random.Generator) -> HardCase:
    size = (680, 820)
    box = product_box("can", size, 0.6)
    coverage = shape_coverage("can", size, box)
    fg = _product_colour(
        size,
        box,
        (84, 86, 92),
        shade=(0.55, 0.5),
        highlight=0.05,
        label=((140, 40, 40), 0.5, 0.56),
        rng=rng,
    )
    bg = _plain_gradient(size, (64, 64, 66), 0.06)
    return _photo("dark-can-on-dark-grey", coverage, fg, bg, ("dark-on-dark", "low-contrast"), rng)


def _vignette_bottle(rng: np.random.Generator) -> HardCase:
    size = (640, 880)
    box = product_box("bottle", size, 0.62)
    coverage = shape_coverage("bottle", size, box)
    fg = _product_colour(size, box, (40, 110, 70), label=((230, 220, 190), 0.5, 0.75), rng=rng)
    bg = _vignette(size, (214, 218, 222))
    return _photo("vignette-bottle", coverage, fg, bg, ("vignette",), rng)


def _sweep_box(rng: np.random.Generator) -> HardCase:
    size = (860, 700)
    box = product_box("box", size, 0.6)
    coverage = shape_coverage("box", size, box)
    fg = _product_colour(size, box, (200, 70, 40), shade=(0.85, 0.15), label=((40, 50, 110), 0.4, 0.7), rng=rng)
    bg = _sweep(size, (196, 206, 222), (150, 132, 112), 0.66)
    bg = bg * _shadow(coverage, box, 0.35)[..., None]
    return _photo("sweep-box", coverage, fg, bg, ("two-tone-sweep", "shadow"), rng)


def _white_on_white(rng: np.random.Generator) -> HardCase:
    size = (640, 820)
    box = product_box("bottle", size, 0.62)
    coverage = shape_coverage("bottle", size, box)
    fg = _product_colour(
        size, box, (252, 252, 250), shade=(0.82, 0.2), highlight=0.0, label=((238, 240, 246), 0.5, 0.74), rng=rng
    )
    bg = _plain_gradient(size, (236, 236, 236), 0.05)
    bg = bg * _shadow(coverage, box, 0.22)[..., None]
    return _photo("white-on-white", coverage, fg, bg, ("white-on-white", "low-contrast", "shadow"), rng)


def _low_contrast_band(rng: np.random.Generator) -> HardCase:
    size = (800, 720)
    box = product_box("box", size, 0.58)
    coverage = shape_coverage("box", size, box)
    backdrop = (208, 204, 198)
    fg = _product_colour(
        size,
        box,
        (52, 92, 150),
        shade=(0.9, 0.1),
        highlight=0.0,
        label=((backdrop[0] + 8, backdrop[1] + 2, backdrop[2] - 6), 0.38, 0.62),
        rng=rng,
    )
    bg = _plain_gradient(size, backdrop, 0.04)
    return _photo("low-contrast-band", coverage, fg, bg, ("low-contrast", "backdrop-coloured-band"), rng)


def _glossy_bottle(rng: np.random.Generator) -> HardCase:
    size = (660, 860)
    box = product_box("bottle", size, 0.62)
    coverage = shape_coverage("bottle", size, box)
    fg = _product_colour(size, box, (28, 28, 34), highlight=0.0, streaks=(214.0, 0.8, 0.06), rng=rng)
    bg = _plain_gradient(size, (226, 226, 228), 0.08)
    return _photo("glossy-bottle", coverage, fg, bg, ("glossy", "specular-streaks"), rng)


def _shadow_can(rng: np.random.Generator) -> HardCase:
    size = (760, 760)
    box = product_box("can", size, 0.56)
    coverage = shape_coverage("can", size, box)
    fg = _product_colour(size, box, (40, 150, 200), label=((250, 250, 245), 0.4, 0.7), rng=rng)
    bg = _plain_gradient(size, (224, 220, 210), 0.12)
    bg = bg * _shadow(coverage, box, 0.55)[..., None]
    return _photo("shadow-can", coverage, fg, bg, ("shadow",), rng)


def _spray_bottle(rng: np.random.Generator) -> HardCase:
    size = (700, 820)
    coverage, box = _spray_coverage(size)
    fg = _product_colour(size, box, (236, 236, 240), shade=(0.8, 0.2), label=((60, 140, 190), 0.5, 0.8), rng=rng)
    head = np.zeros(coverage.shape, bool)
    head[: int(0.30 * size[1])] = True
    fg[head] = fg[head] * np.asarray([0.35, 0.75, 0.45], np.float32)
    bg = _vignette(size, (200, 204, 210))
    return _photo("spray-bottle", coverage, fg, bg, ("thin-parts", "vignette"), rng)


def _mug(rng: np.random.Generator) -> HardCase:
    size = (820, 680)
    coverage, box = _mug_coverage(size)
    fg = _product_colour(size, box, (196, 60, 52), shade=(0.8, 0.2), label=((245, 240, 230), 0.3, 0.6), rng=rng)
    bg = _vignette(size, (222, 224, 226))
    return _photo("mug-handle", coverage, fg, bg, ("hole-through", "thin-parts", "vignette"), rng)


def _grey_can(grey: int, backdrop: int, kind: str) -> Callable[[np.random.Generator], HardCase]:
    """A grey can (RGB ``grey``) on a lighter grey ``kind`` backdrop (``backdrop``) with its cast shadow."""

    def draw(rng: np.random.Generator) -> HardCase:
        name = f"grey-can-in-shadow-{grey}-{backdrop}"
        photo = render_product_photo(
            "can",
            product_rgb=(grey, grey, grey),
            backdrop=kind,
            backdrop_rgb=(backdrop, backdrop, backdrop),
            size=(720, 760),
            shadow=True,
            seed=int(rng.integers(1 << 31)),
        )
        tags = ("shadow", "grey-on-grey", "backdrop-toned-foot")
        return _photo(name, photo.coverage, photo.foreground, photo.backdrop, tags, rng)

    return draw


_CASES: dict[str, Callable[[np.random.Generator], HardCase]] = {
    "spotlit-jar": _spotlit_jar,
    "dark-can-on-dark-grey": _dark_can,
    "vignette-bottle": _vignette_bottle,
    "sweep-box": _sweep_box,
    "white-on-white": _white_on_white,
    "low-contrast-band": _low_contrast_band,
    "glossy-bottle": _glossy_bottle,
    "shadow-can": _shadow_can,
    "spray-bottle": _spray_bottle,
    "mug-handle": _mug,
    "grey-can-in-shadow-90-200": _grey_can(90, 200, "plain"),
    "grey-can-in-shadow-150-220": _grey_can(150, 220, "plain"),
    "grey-can-in-shadow-100-210": _grey_can(100, 210, "gradient"),
}


def case_names() -> tuple[str, ...]:
    """The names of the hard-set cases, in a fixed order."""
    return tuple(_CASES)


@functools.cache
def hard_case(name: str) -> HardCase:
    """The hard-set case ``name`` (rendered once per process; treat its arrays as read-only)."""
    if name not in _CASES:
        raise ValueError(f"unknown case {name!r}; choose one of {', '.join(_CASES)}")
    # The first ten cases' seeds are their rank among themselves (as before later cases were added).
    first, later = list(_CASES)[:10], list(_CASES)[10:]
    seed = sorted(first).index(name) + 1 if name in first else 11 + later.index(name)
    return _CASES[name](np.random.default_rng(seed))


def hard_cases() -> list[HardCase]:
    """Every hard-set case, in :func:`case_names` order."""
    return [hard_case(name) for name in _CASES]


# ---------------------------------------------------------------------------- bundled examples

# The photos bundled in examples/ (drawn by their own scripts there), with the true masks their
# generators give: a regression on them is what a user sees first.
_EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _example_script(stem: str) -> ModuleType:
    """The generator script ``examples/<stem>.py``, imported (it needs Pillow)."""
    spec = importlib.util.spec_from_file_location(f"_placewright_example_{stem}", _EXAMPLES / f"{stem}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _example_photo(file: str) -> np.ndarray:
    from PIL import Image

    with Image.open(_EXAMPLES / file) as image:
        return np.asarray(image.convert("RGB"))


def _example_jar() -> HardCase:
    """examples/face-cream-jar.jpg: a pale jar with a gold lid and a sharp-edged contact shadow under its base."""
    from PIL import Image

    mj = _example_script("make_jar")
    x, y = mj._grid(mj.WIDTH, mj.HEIGHT)
    body, _ = mj._body(x, y)
    lid, face = mj._lid_masks(x, y)
    coverage = Image.fromarray(((body | lid | face) * 255).astype(np.uint8))
    mask = np.asarray(coverage.resize((mj.WIDTH, mj.HEIGHT), Image.Resampling.BILINEAR)) >= 128
    return HardCase("example-face-cream-jar", _example_photo("face-cream-jar.jpg"), mask, ("example", "contact-shadow"))


def _example_bottle() -> HardCase:
    """examples/olive-oil-bottle.jpg: a dark glass bottle with a gold cap, a label and a soft shadow."""
    mp = _example_script("make_product")
    mask = np.asarray(mp._bottle_mask(mp.WIDTH, mp.HEIGHT)) >= 128
    return HardCase("example-olive-oil-bottle", _example_photo("olive-oil-bottle.jpg"), mask, ("example", "shadow"))


_EXAMPLE_CASES: dict[str, Callable[[], HardCase]] = {
    "example-face-cream-jar": _example_jar,
    "example-olive-oil-bottle": _example_bottle,
}


def example_names() -> tuple[str, ...]:
    """The names of the bundled example photos, in a fixed order."""
    return tuple(_EXAMPLE_CASES)


@functools.cache
def example_case(name: str) -> HardCase:
    """The bundled example ``name`` with its generator's true mask (loaded once per process; read-only)."""
    if name not in _EXAMPLE_CASES:
        raise ValueError(f"unknown example {name!r}; choose one of {', '.join(_EXAMPLE_CASES)}")
    return _EXAMPLE_CASES[name]()


# ---------------------------------------------------------------------------- measures


def _regions(defect: np.ndarray, min_area: float) -> list[int]:
    count, _, stats, _ = cv2.connectedComponentsWithStats(defect.astype(np.uint8), connectivity=8)
    areas = stats[1:, cv2.CC_STAT_AREA] if count > 1 else np.zeros(0, int)
    return sorted((int(a) for a in areas if a > min_area), reverse=True)


def _disk(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def holes(found: np.ndarray, truth: np.ndarray, *, tolerance_px: int = DEFECT_EDGE_TOLERANCE_PX) -> list[int]:
    """Product regions missing from a mask: holes, eaten bands, lost thin parts.

    A hole is a connected region (8-connected) of true-product pixels missing from
    ``found``, more than ``tolerance_px`` inside the true outline, of more than
    ``DEFECT_MIN_SHARE`` of the product's area.

    Returns:
        The holes' areas in pixels, largest first (empty: no hole).
    """
    truth = np.asarray(truth, bool)
    inner = cv2.erode(truth.astype(np.uint8), _disk(tolerance_px)).astype(bool)
    return _regions(inner & ~np.asarray(found, bool), DEFECT_MIN_SHARE * truth.sum())


def halos(found: np.ndarray, truth: np.ndarray, *, tolerance_px: int = DEFECT_EDGE_TOLERANCE_PX) -> list[int]:
    """Backdrop regions kept in a mask: a band around the product, a filled see-through hole.

    A halo is a connected region (8-connected) of ``found`` pixels more than
    ``tolerance_px`` outside the true outline (so a band wider than that), of more than
    ``DEFECT_MIN_SHARE`` of the product's area.

    Returns:
        The halos' areas in pixels, largest first (empty: no halo).
    """
    truth = np.asarray(truth, bool)
    grown = cv2.dilate(truth.astype(np.uint8), _disk(tolerance_px)).astype(bool)
    return _regions(np.asarray(found, bool) & ~grown, DEFECT_MIN_SHARE * truth.sum())


def halo_width(found: np.ndarray, truth: np.ndarray) -> float:
    """Average width (px) of the backdrop kept around the product: extra area per outline pixel."""
    truth = np.asarray(truth, bool)
    outline = truth & ~cv2.erode(truth.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    return float((np.asarray(found, bool) & ~truth).sum() / max(1, outline.sum()))
