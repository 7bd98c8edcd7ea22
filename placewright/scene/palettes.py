"""Scene palettes: named colour sets, and the prompt keywords that choose them.

A prompt picks a *material* palette (the tabletop: wood, marble, concrete, kitchen, sand) and
a *mood* palette (the wall and the light: warm, dark, pastel, pink, blue, green, black, white,
christmas) through :data:`KEYWORDS`; the first word of each kind wins. Unknown words give the
neutral palette.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

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
