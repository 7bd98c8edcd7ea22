"""Harmonisation by diffusion inpainting of a ring around the product (diffusers, local weights).

The pipeline is picked from the model folder's ``model_index.json``: Flux.1 Fill folders run
``FluxFillPipeline``; SD 1.x/2.x, SDXL (inpainting or base) and Flux dev/schnell folders run
``AutoPipelineForInpainting`` (StableDiffusion[XL]InpaintPipeline, FluxInpaintPipeline).

Only the crop around the product, grown by ``2 * ring_px``, is processed, resized so its long
side is ``work_side`` (0: the family's native side, SD 512, SDXL/Flux 1024; rounded to a
multiple of 16) and back. The mask given to the pipeline is the inverted product alpha inside
a band ``ring_px`` wide around the product, slightly blurred, so contact shadows and reflections
can form next to the product but the far background is not repainted. ``strength`` is the
denoising strength; ``steps`` are the steps actually run. The prompt is the variant's scene prompt
followed by ``harmonize.prompt`` (:func:`~placewright.harmonize.relight_prompt`); the noise comes from
the variant's seed, so two variants differ and the same seed gives the same image. The result is blended into the input
with a weight falling smoothly from 1 at the product's edge to 0 at ``ring_px`` (pixels further
out are the input's, bit for bit), and the product is pasted back by its alpha
(``alpha * input + (1 - alpha) * relit``; alpha 255 is the input's pixel).
"""

from __future__ import annotations

import json
import math
import threading
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from placewright.errors import TransientBackendError
from placewright.harmonize import Harmonizer, relight_prompt
from placewright.models import find_pretrained
from placewright.models.diffusion import load_pipeline, pipeline_family
from placewright.settings import DiffusionMemorySettings, HarmonizeSettings, ModelSpec

NATIVE_SIDE = {"sd": 512, "sdxl": 1024, "flux": 1024}
GUIDANCE = {"sd": 7.5, "sdxl": 7.5, "flux-fill": 30.0, "flux": 3.5}
# Flux's T5 prompt length when the tokenizer does not say (FLUX.1 uses 512).
FLUX_MAX_SEQUENCE = 512
# One inpainting at a time per process: variants share one loaded pipeline, and its tokenizers are not
# thread-safe (two variants relit at once intermittently got each other's truncation: a 120-token failure).
_LOCK = threading.Lock()


def pipeline(class_name: str, spec: ModelSpec, memory: DiffusionMemorySettings) -> Any:
    """The inpainting pipeline, loaded once per process (see :func:`load_pipeline`)."""
    return load_pipeline(class_name, spec, memory)[0]


def pipeline_class(folder: Path) -> tuple[str, str]:
    """``(diffusers class name, family)`` for a pipeline folder; family is ``flux-fill`` for Flux.1 Fill."""
    index = json.loads((folder / "model_index.json").read_text()) if (folder / "model_index.json").is_file() else {}
    if index.get("_class_name") == "FluxFillPipeline":
        return "FluxFillPipeline", "flux-fill"
    return "AutoPipelineForInpainting", pipeline_family(folder)


def ring_weight(product_alpha: np.ndarray, ring_px: int) -> np.ndarray:
    """(H, W) float32: 1 on the product, smoothly down to exactly 0 at ``ring_px`` outside it."""
    distance = cv2.distanceTransform((product_alpha == 0).astype(np.uint8), cv2.DIST_L2, 3)
    t = np.clip(1.0 - distance / float(ring_px), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def inpaint_mask(product_alpha: np.ndarray, ring_px: int) -> np.ndarray:
    """(H, W) uint8 pipeline mask (255 = repaint): inverted alpha within ``ring_px`` of the product, blurred."""
    distance = cv2.distanceTransform((product_alpha == 0).astype(np.uint8), cv2.DIST_L2, 3)
    band = (distance <= ring_px).astype(np.float32) * (1.0 - product_alpha.astype(np.float32) / 255.0)
    return np.clip(np.rint(cv2.GaussianBlur(band, (0, 0), max(1.0, ring_px / 8)) * 255.0), 0, 255).astype(np.uint8)


def work_size(width: int, height: int, side: int) -> tuple[int, int]:
    """(w, h) with long side ``side``, the aspect kept, both multiples of 16 (at least 16)."""
    scale = side / max(width, height)
    return max(16, round(width * scale / 16) * 16), max(16, round(height * scale / 16) * 16)


class DiffusersInpaintHarmonizer(Harmonizer):
    """Inpaint a ring around the product with an SD/SDXL/Flux inpainting pipeline."""

    name = "diffusers-inpaint"
    version = "2"  # 2: the variant's seed and scene prompt
    requires = ("torch", "diffusers", "transformers")

    @classmethod
    def weights(cls, options: HarmonizeSettings) -> ModelSpec:
        return options.inpaint

    def __call__(self, image: np.ndarray, product_alpha: np.ndarray, *, prompt: str | None, seed: int) -> np.ndarray:
        """Relight around the product; returns an (H, W, 3) uint8 image (alpha-255 pixels unchanged)."""
        options = self.options
        if options.strength <= 0 or options.ring_px <= 0 or not product_alpha.any():
            return image.copy()
        ys, xs = np.nonzero(product_alpha)
        pad, (h, w) = 2 * options.ring_px, product_alpha.shape
        y0, y1 = max(0, ys.min() - pad), min(h, ys.max() + 1 + pad)
        x0, x1 = max(0, xs.min() - pad), min(w, xs.max() + 1 + pad)
        crop, crop_alpha = image[y0:y1, x0:x1], product_alpha[y0:y1, x0:x1]
        relit = self._inpaint(crop, inpaint_mask(crop_alpha, options.ring_px), relight_prompt(prompt, options), seed)
        weight = ring_weight(crop_alpha, options.ring_px) * (1.0 - crop_alpha.astype(np.float32) / 255.0)
        blended = crop.astype(np.float32) + weight[..., None] * (relit - crop.astype(np.float32))
        changed = weight > 0  # elsewhere (outside the ring, alpha 255) the input, bit for bit
        out = image.copy()
        region = out[y0:y1, x0:x1]
        region[changed] = np.clip(np.rint(blended[changed]), 0, 255).astype(np.uint8)
        return out

    def _inpaint(self, crop: np.ndarray, mask: np.ndarray, prompt: str, seed: int) -> np.ndarray:
        """The pipeline's (h, w, 3) float32 (0-255) output for ``crop`` at the crop's size."""
        import torch
        from PIL import Image

        options = self.options
        class_name, family = pipeline_class(find_pretrained(options.inpaint))
        pipe = pipeline(class_name, options.inpaint, options.memory)
        height, width = crop.shape[:2]
        side = options.work_side or NATIVE_SIDE.get(family.removesuffix("-fill"), 1024)
        size = work_size(width, height, side)
        kwargs: dict[str, Any] = {}
        if family.startswith("flux"):
            tokenizer = getattr(pipe, "tokenizer_2", None)
            kwargs["max_sequence_length"] = min(FLUX_MAX_SEQUENCE, getattr(tokenizer, "model_max_length", 512))
        guidance = options.guidance if options.guidance is not None else GUIDANCE.get(family, 7.5)
        try:
            with _LOCK, torch.inference_mode():
                result = pipe(
                    prompt=prompt,
                    image=Image.fromarray(cv2.resize(crop, size, interpolation=cv2.INTER_AREA)),
                    mask_image=Image.fromarray(cv2.resize(mask, size, interpolation=cv2.INTER_LINEAR)),
                    height=size[1],
                    width=size[0],
                    strength=options.strength,
                    num_inference_steps=max(1, math.ceil(options.steps / options.strength)),
                    guidance_scale=guidance,
                    generator=torch.Generator("cpu").manual_seed(seed % 2**63),
                    output_type="np",
                    **kwargs,
                )
        except torch.OutOfMemoryError as exc:
            raise TransientBackendError(f"out of GPU memory: {exc}", stage="harmonize", backend=self.name) from exc
        relit = np.nan_to_num(np.asarray(result.images[0], dtype=np.float32)) * 255.0
        return np.clip(cv2.resize(relit, (width, height), interpolation=cv2.INTER_CUBIC), 0.0, 255.0)
