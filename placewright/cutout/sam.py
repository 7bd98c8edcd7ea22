"""The SAM cut-out backend: Segment Anything (transformers ``SamModel``) prompted with a box.

As in the seed design, the prompt is one box covering ``options.box_fraction`` of the image
(centred). SAM returns three candidate masks (whole / part / sub-part); the one with the
best predicted IoU is kept, except that candidates covering most of the prompt box's edge
are passed over (that is the backdrop filling the box, not a product) unless none is left.
Its logits (sigmoid) go through the same clean-up and full-resolution edge refinement as
the other cutters (:func:`placewright.cutout.from_mask.finish_mask`).

Weights: ``options.sam.model`` is a Hugging Face repo id found in the local HF cache
(``facebook/sam-vit-base``, ``-large``, ``-huge``) or a folder with ``config.json`` and the
processor files; nothing is downloaded. float16/bfloat16 only on a GPU: on the CPU SAM always
runs in float32.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from placewright.cutout import Cutter
from placewright.cutout.from_mask import finish_mask
from placewright.errors import TransientBackendError
from placewright.models import MODELS, find_pretrained, resolve_device, resolve_dtype
from placewright.settings import CutoutSettings, ModelSpec

# A candidate covering more than this share of the prompt box's outline is the backdrop.
MAX_BOX_EDGE_SHARE = 0.5


def prompt_box(width: int, height: int, fraction: float) -> list[float]:
    """``[x0, y0, x1, y1]`` (pixels, exclusive ends) of the centred box covering ``fraction`` of each side."""
    inset_x, inset_y = round(width * (1.0 - fraction) / 2), round(height * (1.0 - fraction) / 2)
    return [float(inset_x), float(inset_y), float(width - inset_x), float(height - inset_y)]


def pick_mask(masks: np.ndarray, scores: np.ndarray, box: np.ndarray) -> int:
    """Index of the candidate to keep.

    Args:
        masks: (N, h, w) bool candidate masks.
        scores: (N,) predicted IoU scores.
        box: ``[x0, y0, x1, y1]`` the prompt box in mask pixel coordinates.
    """
    h, w = masks.shape[1:]
    x0, y0 = int(np.clip(np.floor(box[0]), 0, w - 1)), int(np.clip(np.floor(box[1]), 0, h - 1))
    x1, y1 = int(np.clip(np.ceil(box[2]) - 1, x0, w - 1)), int(np.clip(np.ceil(box[3]) - 1, y0, h - 1))
    outline = np.zeros((h, w), bool)
    outline[y0, x0 : x1 + 1] = outline[y1, x0 : x1 + 1] = True
    outline[y0 : y1 + 1, x0] = outline[y0 : y1 + 1, x1] = True
    valid = [bool(m.any()) and float(m[outline].mean()) <= MAX_BOX_EDGE_SHARE for m in masks]
    ranked = np.where(valid, scores, -np.inf) if any(valid) else scores
    return int(np.argmax(ranked))


def _load(path: Any, device: str, dtype: Any) -> tuple[Any, Any]:
    from transformers import SamModel, SamProcessor

    model = SamModel.from_pretrained(path, local_files_only=True, dtype=dtype).to(device).eval()
    processor = SamProcessor.from_pretrained(path, local_files_only=True)
    return model, processor


class SamCutter(Cutter):
    """Segment Anything with a 95 % box prompt; mask cleaned and edge-refined like GrabCut's."""

    name = "sam"
    version = "2"
    requires = ("torch", "transformers")

    @classmethod
    def weights(cls, options: CutoutSettings) -> ModelSpec:
        return options.sam

    def model(self) -> tuple[Any, Any, str, Any]:
        """``(model, processor, device, dtype)``, loaded once per process."""
        import torch

        spec = self.options.sam
        path = find_pretrained(spec)
        device = resolve_device(spec.device)
        dtype = resolve_dtype(spec.dtype, device) if device != "cpu" else torch.float32
        model, processor = MODELS.get(("sam", str(path), device, str(dtype)), lambda: _load(path, device, dtype))
        return model, processor, device, dtype

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """Cut the product out of ``image`` (H, W, 3) uint8 RGB; returns (H, W, 4) uint8 RGBA, uncropped."""
        import torch
        from PIL import Image

        model, processor, device, dtype = self.model()
        height, width = image.shape[:2]
        box = prompt_box(width, height, self.options.box_fraction)
        inputs = processor(images=Image.fromarray(image), input_boxes=[[box]], return_tensors="pt")
        try:
            with torch.inference_mode():
                out = model(
                    pixel_values=inputs["pixel_values"].to(device, dtype),
                    input_boxes=inputs["input_boxes"].to(device),
                    multimask_output=True,
                )
        except torch.OutOfMemoryError as exc:
            raise TransientBackendError(f"SAM ran out of GPU memory: {exc}", stage="cutout") from exc
        logits = out.pred_masks[0, 0].float().cpu()  # (N, h, w) low-resolution candidates
        scores = out.iou_scores[0, 0].float().cpu().numpy()
        pad = processor.image_processor.pad_size
        to_mask = np.array([logits.shape[-1] / pad["width"], logits.shape[-2] / pad["height"]] * 2)
        best = pick_mask((logits > 0).numpy(), scores, inputs["input_boxes"][0, 0].numpy() * to_mask)
        full = processor.post_process_masks(
            logits[best][None, None, None], inputs["original_sizes"], inputs["reshaped_input_sizes"], binarize=False
        )[0][0, 0]
        prob = torch.sigmoid(full).numpy().astype(np.float32)
        return finish_mask(image, prob, self.options, mask_side=int(logits.shape[-1]), backend=self.name)
