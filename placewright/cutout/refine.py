"""Mask clean-up, full-resolution edge refinement and colour-fringe removal.

The cut-out backends find a coarse binary mask at a working resolution; these helpers
turn it into a production alpha:

* :func:`clean_mask` keeps the product's component(s) and fills enclosed holes.
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
