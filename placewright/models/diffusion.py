"""Loading diffusers pipelines: local files only, once per process, with memory options.

Used by the scene (text-to-image) and harmonize (inpainting) backends. The pipeline class
is named by the caller (e.g. ``"AutoPipelineForText2Image"`` or ``"FluxFillPipeline"``);
the model folder's ``model_index.json`` tells which family it is.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from placewright.models.cache import MODELS
from placewright.models.runtime import resolve_device, resolve_dtype
from placewright.models.weights import find_pretrained
from placewright.settings import DiffusionMemorySettings, ModelSpec


def pipeline_family(folder: Path) -> str:
    """``flux``, ``sdxl``, ``sd`` (1.x/2.x) or the pipeline class name, from ``model_index.json``."""
    index = folder / "model_index.json"
    if not index.is_file():
        return "unknown"
    name = str(json.loads(index.read_text()).get("_class_name", ""))
    if name.startswith("Flux"):
        return "flux"
    if "XL" in name:
        return "sdxl"
    if name.startswith("StableDiffusion"):
        return "sd"
    return name or "unknown"


def load_pipeline(class_name: str, spec: ModelSpec, memory: DiffusionMemorySettings) -> tuple[Any, str]:
    """``(pipeline, device)`` for ``spec``, loaded once per process per (class, folder, device, dtype, memory).

    Raises:
        BackendUnavailable: weights not on this machine (see :func:`find_pretrained`).
    """
    folder = find_pretrained(spec)
    device = resolve_device(spec.device)
    dtype = resolve_dtype(spec.dtype, device)
    key = ("diffusers", class_name, str(folder), device, str(dtype), memory.model_dump_json())
    return MODELS.get(key, lambda: _load(class_name, folder, device, dtype, memory)), device


def _load(class_name: str, folder: Path, device: str, dtype: Any, memory: DiffusionMemorySettings) -> Any:
    import diffusers

    pipeline_class = getattr(diffusers, class_name)
    pipe = pipeline_class.from_pretrained(str(folder), dtype=dtype, local_files_only=True)
    if getattr(pipe, "safety_checker", None) is not None and not memory.safety_checker:
        pipe.safety_checker = None
    if memory.cpu_offload and device == "cuda":
        pipe.enable_model_cpu_offload()
    else:
        pipe = pipe.to(device)
    if memory.vae_tiling and hasattr(pipe, "vae") and hasattr(pipe.vae, "enable_tiling"):
        pipe.vae.enable_tiling()
    if memory.attention_slicing and hasattr(pipe, "enable_attention_slicing"):
        pipe.enable_attention_slicing()
    pipe.set_progress_bar_config(disable=True)
    return pipe
