"""Turning an AI cutter's soft mask into a clean, defringed cut-out (shared by rembg and SAM).

The same finishing as the classical GrabCut path: threshold, keep the product's components and
fill enclosed holes, re-open the holes that show the backdrop (a mug handle's, which the models
fill; the model's outline is kept), then re-estimate the edge at full resolution against a backdrop model and
un-mix the backdrop colour from edge pixels, so no fringe shows over a new scene.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from placewright.cutout.classical import MIN_BACKDROP_DIFF, fit_backdrop, refine_backdrop
from placewright.cutout.refine import clean_mask, open_see_through_holes, refine_alpha
from placewright.errors import StageFailed
from placewright.settings import CutoutSettings

# Model probability at or above this counts as product.
MASK_LEVEL = 0.5


def finish_mask(
    image: np.ndarray, prob: np.ndarray, options: CutoutSettings, *, mask_side: int, backend: str
) -> np.ndarray:
    """Turn a model's soft mask into a clean, defringed cut-out (shared by the AI cutters).

    Args:
        image: (H, W, 3) uint8 RGB photo.
        prob: (H, W) float32 in [0, 1], the model's product probability at full resolution.
        options: the cut-out settings (``work_side``, ``edge_softness_px``, ``min_product_fraction``).
        mask_side: the model's mask resolution (long side, px): how coarse its edge is.
        backend: the backend name, for messages.

    Returns:
        (H, W, 4) uint8 RGBA, uncropped, as :func:`~placewright.cutout.refine.refine_alpha` makes it.

    Raises:
        StageFailed: the model found no product (the chain falls back to the next backend).
    """
    height, width = image.shape[:2]
    scale = min(1.0, options.work_side / max(height, width))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    work = cv2.resize(image, size, interpolation=cv2.INTER_AREA) if scale < 1 else image
    prob_w = cv2.resize(prob, size, interpolation=cv2.INTER_AREA) if scale < 1 else prob
    filled = clean_mask(prob_w >= MASK_LEVEL)
    share = float(filled.mean())
    if share < options.min_product_fraction:
        raise StageFailed(f"{backend} found no product (its mask covers {share:.2%} of the image)", stage="cutout")
    work_f = work.astype(np.float32)
    model = fit_backdrop(work_f)
    tol = max(MIN_BACKDROP_DIFF, options.backdrop_tolerance * model.noise)
    backdrop, noise = refine_backdrop(work_f, model, tol)
    # The model's own outline is kept (completing it on the photo's edges adds shadow halos on
    # the hard set); only the see-through holes it fills are re-opened.
    mask = open_see_through_holes(filled, work_f, backdrop, tolerance=tol, noise=noise)
    # The model's edge is uncertain by about one of its mask pixels: re-estimate that band.
    band_px = math.ceil(max(size) / max(mask_side, 1)) + 1
    return refine_alpha(
        image,
        mask,
        work_f,
        backdrop,
        noise_sigma=noise,
        band_px=band_px,
        softness_px=options.edge_softness_px,
    ).rgba
