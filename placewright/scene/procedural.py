"""The procedural studio scene: a back wall and a tabletop in perspective, drawn in NumPy.

The scene is what a product photographer builds in a studio: a plain back wall lit by a
soft key light (a bright pool on the wall behind where the product will stand, falling off
towards the corners), a tabletop seen from slightly above whose back edge is a horizontal
line at ``horizon_range`` of the height, a soft ambient-occlusion shadow where wall meets
table, and a material on the tabletop (wood grain, marble veins, concrete, sand or matte).

Colours come from the prompt through :data:`KEYWORDS` into :data:`PALETTES`; the seed
picks the variation inside the palette (which wall and table colour of the palette's
choices, a small colour jitter, the horizon height, the light position and size, the
texture's layout), so the same prompt and seed always give the same image and another seed
gives a visibly different one.

Speed: everything is drawn at ``work_side`` pixels on the long side (smooth light and
textures lose nothing there), then upscaled with bicubic interpolation; only a gentle
luminance grain is added at full resolution, so gradients never band.

Perspective: the tabletop is a plane seen from a camera whose eye line is above the table's
back edge. For a pixel row ``d`` rows below the eye line, the plane's world coordinates are
``X = (x - cx) * D / d`` across and ``Z = f * (1 - D / d)`` in depth from the back edge
(``D`` = rows from the eye line to the back edge, ``f`` = focal length in pixels), both in
units of one pixel at the back edge. Textures are functions of (X, Z), so grain converges
towards the vanishing point and is foreshortened near the back like a real table.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from typing import ClassVar, Literal

import cv2
import numpy as np

from placewright.scene import SCENES
from placewright.settings import SceneSettings
from placewright.types import Box, Size, Surface

RGB = tuple[int, int, int]
Texture = Literal["wood", "marble", "concrete", "sand", "matte"]


@dataclass(frozen=True)
class Palette:
    """One named look.

    Attributes:
        kind: "material" palettes decide the tabletop (colour and texture); "mood" palettes
            decide the wall and the light. A prompt naming one of each gets both.
        walls: sRGB wall colours the seed chooses from.
        tables: sRGB tabletop colours the seed chooses from.
        texture: the tabletop material.
        vein: sRGB colour of marble veins / wood grain lines (None: a darker table colour).
        light: multiplier of the key light colour (warm > 1 in red, cool > 1 in blue).
        exposure: scales the tabletop brightness when this mood lights another material.
        glossy: how much the tabletop reflects the wall near its back edge (0..1).
    """

    kind: Literal["material", "mood"]
    walls: tuple[RGB, ...]
    tables: tuple[RGB, ...]
    texture: Texture = "matte"
    vein: RGB | None = None
    light: tuple[float, float, float] = (1.0, 0.99, 0.96)
    exposure: float = 1.0
    glossy: float = 0.15


# The palette table. Keep it tasteful: walls muted and a little lighter than the tabletop,
# so that the product stands out; every palette offers a few choices for the seed.
PALETTES: dict[str, Palette] = {
    "neutral": Palette(
        "material",
        walls=((236, 232, 226), (228, 226, 222), (222, 217, 209), (232, 229, 223)),
        tables=((206, 198, 186), (196, 191, 184), (214, 207, 197)),
    ),
    "wood": Palette(
        "material",
        walls=((238, 232, 222), (229, 221, 209), (216, 208, 198), (232, 228, 222)),
        tables=((160, 112, 70), (182, 134, 88), (128, 86, 54), (198, 158, 112)),
        texture="wood",
        glossy=0.12,
    ),
    "marble": Palette(
        "material",
        walls=((236, 236, 234), (226, 228, 230), (232, 228, 223)),
        tables=((242, 240, 236), (234, 234, 232), (238, 234, 228)),
        texture="marble",
        vein=(128, 128, 134),
        glossy=0.35,
    ),
    "concrete": Palette(
        "material",
        walls=((184, 182, 178), (168, 168, 166), (196, 192, 186)),
        tables=((146, 144, 140), (160, 156, 150), (134, 134, 132)),
        texture="concrete",
        glossy=0.05,
    ),
    "kitchen": Palette(
        "material",
        walls=((240, 238, 232), (230, 234, 232), (236, 232, 224)),
        tables=((228, 224, 216), (214, 210, 202), (222, 220, 216)),
        texture="marble",
        vein=(168, 162, 156),
        glossy=0.3,
    ),
    "sand": Palette(
        "material",
        walls=((204, 226, 238), (222, 233, 238), (236, 222, 206)),
        tables=((224, 202, 162), (232, 214, 178), (214, 190, 150)),
        texture="sand",
        light=(1.03, 1.0, 0.94),
        glossy=0.02,
    ),
    "warm": Palette(
        "mood",
        walls=((244, 198, 154), (238, 174, 134), (246, 208, 172)),
        tables=((204, 150, 110), (214, 168, 126)),
        light=(1.06, 0.94, 0.80),
    ),
    "dark": Palette(
        "mood",
        walls=((40, 42, 54), (31, 33, 41), (48, 43, 52)),
        tables=((60, 58, 64), (48, 48, 54)),
        light=(0.94, 0.97, 1.06),
        exposure=0.45,
        glossy=0.25,
    ),
    "pastel": Palette(
        "mood",
        walls=((234, 216, 230), (208, 228, 234), (224, 234, 212), (240, 226, 206)),
        tables=((246, 238, 240), (238, 242, 244), (244, 242, 232)),
    ),
    "pink": Palette(
        "mood",
        walls=((242, 198, 208), (236, 182, 198), (246, 212, 216)),
        tables=((248, 222, 228), (244, 212, 218)),
        light=(1.02, 0.98, 0.98),
    ),
    "blue": Palette(
        "mood",
        walls=((152, 188, 222), (122, 162, 206), (178, 206, 230)),
        tables=((224, 232, 240), (212, 222, 232)),
        light=(0.97, 0.99, 1.04),
    ),
    "green": Palette(
        "mood",
        walls=((162, 192, 152), (134, 170, 134), (192, 210, 178)),
        tables=((228, 230, 216), (218, 222, 204)),
    ),
    "black": Palette(
        "mood",
        walls=((30, 30, 32), (22, 22, 25), (36, 34, 33)),
        tables=((56, 56, 59), (48, 48, 52)),
        exposure=0.4,
        glossy=0.3,
    ),
    "white": Palette(
        "mood",
        walls=((245, 245, 243), (240, 241, 242), (246, 244, 240)),
        tables=((250, 250, 248), (246, 246, 245)),
        light=(1.0, 1.0, 1.0),
    ),
    "christmas": Palette(
        "mood",
        walls=((122, 30, 34), (32, 72, 50), (140, 40, 38)),
        tables=((160, 112, 70), (128, 86, 54)),
        texture="wood",
        light=(1.06, 0.96, 0.84),
        exposure=0.85,
    ),
}

# Prompt words (lower case, singular) -> palette name. A word ending in "s" also matches
# without it ("beaches" -> "beache" is not needed: list such forms explicitly).
KEYWORDS: dict[str, str] = {
    **dict.fromkeys(("wood", "wooden", "oak", "walnut", "teak", "timber", "plank", "rustic"), "wood"),
    **dict.fromkeys(("marble", "stone", "granite", "quartz", "luxury"), "marble"),
    **dict.fromkeys(("concrete", "cement", "industrial", "slate", "grey", "gray", "urban"), "concrete"),
    **dict.fromkeys(("kitchen", "countertop", "counter", "bathroom", "spa"), "kitchen"),
    **dict.fromkeys(("beach", "beaches", "sand", "sandy", "desert", "summer", "tropical"), "sand"),
    **dict.fromkeys(("sunset", "warm", "golden", "autumn", "fall", "orange", "sunrise", "cozy"), "warm"),
    **dict.fromkeys(("night", "dark", "moody", "midnight", "evening", "noir"), "dark"),
    **dict.fromkeys(("pastel", "soft", "spring", "candy"), "pastel"),
    **dict.fromkeys(("pink", "rose", "blush", "valentine"), "pink"),
    **dict.fromkeys(("blue", "ocean", "sea", "sky", "navy", "aqua", "winter"), "blue"),
    **dict.fromkeys(("green", "nature", "forest", "garden", "plant", "plants", "botanical", "leaf"), "green"),
    **dict.fromkeys(("black", "noir", "charcoal"), "black"),
    **dict.fromkeys(("white", "minimal", "minimalist", "clean", "bright"), "white"),
    **dict.fromkeys(("christmas", "xmas", "festive", "holiday"), "christmas"),
}
# Words that imply a wooden tabletop only when no other material is named ("marble table").
WEAK_MATERIAL_WORDS: dict[str, str] = {"table": "wood", "desk": "wood", "tabletop": "wood", "shelf": "wood"}
FALLBACK_PALETTE = "neutral"

# Display gamma: lighting is computed on linear light, palettes are sRGB-ish.
GAMMA = 2.2
# Linear-light luminance weights (Rec. 709): tone comparisons of palette colours.
LUMA_LINEAR = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)
# Least luminance ratio (linear light) between wall and tabletop: ~10% in display values.
MIN_TONE_RATIO = 1.3
# Focal length of the virtual camera as a multiple of the working width (a ~50 mm lens).
FOCAL_FRACTION = 1.3
# Rows from the eye line down to the tabletop's back edge, as a fraction of the height:
# the camera looks down at the table a little (the seed picks within this range).
EYE_DROP_RANGE = (0.35, 0.55)
# Standard deviation (fraction) of the seed's colour jitter of the chosen palette colours.
COLOUR_JITTER = 0.035
# Widths (fraction of the height) of the soft shadow where wall meets table: above, below.
AO_WIDTHS = (0.035, 0.05)
# Depth of that shadow at the junction (fraction of light removed): wall side, table side.
AO_DEPTHS = (0.22, 0.28)
# How much darker the corners get (vignetting).
VIGNETTE = 0.28
# Share of the wall's / tabletop's light that comes from the key light pool (the rest is
# ambient): the pool's centre is the palette colour, away from it the light falls off by this.
WALL_KEY_SHARE = 0.28
TABLE_KEY_SHARE = 0.25
# How much darker the top of the wall is than its foot, and the table's front than its back.
WALL_TOP_FALLOFF = 0.16
TABLE_FRONT_FALLOFF = 0.25
# Anti-aliasing width of the wall/table junction in working pixels.
EDGE_SOFTNESS = 0.7
# The back edge is kept within these fractions of the height whatever horizon_range says:
# there must be wall above it and tabletop below it.
HORIZON_LIMITS = (0.2, 0.9)
# Side of the random grain tile repeated over the output (big enough that no pattern shows).
GRAIN_TILE = 256


@dataclass(frozen=True)
class Look:
    """Everything the seed and prompt decided: the palette resolved to concrete values."""

    wall: np.ndarray  # (3,) float32 linear
    table: np.ndarray  # (3,) float32 linear
    vein: np.ndarray  # (3,) float32 linear
    light: np.ndarray  # (3,) float32
    texture: Texture
    glossy: float
    names: tuple[str, ...] = ()  # (material, mood) palette names, for debugging


def _words(prompt: str) -> list[str]:
    words = re.findall(r"[a-z]+", prompt.lower())
    return [w for word in words for w in ((word, word[:-1]) if word.endswith("s") else (word,))]


def palettes_for(prompt: str) -> tuple[str, str]:
    """The (material, mood) palette names the prompt asks for.

    The first material word names the tabletop; the first mood/colour word names the wall
    and the light; a prompt with only one of them uses that palette for both; unknown words
    fall back to :data:`FALLBACK_PALETTE`.
    """
    named = [KEYWORDS[w] for w in _words(prompt) if w in KEYWORDS]
    materials = [n for n in named if PALETTES[n].kind == "material"]
    moods = [n for n in named if PALETTES[n].kind == "mood"]
    weak = [WEAK_MATERIAL_WORDS[w] for w in _words(prompt) if w in WEAK_MATERIAL_WORDS]
    material = materials[0] if materials else (weak[0] if weak else None)
    mood = moods[0] if moods else None
    if material is None and mood is None:
        return FALLBACK_PALETTE, FALLBACK_PALETTE
    if material is None:
        return mood, mood  # type: ignore[return-value]
    return material, mood or material


def _to_linear(rgb: RGB | tuple[float, ...]) -> np.ndarray:
    return (np.asarray(rgb, dtype=np.float32) / 255.0) ** GAMMA


def _jitter(colour: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A small random change of brightness and tint (in linear light)."""
    gain = 1.0 + rng.normal(0.0, COLOUR_JITTER)
    tint = 1.0 + rng.normal(0.0, COLOUR_JITTER / 2, size=3)
    return np.clip(colour * gain * tint, 0.0, 1.0).astype(np.float32)


def resolve_look(prompt: str, rng: np.random.Generator) -> Look:
    """Turn the prompt's palettes and the seed into concrete colours."""
    material_name, mood_name = palettes_for(prompt)
    material, mood = PALETTES[material_name], PALETTES[mood_name]
    wall = _jitter(_to_linear(mood.walls[rng.integers(len(mood.walls))]), rng)
    table = _jitter(_to_linear(material.tables[rng.integers(len(material.tables))]), rng)
    if mood_name != material_name:
        table = table * mood.exposure
    vein_rgb = material.vein
    vein = _to_linear(vein_rgb) if vein_rgb is not None else (table**1.35) * 0.55
    if mood_name != material_name:
        vein = vein * mood.exposure
    glossy = material.glossy if material_name != mood_name else mood.glossy
    # A lit tabletop against a wall of the same tone leaves no visible horizon; in a studio the
    # wall, further from the key light, falls off: keep the table at least this much brighter
    # (or darker) than the wall.
    wall_l, table_l = float(wall @ LUMA_LINEAR), float(table @ LUMA_LINEAR)
    if table_l / MIN_TONE_RATIO < wall_l < table_l * MIN_TONE_RATIO:
        if wall_l <= table_l or table_l * MIN_TONE_RATIO > 0.95:
            wall = wall * (table_l / MIN_TONE_RATIO / wall_l)
        else:
            table = table * (wall_l / MIN_TONE_RATIO / table_l)
    return Look(
        wall=wall,
        table=table.astype(np.float32),
        vein=vein.astype(np.float32),
        light=np.asarray(mood.light, dtype=np.float32),
        texture=material.texture,
        glossy=glossy,
        names=(material_name, mood_name),
    )


def _stable_seed(prompt: str, seed: int) -> list[int]:
    """Seed material that depends only on the prompt text and the seed (not on PYTHONHASHSEED)."""
    return [seed % (2**63), zlib.crc32(" ".join(prompt.lower().split()).encode("utf-8"))]


class _NoiseField:
    """Smooth value noise sampled at arbitrary coordinates (cubic interpolation of a random grid).

    Coordinates are in grid cells and wrap around (the field tiles seamlessly); OpenCV's
    remap stores them as 16-bit fixed point, so callers keep them within +-30000 cells.
    """

    def __init__(self, rng: np.random.Generator, cells: int) -> None:
        self.grid = rng.random((cells, cells), dtype=np.float32) * 2.0 - 1.0

    def sample(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Noise in about [-1, 1] at columns ``u`` and rows ``v`` (float32 arrays, same shape)."""
        return cv2.remap(self.grid, u, v, interpolation=cv2.INTER_CUBIC, borderMode=cv2.BORDER_WRAP)


def _fbm(rng: np.random.Generator, u: np.ndarray, v: np.ndarray, octaves: int, cells: int = 32) -> np.ndarray:
    """Fractal noise: ``octaves`` layers of value noise, each twice as fine and half as strong."""
    total = np.zeros(u.shape, dtype=np.float32)
    amp, freq, norm = 1.0, 1.0, 0.0
    for _ in range(octaves):
        total += amp * _NoiseField(rng, cells).sample(u * freq, v * freq)
        norm += amp
        amp *= 0.5
        freq *= 2.0
    return total / norm


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cells: int, octaves: int) -> np.ndarray:
    """(h, w) fractal noise in about [-1, 1] whose coarsest feature is ``1 / cells`` of the image."""
    side = cells * 2 ** (octaves - 1)
    small = _fbm(rng, *np.meshgrid(*(np.linspace(0, cells, side, dtype=np.float32),) * 2), octaves, cells)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


@dataclass(frozen=True)
class _Geometry:
    """The scene layout in working pixels."""

    h: int
    w: int
    horizon: float  # row of the tabletop's back edge (first tabletop row)
    eye_drop: float  # rows from the eye line down to the back edge
    focal: float
    light_x: float  # column of the key light's centre


@dataclass(frozen=True)
class _Plane:
    """World coordinates of tabletop pixels (rows ``row0`` to the bottom), float32 (rows, w).

    ``x`` runs across and ``z`` into the picture from the back edge towards the viewer, in
    units of one pixel at the back edge; ``footprint`` is image pixels per world unit across.
    """

    x: np.ndarray
    z: np.ndarray
    footprint: np.ndarray


def _plane(geo: _Geometry, ys: np.ndarray, xs: np.ndarray) -> _Plane:
    d = np.maximum(ys - (geo.horizon - geo.eye_drop), geo.eye_drop)
    scale = (geo.eye_drop / d).astype(np.float32)  # world units per image pixel across (<= 1)
    big_x, big_z = np.broadcast_arrays((xs - geo.light_x) * scale, geo.focal * (1.0 - scale))
    footprint = np.broadcast_to(1.0 / scale, big_x.shape)
    return _Plane(
        np.ascontiguousarray(big_x, dtype=np.float32),
        np.ascontiguousarray(big_z, dtype=np.float32),
        np.ascontiguousarray(footprint, dtype=np.float32),
    )


def _wood(p: _Plane, rng: np.random.Generator, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Grain darkness (0 = plain wood, up to 1 = grain colour) of planks running towards the viewer."""
    plank_w = w * rng.uniform(0.17, 0.27)
    plank_pos = (p.x + rng.uniform(0, plank_w)) / plank_w
    plank = np.floor(plank_pos)
    # Per-plank tone and grain phase: a small table of random values indexed by plank number.
    index = np.mod(plank, 64).astype(np.intp)
    plank_tone = rng.normal(0.0, 0.07, size=64).astype(np.float32)[index]
    plank_phase = rng.uniform(0, 50, size=64).astype(np.float32)[index]
    period = rng.uniform(6.0, 9.0)  # grain line spacing in back-edge pixels (>= 4 px: no aliasing)
    warp = _fbm(rng, p.x / 70.0 + plank_phase, p.z / 500.0, octaves=3, cells=16)
    rings = p.x / period + warp * 3.0 + plank_phase
    lines = (0.5 + 0.5 * np.cos(2 * np.pi * rings)) ** 6
    strength_along = 0.55 + 0.45 * _NoiseField(rng, 32).sample(p.x / 25.0 + plank_phase, p.z / 120.0)
    fibres = _NoiseField(rng, 64).sample(p.x / 1.6, p.z / 45.0)
    tone = _fbm(rng, p.x / 150.0, p.z / 300.0, octaves=2, cells=16)
    # Plank seams: darken within about one image pixel of a plank boundary.
    frac = plank_pos - plank
    seam = np.exp(-(((np.minimum(frac, 1.0 - frac) * plank_w / p.footprint) / 0.8) ** 2))
    dark = 0.32 * lines * strength_along + 0.07 * fibres + 0.10 * tone + plank_tone
    return dark, seam


def _veins(phase: np.ndarray, width: float) -> np.ndarray:
    """Lines where ``phase`` crosses an integer, ``width`` (phase units) wide, anti-aliased.

    Where the phase changes faster than the line width per pixel, the line is widened to
    the pixel footprint and dimmed by the same factor (box filtering): no dashed lines.
    """
    grad_y, grad_x = np.gradient(phase)
    eff = np.sqrt(width**2 + 0.5 * (grad_x**2 + grad_y**2))
    dist = phase - np.round(phase)
    return (width / eff) * np.exp(-((dist / eff) ** 2))


def _marble(p: _Plane, rng: np.random.Generator, w: int) -> tuple[np.ndarray, None]:
    """Vein darkness of a polished marble slab: a few bold meandering veins, many faint ones."""
    angle = rng.uniform(0.3, 1.2) * rng.choice([-1.0, 1.0])
    along = p.x * np.cos(angle) + p.z * np.sin(angle)
    across = p.x * np.cos(angle + 1.1) + p.z * np.sin(angle + 1.1)
    turb = _fbm(rng, p.x / 260.0, p.z / 260.0, octaves=4, cells=16)
    period = w * rng.uniform(0.18, 0.28)
    main = _veins(along / period + turb * 0.9, 0.012)
    halo = _veins(along / period + turb * 0.9, 0.06)
    fine = _veins(across / (period * 0.37) + turb * 3.2 + 0.37, 0.02)
    fade = np.clip(0.65 + 0.7 * _NoiseField(rng, 16).sample(p.x / 160.0, p.z / 160.0), 0.0, 1.0)
    fade2 = np.clip(0.3 + 1.0 * _NoiseField(rng, 16).sample(p.x / 110.0 + 7.0, p.z / 110.0), 0.0, 1.0)
    clouds = _fbm(rng, p.x / 180.0, p.z / 220.0, octaves=2, cells=16)
    return (0.55 * main + 0.12 * halo) * fade + 0.3 * fine * fade2 + 0.05 * clouds, None


def _concrete(p: _Plane, rng: np.random.Generator, w: int) -> tuple[np.ndarray, None]:
    """Mottled cement: broad clouds and a fine speckle."""
    clouds = _fbm(rng, p.x / 160.0, p.z / 200.0, octaves=4, cells=32)
    speckle = _NoiseField(rng, 128).sample(p.x / 2.0, p.z / 3.0)
    return 0.22 * clouds + 0.05 * speckle, None


def _sand(p: _Plane, rng: np.random.Generator, w: int) -> tuple[np.ndarray, None]:
    """Fine sand with soft wind ripples running across."""
    warp = _fbm(rng, p.x / 200.0, p.z / 200.0, octaves=3, cells=16)
    ripples = np.sin(p.z / rng.uniform(18, 26) + warp * 5.0 + p.x / 400.0)
    grains = _NoiseField(rng, 128).sample(p.x / 1.5, p.z / 2.5)
    clouds = _fbm(rng, p.x / 250.0, p.z / 250.0, octaves=2, cells=16)
    return 0.05 * ripples + 0.06 * grains + 0.10 * clouds, None


def _matte(p: _Plane, rng: np.random.Generator, w: int) -> tuple[np.ndarray, None]:
    """A matte painted or paper surface: only a very faint mottling."""
    return 0.05 * _fbm(rng, p.x / 250.0, p.z / 250.0, octaves=3, cells=16), None


TEXTURES = {"wood": _wood, "marble": _marble, "concrete": _concrete, "sand": _sand, "matte": _matte}
# Mottling of the wall (fraction of brightness): concrete walls look like cast cement.
WALL_MOTTLE = {"concrete": 0.07, "sand": 0.02}
DEFAULT_WALL_MOTTLE = 0.025
# Darkness of the line between two wooden planks.
SEAM_DARKNESS = 0.55


def _render(look: Look, geo: _Geometry, rng: np.random.Generator, options: SceneSettings) -> np.ndarray:
    """The scene at working resolution: (h, w, 3) float32 sRGB in [0, 255]."""
    h, w = geo.h, geo.w
    ys = (np.arange(h, dtype=np.float32) + 0.5)[:, None]
    xs = (np.arange(w, dtype=np.float32) + 0.5)[None, :]
    horizon = geo.horizon
    table_depth = h - horizon
    light = options.light_strength
    # The wall is drawn down to just below the junction, the table from just above it.
    split = int(np.floor(horizon))
    wall_ys, table_ys = ys[: split + 2], ys[max(split - 1, 0) :]

    # Wall: a soft key light behind where the product stands, darker towards the top and sides.
    key_y = horizon - 0.12 * h
    sx, sy = w * rng.uniform(0.26, 0.36), h * rng.uniform(0.26, 0.34)
    key = np.exp(-(((xs - geo.light_x) / sx) ** 2 + ((wall_ys - key_y) / sy) ** 2) / 2)
    key_share = WALL_KEY_SHARE * light
    wall_gain = (1.0 - WALL_TOP_FALLOFF * np.clip(1.0 - wall_ys / horizon, 0, 1)) * (1.0 - key_share * (1.0 - key))
    mottle = WALL_MOTTLE.get(look.texture, DEFAULT_WALL_MOTTLE) * options.texture_strength
    wall_gain = wall_gain * (1.0 + mottle * _smooth_noise(rng, wall_ys.shape[0], w, 4, 3))
    above = np.maximum(horizon - wall_ys, 0.0)
    wall_gain = wall_gain * (1.0 - AO_DEPTHS[0] * np.exp(-above / (AO_WIDTHS[0] * h)))
    wall_rgb = look.wall * wall_gain[..., None]

    # Tabletop: a pool of light around the product's spot, darker towards the front and sides,
    # a sheen near the back where a glossy top reflects the wall.
    t = np.clip((table_ys - horizon) / table_depth, 0.0, 1.0)
    pool_y = horizon + options.surface_depth * table_depth
    pool = np.exp(-(((xs - geo.light_x) / (w * 0.45)) ** 2 + ((table_ys - pool_y) / (table_depth * 0.8)) ** 2) / 2)
    table_gain = (1.0 - TABLE_FRONT_FALLOFF * t**1.5) * (1.0 - TABLE_KEY_SHARE * light * (1.0 - pool))
    below = np.maximum(table_ys - horizon, 0.0)
    table_gain = table_gain * (1.0 - AO_DEPTHS[1] * np.exp(-below / (AO_WIDTHS[1] * h)))
    sheen = look.glossy * np.exp(-below / (0.2 * table_depth)) * np.exp(-(((xs - geo.light_x) / (0.5 * w)) ** 2))

    plane = _plane(geo, table_ys, xs)
    dark, seam = TEXTURES[look.texture](plane, rng, w)
    dark = dark * options.texture_strength
    if seam is not None:
        dark = dark + SEAM_DARKNESS * seam
    dark = np.clip(dark, -0.4, 1.0)
    table_rgb = look.table + (look.vein - look.table) * dark[..., None]
    table_rgb = np.maximum(table_rgb, 0.0) * table_gain[..., None] + look.wall * (0.6 * sheen)[..., None]

    # Join wall and table with a one-pixel anti-aliased junction.
    rgb = np.empty((h, w, 3), dtype=np.float32)
    rgb[: split - 1] = wall_rgb[: split - 1]
    rgb[split + 2 :] = table_rgb[3:]
    rows = slice(max(split - 1, 0), split + 2)
    on_table = np.clip((ys[rows] - horizon) / EDGE_SOFTNESS + 0.5, 0.0, 1.0)[..., None]
    rgb[rows] = wall_rgb[rows] + (table_rgb[: rows.stop - rows.start] - wall_rgb[rows]) * on_table

    # Warm/cool key light and vignetting (elliptical, centred on the light).
    rx = (xs - geo.light_x) / (w * 0.5)
    ry = (ys - h * 0.45) / (h * 0.5)
    vignette = 1.0 - VIGNETTE * np.clip((rx**2 + ry**2) / 2.0, 0.0, 1.0) ** 1.2
    rgb *= vignette[..., None] * look.light
    np.clip(rgb, 0.0, 1.0, out=rgb)
    return (rgb ** (1.0 / GAMMA)) * 255.0


@SCENES.register
class ProceduralScene:
    """A studio scene (back wall + tabletop) drawn from the prompt's palette and the seed."""

    name: ClassVar[str] = "procedural"
    version: ClassVar[str] = "1"

    def __init__(self, options: SceneSettings) -> None:
        self.options = options

    @classmethod
    def unavailable_reason(cls) -> str | None:
        return None

    def __call__(self, prompt: str, *, size: Size, seed: int) -> tuple[np.ndarray, Surface]:
        """Draw the scene.

        Args:
            prompt: the scene prompt (only its palette keywords matter here).
            size: the output size.
            seed: the variation; the same prompt and seed give the same image.

        Returns:
            ``(image, surface)``: (size.height, size.width, 3) uint8 RGB, and the tabletop
            surface in output pixels (backend "scene-geometry").
        """
        opts = self.options
        rng = np.random.default_rng(_stable_seed(prompt, seed))
        look = resolve_look(prompt, rng)
        big_w, big_h = size.width, size.height
        work_scale = min(1.0, opts.work_side / max(big_w, big_h))
        w, h = max(16, round(big_w * work_scale)), max(16, round(big_h * work_scale))

        lo, hi = np.clip(sorted(opts.horizon_range), *HORIZON_LIMITS)
        horizon_out = round(big_h * rng.uniform(lo, hi))  # first tabletop row, output pixels
        light_x_frac = 0.5 + rng.uniform(-0.06, 0.06)
        geo = _Geometry(
            h=h,
            w=w,
            horizon=horizon_out * h / big_h,
            eye_drop=h * rng.uniform(*EYE_DROP_RANGE),
            focal=w * FOCAL_FRACTION,
            light_x=light_x_frac * w,
        )
        small = _render(look, geo, rng, opts)
        big = cv2.resize(small, (big_w, big_h), interpolation=cv2.INTER_CUBIC)
        # Gentle luminance grain at full resolution hides banding in the smooth gradients; a
        # random tile repeated over the image is as good as fresh noise and far cheaper.
        tile = rng.standard_normal((GRAIN_TILE, GRAIN_TILE), dtype=np.float32) * np.float32(opts.grain)
        reps = (-(-big_h // GRAIN_TILE), -(-big_w // GRAIN_TILE))
        grain = cv2.repeat(tile, *reps)[:big_h, :big_w]
        image = cv2.convertScaleAbs(cv2.add(big, cv2.merge([grain, grain, grain])))  # rounds, saturates

        line_y = min(big_h - 1, round(horizon_out + opts.surface_depth * (big_h - horizon_out)))
        surface = Surface(
            line_y=int(line_y),
            center_x=round(light_x_frac * big_w),
            box=Box(0, int(horizon_out), big_w, big_h),
            backend="scene-geometry",
            confidence=1.0,
        )
        return image, surface
