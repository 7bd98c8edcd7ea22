"""The classical cut-out backend: backdrop model + GrabCut + full-resolution edge refinement.

Steps, for a product photographed on a studio backdrop (plain, gradient or lightly
textured, possibly with a soft cast shadow):

1. Work on a copy scaled to ``work_side`` (long side).
2. Model the backdrop from the image border: a robust quadratic colour surface (handles
   sweeps and vignetting) and its noise level (handles paper grain).
3. Pre-label for GrabCut: pixels that differ from the backdrop model are probable
   product (their eroded core sure product); pixels that are only a darker copy of the
   backdrop (a shadow) and everything near the candidates are probable backdrop; the rest,
   and everything outside the seed box (``box_fraction`` of the image), sure backdrop.
4. GrabCut on the region that is still uncertain, at most ``grabcut_max_pixels`` pixels.
5. Clean the mask (keep the product's components, fill enclosed holes), upsample it, and
   re-estimate the edge at full resolution by colour, removing the backdrop's colour from
   the edge pixels (see :mod:`placewright.cutout.refine`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from placewright.cutout import Cutter
from placewright.cutout.refine import clean_mask, refine_alpha

# Any fixed value: what matters is that every call starts from the same RNG state.
GRABCUT_RNG_SEED = 0

# Width of the border strip the backdrop is modelled from, as a share of the short side.
BORDER_FRACTION = 0.03
# Robust backdrop fit: refits after dropping border pixels (a product touching the edge)
# farther than max(INLIER_MIN_LEVELS, INLIER_MEDIAN_FACTOR * median residual).
BACKDROP_FIT_ROUNDS = 3
INLIER_MIN_LEVELS = 6.0
INLIER_MEDIAN_FACTOR = 3.0
# Tiny ridge term keeping the normal equations well-posed (a strip of one colour).
RIDGE = 1e-3
# Border pixels sampled at most: plenty for 6x3 coefficients, keeps the fit ~1 ms.
MAX_BORDER_SAMPLES = 6_000
# A pixel differing from the backdrop by less than this (0..255 levels, RGB distance) is
# never product by colour alone, however clean the backdrop: JPEG and sensor noise.
MIN_BACKDROP_DIFF = 12.0
# A shadow darkens the backdrop by a gain in [SHADOW_MIN_GAIN, 1] without changing its
# chroma; darker than this it is more likely a dark product than a studio shadow.
SHADOW_MIN_GAIN = 0.35
# If suppressing shadow-like pixels removes more than this share of the product
# candidate, the "shadow" is the product itself (a grey product on white): retry without.
SHADOW_MAX_REMOVED_SHARE = 0.5
# Sure-product core: candidates eroded by this share of the working long side.
CORE_ERODE_FRACTION = 0.015
# Probable-backdrop margin around the candidates (share of the working long side): the
# region GrabCut may still move the edge in, and where it learns the local backdrop.
UNCERTAIN_MARGIN_FRACTION = 0.04
# GrabCut needs a few pixels of each class; fewer candidate pixels than this share of
# the work image means "no clear candidate": fall back to GrabCut's plain rectangle seed.
MIN_CANDIDATE_SHARE = 0.001


@dataclass(frozen=True)
class BackdropModel:
    """A quadratic colour surface fitted to the border, and its noise.

    Attributes:
        coeffs: (6, 3) float32 coefficients of 1, x, y, x², xy, y² (x, y in [-1, 1]).
        noise: RMS RGB distance of the border pixels to the surface (0..255 levels).
    """

    coeffs: np.ndarray
    noise: float

    def evaluate(self, width: int, height: int) -> np.ndarray:
        """The modelled backdrop (height, width, 3) float32."""
        x = np.linspace(-1.0, 1.0, width, dtype=np.float32)[None, :, None]
        y = np.linspace(-1.0, 1.0, height, dtype=np.float32)[:, None, None]
        c = self.coeffs
        columns = c[1] * x + c[3] * x * x  # (1, width, 3)
        rows = c[0] + c[2] * y + c[5] * y * y  # (height, 1, 3)
        return (rows + columns + (y * c[4]) * x).astype(np.float32)


def _design(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.stack([np.ones_like(x), x, y, x * x, x * y, y * y], axis=1)


def fit_backdrop(image: np.ndarray) -> BackdropModel:
    """Fit the backdrop model to the border strip of ``image`` (h, w, 3) float32."""
    h, w = image.shape[:2]
    strip = max(2, round(BORDER_FRACTION * min(h, w)))
    border = np.zeros((h, w), bool)
    border[:strip], border[-strip:], border[:, :strip], border[:, -strip:] = True, True, True, True
    rows, cols = np.nonzero(border)
    step = max(1, rows.size // MAX_BORDER_SAMPLES)
    rows, cols = rows[::step], cols[::step]
    x = (cols / max(w - 1, 1) * 2.0 - 1.0).astype(np.float32)
    y = (rows / max(h - 1, 1) * 2.0 - 1.0).astype(np.float32)
    design = _design(x, y)
    values = image[rows, cols].astype(np.float32)
    keep = np.ones(rows.size, bool)
    coeffs = np.zeros((6, 3), np.float32)
    residual = np.zeros(rows.size, np.float32)
    for _ in range(BACKDROP_FIT_ROUNDS):
        a, b = design[keep], values[keep]
        # Normal equations: a 6x6 solve, far cheaper than a full least-squares on ~6k rows.
        coeffs = np.linalg.solve(a.T @ a + RIDGE * np.eye(a.shape[1], dtype=np.float32), a.T @ b)
        coeffs = coeffs.astype(np.float32)
        residual = np.linalg.norm(values - design @ coeffs, axis=1)
        limit = max(INLIER_MIN_LEVELS, INLIER_MEDIAN_FACTOR * float(np.median(residual[keep])))
        new_keep = residual <= limit
        if new_keep.sum() < design.shape[1] * 4:
            break
        keep = new_keep
    noise = float(np.sqrt(np.mean(residual[keep] ** 2))) if keep.any() else 0.0
    return BackdropModel(coeffs=coeffs, noise=noise)


def _disk(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


class GrabCutCutter(Cutter):
    """Backdrop-model-seeded GrabCut with colour-refined, defringed edges."""

    name = "grabcut"
    version = "1"

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """Cut the product out of ``image``.

        Args:
            image: (H, W, 3) uint8 RGB photo of a product on a backdrop.

        Returns:
            (H, W, 4) uint8 RGBA, uncropped: alpha is the product, RGB has the backdrop
            colour removed from edge pixels. All-zero alpha when nothing was found.
        """
        opts = self.options
        height, width = image.shape[:2]
        scale = min(1.0, opts.work_side / max(height, width))
        work_w, work_h = max(1, round(width * scale)), max(1, round(height * scale))
        work = cv2.resize(image, (work_w, work_h), interpolation=cv2.INTER_AREA) if scale < 1 else image
        work_f = work.astype(np.float32)

        model = fit_backdrop(work_f)
        backdrop = model.evaluate(work_w, work_h)
        labels = self._seed_labels(work_f, backdrop, model.noise)
        raw, grabcut_shrink = self._grabcut(work, labels)
        mask = clean_mask(raw)
        if not mask.any():
            return np.zeros((height, width, 4), np.uint8)
        # The mask is uncertain by about one GrabCut pixel: re-estimate that band by colour.
        refined = refine_alpha(
            image,
            mask,
            work_f,
            backdrop,
            noise_sigma=model.noise,
            band_px=math.ceil(1.0 / grabcut_shrink) + 1,
            softness_px=opts.edge_softness_px,
        )
        return refined.rgba

    def _seed_labels(self, work: np.ndarray, backdrop: np.ndarray, noise: float) -> np.ndarray:
        """GrabCut labels (h, w) uint8 from the backdrop model (GC_BGD/GC_PR_BGD/...)."""
        opts = self.options
        h, w = work.shape[:2]
        side = max(h, w)
        tol = max(MIN_BACKDROP_DIFF, opts.backdrop_tolerance * noise)
        diff = work - backdrop
        dist = np.sqrt(np.einsum("hwc,hwc->hw", diff, diff))
        differs = dist > tol

        inset_x = round(w * (1.0 - opts.box_fraction) / 2)
        inset_y = round(h * (1.0 - opts.box_fraction) / 2)
        in_box = np.zeros((h, w), bool)
        in_box[inset_y : h - inset_y, inset_x : w - inset_x] = True

        opened = np.ones((3, 3), np.uint8)
        candidate = cv2.morphologyEx((differs & in_box).astype(np.uint8), cv2.MORPH_OPEN, opened).astype(bool)
        if opts.remove_shadows:
            gain = np.einsum("hwc,hwc->hw", work, backdrop) / np.maximum(
                np.einsum("hwc,hwc->hw", backdrop, backdrop), 1.0
            )
            chroma = work - gain[..., None] * backdrop
            chroma_dist = np.sqrt(np.einsum("hwc,hwc->hw", chroma, chroma))
            shadow = (gain >= SHADOW_MIN_GAIN) & (gain <= 1.0) & (chroma_dist <= tol)
            without = cv2.morphologyEx((candidate & ~shadow).astype(np.uint8), cv2.MORPH_OPEN, opened)
            if without.sum() >= (1.0 - SHADOW_MAX_REMOVED_SHARE) * candidate.sum():
                candidate = without.astype(bool)

        labels = np.full((h, w), cv2.GC_BGD, np.uint8)
        if candidate.sum() < MIN_CANDIDATE_SHARE * h * w:
            labels[in_box] = cv2.GC_PR_FGD  # no colour cue: GrabCut's plain rectangle seed
            return labels
        margin = max(2, round(UNCERTAIN_MARGIN_FRACTION * side))
        near = cv2.dilate(candidate.astype(np.uint8), _disk(margin)).astype(bool) & in_box
        core = cv2.erode(candidate.astype(np.uint8), _disk(max(1, round(CORE_ERODE_FRACTION * side))))
        labels[near] = cv2.GC_PR_BGD
        labels[candidate] = cv2.GC_PR_FGD
        labels[core.astype(bool)] = cv2.GC_FGD
        return labels

    def _grabcut(self, work: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, float]:
        """Run GrabCut on the uncertain region of ``labels``.

        Returns:
            The (h, w) bool foreground and the factor (<= 1) GrabCut's region was shrunk by.
        """
        opts = self.options
        uncertain = labels != cv2.GC_BGD
        rows = np.flatnonzero(uncertain.any(axis=1))
        cols = np.flatnonzero(uncertain.any(axis=0))
        h, w = labels.shape
        # One pixel of sure backdrop around the region so both GMMs have samples.
        y0, y1 = max(0, rows[0] - 2), min(h, rows[-1] + 3)
        x0, x1 = max(0, cols[0] - 2), min(w, cols[-1] + 3)
        roi_img, roi_lab = work[y0:y1, x0:x1], labels[y0:y1, x0:x1]
        rh, rw = roi_lab.shape
        shrink = min(1.0, math.sqrt(opts.grabcut_max_pixels / (rh * rw)))
        if shrink < 1.0:
            size = (max(8, round(rw * shrink)), max(8, round(rh * shrink)))
            gc_img = cv2.resize(roi_img, size, interpolation=cv2.INTER_AREA)
            gc_lab = cv2.resize(roi_lab, size, interpolation=cv2.INTER_NEAREST)
        else:
            gc_img, gc_lab = np.ascontiguousarray(roi_img), roi_lab.copy()
        has_bg = np.isin(gc_lab, (cv2.GC_BGD, cv2.GC_PR_BGD)).any()
        has_fg = np.isin(gc_lab, (cv2.GC_FGD, cv2.GC_PR_FGD)).any()
        if has_bg and has_fg:
            bgd_model = np.zeros((1, 65), np.float64)
            fgd_model = np.zeros((1, 65), np.float64)
            # GrabCut seeds its colour models with k-means on OpenCV's RNG, whose state carries over
            # between calls: seed it (it is per thread) so the same photo always gives the same cut-out.
            cv2.setRNGSeed(GRABCUT_RNG_SEED)
            cv2.grabCut(gc_img, gc_lab, None, bgd_model, fgd_model, opts.iterations, cv2.GC_INIT_WITH_MASK)
        fg_small = np.isin(gc_lab, (cv2.GC_FGD, cv2.GC_PR_FGD)).astype(np.float32)
        if shrink < 1.0:
            fg_small = cv2.resize(fg_small, (rw, rh), interpolation=cv2.INTER_LINEAR)
        out = np.zeros((h, w), bool)
        out[y0:y1, x0:x1] = fg_small >= 0.5
        return out, shrink
