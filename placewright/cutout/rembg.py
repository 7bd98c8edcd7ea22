"""The rembg cut-out backend: a salient-object ONNX model (U2-Net, IS-Net, BiRefNet, ...) via rembg.

``options.rembg.model`` is either a rembg session name whose ``<name>.onnx`` lies in
``<models_dir>/rembg/`` (or ``<models_dir>/rembg/models/<name>/``, rembg's own layout), or
a ``.onnx`` file: one named after a rembg session (``isnet-general-use.onnx``) runs with
that session's pre- and post-processing, any other runs as rembg's ``u2net_custom``
(1x3x320x320 ImageNet-normalized in, 1x1x320x320 out). Nothing is ever downloaded: rembg
only downloads when the file is missing, and this backend is unavailable then.
``rembg.device`` picks the onnxruntime provider (auto: CUDA when onnxruntime has it, else
CPU); ``rembg.dtype`` does not apply (the ONNX file fixes it).

rembg 2.0.86 finds model files through ``$U2NET_HOME`` (and refuses a custom model outside
it), so each session is created with ``U2NET_HOME`` set to the model file's folder, under a
process-wide lock, and the variable restored afterwards. Sessions are loaded once (MODELS).

The model's soft mask is thresholded, cleaned (product components kept, enclosed holes
filled) and its edge re-estimated at full resolution with the backdrop colour un-mixed,
like GrabCut's (:func:`~placewright.cutout.from_mask.finish_mask`); optionally rembg's alpha matting refines it further.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from placewright.cutout import Cutter
from placewright.cutout.from_mask import finish_mask
from placewright.errors import BackendUnavailable
from placewright.models import MODELS, onnx_providers, onnx_session_options
from placewright.models.weights import find_rembg_model, rembg_model_source
from placewright.settings import CutoutSettings, ModelSpec

# rembg sessions this backend cannot run: prompt-driven (sam), remote (API keys) or needing a path.
UNSUPPORTED_SESSIONS = frozenset({"sam", "atlascloud", "withoutbg", "u2net_custom", "dis_custom", "ben_custom"})
# Mask side assumed when the ONNX input size is dynamic (the coarsest rembg model: U2-Net's 320).
DEFAULT_MASK_SIDE = 320
# Alpha matting may move the edge at most this far (full-resolution px) beyond the cleaned mask.
MATTING_REACH_PX = 8
_HOME_LOCK = threading.Lock()


def resolve_model(spec: ModelSpec) -> Path:
    """The ONNX file ``spec`` names (cheap: no rembg import). Raises BackendUnavailable."""
    return find_rembg_model(spec, backend="rembg", unsupported=UNSUPPORTED_SESSIONS)


def _new_session(path: Path, providers: list[str]) -> Any:
    """A rembg session for ``path``, created with ``U2NET_HOME`` pointing at its folder."""
    from rembg import new_session
    from rembg.sessions import sessions

    name = path.stem if path.stem in sessions and path.stem not in UNSUPPORTED_SESSIONS else "u2net_custom"
    extra = {"model_path": str(path)} if name == "u2net_custom" else {}
    with _HOME_LOCK:
        if not path.is_file():  # never let rembg fall back to downloading
            raise BackendUnavailable(f"rembg model file {path} disappeared")
        saved = os.environ.get("U2NET_HOME")
        os.environ["U2NET_HOME"] = str(path.parent)
        try:
            return new_session(name, providers=providers, sess_opts=onnx_session_options(), **extra)
        finally:
            if saved is None:
                os.environ.pop("U2NET_HOME", None)
            else:
                os.environ["U2NET_HOME"] = saved


class RembgCutter(Cutter):
    """rembg (U2-Net family ONNX models) mask, cleaned and edge-refined like GrabCut's."""

    name = "rembg"
    version = "2"
    requires = ("rembg", "onnxruntime")

    @classmethod
    def find_weights(cls, spec: ModelSpec) -> Path:
        return resolve_model(spec)

    @classmethod
    def weights(cls, options: CutoutSettings) -> ModelSpec:
        return options.rembg

    @classmethod
    def source(cls, options: CutoutSettings) -> str:
        return rembg_model_source(cls.weights(options))

    def session(self) -> Any:
        """The rembg session for these settings, loaded once per process."""
        path = resolve_model(self.options.rembg)
        providers = onnx_providers(self.options.rembg.device)
        return MODELS.get(("rembg", str(path), tuple(providers)), lambda: _new_session(path, providers))

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """Cut the product out of ``image`` (H, W, 3) uint8 RGB; returns (H, W, 4) uint8 RGBA, uncropped."""
        from PIL import Image

        session = self.session()
        pil = Image.fromarray(image)
        masks = session.predict(pil)
        prob = np.max([np.asarray(m.convert("L"), np.float32) for m in masks], axis=0) / 255.0
        side = session.inner_session.get_inputs()[0].shape[-1]
        side = side if isinstance(side, int) else DEFAULT_MASK_SIDE
        rgba = finish_mask(image, prob, self.options, mask_side=side, backend=self.name)
        return self._matte(pil, prob, rgba) if self.options.alpha_matting else rgba

    def _matte(self, pil: Any, prob: np.ndarray, rgba: np.ndarray) -> np.ndarray:
        """rembg's closed-form alpha matting, kept near the cleaned product (stray blobs stay out)."""
        from PIL import Image
        from rembg.bg import alpha_matting_cutout

        opts = self.options
        mask = Image.fromarray(np.rint(prob * 255.0).astype(np.uint8))
        try:
            matted = np.asarray(
                alpha_matting_cutout(
                    pil,
                    mask,
                    opts.alpha_matting_foreground_threshold,
                    opts.alpha_matting_background_threshold,
                    opts.alpha_matting_erode_size,
                )
            )
        except ValueError:  # no sure product or backdrop for the trimap: keep the refined edge
            return rgba
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * MATTING_REACH_PX + 1,) * 2)
        near = cv2.dilate((rgba[..., 3] > 0).astype(np.uint8), kernel).astype(bool)
        out = matted.copy()
        out[..., 3] = np.where(near, matted[..., 3], 0)
        return out
