"""Classical surface finding: the dominant horizontal edge of a tabletop, else a fixed band.

A product photo's tabletop shows as a long horizontal edge in the lower part of the frame:
the table's back edge against the wall, a countertop's edge. On a reduced grey copy:

1. Blur along rows only (a box ``HSMOOTH_FRACTION`` of the width wide): texture, noise and
   vertical clutter (a vase, a bottle on a shelf) average away, long horizontal edges stay.
2. Per column, the vertical step at each row: mean of ``STEP_FRACTION`` of the height below
   minus the same above (a Sobel-y with a taller support); its magnitude is max-pooled over
   a few rows so that a slightly tilted edge still lines up across the image.
3. Row score = the step strength that at least ``min_span`` of the columns reach at that
   row (a quantile across columns): only edges spanning most of the width score high.
4. Candidate rows are the local maxima inside ``search_rows``; edges whose score is at
   least ``UPPER_PREFERENCE`` of the best one count as equally good, and the topmost of them
   wins (a table's back edge lies above its front edge and the floor line); the next edge
   below it scoring at least ``LOWER_EDGE_SHARE`` of the best ends the tabletop. Confidence is
   ``1 - median row score / score``: how far the edge stands out from the rest.
5. The edge is accepted when its mean step is at least ``min_contrast`` grey levels and its
   confidence at least ``min_confidence``; ``line_y`` is then ``line_offset`` of the way from
   the edge down to that lower edge (or the bottom), and ``box`` spans the
   columns where the edge is present, from the edge down.

Otherwise the base line goes in the middle of ``LocateSettings.band``, centred.
"""

from __future__ import annotations

import cv2
import numpy as np

from placewright.locate import Locator
from placewright.settings import LocateSettings
from placewright.types import LUMA_WEIGHTS, Box, Surface

# Rec. 601 luma weights: the classic perceptual weighting of R, G and B.
# Width of the row-wise blur as a fraction of the image width: wide enough to average away
# wood grain and noise and to shrink narrow vertical objects, narrow next to a table's span.
HSMOOTH_FRACTION = 1 / 24
# Rows averaged on each side of a candidate edge, as a fraction of the height (at least one
# row): short, so the sharp junction is found rather than a soft shadow next to it.
STEP_FRACTION = 0.006
# Half-height of the max-pooling window (fraction of the height): tolerance to tilt.
POOL_FRACTION = 0.008
# Edges scoring at least this share of the best are as good; the topmost of them is taken.
UPPER_PREFERENCE = 0.6
# Weaker edges below the chosen one (at least this share of the best) end the tabletop.
LOWER_EDGE_SHARE = 0.3
# Columns where the step at the edge reaches this share of its score belong to its span.
SPAN_SHARE = 0.5
# Method names, reported in Surface.backend and in the stage record.
EDGE_METHOD = "horizontal-edge"
BAND_METHOD = "band"


def _grey(scene: np.ndarray, work_width: int) -> np.ndarray:
    """(h, w) float32 luma at ``work_width`` columns at most (area-averaged, no aliasing)."""
    rgb = scene[..., :3]
    height, width = rgb.shape[:2]
    if width > work_width:
        new_h = max(2, round(height * work_width / width))
        rgb = cv2.resize(rgb, (work_width, new_h), interpolation=cv2.INTER_AREA)
    return (rgb.astype(np.float32) @ LUMA_WEIGHTS).astype(np.float32)


def _step(grey: np.ndarray, rows: int) -> np.ndarray:
    """(h, w) float32: mean of ``rows`` rows from y down minus mean of ``rows`` rows above y (0 near borders)."""
    h = grey.shape[0]
    csum = np.zeros((h + 1, grey.shape[1]), dtype=np.float64)
    np.cumsum(grey, axis=0, out=csum[1:])
    step = np.zeros(grey.shape, dtype=np.float32)
    ys = np.arange(rows, h - rows + 1)
    if ys.size:
        below = csum[ys + rows] - csum[ys]
        above = csum[ys] - csum[ys - rows]
        step[ys] = ((below - above) / rows).astype(np.float32)
    return step


def _refine(magnitude: np.ndarray, row: int, pool: int) -> int:
    """The exact edge row near ``row``: the strongest mean unpooled step within the pooling window."""
    window = slice(max(row - pool, 0), min(row + pool + 1, magnitude.shape[0]))
    return window.start + int(np.argmax(magnitude[window].mean(axis=1)))


def band_surface(height: int, width: int, options: LocateSettings) -> Surface:
    """The fallback: base line in the middle of ``options.band``, centred, no box."""
    lo, hi = sorted(options.band)
    line_y = min(max(round(height * (lo + hi) / 2), 0), height - 1)
    return Surface(line_y=line_y, center_x=width // 2, box=None, backend=BAND_METHOD, confidence=0.0)


def find_edge(scene: np.ndarray, options: LocateSettings) -> Surface | None:
    """The surface in front of the dominant horizontal edge, or None when none convinces.

    Args:
        scene: (H, W, 3|4) uint8; not modified.
        options: the locate settings section.

    Returns:
        A Surface (backend "horizontal-edge") in scene pixels, or None.
    """
    height, width = scene.shape[:2]
    grey = _grey(scene, options.work_width)
    h, w = grey.shape
    fy, fx = height / h, width / w
    smooth = cv2.blur(grey, (max(3, round(w * HSMOOTH_FRACTION)) | 1, 1), borderType=cv2.BORDER_REFLECT)
    rows = max(1, round(h * STEP_FRACTION))
    magnitude = np.abs(_step(smooth, rows))
    pool = max(1, round(h * POOL_FRACTION))
    pooled = cv2.dilate(magnitude, np.ones((2 * pool + 1, 1), np.uint8))

    lo, hi = sorted(options.search_rows)
    y0, y1 = max(rows, int(h * lo)), min(h - rows, int(np.ceil(h * hi)))
    if y1 - y0 < 3:
        return None
    quantile = 1.0 - options.min_span
    score = np.quantile(pooled[y0:y1], quantile, axis=1).astype(np.float32)
    best = float(score.max())
    if best < options.min_contrast:
        return None
    confidence = 1.0 - float(np.median(score)) / best
    if confidence < options.min_confidence:
        return None

    # Local maxima (plateau-safe) that are real edges; merge those closer than the pooling
    # window (one edge, one peak). The topmost strong one is the table's back edge; the next
    # one below it (if any) bounds the tabletop (its front edge, the floor line).
    is_peak = (score >= np.maximum(np.r_[-1.0, score[:-1]], np.r_[score[1:], -1.0])) & (
        score >= max(LOWER_EDGE_SHARE * best, options.min_contrast)
    )
    peaks: list[int] = []
    for p in np.flatnonzero(is_peak).tolist():
        if peaks and p - peaks[-1] <= 2 * pool + rows:
            if score[p] > score[peaks[-1]]:
                peaks[-1] = p
        else:
            peaks.append(p)
    strong = [p for p in peaks if score[p] >= UPPER_PREFERENCE * best]
    top = strong[0] + y0
    below = [p + y0 for p in peaks if p + y0 > top]
    edge = _refine(magnitude, top, pool)
    floor = _refine(magnitude, below[0], pool) if below else h

    present = pooled[top] >= SPAN_SHARE * score[top - y0]
    cols = np.flatnonzero(present)
    x0, x1 = (int(cols[0]), int(cols[-1]) + 1) if cols.size else (0, w)

    edge_y = min(height - 1, round(edge * fy))
    floor_y = min(height, round(floor * fy))
    line_y = min(height - 1, round(edge_y + options.line_offset * (floor_y - edge_y)))
    box = Box(round(x0 * fx), edge_y, min(width, round(x1 * fx)), floor_y)
    return Surface(
        line_y=int(line_y),
        center_x=round(box.center_x),
        box=box,
        backend=EDGE_METHOD,
        confidence=round(min(1.0, confidence), 3),
    )


class ClassicalLocator(Locator):
    """Horizontal-edge detection with the fixed band as its own fallback."""

    name = "classical"
    version = "1"

    def __call__(self, scene: np.ndarray, *, phrase: str) -> Surface:
        """The surface of ``scene`` ((H, W, 3|4) uint8); ``phrase`` is not needed here."""
        del phrase  # a horizontal edge is a horizontal edge, whatever the surface is called
        found = find_edge(scene, self.options)
        if found is not None:
            return found
        return band_surface(scene.shape[0], scene.shape[1], self.options)
