"""The u2net cut-out backend: a U2-Net-family ONNX model run directly through onnxruntime.

The light install's AI cut-out: no rembg (whose first import compiles numba code for ~30 s),
only onnxruntime. ``options.u2net.model`` is a rembg session name whose ``<name>.onnx`` lies in
``<models_dir>/rembg/`` (or ``<models_dir>/rembg/models/<name>/``), rembg's own layout, so the
rembg backend finds the same file; or a ``.onnx`` file. The default, ``u2netp`` (4.6 MB,
Apache-2.0), is fetched by ``placewright models pull u2netp``. Nothing is downloaded here.

The model must follow U2-Net's conventions (``u2netp``, ``u2net``, ``u2net_human_seg``,
``silueta``, or a custom 1x3xSxS-in, 1x1xSxS-out export), and they are rembg's exactly: the image
resized to the model's input side (320) with Lanczos, divided by its maximum, ImageNet mean/std
normalised; output 0 min-max normalised, resized back with Lanczos. The soft mask is then
finished like every AI cutter's (:func:`~placewright.cutout.from_mask.finish_mask`).
``u2net.device`` picks the onnxruntime provider (auto: CUDA when onnxruntime has it, else CPU).
Sessions are loaded once per process (MODELS).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from placewright.cutout import Cutter
from placewright.cutout.from_mask import finish_mask
from placewright.cutout.rembg import DEFAULT_MASK_SIDE
from placewright.errors import BackendUnavailable, StageFailed
from placewright.models import MODELS, onnx_providers, onnx_session_options
from placewright.models.weights import find_rembg_model, rembg_model_source
from placewright.settings import CutoutSettings, ModelSpec

# rembg's U2-Net normalisation (ImageNet statistics).
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def resolve_model(spec: ModelSpec) -> Path:
    """The ONNX file ``spec`` names (cheap: no onnxruntime import). Raises BackendUnavailable."""
    return find_rembg_model(spec, backend="u2net")


def _new_session(path: Path, providers: list[str]) -> Any:
    import onnxruntime as ort

    if not path.is_file():
        raise BackendUnavailable(f"u2net model file {path} disappeared")
    return ort.InferenceSession(str(path), sess_options=onnx_session_options(), providers=providers)


def _side(session: Any) -> int:
    """The model's square input side (320 when the export leaves it dynamic)."""
    side = session.get_inputs()[0].shape[-1]
    return side if isinstance(side, int) and side > 0 else DEFAULT_MASK_SIDE


def predict(session: Any, image: np.ndarray) -> np.ndarray:
    """The model's product probability for ``image`` ((H, W, 3) uint8 RGB): (H, W) float32 in [0, 1].

    rembg's U2-Net pre- and post-processing, without its 8-bit rounding of the mask.
    """
    from PIL import Image

    side = _side(session)
    height, width = image.shape[:2]
    small = np.asarray(Image.fromarray(image).resize((side, side), Image.Resampling.LANCZOS), np.float64)
    small = small / max(float(small.max()), 1e-6)
    tensor = ((small - MEAN) / STD).transpose(2, 0, 1)[None].astype(np.float32)
    output = session.run(None, {session.get_inputs()[0].name: tensor})[0]
    pred = np.asarray(output, np.float32).reshape(-1, side, side)[0]
    low, high = float(pred.min()), float(pred.max())
    if not high > low:
        raise StageFailed(f"u2net's mask is flat ({low:.3g} everywhere): no product found", stage="cutout")
    pred = (pred - low) / (high - low)
    full = Image.fromarray(pred, mode="F").resize((width, height), Image.Resampling.LANCZOS)
    return np.clip(np.asarray(full, np.float32), 0.0, 1.0)


class U2netCutter(Cutter):
    """U2-Net (default u2netp) mask through plain onnxruntime, cleaned and edge-refined like GrabCut's."""

    name = "u2net"
    version = "2"
    requires = ("onnxruntime",)

    @classmethod
    def find_weights(cls, spec: ModelSpec) -> Path:
        return resolve_model(spec)

    @classmethod
    def weights(cls, options: CutoutSettings) -> ModelSpec:
        return options.u2net

    @classmethod
    def source(cls, options: CutoutSettings) -> str:
        return rembg_model_source(cls.weights(options))

    def session(self) -> Any:
        """The onnxruntime session for these settings, loaded once per process."""
        path = resolve_model(self.options.u2net)
        providers = onnx_providers(self.options.u2net.device)
        return MODELS.get(("u2net", str(path), tuple(providers)), lambda: _new_session(path, providers))

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """Cut the product out of ``image`` (H, W, 3) uint8 RGB; returns (H, W, 4) uint8 RGBA, uncropped."""
        session = self.session()
        prob = predict(session, image)
        return finish_mask(image, prob, self.options, mask_side=_side(session), backend=self.name)
