"""The classical compositor: place, colour-match, shadow and blend, all in float32.

Blending is premultiplied: ``out = scene * shadow_factor * (1 - alpha) + gains * premult``,
so no dark or coloured fringe can appear at the product's edge.
"""

from __future__ import annotations

import numpy as np

from placewright.analyze import Analysis
from placewright.composite import Compositor
from placewright.composite.color import local_region, match_gains
from placewright.composite.place import place
from placewright.composite.shadows import shadow_maps
from placewright.types import Surface


class ClassicalCompositor(Compositor):
    """Premultiplied alpha compositing with bounded colour matching and soft shadows."""

    name = "classical"
    version = "1"

    def __call__(
        self,
        scene: np.ndarray,
        cutout: np.ndarray,
        surface: Surface,
        analysis: Analysis,
        seed: int,
        surface_phrase: str,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Composite; returns the (H, W, 3) uint8 image and the (H, W) uint8 product alpha.

        ``seed`` is accepted for generative compositors; this one is deterministic.
        """
        options = self.options
        scene_h, scene_w = scene.shape[:2]
        placed = place(
            cutout,
            scene_h,
            scene_w,
            surface.line_y,
            surface.center_x,
            analysis.size_fraction,
            options,
            real_height_cm=analysis.height_cm,
            surface_box=surface.box,
            surface_phrase=surface_phrase,
        )
        x0, y0 = placed.x0, placed.y0
        x1, y1 = x0 + placed.width, y0 + placed.height

        rows, cols = local_region(scene_h, scene_w, x0, y0, x1, y1)
        gains = match_gains(placed.premult, placed.alpha, scene[rows, cols], options)

        out = scene.copy()
        maps = shadow_maps(placed.alpha, x0, y0, placed.base_y, scene_h, scene_w, options)
        if maps is not None:
            region = out[maps.rows, maps.cols].astype(np.float32)
            region *= maps.factor(options)
            out[maps.rows, maps.cols] = np.clip(np.rint(region), 0, 255).astype(np.uint8)

        # The product, clipped to the frame (only its soft fringe can ever stick out).
        oy0, ox0, oy1, ox1 = max(0, y0), max(0, x0), min(scene_h, y1), min(scene_w, x1)
        product_alpha = np.zeros((scene_h, scene_w), np.uint8)
        if oy1 > oy0 and ox1 > ox0:
            alpha = placed.alpha[oy0 - y0 : oy1 - y0, ox0 - x0 : ox1 - x0]
            premult = placed.premult[oy0 - y0 : oy1 - y0, ox0 - x0 : ox1 - x0]
            background = out[oy0:oy1, ox0:ox1].astype(np.float32) * (1.0 / 255.0)
            blended = background * (1.0 - alpha[..., None]) + premult * gains
            out[oy0:oy1, ox0:ox1] = np.clip(np.rint(blended * 255.0), 0, 255).astype(np.uint8)
            product_alpha[oy0:oy1, ox0:ox1] = np.clip(np.rint(alpha * 255.0), 0, 255).astype(np.uint8)
        return out, product_alpha
