"""The classical cut-out backend: backdrop model + GrabCut + full-resolution edge refinement.

Steps, for a product photographed on a studio backdrop (plain, gradient or lightly
textured, possibly with a soft cast shadow):

1. Work on a copy scaled to ``work_side`` (long side).
2. Model the backdrop from the image border: a robust quadratic colour surface and its
   noise level (paper grain), then a Coons patch through the border strips' own colours (a
   two-tone sweep's bend, vignetted corners), corrected inwards by a smooth surface fitted
   to the backdrop pixels clear of the product (a spotlight's pool of light behind it).
3. Pre-label for GrabCut: pixels that differ from the backdrop model are probable
   product (their eroded core sure product); pixels that are only a darker copy of the
   backdrop and are a shadow (fading into the backdrop, or lying below the product's base)
   and everything near the candidates are probable backdrop; the rest,
   and everything outside the seed box (``box_fraction`` of the image), sure backdrop.
4. GrabCut on the region that is still uncertain, at most ``grabcut_max_pixels`` pixels.
5. Clean the mask (keep the product's components, fill enclosed holes, but re-open those
   that show the backdrop: a mug handle's), upsample it, and
   re-estimate the edge at full resolution by colour, removing the backdrop's colour from
   the edge pixels (see :mod:`placewright.cutout.refine`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from placewright.cutout import Cutter
from placewright.cutout.refine import (
    cast_shadow,
    clean_mask,
    complete_mask,
    disk,
    fill_soft_notches,
    open_see_through_holes,
    refine_alpha,
)

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
MIN_BACKDROP_DIFF = 8.0
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
# Local backdrop refinement (see refine_backdrop): rounds, the smooth surface's degree, the
# push-pull grid's long side (cells), how fully a cell's own mean is trusted per share of
# backdrop pixels in it, pixels sampled for the surface fit, and the least share of backdrop
# pixels worth refining from.
BACKDROP_REFINE_ROUNDS = 3
BACKDROP_POLY_DEGREE = 4
BACKDROP_GRID_SIDE = 48
PUSH_PULL_TRUST = 4.0
MAX_SURFACE_SAMPLES = 20_000
MIN_BACKDROP_SHARE = 0.05
PRODUCT_CLEARANCE_FRACTION = 0.03
# Edge completion (see complete_mask) only on backdrops whose grain (see backdrop_grain) is
# below this RMS (levels): a textured backdrop's own edges would mislead the watershed.
COMPLETE_MAX_NOISE = 3.0
# Backdrop grain: the backdrop's RMS deviation from itself blurred by this sigma (working pixels),
# away from the product: the paper's grain and texture, not the backdrop model's misfit (a
# spotlight's pool of light the model follows only roughly).
GRAIN_BLUR_PX = 8.0
# Border profiles: smoothed along the side by this share of its length; positions farther
# than PROFILE_MAX_OFF_LEVELS from both the quadratic model and the opposite side take the model's value.
PROFILE_SMOOTH_FRACTION = 0.01
PROFILE_MAX_OFF_LEVELS = 24.0


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


def _poly_design(x: np.ndarray, y: np.ndarray, degree: int) -> np.ndarray:
    """Monomials x**i * y**j, i + j <= ``degree``, as columns (N, terms) float32."""
    terms = [x**i * y**j for total in range(degree + 1) for j in range(total + 1) for i in (total - j,)]
    return np.stack(terms, axis=1).astype(np.float32)


def _push_pull(values: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Fill ``values`` (h, w, 3) where ``weight`` (h, w) is 0 from its surroundings (push-pull).

    Each coarser level averages the level below over its weights; going back up, a cell
    keeps its own mean in proportion to how much of it was measured
    (``PUSH_PULL_TRUST`` x weight) and takes the coarser estimate for the rest.
    """
    sums, weights = [values * weight[..., None]], [weight]
    while max(weights[-1].shape) > 1:
        h, w = weights[-1].shape
        size = (max(1, (w + 1) // 2), max(1, (h + 1) // 2))
        sums.append(cv2.resize(sums[-1], size, interpolation=cv2.INTER_AREA))
        weights.append(cv2.resize(weights[-1], size, interpolation=cv2.INTER_AREA))
        if weights[-1].ndim == 2 and sums[-1].ndim == 2:  # a 1-px-wide level drops the channel axis
            sums[-1] = sums[-1][..., None]
    estimate = sums[-1].reshape(1, 1, -1) / max(float(weights[-1].max()), 1e-6)
    for level_sum, level_weight in zip(reversed(sums[:-1]), reversed(weights[:-1]), strict=True):
        h, w = level_weight.shape
        up = cv2.resize(estimate, (w, h), interpolation=cv2.INTER_LINEAR).reshape(h, w, -1)
        mean = level_sum.reshape(h, w, -1) / np.maximum(level_weight, 1e-6)[..., None]
        trust = np.clip(PUSH_PULL_TRUST * level_weight, 0.0, 1.0)[..., None]
        estimate = trust * mean + (1.0 - trust) * up
    return estimate.astype(np.float32)


def _border_profiles(image: np.ndarray, fallback: np.ndarray, strip: int) -> list[np.ndarray]:
    """Robust per-row (left, right) and per-column (top, bottom) colours of the border strips.

    Positions where a strip's median is far from the border-fitted model ``fallback`` (a
    product or a shadow reaching the border) take the model's value instead.
    """
    medians, models = [], []
    for cut, model_cut in (
        (image[:, :strip], fallback[:, :strip]),
        (image[:, -strip:], fallback[:, -strip:]),
        (image[:strip].transpose(1, 0, 2), fallback[:strip].transpose(1, 0, 2)),
        (image[-strip:].transpose(1, 0, 2), fallback[-strip:].transpose(1, 0, 2)),
    ):
        medians.append(np.median(cut, axis=1))
        models.append(model_cut.mean(axis=1))
    profiles = []
    for index, (profile, model_profile) in enumerate(zip(medians, models, strict=True)):
        # A sweep's bend shows on both opposite sides; a product reaching one side does not.
        opposite = medians[index ^ 1] + (model_profile - models[index ^ 1])
        off = (np.linalg.norm(profile - model_profile, axis=1) > PROFILE_MAX_OFF_LEVELS) & (
            np.linalg.norm(profile - opposite, axis=1) > PROFILE_MAX_OFF_LEVELS
        )
        profile = np.where(off[:, None], model_profile, profile)
        sigma = max(1.0, PROFILE_SMOOTH_FRACTION * profile.shape[0])
        profile = cv2.GaussianBlur(profile[:, None, :], (1, 0), sigmaX=0.1, sigmaY=sigma)[:, 0, :]
        profiles.append(profile.astype(np.float32))
    return profiles


def border_backdrop(image: np.ndarray, model: BackdropModel) -> np.ndarray:
    """A Coons patch through the border strips' colours (h, w, 3) float32.

    Unlike the quadratic model it reproduces the border exactly (a two-tone sweep's bend,
    a vignette's corners) and blends the four sides across the image.
    """
    h, w = image.shape[:2]
    fallback = model.evaluate(w, h)
    strip = max(2, round(BORDER_FRACTION * min(h, w)))
    left, right, top, bottom = _border_profiles(image, fallback, strip)
    u = np.linspace(0.0, 1.0, w, dtype=np.float32)[None, :, None]
    v = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    corners = [
        (top[0] + left[0]) / 2,
        (top[-1] + right[0]) / 2,
        (bottom[0] + left[-1]) / 2,
        (bottom[-1] + right[-1]) / 2,
    ]
    p00, p10, p01, p11 = corners
    sides = (1 - u) * left[:, None] + u * right[:, None] + (1 - v) * top[None] + v * bottom[None]
    bilinear = (1 - u) * (1 - v) * p00 + u * (1 - v) * p10 + (1 - u) * v * p01 + u * v * p11
    return (sides - bilinear).astype(np.float32)


def refine_backdrop(image: np.ndarray, model: BackdropModel, tolerance: float) -> tuple[np.ndarray, float]:
    """A backdrop estimate for the whole image, from the border inwards.

    Starts from a Coons patch through the border strips (:func:`border_backdrop`), then
    corrects what the border cannot show (a spotlight's pool of light behind the product):
    each round fits a smooth degree-``BACKDROP_POLY_DEGREE`` surface to the residual of
    the pixels that are within ``tolerance`` of the estimate and farther than
    ``PRODUCT_CLEARANCE_FRACTION`` of the long side from any pixel that is not (so a pale
    lid beside a dark jar is never taken for backdrop).

    Args:
        image: (h, w, 3) float32 working image.
        model: the border-fitted quadratic model (fallback where the border is occupied).
        tolerance: pixels nearer the estimate than this (0..255 levels) count as backdrop.

    Returns:
        ``(backdrop, noise)``: the (h, w, 3) float32 backdrop and its noise RMS (levels).
    """
    h, w = image.shape[:2]
    base = border_backdrop(image, model)
    backdrop = base
    step = max(1, round(math.sqrt(h * w / MAX_SURFACE_SAMPLES)))
    yy, xx = np.meshgrid(
        np.linspace(-1.0, 1.0, h, dtype=np.float32)[::step],
        np.linspace(-1.0, 1.0, w, dtype=np.float32)[::step],
        indexing="ij",
    )
    design = _poly_design(xx.ravel(), yy.ravel(), BACKDROP_POLY_DEGREE)
    clearance = disk(max(1, round(PRODUCT_CLEARANCE_FRACTION * max(h, w))))
    strip = max(2, round(BORDER_FRACTION * min(h, w)))
    noise = model.noise
    for _ in range(BACKDROP_REFINE_ROUNDS):
        residual = image - backdrop
        dist = np.sqrt(np.einsum("hwc,hwc->hw", residual, residual))
        near = cv2.dilate((dist > tolerance).astype(np.uint8), clearance).astype(bool)
        inlier = ~near
        inlier[:strip], inlier[-strip:], inlier[:, :strip], inlier[:, -strip:] = True, True, True, True
        inlier &= dist <= tolerance
        if inlier.mean() < MIN_BACKDROP_SHARE:
            break
        sample = inlier[::step, ::step].ravel()
        target = (image - base)[::step, ::step].reshape(-1, 3)
        a, b = design[sample], target[sample]
        coeffs = np.linalg.solve(a.T @ a + RIDGE * np.eye(a.shape[1], dtype=np.float32), a.T @ b)
        small = (design @ coeffs.astype(np.float32)).reshape(yy.shape[0], yy.shape[1], 3)
        backdrop = base + cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
        noise = float(np.sqrt(np.mean(dist[inlier] ** 2)))
    return backdrop.astype(np.float32), noise


def backdrop_grain(image: np.ndarray, backdrop: np.ndarray, tolerance: float) -> float:
    """The backdrop's grain: RMS RGB distance (levels) of its pixels to their own blur.

    Unlike the fit residual it measures only the backdrop's small-scale structure (sensor noise,
    paper grain, a texture's blotches): a smooth misfit of the backdrop model (a spotlight's pool
    of light) does not count. Measured on the pixels within ``tolerance`` of ``backdrop`` and
    farther than ``3 * GRAIN_BLUR_PX`` from any that is not; 0.0 when there are none.

    Args:
        image: (h, w, 3) float32 working image.
        backdrop: (h, w, 3) float32 backdrop estimate.
        tolerance: RGB distance (0..255 levels) within which a pixel is backdrop-like.
    """
    diff = image - backdrop
    differs = np.einsum("hwc,hwc->hw", diff, diff) > tolerance * tolerance
    clear = ~cv2.dilate(differs.astype(np.uint8), disk(math.ceil(3 * GRAIN_BLUR_PX))).astype(bool)
    if not clear.any():
        return 0.0
    detail = image - cv2.GaussianBlur(image, (0, 0), GRAIN_BLUR_PX)
    return float(np.sqrt(np.einsum("hwc,hwc->hw", detail, detail)[clear].mean()))


class GrabCutCutter(Cutter):
    """Backdrop-model-seeded GrabCut with colour-refined, defringed edges."""

    name = "grabcut"
    version = "6"

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
        tol = max(MIN_BACKDROP_DIFF, opts.backdrop_tolerance * model.noise)
        backdrop, noise = refine_backdrop(work_f, model, tol)
        grain = backdrop_grain(work_f, backdrop, max(MIN_BACKDROP_DIFF, opts.backdrop_tolerance * noise))
        labels = self._seed_labels(work_f, backdrop, noise, grain)
        raw, grabcut_shrink = self._grabcut(work, labels)
        mask = self._finish_mask(raw, work_f, backdrop, tol, noise, grain)
        if not mask.any():
            return np.zeros((height, width, 4), np.uint8)
        # The mask is uncertain by about one GrabCut pixel: re-estimate that band by colour.
        refined = refine_alpha(
            image,
            mask,
            work_f,
            backdrop,
            noise_sigma=noise,
            band_px=math.ceil(1.0 / grabcut_shrink) + 1,
            softness_px=opts.edge_softness_px,
        )
        return refined.rgba

    @staticmethod
    def _finish_mask(
        raw: np.ndarray, work: np.ndarray, backdrop: np.ndarray, tol: float, noise: float, grain: float
    ) -> np.ndarray:
        """Clean GrabCut's mask, complete its edge on the photo's outline, keep see-through holes open."""
        filled = clean_mask(raw)
        opened = open_see_through_holes(filled, work, backdrop, tolerance=tol, noise=noise)
        if grain > COMPLETE_MAX_NOISE:
            return opened  # a textured backdrop: its own edges would mislead the watershed
        completed = complete_mask(
            work, opened, backdrop, tolerance=tol, noise=grain, trusted=False, keep_out=filled & ~opened
        )
        completed = fill_soft_notches(clean_mask(completed), work, noise=grain)
        return open_see_through_holes(clean_mask(completed), work, backdrop, tolerance=tol, noise=noise)

    def _seed_labels(self, work: np.ndarray, backdrop: np.ndarray, noise: float, grain: float) -> np.ndarray:
        """GrabCut labels (h, w) uint8 from the backdrop model (GC_BGD/GC_PR_BGD/...).

        ``noise`` (the backdrop model's residual) sets what differs from it; ``grain`` (see
        :func:`backdrop_grain`) what counts as a sharp edge when telling shadows (see
        :func:`~placewright.cutout.refine.cast_shadow`).
        """
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
            shadow = cast_shadow(work, backdrop, tolerance=tol, noise=grain)
            without = cv2.morphologyEx((candidate & ~shadow).astype(np.uint8), cv2.MORPH_OPEN, opened)
            if without.sum() >= (1.0 - SHADOW_MAX_REMOVED_SHARE) * candidate.sum():
                candidate = without.astype(bool)

        labels = np.full((h, w), cv2.GC_BGD, np.uint8)
        if candidate.sum() < MIN_CANDIDATE_SHARE * h * w:
            labels[in_box] = cv2.GC_PR_FGD  # no colour cue: GrabCut's plain rectangle seed
            return labels
        margin = max(2, round(UNCERTAIN_MARGIN_FRACTION * side))
        near = cv2.dilate(candidate.astype(np.uint8), disk(margin)).astype(bool) & in_box
        core = cv2.erode(candidate.astype(np.uint8), disk(max(1, round(CORE_ERODE_FRACTION * side))))
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
