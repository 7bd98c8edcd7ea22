"""Plumbing shared by the AI backends: devices and dtypes, finding weights, loading once.

Nothing here imports torch or any model library at import time: each helper imports what it
needs when called, so ``import placewright`` stays light and the classical pipeline runs
without the ``ai`` extra.
"""

from placewright.models.cache import MODELS, ModelCache
from placewright.models.runtime import (
    missing_packages,
    onnx_providers,
    onnx_session_options,
    resolve_device,
    resolve_dtype,
)
from placewright.models.weights import find_pretrained, find_weights_file, weights_reason

__all__ = [
    "MODELS",
    "ModelCache",
    "find_pretrained",
    "find_weights_file",
    "missing_packages",
    "onnx_providers",
    "onnx_session_options",
    "resolve_device",
    "resolve_dtype",
    "weights_reason",
]
