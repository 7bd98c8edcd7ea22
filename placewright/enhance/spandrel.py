"""Super-resolution with any upscaler checkpoint spandrel recognises (Real-ESRGAN and friends).

The checkpoint (``.pth`` or ``.safetensors``: RRDBNet x4plus/x2plus, SRVGGNetCompact
realesr-general-x4v3, SwinIR, HAT, SPAN, ...) is named by ``EnhanceSettings.upscaler``
and loaded once per process. The colour runs through the model in tiles of ``tile_size``
input pixels, each fed with ``tile_overlap`` pixels of context on every side that are
cropped off afterwards (centre-cropped tiles, as Real-ESRGAN's own ``--tile``/``--tile_pad``),
so memory stays bounded and no seams show. The model's native scale is then resized to the
exact size the classical backend would produce (INTER_AREA when shrinking). Alpha never goes
through the model: it is resized bilinearly, exactly as the classical backend does.
"""

from __future__ import annotations

import functools
import itertools
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from placewright.enhance import Enhancer
from placewright.errors import BackendUnavailable, TransientBackendError
from placewright.models import MODELS, find_weights_file, resolve_device, resolve_dtype
from placewright.settings import EnhanceSettings, ModelSpec

SUFFIXES = (".pth", ".safetensors")
find_checkpoint = functools.partial(find_weights_file, suffixes=SUFFIXES)


def _pick_dtype(descriptor: Any, spec: ModelSpec, device: str) -> Any:
    """The dtype to run in: reduced precision only on a GPU and only where the architecture supports it."""
    import torch

    wanted = resolve_dtype(spec.dtype, device)
    if device == "cpu" or wanted == torch.float32:
        return torch.float32
    order = [wanted, torch.bfloat16 if wanted == torch.float16 else torch.float16]
    supported = {torch.float16: descriptor.supports_half, torch.bfloat16: descriptor.supports_bfloat16}
    if device == "mps":
        supported[torch.bfloat16] = False
    return next((d for d in order if supported[d]), torch.float32)


def _load(path: Any, spec: ModelSpec, device: str) -> Any:
    """Load ``path`` with spandrel's ModelLoader; check that it is a 3-channel super-resolution model."""
    import torch
    from spandrel import ImageModelDescriptor, ModelLoader

    try:
        descriptor = ModelLoader(device=device).load_from_file(path)
    except torch.cuda.OutOfMemoryError as exc:
        raise TransientBackendError(f"out of GPU memory loading {path.name}", stage="enhance") from exc
    except Exception as exc:  # UnsupportedModelError has no message; pickle/size errors are cryptic
        raise BackendUnavailable(
            f"spandrel cannot load {path.name} ({type(exc).__name__}: {exc or 'unknown architecture'})",
            stage="enhance",
            backend="spandrel",
        ) from exc
    if not isinstance(descriptor, ImageModelDescriptor) or descriptor.purpose != "SR" or descriptor.scale < 2:
        raise BackendUnavailable(
            f"{path.name} is a {descriptor.architecture.name} {descriptor.purpose} model "
            f"(scale {descriptor.scale}), not a super-resolution upscaler",
            stage="enhance",
            backend="spandrel",
        )
    if (descriptor.input_channels, descriptor.output_channels) != (3, 3):
        raise BackendUnavailable(f"{path.name} is not an RGB model", stage="enhance", backend="spandrel")
    descriptor.to(dtype=_pick_dtype(descriptor, spec, device)).eval()
    descriptor.model.requires_grad_(False)
    return descriptor


def load_upscaler(spec: ModelSpec) -> Any:
    """The spandrel ``ImageModelDescriptor`` for ``spec``, loaded once per process (per file version/device/dtype)."""
    path = find_checkpoint(spec)
    device = resolve_device(spec.device)
    key = ("spandrel", str(path), path.stat().st_mtime_ns, device, spec.dtype)
    return MODELS.get(key, lambda: _load(path, spec, device))


def upscale(model: Any, rgb: np.ndarray, tile_size: int, overlap: int) -> np.ndarray:
    """Run ``model`` over ``rgb`` tile by tile.

    Args:
        model: a loaded spandrel ``ImageModelDescriptor`` with scale ``s``.
        rgb: (H, W, 3) float32 in 0-1.
        tile_size: side of the kept part of each tile (input pixels); 0 = whole image at once.
        overlap: context pixels fed around each tile (clamped to the image) and cropped off.

    Returns:
        (H*s, W*s, 3) float32 in 0-1.
    """
    import spandrel
    import torch

    s, (h, w) = model.scale, rgb.shape[:2]
    with torch.inference_mode():
        x = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))[None].to(model.device, model.dtype)
        if tile_size <= 0 or (h <= tile_size and w <= tile_size) or model.tiling == spandrel.ModelTiling.INTERNAL:
            return model(x)[0].permute(1, 2, 0).float().cpu().numpy()
        out = np.empty((h * s, w * s, 3), np.float32)
        # Evenly spread tile edges (no sliver at the end).
        ys = np.linspace(0, h, -(-h // tile_size) + 1).round().astype(int)
        xs = np.linspace(0, w, -(-w // tile_size) + 1).round().astype(int)
        for y0, y1 in itertools.pairwise(ys):
            for x0, x1 in itertools.pairwise(xs):
                py0, px0 = max(0, y0 - overlap), max(0, x0 - overlap)
                py1, px1 = min(h, y1 + overlap), min(w, x1 + overlap)
                res = model(x[..., py0:py1, px0:px1])[0]
                core = res[:, (y0 - py0) * s : (y1 - py0) * s, (x0 - px0) * s : (x1 - px0) * s]
                out[y0 * s : y1 * s, x0 * s : x1 * s] = core.permute(1, 2, 0).float().cpu().numpy()
        return out


class SpandrelEnhancer(Enhancer):
    """A super-resolution network (via spandrel) for the colour, bilinear resize for the alpha."""

    name = "spandrel"
    version = "1"
    requires = ("torch", "spandrel")

    @classmethod
    def find_weights(cls, spec: ModelSpec) -> Path:
        return find_checkpoint(spec)

    @classmethod
    def weights(cls, options: EnhanceSettings) -> ModelSpec:
        return options.upscaler

    def __call__(self, image: np.ndarray) -> tuple[np.ndarray, float]:
        """Upscale ``image`` ((H, W, 3|4) uint8); returns the new image and the scale used."""
        import torch

        from placewright.enhance.classical import bleed_colour, output_size  # here: keeps registration order

        height, width = image.shape[:2]
        new_w, new_h, scale = output_size(width, height, self.options)
        if scale == 1.0:
            return image.copy(), 1.0
        model = load_upscaler(self.options.upscaler)
        alpha = image[..., 3] if image.shape[2] == 4 else None
        rgb = image[..., :3].astype(np.float32)
        if alpha is not None:  # transparent pixels take nearby colours, not black, into the model
            rgb = np.clip(bleed_colour(rgb, alpha), 0.0, 255.0)
        rgb *= 1.0 / 255.0
        try:
            up = upscale(model, rgb, self.options.tile_size, self.options.tile_overlap)
        except torch.cuda.OutOfMemoryError as exc:
            raise TransientBackendError(f"out of GPU memory: {exc}", stage="enhance", backend=self.name) from exc
        shrinking = new_w <= up.shape[1] and new_h <= up.shape[0]
        up = cv2.resize(up, (new_w, new_h), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC)
        up = np.nan_to_num(up * 255.0, nan=0.0)
        out = np.empty((new_h, new_w, image.shape[2]), np.uint8)
        out[..., :3] = np.clip(np.rint(up), 0, 255)
        if alpha is not None:
            out[..., 3] = cv2.resize(alpha, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
        return out, scale
