"""Heuristic product analysis: identity from the file name and prompts, size from a table.

Identity
    The file name is stripped of its folder and extension, split on ``_ - .``, spaces and
    camelCase, lower-cased, and cleaned of digits and noise words (``img``, ``photo``,
    ``final``, ``product``, ``v2``...). The first category whose keyword appears in the
    cleaned name wins (most specific categories are tried first, so "perfume bottle" is
    perfume); when the name has none, the prompts are searched the same way; otherwise the
    category is ``"product"``. The name is the cleaned file name (e.g. "olive oil bottle"),
    or the category when the file name was all noise.

Size
    ``size_fraction`` is the product's height as a fraction of the output image height.
    It starts from :data:`HEIGHT_FRACTION` (one row per category, the reason beside it),
    chosen so the product reads as the hero of the shot while still looking its real size
    against a tabletop scene shot at roughly waist height. Then:

    1. aspect rule: with ``aspect = height / width`` of the cut-out, the product's width is
       ``fraction / aspect`` of the frame (for a square frame). When that exceeds
       ``options.max_width_fraction`` (0.55), the fraction becomes
       ``max_width_fraction * aspect``, so very wide products get less height;
    2. the result is multiplied by ``options.size_scale``;
    3. and clamped to ``[MIN_FRACTION, MAX_FRACTION]`` = [0.12, 0.75].

    The compositor additionally caps the width at ``CompositeSettings.max_width_fraction``
    of the real output width, so non-square frames stay safe.
"""

from __future__ import annotations

import re
from pathlib import PurePath

import numpy as np

from placewright.analyze import Analysis, Analyzer
from placewright.errors import InvalidInput
from placewright.settings import AnalyzeSettings

# Recommended product height as a fraction of the output height, per category.
HEIGHT_FRACTION: dict[str, float] = {
    "perfume": 0.30,  # small flacon: shown close but must not look giant next to the scene's props
    "bottle": 0.42,  # wine/oil/water bottles are tall and slim: a strong vertical hero
    "can": 0.30,  # a drinks can is short (~12 cm): larger reads as a billboard, not a can
    "box": 0.35,  # packaging boxes vary; a third of the frame keeps the front panel legible
    "jar": 0.28,  # squat jars (jam, cream): height modest, their width is what shows
    "cup": 0.26,  # mugs and cups are short and wide-ish with a handle
    "tube": 0.32,  # cosmetics tubes stand upright and slim; a bit more height for the label
    "cosmetics": 0.30,  # lipstick, compacts, serums: small items shown close
    "phone": 0.34,  # a phone on a stand or leaning: the screen needs room
    "shoe": 0.26,  # a shoe is low and long: the aspect rule usually lowers this further
    "bag": 0.45,  # handbags are large, soft objects that fill the table
    "watch": 0.22,  # a watch is tiny in reality; bigger than this it looks like a wall clock
    "headphones": 0.36,  # over-ear headphones on a stand or lying: medium size
    "lamp": 0.55,  # a table lamp is one of the tallest things on a table
    "plant": 0.50,  # potted plants are tall, leafy and read well large
    "candle": 0.28,  # candles in jars or pillars: small and cosy
    "glass": 0.32,  # drinking glasses and tumblers: between a can and a bottle
    "speaker": 0.38,  # smart/bluetooth speakers: mid-size cylinders or boxes
    "laptop": 0.30,  # very wide: the aspect rule decides in practice
    "vase": 0.45,  # vases are tall decorative pieces
    "product": 0.36,  # unknown: a middle value that works for most packaged goods
}
# Bounds of the final fraction: below 12% a product is lost in the scene, above 75% it
# leaves no scene to speak of (and no room for the surface it stands on).
MIN_FRACTION = 0.12
MAX_FRACTION = 0.75

# Keywords per category, most specific first: the first category with a hit wins.
CATEGORY_KEYWORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("perfume", ("perfume", "parfum", "fragrance", "cologne", "eau de toilette", "eau de parfum", "scent")),
    ("headphones", ("headphone", "headphones", "headset", "earphones", "earbuds", "earbud")),
    ("watch", ("watch", "wristwatch", "smartwatch", "chronograph")),
    ("phone", ("phone", "smartphone", "iphone", "android", "mobile", "cellphone")),
    ("laptop", ("laptop", "notebook computer", "macbook", "chromebook")),
    ("speaker", ("speaker", "soundbar", "smart speaker")),
    ("lamp", ("lamp", "lantern", "light fixture")),
    ("plant", ("plant", "succulent", "cactus", "bonsai", "houseplant", "flowerpot")),
    ("vase", ("vase",)),
    ("candle", ("candle",)),
    ("shoe", ("shoe", "shoes", "sneaker", "sneakers", "trainer", "trainers", "boot", "boots", "heel", "sandal")),
    ("bag", ("bag", "handbag", "purse", "backpack", "tote", "clutch", "satchel", "wallet")),
    (
        "tube",
        ("tube", "toothpaste", "lotion", "sunscreen", "hand cream", "ointment", "lip balm", "gel"),
    ),
    ("cosmetics", ("lipstick", "mascara", "serum", "foundation", "compact", "cosmetic", "cosmetics", "makeup")),
    ("can", ("can", "soda", "cola", "coke", "pepsi", "beer can", "tin can", "energy drink")),
    ("cup", ("cup", "mug", "teacup", "tumbler")),
    ("glass", ("glass", "wineglass", "goblet")),
    ("jar", ("jar", "jam", "honey", "pot", "cream")),
    ("box", ("box", "package", "packaging", "carton", "pack", "case", "giftbox", "cereal")),
    (
        "bottle",
        (
            "bottle",
            "wine",
            "oil",
            "water",
            "shampoo",
            "conditioner",
            "sauce",
            "ketchup",
            "vodka",
            "whisky",
            "whiskey",
            "gin",
            "rum",
            "spray",
            "soap",
            "flask",
        ),
    ),
)

# File-name words that say nothing about the product.
NOISE_WORDS = frozenset(
    {
        "img", "image", "photo", "pic", "picture", "shot", "final", "product", "products", "dsc", "dscn",
        "dcim", "copy", "edit", "edited", "new", "hd", "hq", "crop", "cropped", "cutout", "nobg",
        "transparent", "bg", "png", "jpg", "jpeg", "webp", "large", "small", "web", "hero", "main",
        "front", "back", "side", "view", "shop", "listing", "packshot", "studio", "white", "background",
        "scaled", "resized", "export", "draft", "v", "x", "rgb", "cmyk", "ml", "cl", "oz", "kg", "mm",
        "cm", "px", "lb", "my", "our",
    }
)  # fmt: skip
# Keywords ignored in prompts: scene prompts name props ("next to a plant") and use words
# like "can" as verbs, so only unambiguous product words count there.
PROMPT_IGNORED = frozenset(
    {
        "can", "pack", "case", "pot", "glass", "water", "watch", "compact", "foundation", "oil", "plant",
        "lamp", "candle", "vase", "boot", "trainer", "mobile", "cream", "spray", "soap", "gel", "heel",
        "tote", "light fixture", "honey", "jam", "wine", "flask", "clutch", "scent", "cup", "tumbler",
        "goblet", "wallet", "succulent", "cactus", "bonsai", "houseplant", "flowerpot", "lantern",
    }
)  # fmt: skip
# Words made only of a noise prefix plus a number ("v2", "img1234", "dsc00123", "final3").
NOISE_PATTERN = re.compile(r"^(?:v|img|dsc|dscn|pxl|photo|final|copy|edit|r|x)?\d+[a-z]?$")
_SPLIT = re.compile(r"[\s_\-.+,()\[\]]+")
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])|(?<=[A-Za-z])(?=\d)|(?<=\d)(?=[A-Za-z])")
_WORD = re.compile(r"[a-z]+")


def name_words(filename: str) -> list[str]:
    """The meaningful lower-case words of a file name (folder and extension dropped)."""
    stem = PurePath(filename.replace("\\", "/")).name
    if "." in stem:
        stem = stem.rsplit(".", 1)[0]
    words: list[str] = []
    for part in _SPLIT.split(stem):
        if not part:
            continue
        # Split camelCase only when the part is not a known "prefix+digits" noise token.
        if NOISE_PATTERN.match(part.lower()):
            continue
        for piece in _CAMEL.split(part):
            word = piece.lower()
            if not word or word in NOISE_WORDS or NOISE_PATTERN.match(word) or not word.isalpha():
                continue
            if len(word) == 1:
                continue
            words.append(word)
    return words


def _singular(word: str) -> str:
    if len(word) > 3 and word.endswith("es") and word[:-2].endswith(("sh", "ch", "x", "ss")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def find_category(text_words: list[str], ignored: frozenset[str] = frozenset()) -> str | None:
    """The first category (most specific first) with a keyword among ``text_words``.

    Keywords in ``ignored`` are skipped.
    """
    words = [_singular(w) for w in text_words]
    joined = " " + " ".join(words) + " "
    raw_joined = " " + " ".join(text_words) + " "
    for category, keywords in CATEGORY_KEYWORDS:
        for keyword in keywords:
            if keyword in ignored:
                continue
            if " " in keyword:
                if f" {keyword} " in raw_joined or f" {keyword} " in joined:
                    return category
            elif keyword in words or keyword in text_words:
                return category
    return None


def recommended_fraction(category: str, aspect: float, options: AnalyzeSettings) -> float:
    """The product-height fraction for ``category`` and cut-out ``aspect`` (height/width)."""
    fraction = HEIGHT_FRACTION.get(category, HEIGHT_FRACTION["product"])
    if aspect > 0 and fraction / aspect > options.max_width_fraction:
        fraction = options.max_width_fraction * aspect
    fraction *= options.size_scale
    return float(min(max(fraction, MIN_FRACTION), MAX_FRACTION))


def cutout_aspect(cutout: np.ndarray) -> float:
    """Height/width of the tight box around the cut-out's visible pixels (alpha > 0)."""
    if cutout.ndim == 3 and cutout.shape[2] == 4:
        alpha = cutout[..., 3]
        rows = np.flatnonzero(alpha.any(axis=1))
        cols = np.flatnonzero(alpha.any(axis=0))
        if rows.size == 0:
            raise InvalidInput("the cut-out is fully transparent", stage="analyze")
        return (rows[-1] - rows[0] + 1) / (cols[-1] - cols[0] + 1)
    return cutout.shape[0] / cutout.shape[1]


class HeuristicAnalyzer(Analyzer):
    """Keyword categories from the file name and prompts; size from a per-category table."""

    name = "heuristic"
    version = "1"

    def __call__(self, cutout: np.ndarray, filename: str, prompts: list[str]) -> Analysis:
        aspect = float(cutout_aspect(cutout))
        words = name_words(filename)
        category = find_category(words)
        if category is None:
            for prompt in prompts:
                category = find_category(_WORD.findall(prompt.lower()), PROMPT_IGNORED)
                if category is not None:
                    break
        category = category or "product"
        name = " ".join(words) if words else category
        return Analysis(
            name=name,
            category=category,
            size_fraction=recommended_fraction(category, aspect, self.options),
            aspect=aspect,
        )
