"""Harmonization on an AUTOMATIC1111 server ("a1111"): POST /sdapi/v1/img2img with a mask.

The composite is the init image and the product alpha the mask, sent with
``inpainting_mask_invert: 1``: the product is kept and its surroundings are re-rendered at
``denoising_strength = harmonize.strength`` (default 0.35: relit, shadows and reflections
blended, the scene itself kept), starting from the original pixels (``inpainting_fill: 1``)
over the whole image (``inpaint_full_res: False``), with the mask edge blurred by
``harmonize.a1111.mask_blur`` pixels, with the variant's seed and its scene prompt followed
by ``harmonize.prompt`` (:func:`~placewright.harmonize.relight_prompt`). The answer is resized
back to the input size if the server rounded it (multiples of 8); the stage then pastes the
solid product pixels back, so they never change. Errors: see :mod:`placewright.a1111`.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from placewright.a1111 import A1111Backend, A1111Client, encode_png, first_image
from placewright.harmonize import Harmonizer, relight_prompt

IMG2IMG = "/sdapi/v1/img2img"
INPAINT_ORIGINAL = 1  # inpainting_fill: start from the original pixels


class A1111Harmonizer(A1111Backend, Harmonizer):
    """Masked img2img on the user's AUTOMATIC1111 server: the surroundings relit, the product kept."""

    name = "a1111"
    version = "2"  # 2: the variant's seed and scene prompt are sent
    endpoint = IMG2IMG

    def payload(self, image: np.ndarray, product_alpha: np.ndarray, *, prompt: str | None, seed: int) -> dict[str, Any]:
        """The img2img request body for an (H, W, 3) uint8 composite and its (H, W) uint8 product alpha."""
        settings = self.options.a1111
        height, width = image.shape[:2]
        return {
            "init_images": [encode_png(image)],
            "mask": encode_png(product_alpha),
            "inpainting_mask_invert": 1,
            "inpainting_fill": INPAINT_ORIGINAL,
            "inpaint_full_res": False,
            "mask_blur": settings.mask_blur,
            "denoising_strength": self.options.strength,
            "prompt": relight_prompt(prompt, self.options),
            "negative_prompt": settings.negative_prompt,
            "seed": int(seed),
            "steps": settings.steps,
            "cfg_scale": settings.cfg_scale,
            "sampler_name": settings.sampler,
            "width": width,
            "height": height,
            "resize_mode": 0,
            "batch_size": 1,
            "n_iter": 1,
            "send_images": True,
            "save_images": False,
        }

    def __call__(self, image: np.ndarray, product_alpha: np.ndarray, *, prompt: str | None, seed: int) -> np.ndarray:
        """Relight around the product; returns an (H, W, 3) uint8 image of the input's size (see the base class)."""
        if self.options.strength <= 0 or not product_alpha.any():
            return image.copy()
        client = A1111Client.from_settings(self.options.a1111, stage="harmonize")
        answer = client.post(IMG2IMG, self.payload(image, product_alpha, prompt=prompt, seed=seed))
        out = first_image(answer, stage="harmonize")
        height, width = image.shape[:2]
        if out.shape[:2] != (height, width):
            # The same framing at a rounded size: a plain resize keeps it aligned with the product.
            shrink = out.shape[0] * out.shape[1] > height * width
            out = cv2.resize(out, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LANCZOS4)
        return out
