"""Mask clean-up, full-resolution edge refinement and colour-fringe removal.

The cut-out backends find a coarse binary mask at a working resolution; these helpers
turn it into a production alpha:

* :func:`clean_mask` keeps the product's component(s) and fills enclosed holes.
* :func:`complete_mask` moves a mask's edge onto the photo's own outline (a marker
  watershed between the product's solid core and the sure backdrop), so product bands
  nearly the backdrop's colour are bridged and soft shadows are left out.
* :func:`open_see_through_holes` re-opens the enclosed holes that show the backdrop (a mug
  handle's), whatever filled them.
* :func:`refine_alpha` upsamples the mask and re-estimates the edge at full resolution
  from colour: each edge pixel is modelled as a mix ``C = a*F + (1-a)*B`` of the local
  product colour F and the local backdrop colour B, which gives a soft 1-2 px edge that
  follows the photo's own anti-aliasing.
* :func:`unmix_colors` removes the backdrop's colour from semi-transparent pixels (solves
  the same mix for F), so no ring of the old backdrop shows over a new background.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

# Components at least this share of the largest one, and this close to it (in working
# pixels), are kept as parts of the product (a lid beside its jar); smaller or remote
# blobs (dust, a detached shadow core) are dropped.
KEEP_COMPONENT_SHARE = 0.15
KEEP_COMPONENT_GAP_PX = 3

# Colour-based alpha is trusted fully when the product and backdrop colours differ by at
# least this many noise standard deviations, and not at all below the lower value: there
# the geometric (upsampled) edge is used instead.
CONFIDENT_SEPARATION_SIGMAS = (3.0, 8.0)
# Colour separations (0..255 levels) below which colour matting is never trusted,
# whatever the noise (too close to tell apart reliably); fully trusted only from twice it.
MIN_SEPARATION_LEVELS = 12.0
# Noise deadband of the colour alpha, in noise standard deviations: backdrop grain must
# not turn into a faint halo, product texture not into see-through speckles.
ALPHA_DEADBAND_SIGMAS = 2.0
# Below this alpha, un-mixing amplifies noise (division by a): use the local product
# colour instead.
UNMIX_MIN_ALPHA = 0.2
# Gaussian sigma, as a multiple of the edge band radius, of the local colour estimates.
LOCAL_COLOR_SIGMA_FACTOR = 1.5
# A normalized-convolution weight below this means "no pixel of that class nearby".
MIN_SUPPORT = 1e-3
# Shadow-aware un-mixing (edge pixels over a contact shadow): used only where the product
# and backdrop colours differ in direction by at least asin(sqrt(0.02)) ~ 8 degrees, and
# for shadow gains the cut-out's backdrop model also accepts as shadow.
SHADOW_UNMIX_MIN_SIN2 = 0.02
SHADOW_UNMIX_MIN_GAIN = 0.35
# Mask completion (see complete_mask): a pixel is a shadow when it is a darker copy of the
# backdrop with this least gain; solid product (markers) is what differs and is no shadow,
# taken when within COMPLETE_REACH_FRACTION of the mask (share of the long side). Backdrop
# markers: backdrop-like pixels farther than COMPLETE_CLEARANCE_FRACTION from any differing
# pixel, and everything farther than COMPLETE_MARGIN_FRACTION from the product. The photo is
# smoothed by COMPLETE_BLUR_SIGMA (working pixels) before the watershed, against grain.
SHADOW_MIN_GAIN = 0.35
COMPLETE_REACH_FRACTION = 0.03
COMPLETE_CLEARANCE_FRACTION = 0.03
COMPLETE_MARGIN_FRACTION = 0.04
COMPLETE_BLUR_SIGMA = 0.8
# Solid blobs within reach of the mask but apart from it are product markers only when their mean
# distance to the backdrop is at least this multiple of the tolerance.
COMPLETE_DETACHED_MIN_FACTOR = 1.5
# Slits narrower than about twice this share of the long side, of colours that differ from
# the backdrop, between product parts are closed.
COMPLETE_SLIT_FRACTION = 0.01
# A trusted (AI) mask's interior, eroded by this many working pixels, is product outright.
TRUSTED_CORE_PX = 3
# See-through holes (see open_see_through_holes): at least this many working pixels, on
# average within SEE_THROUGH_MAX_SIGMAS noise RMS (but at least SEE_THROUGH_MIN_LEVELS) of the
# backdrop, and enclosed by a sharp edge (a 3x3 colour gradient of at least EDGE_MIN_SIGMAS
# noise RMS, and EDGE_MIN_LEVELS) along at least SEE_THROUGH_SHARP_SHARE of their outline.
MIN_SEE_THROUGH_PX = 24
SEE_THROUGH_MAX_SIGMAS = 2.0
SEE_THROUGH_MIN_LEVELS = 5.0
EDGE_MIN_SIGMAS = 4.0
EDGE_MIN_LEVELS = 12.0
SEE_THROUGH_SHARP_SHARE = 0.8
# Cast shadows (see cast_shadow): a region of shadow-like pixels is a shadow when at least
# SHADOW_OPEN_SHARE of the pixels around it are open (the backdrop, reached with no sharp edge
# between: a soft shadow fades into it) and less than SHADOW_MAX_SHARP_SHARE are a sharp edge
# facing the backdrop (within SHADOW_FACING_PX of it). A product part of the backdrop's tone (a
# pale lid, a label's shaded side) is bounded by its sharp outline and the product's other colours.
SHADOW_OPEN_SHARE = 0.1
SHADOW_MAX_SHARP_SHARE = 0.1
SHADOW_FACING_PX = 2
# Contact shadows (see cast_shadow, below_base): shadow-like pixels below the base of the product's
# confident (not shadow-like) pixels are a shadow, whatever their edge. A column's base is its lowest
# such pixel, or the lowest within this share of the long side either side when that one lies lower
# by more than this share (a column whose product is only a rim at the top).
SHADOW_BASE_SPAN_FRACTION = 0.05
# ... when, where such a region meets the backdrop, its pixels are at most this share of the way
# from the tolerance to its depth (a shadow fades in; a product part's outline is a step).
SHADOW_RIM_SHARE = 0.25
SHADOW_MAX_STEP_SHARE = 0.1
# The product's foot (see product_foot): in columns with at least this share of the long side of
# backdrop-toned product body above the base, the run of shadow-like pixels below the base that
# starts within FOOT_START_PX of it and stays within FOOT_MATCH_FACTOR times the tolerance of the
# column's body colour is product, not shadow.
FOOT_MIN_BODY_FRACTION = 0.05
FOOT_START_PX = 2
FOOT_MATCH_FACTOR = 0.6
# complete_mask: the shadow in the foot's columns more than this many pixels below it is backdrop.
FOOT_EDGE_PX = 1
# A column's foot ends at most a pixel below the median end of the foot's columns within this
# share of the long side (a shadow core of the body's colour carries the run past the bottom edge).
FOOT_SMOOTH_FRACTION = 0.08
# Rounds of letting regions beside a found shadow open onto it (a shadow split by noise).
SHADOW_ROUNDS = 3
# Soft notches (see fill_soft_notches): gaps up to this share of the long side across, along rows
# or columns, between parts of the mask, filled when less than NOTCH_MAX_SHARP_SHARE of the mask's
# edge along them is a sharp edge.
NOTCH_SPAN_FRACTION = 0.15
NOTCH_MAX_SHARP_SHARE = 0.3
# Slits (see fill_soft_notches): gaps at most this many pixels across, along rows or columns, at
# least this share of the long side long, are filled whatever their sides show.
NOTCH_SLIT_PX = 1
NOTCH_SLIT_MIN_LENGTH_FRACTION = 0.03
# Point samples are laid out in rows of this many for cv2.remap (which needs < 32767 a side).
REMAP_ROW = 4096


@dataclass(frozen=True)
class RefinedCutout:
    """A refined cut-out at full resolution.

    Attributes:
        rgba: (H, W, 4) uint8, uncropped. The backdrop colour is removed from edge
            pixels; the transparent pixels of the edge band carry the local product colour
            (safe to resample), those farther out are black.
    """

    rgba: np.ndarray


def clean_mask(mask: np.ndarray) -> np.ndarray:
    """Keep the product's component(s) of a binary mask and fill its enclosed holes.

    Args:
        mask: (h, w) bool, the raw foreground.

    Returns:
        (h, w) bool: the largest component, plus components at least
        ``KEEP_COMPONENT_SHARE`` of its area lying within ``KEEP_COMPONENT_GAP_PX`` of it,
        with every background region that does not reach the image border filled.
        Background regions that reach the border (the gap in a handle that opens to the
        outside) stay background. Empty in, empty out.
    """
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if count <= 1:
        return np.zeros(mask.shape, bool)
    areas = stats[1:, cv2.CC_STAT_AREA]
    largest = int(np.argmax(areas)) + 1
    keep = labels == largest
    if count > 2:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * KEEP_COMPONENT_GAP_PX + 1,) * 2)
        near = cv2.dilate(keep.astype(np.uint8), kernel).astype(bool)
        big = np.flatnonzero(areas >= KEEP_COMPONENT_SHARE * areas[largest - 1]) + 1
        for label in big:
            if label != largest and near[labels == label].any():
                keep |= labels == label
    return fill_enclosed_holes(keep)


def fill_enclosed_holes(mask: np.ndarray) -> np.ndarray:
    """Fill background regions of ``mask`` (h, w) bool that do not touch the image border."""
    padded = np.pad(~mask, 1, constant_values=True).astype(np.uint8)
    _, labels = cv2.connectedComponents(padded, connectivity=4)
    outside = labels == labels[0, 0]
    return ~outside[1:-1, 1:-1]


def disk(radius: int) -> np.ndarray:
    """A filled disc of ``radius`` pixels, the structuring element of every grow and shrink."""
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def _backdrop_distance(image: np.ndarray, backdrop: np.ndarray) -> np.ndarray:
    """RGB distance (h, w) float32 of ``image`` to ``backdrop`` (both (h, w, 3) float32)."""
    diff = image - backdrop
    return np.sqrt(np.einsum("hwc,hwc->hw", diff, diff))


def shadow_like(image: np.ndarray, backdrop: np.ndarray, tolerance: float) -> np.ndarray:
    """Pixels (h, w) bool that are a darker copy of the backdrop (gain in [SHADOW_MIN_GAIN, 1], same chroma)."""
    gain = np.einsum("hwc,hwc->hw", image, backdrop) / np.maximum(np.einsum("hwc,hwc->hw", backdrop, backdrop), 1.0)
    chroma = image - gain[..., None] * backdrop
    chroma_dist = np.sqrt(np.einsum("hwc,hwc->hw", chroma, chroma))
    return (gain >= SHADOW_MIN_GAIN) & (gain <= 1.0) & (chroma_dist <= tolerance)


def cast_shadow(image: np.ndarray, backdrop: np.ndarray, *, tolerance: float, noise: float) -> np.ndarray:
    """The shadow-like pixels (h, w) bool that differ from the backdrop and really are a shadow.

    A shadow and a product part of the backdrop's tone (a pale lid on a bright pool of light, a
    pale label's shaded side) are both a darker copy of the backdrop; they differ in their
    outline. A cast shadow fades out: around most of it the photo turns into the backdrop without
    a sharp edge. A product part is bounded by its own sharp outline and by the product's other
    colours, and where the product's shading crosses the backdrop's tone its outline still shows as
    a sharp edge facing the backdrop. So the differing shadow-like pixels, split along sharp edges,
    are taken region by region: a shadow when at least ``SHADOW_OPEN_SHARE`` of the pixels around
    it are open (the backdrop, reached from the border without crossing a differing pixel or a
    sharp edge) and less than ``SHADOW_MAX_SHARP_SHARE`` are a sharp edge facing the backdrop.

    A contact shadow need not fade out: its dark core under the product's base can end in an edge as
    sharp as an outline, which would make it a product part by that test. But it lies on the surface,
    below the product's base, while a backdrop-toned product part (a spotlit pale lid) is part of the
    product above its base. So every differing shadow-like pixel below the base of the product's
    confident pixels (those that differ and are no darker copy of the backdrop; see
    :func:`below_base`) is a shadow too, whatever its edges.

    Args:
        image: (h, w, 3) float32 working image.
        backdrop: (h, w, 3) float32 backdrop estimate.
        tolerance: RGB distance (0..255 levels) within which a pixel is backdrop-like.
        noise: the backdrop's noise RMS (levels): edges weaker than ``EDGE_MIN_SIGMAS`` of it are not sharp.

    Returns:
        (h, w) bool, the differing shadow-like pixels of the soft-bounded regions, with the
        shadow-like edge pixels beside them (where a product's outline meets its shadow), and
        those below the product's base.
    """
    return _shadow_and_foot(image, backdrop, tolerance=tolerance, noise=noise)[0]


def _shadow_and_foot(
    image: np.ndarray, backdrop: np.ndarray, *, tolerance: float, noise: float
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`cast_shadow` and the product's foot it left out (see :func:`product_foot`), both (h, w) bool."""
    dist = _backdrop_distance(image, backdrop)
    differs = dist > tolerance
    sharp = edge_strength(image) >= max(EDGE_MIN_LEVELS, EDGE_MIN_SIGMAS * noise)
    like = shadow_like(image, backdrop, tolerance)
    regions = differs & like & ~sharp
    count, labels = cv2.connectedComponents(regions.astype(np.uint8), connectivity=8)
    if count <= 1:
        return regions, np.zeros(regions.shape, bool)
    # Each pixel next to a region is counted for it (the largest label among its neighbours).
    around = cv2.dilate(labels.astype(np.float32), np.ones((3, 3), np.uint8)).astype(np.int32)
    around[regions] = 0
    # Open: the backdrop-like, edge-free stretch that reaches the border (the backdrop itself, not
    # a band of the product that merely crosses the backdrop's tone inside its outline).
    flat = np.pad(~differs & ~sharp, 1, constant_values=True).astype(np.uint8)
    _, flat_labels = cv2.connectedComponents(flat, connectivity=4)
    open_px = (flat_labels == flat_labels[0, 0])[1:-1, 1:-1]
    facing = sharp & cv2.dilate(open_px.astype(np.uint8), disk(SHADOW_FACING_PX)).astype(bool)
    total = np.maximum(np.bincount(around.ravel(), minlength=count).astype(np.float32), 1.0)
    outlined = np.bincount(around[facing], minlength=count).astype(np.float32)
    is_shadow = np.zeros(count, bool)
    for _ in range(SHADOW_ROUNDS):
        # A region beside a shadow found so far (a contact shadow's darkest band) opens onto it.
        reached = open_px | cv2.dilate(is_shadow[labels].astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        opened = np.bincount(around[reached], minlength=count).astype(np.float32)
        found = (opened >= SHADOW_OPEN_SHARE * total) & (outlined < SHADOW_MAX_SHARP_SHARE * total)
        found[0] = False
        if (found == is_shadow).all():
            break
        is_shadow = found
    shadow = is_shadow[labels]
    # The shadow-like edge pixels beside a shadow (where a product's outline meets its shadow) go with it.
    rim = differs & sharp & like
    shadow |= rim & cv2.dilate(shadow.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    # Below the product's base lies the surface: a darker copy of the backdrop there is its shadow ...
    below = below_base(differs & ~like)
    # ... except the product's own foot: its backdrop-toned body running on down below a coloured band.
    foot = product_foot(image, differs & like & ~shadow & ~below, differs & like & below, tolerance)
    return (shadow | _shadow_under_base(differs & like & below & ~foot, differs, dist, tolerance)) & ~foot, foot


def under_foot(foot: np.ndarray) -> np.ndarray:
    """The pixels (h, w) bool of the foot's columns more than ``FOOT_EDGE_PX`` below the ``foot`` (h, w) bool."""
    h = foot.shape[0]
    has = foot.any(axis=0)
    bottom = np.where(has, h - 1 - np.argmax(foot[::-1], axis=0), h)
    return np.arange(h)[:, None] > (bottom + FOOT_EDGE_PX)[None, :]


def product_foot(image: np.ndarray, body: np.ndarray, below: np.ndarray, tolerance: float) -> np.ndarray:
    """The part (h, w) bool of ``below`` that is the product's foot, not the shadow it stands in.

    A grey can on a grey backdrop is a darker copy of the backdrop all over, only its coloured label
    band is confident, so its foot under the label lies below that base, and with its contact shadow
    around it forms one shadow-like region: no chroma and no outline tells them apart. Geometry does.
    A product's sides run straight down and its shading follows its columns, so the foot continues the
    body's columns in the body's colour, from the base down to its own bottom edge; a shadow is a
    ramp of the backdrop's tone that brightens away from the product. So in each column with at least
    ``FOOT_MIN_BODY_FRACTION`` of the long side of ``body`` (backdrop-toned product: shadow-like
    pixels that are no shadow, above the base), the foot is the run of ``below`` pixels that starts
    within ``FOOT_START_PX`` of the base and stays within ``FOOT_MATCH_FACTOR`` times ``tolerance`` of
    the column's body colour (its median; both 3x3 means), bridging single stray pixels, and ends at most a
    pixel below its neighbours' (a shadow core of the body's colour would carry it past the bottom edge).
    A product whose columns hold confident product down to its base (a jar, a coloured can) has no such
    body there: nothing changes.

    Args:
        image: (h, w, 3) float32 working image.
        body: (h, w) bool, the backdrop-toned product above the base.
        below: (h, w) bool, the differing shadow-like pixels below the base (see :func:`below_base`).
        tolerance: RGB distance (0..255 levels) within which a pixel is backdrop-like.

    Returns:
        (h, w) bool, the foot's pixels (a subset of ``below``).
    """
    h, w = body.shape
    counts = body.sum(axis=0)
    columns = np.flatnonzero((counts >= FOOT_MIN_BODY_FRACTION * max(h, w)) & below.any(axis=0))
    foot = np.zeros((h, w), bool)
    if columns.size == 0:
        return foot
    limit = FOOT_MATCH_FACTOR * tolerance
    smooth = cv2.blur(image, (3, 3))
    for x in columns:
        ref = np.median(smooth[body[:, x], x], axis=0)
        diff = smooth[:, x] - ref
        match = below[:, x] & (np.einsum("hc,hc->h", diff, diff) <= limit * limit)
        rows = np.flatnonzero(below[:, x])
        y = int(rows[0])
        if not match[y : y + FOOT_START_PX + 1].any():
            continue
        misses = 0
        while y < h and below[y, x]:
            if match[y]:
                misses = 0
                foot[y, x] = True
            else:
                misses += 1
                if misses > 1:
                    break
            y += 1
    # Where the shadow's dark core matches the body's colour the run overshoots the foot's bottom edge;
    # the edge is a smooth curve, so no column's foot ends more than a pixel below its neighbours' (their
    # median).
    has = foot.any(axis=0)
    bottom = np.where(has, h - 1 - np.argmax(foot[::-1], axis=0), -1)
    half = max(1, round(FOOT_SMOOTH_FRACTION * max(h, w) / 2))
    for x in np.flatnonzero(has):
        near = bottom[max(0, x - half) : x + half + 1]
        cap = int(np.median(near[near >= 0])) + 1
        foot[cap + 1 :, x] = False
    return foot


def _shadow_under_base(candidate: np.ndarray, differs: np.ndarray, dist: np.ndarray, tolerance: float) -> np.ndarray:
    """The regions of ``candidate`` (shadow-like pixels below the product's base) that are a shadow.

    A shadow darkens the surface gradually however sharp its edge looks, so where it meets the backdrop
    its pixels are barely past ``tolerance``; a backdrop-toned product part below a coloured band (a
    grey can's foot under its label) meets the backdrop in a step, its outline pixels a good share
    of its depth. A region is a shadow when less than ``SHADOW_MAX_STEP_SHARE`` of its pixels next to
    the backdrop are a step: farther from it than ``SHADOW_RIM_SHARE`` of the way from ``tolerance``
    to the region's depth (the 90th percentile of its distances). A grey can's foot and the shadow it
    stands in form one region that passes this test; :func:`product_foot` separates them first. A
    region not next to the backdrop is none.
    """
    count, labels = cv2.connectedComponents(candidate.astype(np.uint8), connectivity=8)
    out = np.zeros(candidate.shape, bool)
    if count <= 1:
        return out
    rim = candidate & cv2.dilate((~differs).astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    for label in range(1, count):
        region = labels == label
        edge = dist[region & rim]
        if edge.size == 0:
            continue
        depth = float(np.percentile(dist[region], 90))
        steps = edge > tolerance + SHADOW_RIM_SHARE * (depth - tolerance)
        if float(steps.mean()) < SHADOW_MAX_STEP_SHARE:
            out |= region
    return out


def below_base(product: np.ndarray) -> np.ndarray:
    """The pixels (h, w) bool below the base of the confident ``product`` pixels (h, w) bool.

    Only columns holding product (after a 3x3 opening, against grain) have a base. It is the column's
    lowest product pixel, unless that lies more than ``SHADOW_BASE_SPAN_FRACTION`` of the long side
    above the lowest within that distance either side: then the column's product is only a rim at
    the top (the backdrop-toned flank of a can under its coloured lid), and the base is that lower
    one. A rounded base (a jar's corners) rises less steeply, so its columns keep their own base and
    the shadow wedged under the corner is below it.
    """
    core = cv2.morphologyEx(product.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)).astype(bool)
    h, w = core.shape
    has = core.any(axis=0)
    lowest = np.where(has, h - 1 - np.argmax(core[::-1], axis=0), -1).astype(np.float32)
    reach = max(1, round(SHADOW_BASE_SPAN_FRACTION * max(h, w)))
    around = cv2.dilate(lowest[None, :], np.ones((1, 2 * reach + 1), np.uint8))[0]
    base = np.where(around - lowest <= reach, lowest, around)
    return (np.arange(h)[:, None] > base[None, :]) & has[None, :]


def edge_strength(image: np.ndarray) -> np.ndarray:
    """Colour gradient (h, w) float32: the largest 3x3 max-min range over the channels (0..255 levels)."""
    return cv2.morphologyEx(image, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)).max(axis=2)


def open_see_through_holes(
    mask: np.ndarray, image: np.ndarray, backdrop: np.ndarray, *, tolerance: float, noise: float
) -> np.ndarray:
    """Re-open the enclosed regions of ``mask`` that show the backdrop (a mug handle's hole).

    A region counts when it lies inside the mask without touching its outline, is at least
    ``MIN_SEE_THROUGH_PX`` pixels of backdrop-like colour (each within ``tolerance`` of the
    backdrop, on average within ``SEE_THROUGH_MAX_SIGMAS`` noise RMS), and is enclosed by a
    sharp edge along most of its outline. Product areas that merely pass through the
    backdrop's colour (a white bottle's shaded side, a label band near the backdrop's tone)
    fail the last two tests: they are off by several levels, or bounded by smooth shading.

    Args:
        mask: (h, w) bool, the product mask (holes may be filled).
        image: (h, w, 3) float32 working image.
        backdrop: (h, w, 3) float32 backdrop estimate.
        tolerance: RGB distance (0..255 levels) within which a pixel is backdrop-like.
        noise: the backdrop's noise RMS (levels).

    Returns:
        (h, w) bool, ``mask`` without its see-through regions.
    """
    dist = _backdrop_distance(image, backdrop)
    like = cv2.morphologyEx((mask & (dist <= tolerance)).astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(like, connectivity=8)
    if count <= 1:
        return mask
    edges = edge_strength(image)
    sharp_level = max(EDGE_MIN_LEVELS, EDGE_MIN_SIGMAS * noise)
    mean_limit = max(SEE_THROUGH_MIN_LEVELS, SEE_THROUGH_MAX_SIGMAS * noise)
    h, w = mask.shape
    out = mask.copy()
    for label in range(1, count):
        x, y, bw, bh, area = (int(v) for v in stats[label])
        if area < MIN_SEE_THROUGH_PX:
            continue
        x0, y0, x1, y1 = max(0, x - 2), max(0, y - 2), min(w, x + bw + 2), min(h, y + bh + 2)
        region = labels[y0:y1, x0:x1] == label
        if float(dist[y0:y1, x0:x1][region].mean()) > mean_limit:
            continue
        grown = cv2.dilate(region.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        if (grown & ~mask[y0:y1, x0:x1]).any() or x0 == 0 or y0 == 0 or x1 == w or y1 == h:
            continue  # touches the outline: a band of the product, not a hole through it
        filled = fill_enclosed_holes(region)
        ring = cv2.dilate(filled.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool) & ~filled
        if float((edges[y0:y1, x0:x1][ring] >= sharp_level).mean()) >= SEE_THROUGH_SHARP_SHARE:
            out[y0:y1, x0:x1] &= ~filled
    return out


def complete_mask(
    image: np.ndarray,
    mask: np.ndarray,
    backdrop: np.ndarray,
    *,
    tolerance: float,
    noise: float,
    trusted: bool,
    keep_out: np.ndarray | None = None,
) -> np.ndarray:
    """Move the edge of ``mask`` onto the photo's own outline (marker watershed).

    Product markers are the solid product near the mask (pixels that differ from the
    backdrop and are no shadow; a blob apart from the mask only when its mean distance to the
    backdrop is at least ``COMPLETE_DETACHED_MIN_FACTOR`` times ``tolerance``), plus, for a
    ``trusted`` (AI) mask, its eroded interior; backdrop markers are backdrop-like pixels well
    clear of anything that differs, the ``keep_out`` regions, and everything far from the product. The watershed of the
    lightly smoothed photo then settles the rest on the strongest edges between them: a
    product band nearly the backdrop's colour (shading crossing the backdrop's tone, a
    specular streak, a pale lid on a bright pool of light) is bounded by the product's
    sharp outline and joins the product; a soft shadow, bounded by nothing sharp on the
    backdrop's side, joins the backdrop.

    Args:
        image: (h, w, 3) float32 working image.
        mask: (h, w) bool, the product mask to complete.
        backdrop: (h, w, 3) float32 backdrop estimate.
        tolerance: RGB distance (0..255 levels) within which a pixel is backdrop-like.
        noise: the backdrop's noise RMS (levels), for telling sharp edges (see :func:`cast_shadow`).
        trusted: the mask's interior is reliable (an AI model's), not only its solid part.
        keep_out: (h, w) bool regions that are backdrop whatever the watershed says (see-through holes).

    Returns:
        (h, w) bool, the completed mask (``mask`` itself when it has no solid product).
    """
    h, w = mask.shape
    side = max(h, w)
    dist = _backdrop_distance(image, backdrop)
    differs = dist > tolerance
    opened = np.ones((3, 3), np.uint8)
    shadow, foot = _shadow_and_foot(image, backdrop, tolerance=tolerance, noise=noise)
    solid = cv2.morphologyEx((differs & ~shadow).astype(np.uint8), cv2.MORPH_OPEN, opened)
    reach = cv2.dilate(mask.astype(np.uint8), disk(max(1, round(COMPLETE_REACH_FRACTION * side)))).astype(bool)
    count, labels = cv2.connectedComponents(solid, connectivity=8)
    touching = np.zeros(count, bool)
    touching[labels[reach & solid.astype(bool)]] = True
    # A blob near the mask but apart from it counts only when it clearly differs: one barely past
    # the tolerance is the backdrop's grain or its model's misfit, and would seed product there.
    inside = np.zeros(count, bool)
    inside[labels[mask & solid.astype(bool)]] = True
    sizes = np.maximum(np.bincount(labels.ravel(), minlength=count), 1)
    mean_dist = np.bincount(labels.ravel(), weights=dist.ravel(), minlength=count) / sizes
    touching &= inside | (mean_dist >= COMPLETE_DETACHED_MIN_FACTOR * tolerance)
    touching[0] = False
    product = touching[labels]
    if trusted:
        product |= cv2.erode(mask.astype(np.uint8), disk(TRUSTED_CORE_PX)).astype(bool)
    if keep_out is not None:
        product &= ~keep_out
    if not product.any():
        return mask
    clear = cv2.dilate(differs.astype(np.uint8), disk(max(1, round(COMPLETE_CLEARANCE_FRACTION * side))))
    margin = disk(max(2, round(COMPLETE_MARGIN_FRACTION * side)))
    far = ~cv2.dilate((mask | product).astype(np.uint8), margin).astype(bool)
    # The shadow a backdrop-toned foot stands in: its smooth ramp would let the watershed's product flood,
    # entering where the foot's edge is faint (a highlight), run along the shadow's isophotes.
    backdrop_marker = (~differs & ~clear.astype(bool)) | far | (shadow & under_foot(foot))
    if keep_out is not None:
        backdrop_marker |= cv2.erode(keep_out.astype(np.uint8), opened).astype(bool)
    markers = np.zeros((h, w), np.int32)
    markers[backdrop_marker & ~product] = 1
    markers[product] = 2
    smooth = cv2.GaussianBlur(np.clip(image, 0, 255).astype(np.uint8), (0, 0), COMPLETE_BLUR_SIGMA)
    cv2.watershed(smooth, markers)
    product = markers == 2
    # The watershed lines (-1) lie on the outline: those beside the product count as product.
    result = product | ((markers == -1) & cv2.dilate(product.astype(np.uint8), opened).astype(bool))
    # A narrow slit of non-backdrop colour between product parts (a specular streak running out
    # of the outline, which let the backdrop flood in along it) is product.
    # Closed along rows and columns only, so a shadow in a concave corner stays out.
    span = 2 * max(1, round(COMPLETE_SLIT_FRACTION * side)) + 1
    as_u8 = result.astype(np.uint8)
    rows = cv2.morphologyEx(as_u8, cv2.MORPH_CLOSE, np.ones((1, span), np.uint8))
    cols = cv2.morphologyEx(as_u8, cv2.MORPH_CLOSE, np.ones((span, 1), np.uint8))
    result |= (rows | cols).astype(bool) & differs
    if keep_out is not None:
        result &= ~keep_out
    return result


def fill_soft_notches(mask: np.ndarray, image: np.ndarray, *, noise: float) -> np.ndarray:
    """Fill the gaps between parts of ``mask`` that its edge along them shows no outline for.

    A part of the product exactly the backdrop's tone (the middle of a pale lid on a bright pool
    of light) leaves a notch between the parts beside it. A real gap (under a trigger, between two
    parts) is bounded by the product's sharp outline; the notch is bounded by the product's smooth
    shading. So each gap that closing the mask along rows or columns (up to
    ``NOTCH_SPAN_FRACTION`` of the long side) fills is kept when less than
    ``NOTCH_MAX_SHARP_SHARE`` of the mask pixels at its sides (left and right of a row gap, above
    and below a column gap) are a sharp edge. Slits at most ``2 * NOTCH_SLIT_PX`` across and at least
    ``NOTCH_SLIT_MIN_LENGTH_FRACTION`` of the long side long are filled whatever their sides show:
    the channel left where the watershed's two floods met inside such a band, often along a
    highlight's flank (sharp, but no outline).

    Args:
        mask: (h, w) bool product mask.
        image: (h, w, 3) float32 working image.
        noise: the backdrop's grain RMS (levels): edges weaker than ``EDGE_MIN_SIGMAS`` of it are not sharp.

    Returns:
        (h, w) bool, ``mask`` with its soft notches filled.
    """
    span = 2 * max(1, round(NOTCH_SPAN_FRACTION * max(mask.shape) / 2)) + 1
    sharp = edge_strength(image) >= max(EDGE_MIN_LEVELS, EDGE_MIN_SIGMAS * noise)
    as_u8 = mask.astype(np.uint8)
    out = mask.copy()
    # Along rows the notch's sides are the mask pixels left and right of it; along columns, above and below.
    for closing, sides in (((1, span), (1, 3)), ((span, 1), (3, 1))):
        gaps = cv2.morphologyEx(as_u8, cv2.MORPH_CLOSE, np.ones(closing, np.uint8)).astype(bool) & ~mask
        count, labels = cv2.connectedComponents(gaps.astype(np.uint8), connectivity=8)
        if count <= 1:
            continue
        # Each mask pixel beside a gap is counted for it (the largest label among its neighbours).
        around = cv2.dilate(labels.astype(np.float32), np.ones(sides, np.uint8)).astype(np.int32)
        around[~mask] = 0
        total = np.bincount(around.ravel(), minlength=count).astype(np.float32)
        outlined = np.bincount(around[sharp], minlength=count).astype(np.float32)
        soft = (total > 0) & (outlined < NOTCH_MAX_SHARP_SHARE * total)
        soft[0] = False
        out |= soft[labels]
    # A channel a watershed line or two wide running deep into the mask is where two floods met inside
    # a product band of the backdrop's tone (its middle), not a gap: no real gap is that thin and long.
    for closing in ((1, 2 * NOTCH_SLIT_PX + 1), (2 * NOTCH_SLIT_PX + 1, 1)):
        gaps = cv2.morphologyEx(as_u8, cv2.MORPH_CLOSE, np.ones(closing, np.uint8)).astype(bool) & ~mask
        count, labels, stats, _ = cv2.connectedComponentsWithStats(gaps.astype(np.uint8), connectivity=8)
        along = stats[:, cv2.CC_STAT_HEIGHT] if closing[0] == 1 else stats[:, cv2.CC_STAT_WIDTH]
        slit = along >= NOTCH_SLIT_MIN_LENGTH_FRACTION * max(mask.shape)
        slit[0] = False
        out |= slit[labels]
    return out


def _normalized_blur(values: np.ndarray, weight: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian-weighted mean of ``values`` (h, w, 3) over ``weight`` (h, w); returns (mean, support)."""
    support = cv2.GaussianBlur(weight, (0, 0), sigma)
    total = cv2.GaussianBlur(values * weight[..., None], (0, 0), sigma)
    mean = total / np.maximum(support, MIN_SUPPORT)[..., None]
    return mean, support


def _bounds(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """``(x0, y0, x1, y1)`` around ``mask`` (h, w) bool, exclusive ends; None when empty."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def _sample(image: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Bilinear samples (N, 3) float32 of ``image`` (h, w, 3) at float coordinates ``xs``, ``ys`` (N,)."""
    count = xs.size
    rows = -(-count // REMAP_ROW)
    map_x = np.zeros(rows * REMAP_ROW, np.float32)
    map_y = np.zeros(rows * REMAP_ROW, np.float32)
    map_x[:count], map_y[:count] = xs, ys
    shape = (rows, REMAP_ROW)
    out = cv2.remap(
        image, map_x.reshape(shape), map_y.reshape(shape), cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    return out.reshape(-1, image.shape[2])[:count]


def signed_distance(mask: np.ndarray) -> np.ndarray:
    """Signed distance (h, w) float32 to the edge of ``mask`` (h, w) bool: positive inside, in pixels."""
    dist_in = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 3)
    dist_out = cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, 3)
    return np.where(mask, dist_in - 0.5, 0.5 - dist_out).astype(np.float32)


def refine_alpha(
    image: np.ndarray,
    mask: np.ndarray,
    work_image: np.ndarray,
    backdrop: np.ndarray,
    *,
    noise_sigma: float,
    band_px: int,
    softness_px: float,
) -> RefinedCutout:
    """Turn a working-resolution mask into a full-resolution soft alpha, backdrop un-mixed.

    Only the edge band (``band_px`` working pixels either side of the mask's edge) is
    re-estimated, pixel by pixel at full resolution; the local product colour F and
    backdrop colour B each edge pixel is modelled with are measured at working resolution
    (from the sure interior and the sure outside, so a shadow next to the product is the B
    its edge pixels mixed with).

    Args:
        image: (H, W, 3) uint8, the full-resolution photo.
        mask: (h, w) bool, the cleaned product mask at working resolution.
        work_image: (h, w, 3) float32, the photo at working resolution.
        backdrop: (h, w, 3) float32, the fitted backdrop model at working resolution (used
            where no backdrop pixel is near enough to measure the local backdrop).
        noise_sigma: the backdrop's noise RMS (0..255 levels).
        band_px: half-width of the re-estimated band, in working pixels (about the
            mask's uncertainty).
        softness_px: width, in full-resolution pixels, of the geometric alpha ramp used
            where colour cannot decide.

    Returns:
        A full-resolution :class:`RefinedCutout`.
    """
    height, width = image.shape[:2]
    h, w = mask.shape
    scale_x, scale_y = width / w, height / h
    scale = max(scale_x, scale_y)

    signed_w = signed_distance(mask)
    sigma = LOCAL_COLOR_SIGMA_FACTOR * band_px
    fg_w, fg_support = _normalized_blur(work_image, (signed_w > band_px).astype(np.float32), sigma)
    bg_w, bg_support = _normalized_blur(work_image, (signed_w < -band_px).astype(np.float32), sigma)
    fg_w = np.where((fg_support > MIN_SUPPORT)[..., None], fg_w, work_image)
    bg_w = np.where((bg_support > MIN_SUPPORT)[..., None], bg_w, backdrop)

    # Full-resolution work is confined to the box around the product and its band.
    rgba = np.zeros((height, width, 4), np.uint8)
    near = _bounds(signed_w > -band_px - 1)
    if near is None:
        return RefinedCutout(rgba=rgba)
    x0, y0 = max(0, math.floor(near[0] * scale_x)), max(0, math.floor(near[1] * scale_y))
    x1, y1 = min(width, math.ceil(near[2] * scale_x)), min(height, math.ceil(near[3] * scale_y))
    # Bilinear upsampling of the signed distance, aligned like cv2.resize, for the box only.
    to_work = np.float32(
        [[1.0 / scale_x, 0.0, (x0 + 0.5) / scale_x - 0.5], [0.0, 1.0 / scale_y, (y0 + 0.5) / scale_y - 0.5]]
    )
    signed = cv2.warpAffine(
        signed_w,
        to_work,
        (x1 - x0, y1 - y0),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REPLICATE,
    )
    signed *= scale
    band_full = band_px * scale
    inside = signed >= band_full
    crop = image[y0:y1, x0:x1]
    out = rgba[y0:y1, x0:x1]
    out[..., :3] = np.where(inside[..., None], crop, 0)
    out[..., 3] = inside.view(np.uint8) * 255
    ys, xs = np.nonzero(np.abs(signed) < band_full)
    if ys.size == 0:
        return RefinedCutout(rgba=rgba)
    sd_band = signed[ys, xs]
    color = crop[ys, xs].astype(np.float32)
    ys, xs = ys + y0, xs + x0

    # Sample the working-resolution colour estimates at the band pixels (bilinear).
    map_x = (xs + 0.5) / scale_x - 0.5
    map_y = (ys + 0.5) / scale_y - 0.5
    fg = _sample(fg_w, map_x, map_y)
    bg = _sample(bg_w, map_x, map_y)

    # Colour alpha: project C onto the line from B to F, with a noise deadband.
    sep_vec = fg - bg
    sep2 = np.einsum("nc,nc->n", sep_vec, sep_vec)
    sep = np.sqrt(sep2)
    alpha_col = np.einsum("nc,nc->n", color - bg, sep_vec) / np.maximum(sep2, 1.0)
    alpha_col, bg = _shadow_aware_alpha(color, fg, bg, alpha_col)
    deadband = np.clip(ALPHA_DEADBAND_SIGMAS * noise_sigma / np.maximum(sep, 1.0), 0.0, 0.45)
    alpha_col = np.clip((alpha_col - deadband) / (1.0 - 2.0 * deadband), 0.0, 1.0)
    lo = max(MIN_SEPARATION_LEVELS, CONFIDENT_SEPARATION_SIGMAS[0] * noise_sigma)
    hi = max(2.0 * MIN_SEPARATION_LEVELS, CONFIDENT_SEPARATION_SIGMAS[1] * noise_sigma)
    confidence = np.clip((sep - lo) / (hi - lo), 0.0, 1.0)
    # Geometric alpha: a ramp of ``softness_px`` across the (upsampled) mask edge.
    alpha_geo = np.clip(0.5 + sd_band / max(softness_px, 1e-3), 0.0, 1.0)

    band_alpha = (confidence * alpha_col + (1.0 - confidence) * alpha_geo).astype(np.float32)
    rgba[ys, xs, 3] = np.rint(band_alpha * 255.0).astype(np.uint8)
    rgba[ys, xs, :3] = np.rint(unmix_colors(color, band_alpha, fg, bg)).astype(np.uint8)
    return RefinedCutout(rgba=rgba)


def _shadow_aware_alpha(
    color: np.ndarray, fg: np.ndarray, bg: np.ndarray, alpha_line: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Re-estimate alpha where the backdrop behind an edge pixel may be in shadow.

    Models ``C = a*F + (1-a)*k*B`` with a shadow gain ``k`` in [SHADOW_UNMIX_MIN_GAIN, 1]
    (solved as ``C = u*F + v*B``, least squares): a contact shadow darker than the local
    backdrop estimate then lowers k instead of raising alpha. Used only where F and B
    point in clearly different colour directions (otherwise darkening and product are
    indistinguishable) and the solution really is a darkening; elsewhere the straight
    B-to-F projection ``alpha_line`` stands.

    Returns:
        ``(alpha, backdrop)``: (N,) alpha and (N, 3) backdrop colour (shadowed where used).
    """
    ff = np.einsum("nc,nc->n", fg, fg)
    bb = np.einsum("nc,nc->n", bg, bg)
    fb = np.einsum("nc,nc->n", fg, bg)
    fc = np.einsum("nc,nc->n", fg, color)
    bc = np.einsum("nc,nc->n", bg, color)
    det = ff * bb - fb * fb
    safe = np.maximum(det, 1e-6)
    u = (fc * bb - bc * fb) / safe
    v = (bc * ff - fc * fb) / safe
    gain = v / np.maximum(1.0 - np.clip(u, 0.0, 1.0), 1e-3)
    use = (
        (det > SHADOW_UNMIX_MIN_SIN2 * ff * bb)
        & (u < 1.0)
        & (gain < 1.0)
        & (gain >= SHADOW_UNMIX_MIN_GAIN)
        & (u < alpha_line)
    )
    alpha = np.where(use, np.clip(u, 0.0, 1.0), alpha_line)
    backdrop = np.where(use[:, None], bg * gain[:, None], bg)
    return alpha.astype(np.float32), backdrop.astype(np.float32)


def unmix_colors(image: np.ndarray, alpha: np.ndarray, fg_local: np.ndarray, bg_local: np.ndarray) -> np.ndarray:
    """Remove the backdrop colour from semi-transparent pixels.

    Solves ``C = a*F + (1-a)*B`` for F where ``a >= UNMIX_MIN_ALPHA``; below that (and in
    fully transparent pixels) F is the local product colour, so resampling the cut-out
    later pulls in product colour, never the old backdrop.

    Args:
        image: (..., 3) float32 0..255, observed colours C (an image or a list of pixels).
        alpha: (...) float32 in [0, 1].
        fg_local: (..., 3) float32, local product colour estimate.
        bg_local: (..., 3) float32, local backdrop colour B.

    Returns:
        (..., 3) float32 0..255, the product colour F (equal to C where alpha is 1).
    """
    a = alpha[..., None]
    solved = bg_local + (image - bg_local) / np.maximum(a, UNMIX_MIN_ALPHA)
    out = np.where(a >= 1.0, image, np.where(a >= UNMIX_MIN_ALPHA, solved, fg_local))
    return np.clip(out, 0.0, 255.0).astype(np.float32)
