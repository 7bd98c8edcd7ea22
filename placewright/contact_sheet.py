"""Contact sheets: every variant of a run (or a campaign) on one image, with what made it and its verdict.

A tile per variant: the image (a grey card when the quality gate left it out), then its number,
seed and verdict on a coloured badge, its scene, and the backends of its scene, cut-out and
harmonize stages. The sheet is what a reviewer opens first; the gallery (``index.html``) and the
Prefect run page show it too.
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

# Tile width (px) and the most tiles per row; the sheet's width follows.
TILE_WIDTH = 300
MAX_COLUMNS = 4
# Space between and around tiles, and the caption's lines.
GAP = 12
FONT_SIZE = 14
TITLE_SIZE = 20
LINE_HEIGHT = 18
CAPTION_LINES = 5
# Colours: the sheet, the caption text, a left-out variant's card, and the verdict badges.
BACKGROUND = (246, 246, 244)
INK = (34, 34, 34)
MUTED = (102, 102, 102)
CARD = (214, 214, 210)
BADGES = {
    "passed": (46, 125, 50),
    "needs_review": (230, 126, 0),
    "dropped": (198, 40, 40),
    "unchecked": (117, 117, 117),
    "failed": (198, 40, 40),
}


@dataclass(frozen=True)
class Tile:
    """One variant on the sheet.

    Attributes:
        image: (H, W, 3) uint8 image, or None (a card saying why there is none).
        title: the first caption line, e.g. ``#0 · seed 7``.
        verdict: the badge: passed, needs_review, dropped, unchecked or failed.
        lines: the caption's other lines (scene, backends, failed checks); wrapped to the tile.
    """

    image: np.ndarray | None
    title: str
    verdict: str
    lines: tuple[str, ...]


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _thumbnail(image: np.ndarray, width: int) -> Image.Image:
    picture = Image.fromarray(np.ascontiguousarray(image[..., :3]))
    height = max(1, round(picture.height * width / picture.width))
    return picture.resize((width, height), Image.Resampling.LANCZOS)


def _wrapped(lines: tuple[str, ...], chars: int, limit: int) -> list[str]:
    out: list[str] = []
    for line in lines:
        out.extend(textwrap.wrap(line, chars) or [""])
    if len(out) > limit:
        out = out[:limit]
        out[-1] = out[-1][: max(0, chars - 1)] + "…"
    return out


def contact_sheet(tiles: list[Tile], title: str, *, tile_width: int = TILE_WIDTH) -> np.ndarray:
    """Lay ``tiles`` out in rows under ``title``; returns the sheet as (H, W, 3) uint8 RGB.

    Images keep their aspect; a row is as tall as its tallest image. Captions are wrapped to the
    tile's width and cut at :data:`CAPTION_LINES` lines.
    """
    columns = max(1, min(MAX_COLUMNS, len(tiles)))
    rows = max(1, math.ceil(len(tiles) / columns))
    thumbs = [_thumbnail(t.image, tile_width) if t.image is not None else None for t in tiles]
    image_heights = [t.height if t is not None else round(tile_width * 0.75) for t in thumbs]
    caption_height = (CAPTION_LINES + 1) * LINE_HEIGHT + GAP
    row_heights = [max(image_heights[r * columns : (r + 1) * columns], default=0) + caption_height for r in range(rows)]
    header = TITLE_SIZE + 2 * GAP
    width = columns * tile_width + (columns + 1) * GAP
    height = header + sum(row_heights) + rows * GAP
    sheet = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    draw.text((GAP, GAP), title, fill=INK, font=_font(TITLE_SIZE))
    font = _font(FONT_SIZE)
    chars = max(10, int(tile_width / (FONT_SIZE * 0.55)))
    y = header
    for row in range(rows):
        for column in range(columns):
            index = row * columns + column
            if index >= len(tiles):
                break
            tile, thumb = tiles[index], thumbs[index]
            x = GAP + column * (tile_width + GAP)
            if thumb is not None:
                sheet.paste(thumb, (x, y))
                image_bottom = y + thumb.height
            else:
                image_bottom = y + image_heights[index]
                draw.rectangle((x, y, x + tile_width - 1, image_bottom - 1), fill=CARD)
                draw.text((x + GAP, y + GAP), "not published", fill=MUTED, font=font)
            text_y = image_bottom + GAP // 2
            draw.text((x, text_y), tile.title, fill=INK, font=font)
            badge = tile.verdict.replace("_", " ")
            left = x + tile_width - int(draw.textlength(badge, font=font)) - 10
            draw.rounded_rectangle(
                (left - 4, text_y - 1, x + tile_width - 2, text_y + LINE_HEIGHT - 2),
                radius=4,
                fill=BADGES.get(tile.verdict, MUTED),
            )
            draw.text((left, text_y), badge, fill=(255, 255, 255), font=font)
            for k, line in enumerate(_wrapped(tile.lines, chars, CAPTION_LINES)):
                draw.text((x, text_y + (k + 1) * LINE_HEIGHT), line, fill=MUTED, font=font)
        y += row_heights[row] + GAP
    return np.asarray(sheet)


__all__ = ["Tile", "contact_sheet"]
