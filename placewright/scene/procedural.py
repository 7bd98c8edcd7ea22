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

import zlib
from dataclasses import dataclass

import cv2
import numpy as np

from placewright.scene import SceneGenerator
from placewright.scene.palettes import PALETTES, RGB, Texture, palettes_for
from placewright.scene.textures import TEXTURES, Geometry, plane_coordinates, smooth_noise
from placewright.settings import SceneSettings
from placewright.types import Box, Size, Surface

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


WALL_MOTTLE = {"concrete": 0.07, "sand": 0.02}
DEFAULT_WALL_MOTTLE = 0.025
# Darkness of the line between two wooden planks.
SEAM_DARKNESS = 0.55


def _render(look: Look, geo: Geometry, rng: np.random.Generator, options: SceneSettings) -> np.ndarray:
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
    wall_gain = wall_gain * (1.0 + mottle * smooth_noise(rng, wall_ys.shape[0], w, 4, 3))
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

    plane = plane_coordinates(geo, table_ys, xs)
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


class ProceduralScene(SceneGenerator):
    """A studio scene (back wall + tabletop) drawn from the prompt's palette and the seed."""

    name = "procedural"
    version = "1"

    def __call__(self, prompt: str, *, size: Size, seed: int, surface: str) -> tuple[np.ndarray, Surface]:
        """Draw the scene.

        Args:
            prompt: the scene prompt (only its palette keywords matter here).
            size: the output size.
            seed: the variation; the same prompt and seed give the same image.
            surface: not used: a studio scene's surface is always its tabletop.

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
        geo = Geometry(
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
        tabletop = Surface(
            line_y=int(line_y),
            center_x=round(light_x_frac * big_w),
            box=Box(0, int(horizon_out), big_w, big_h),
            backend="scene-geometry",
            confidence=1.0,
        )
        return image, tabletop
