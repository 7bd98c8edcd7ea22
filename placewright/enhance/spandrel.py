"""Super-resolution with any upscaler checkpoint spandrel recognises (Real-ESRGAN and friends).

The checkpoint (``.pth`` or ``.safetensors``: RRDBNet x4plus/x2plus, SRVGGNetCompact
realesr-general-x4v3, SwinIR, HAT, SPAN, ...) is named by ``EnhanceSettings.upscaler``
and loaded once per process. The colour runs through the model in tiles whose cores are
``tile_size`` input pixels, each fed with ``tile_overlap`` pixels of context on every inner
side, so memory stays bounded (an axis that fits in one window is not split). Neighbouring
tiles cross-fade linearly over the inner half of the overlap and the outer half is dropped:
a network's output is least like the untiled one near a window's edge, and hard centre-crops
leave seams (Real-ESRGAN x4plus: up to 54 levels with 16 px, 9 with 32 px; feathered with the
default 64 px, within 1 level of the untiled output). The model's native scale is then resized
to the exact size the classical backend would produce (INTER_AREA when shrinking). Alpha never
goes through the model: it is resized bilinearly, exactly as the classical backend does.

Not ready (``unavailable_reason``) is also a file spandrel cannot use: its header is checked
(safetensors header and size, zip or pickle), then it is loaded once on the CPU per file
version (path, size, mtime), so ``placewright models`` and ``auto`` chains see a broken or
wrong checkpoint before a run, not in the middle of one.
"""

from __future__ import annotations

import functools
import itertools
import json
import struct
import threading
import zipfile
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
            f"spandrel cannot load {path.name} ({type(exc).__name__}: {str(exc) or 'unknown architecture'})",
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


def header_problem(path: Path) -> str | None:
    """Why ``path`` is not a whole checkpoint file, judged from its bytes alone; None when it looks whole.

    ``.safetensors``: the header parses and its tensors end exactly at the end of the file
    (catches truncated downloads). ``.pth``: a zip archive (``torch.save``) whose directory
    reads, or a legacy pickle.
    """
    size = path.stat().st_size
    with path.open("rb") as handle:
        head = handle.read(8)
        if path.suffix.lower() == ".safetensors":
            length = struct.unpack("<Q", head)[0] if len(head) == 8 else -1
            if not 0 < length <= size - 8:
                return f"{path.name} is not a safetensors file (header length {length}, file {size} bytes)"
            try:
                header = json.loads(handle.read(length))
                end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
            except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
                return f"{path.name} has an unreadable safetensors header ({type(exc).__name__})"
            if 8 + length + end != size:
                described = 8 + length + end
                return f"{path.name} is truncated or damaged: its header describes {described} bytes, it has {size}"
            return None
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(path) as archive:
                archive.infolist()
        except (zipfile.BadZipFile, OSError) as exc:
            return f"{path.name} is a damaged torch checkpoint ({exc})"
        return None
    if head[:1] == b"\x80":  # a legacy (pre-1.6) torch.save pickle
        return None
    return f"{path.name} is not a torch checkpoint (neither a zip archive nor a pickle)"


_CHECKED: dict[tuple[Any, ...], str | None] = {}
_CHECKED_LOCK = threading.Lock()


def checkpoint_problem(path: Path, spec: ModelSpec) -> str | None:
    """Why spandrel cannot use ``path`` as an RGB upscaler; None when it can.

    The header check first (:func:`header_problem`), then one load on the CPU (about 0.1 s
    for the 67 MB Real-ESRGAN x4plus safetensors), remembered per file version (path, size,
    mtime) for the rest of the process. The loaded model is dropped: :func:`load_upscaler`
    loads it for real, on the configured device, only when an image needs it.
    """
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key in _CHECKED:
        return _CHECKED[key]
    try:
        reason = header_problem(path)
    except OSError as exc:
        reason = f"cannot read {path.name}: {exc}"
    if reason is None:
        try:
            _load(path, spec, "cpu")
        except BackendUnavailable as exc:
            reason = str(exc)
    with _CHECKED_LOCK:
        _CHECKED[key] = reason
    return reason


def load_upscaler(spec: ModelSpec) -> Any:
    """The spandrel ``ImageModelDescriptor`` for ``spec``, loaded once per process (per file version/device/dtype)."""
    path = find_checkpoint(spec)
    device = resolve_device(spec.device)
    key = ("spandrel", str(path), path.stat().st_mtime_ns, device, spec.dtype)
    return MODELS.get(key, lambda: _load(path, spec, device))


def tile_edges(length: int, tile_size: int, overlap: int) -> np.ndarray:
    """Core edges of the tiles along one axis: evenly spread (no sliver at the end).

    One tile when the whole axis fits in a tile's window (``tile_size + 2 * overlap``),
    else ``ceil(length / tile_size)`` cores, so no window is ever larger than that.
    """
    count = 1 if tile_size <= 0 or length <= tile_size + 2 * overlap else -(-length // tile_size)
    return np.linspace(0, length, count + 1).round().astype(int)


def blend_weights(edges: np.ndarray, length: int, overlap: int, scale: int) -> list[tuple[int, int, np.ndarray]]:
    """Per tile along one axis: its window ``(lo, hi)`` in input pixels and its output rows' weights.

    A window is the core plus ``overlap`` pixels of context on each inner side (clamped to the
    image). Neighbours cross-fade linearly over a band ``overlap`` wide centred on their shared
    core edge, so the outer half of every window's context (where a network's output is least
    like the untiled one) gets weight 0. The weights of all tiles sum to 1 at every output row.
    """
    tiles = []
    for c0, c1 in itertools.pairwise(edges.tolist()):
        lo, hi = max(0, c0 - overlap), min(length, c1 + overlap)
        u = (np.arange((hi - lo) * scale) + 0.5) / scale + lo  # output pixel centres, in input pixels
        weight = np.ones_like(u)
        if overlap > 0:
            if lo > 0:
                weight = np.minimum(weight, np.clip((u - c0) / overlap + 0.5, 0.0, 1.0))
            if hi < length:
                weight = np.minimum(weight, np.clip((c1 - u) / overlap + 0.5, 0.0, 1.0))
        else:
            weight = ((u >= c0) & (u < c1)).astype(u.dtype)
        tiles.append((lo, hi, weight))
    total = np.zeros(length * scale)
    for lo, hi, weight in tiles:
        total[lo * scale : hi * scale] += weight
    return [(lo, hi, (weight / total[lo * scale : hi * scale]).astype(np.float32)) for lo, hi, weight in tiles]


def upscale(model: Any, rgb: np.ndarray, tile_size: int, overlap: int) -> np.ndarray:
    """Run ``model`` over ``rgb`` in overlapping tiles blended with feathered weights.

    Args:
        model: a loaded spandrel ``ImageModelDescriptor`` with scale ``s``.
        rgb: (H, W, 3) float32 in 0-1.
        tile_size: side of each tile's core (input pixels); 0 = whole image at once. An axis
            that fits in one window (``tile_size + 2 * overlap``) is not split.
        overlap: context pixels fed on each inner side of a tile; neighbours cross-fade over
            the inner half of it (:func:`blend_weights`), the outer half is dropped.

    Returns:
        (H*s, W*s, 3) float32 in 0-1.
    """
    import spandrel
    import torch

    s, (h, w) = model.scale, rgb.shape[:2]
    with torch.inference_mode():
        x = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))[None].to(model.device, model.dtype)
        rows, cols = tile_edges(h, tile_size, overlap), tile_edges(w, tile_size, overlap)
        if (len(rows) == 2 and len(cols) == 2) or model.tiling == spandrel.ModelTiling.INTERNAL:
            return model(x)[0].permute(1, 2, 0).float().cpu().numpy()
        out = np.zeros((h * s, w * s, 3), np.float32)
        for y0, y1, wy in blend_weights(rows, h, overlap, s):
            for x0, x1, wx in blend_weights(cols, w, overlap, s):
                res = model(x[..., y0:y1, x0:x1])[0].permute(1, 2, 0).float().cpu().numpy()
                out[y0 * s : y1 * s, x0 * s : x1 * s] += res * (wy[:, None, None] * wx[None, :, None])
        return out


class SpandrelEnhancer(Enhancer):
    """A super-resolution network (via spandrel) for the colour, bilinear resize for the alpha."""

    name = "spandrel"
    version = "2"  # 2: feathered tiles
    requires = ("torch", "spandrel")

    @classmethod
    def find_weights(cls, spec: ModelSpec) -> Path:
        return find_checkpoint(spec)

    @classmethod
    def weights(cls, options: EnhanceSettings) -> ModelSpec:
        return options.upscaler

    @classmethod
    def unavailable_reason(cls, options: EnhanceSettings) -> str | None:
        """Also not ready: a checkpoint file spandrel cannot load as an RGB upscaler (:func:`checkpoint_problem`)."""
        reason = super().unavailable_reason(options)
        if reason is None:
            reason = checkpoint_problem(find_checkpoint(options.upscaler), options.upscaler)
        return reason

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
