"""Which packages are installed, and which device and dtype a model runs on."""

from __future__ import annotations

from importlib.util import find_spec
from typing import Any

from placewright.errors import BackendUnavailable

INSTALL_HINT = "pip install 'placewright[ai]'"


def missing_packages(*modules: str) -> str | None:
    """None when every module can be imported, else a reason naming the missing ones."""
    missing = [m for m in modules if find_spec(m) is None]
    if not missing:
        return None
    return f"needs {', '.join(missing)} ({INSTALL_HINT})"


def resolve_device(choice: str) -> str:
    """``auto``: cuda if available, then mps, then cpu. An explicit device must exist."""
    import torch

    has_mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if choice == "auto":
        return "cuda" if torch.cuda.is_available() else "mps" if has_mps else "cpu"
    if choice == "cuda" and not torch.cuda.is_available():
        raise BackendUnavailable("device 'cuda' was asked for but no CUDA GPU is available")
    if choice == "mps" and not has_mps:
        raise BackendUnavailable("device 'mps' was asked for but MPS is not available")
    return choice


def resolve_dtype(choice: str, device: str) -> Any:
    """The torch dtype: ``auto`` is float16 on cuda (bfloat16 where supported) and float32 elsewhere."""
    import torch

    if choice == "auto":
        if device == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[choice]


# onnxruntime's accelerator for each device setting (auto: CUDA when this onnxruntime build has it).
ONNX_ACCELERATORS = {"auto": "CUDAExecutionProvider", "cuda": "CUDAExecutionProvider", "mps": "CoreMLExecutionProvider"}


def onnx_providers(device: str) -> list[str]:
    """onnxruntime execution providers for a ``ModelSpec.device`` (the accelerator first, CPU last).

    Raises:
        BackendUnavailable: ``cuda`` or ``mps`` was asked for and this onnxruntime build lacks it.
    """
    import onnxruntime as ort

    accelerator = ONNX_ACCELERATORS.get(device)
    if accelerator in ort.get_available_providers():
        return [accelerator, "CPUExecutionProvider"]
    if device in ("cuda", "mps"):
        raise BackendUnavailable(f"device {device!r} was asked for but onnxruntime has no {accelerator}")
    return ["CPUExecutionProvider"]


def onnx_session_options(threads: int = 0) -> Any:
    """The onnxruntime ``SessionOptions`` every ONNX backend's session is made with.

    ``threads``: intra-op threads (0: onnxruntime's default, one per physical core). Measured on 2 cores:

    - the pool's threads sleep when idle instead of spinning (``session.intra_op.allow_spinning = 0``): the
      flow runs stages in parallel threads, and a spinning pool takes a core from them between inferences
      (~0.1 s of a 2-variant CLI run's 3.2 s);
    - no memory pattern (``enable_mem_pattern``): it plans buffers for one input shape, and the OCR models
      get a new shape with nearly every image. The first enhance of a process (three OCR reads) took
      0.05-0.1 s less, later ones and the u2net cut-out (fixed shape) no longer.

    onnxruntime's warnings stay out of the log (severity 3: errors only).
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.enable_mem_pattern = False
    options.log_severity_level = 3
    return options
