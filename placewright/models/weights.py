"""Finding weights on this machine; nothing is ever downloaded here.

A model is a single weights file (``.pth``, ``.safetensors``, ``.onnx``) or a Hugging Face
model folder. Either is found as given (an absolute or working-directory path), inside
``models_dir``, or (for repo ids) in the local Hugging Face cache with
``local_files_only=True``, so a missing model fails at once with the places looked in.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from placewright.errors import BackendUnavailable
from placewright.settings import ModelSpec


def _candidates(spec: ModelSpec) -> list[Path]:
    given = Path(spec.model).expanduser()
    paths = [given]
    if not given.is_absolute() and spec.models_dir is not None:
        paths.append(Path(spec.models_dir) / given)
    return paths


def find_weights_file(spec: ModelSpec, suffixes: tuple[str, ...] = (".pth", ".safetensors", ".onnx")) -> Path:
    """The weights file ``spec.model`` names.

    Raises:
        BackendUnavailable: naming every place looked in.
    """
    candidates = _candidates(spec)
    for path in candidates:
        if path.is_file() and path.suffix.lower() in suffixes:
            return path.resolve()
    looked = ", ".join(str(p) for p in candidates)
    raise BackendUnavailable(f"no weights file {spec.model!r} (looked in: {looked})")


def find_rembg_model(spec: ModelSpec, *, backend: str, unsupported: frozenset[str] = frozenset()) -> Path:
    """The ONNX file of a rembg-family model: a ``.onnx`` path, or a model name looked up in rembg's own
    layout under ``models_dir`` (``rembg/<name>.onnx`` or ``rembg/models/<name>/<name>.onnx``, where
    ``placewright models pull`` puts it). Cheap: nothing is imported or loaded.

    Raises:
        BackendUnavailable: a name in ``unsupported`` or not a name, or no such file (naming where it looked,
            and the pull command when the catalogue has the model).
    """
    if spec.model.lower().endswith(".onnx"):
        return find_weights_file(spec, (".onnx",))
    name = spec.model
    if not name or name in unsupported or "/" in name or "\\" in name:
        raise BackendUnavailable(f"{backend} model {name!r} is not supported here; name a .onnx file instead")
    home = Path(spec.models_dir or ".").expanduser() / "rembg"
    candidates = (home / f"{name}.onnx", home / "models" / name / f"{name}.onnx")
    for path in candidates:
        if path.is_file():
            return path.resolve()
    from placewright.models.pull import CATALOGUE  # the catalogue imports nothing heavy

    looked = ", ".join(str(p) for p in candidates)
    pullable = any(model.name == name for model in CATALOGUE)
    hint = f"`placewright models pull {name}` fetches it" if pullable else "it is never downloaded at run time"
    raise BackendUnavailable(f"{backend} model {name!r} not found (looked in: {looked}); {hint}")


def rembg_model_source(spec: ModelSpec) -> str:
    """Where :func:`find_rembg_model` looks, for ``placewright models``: the file, or the name and its folder."""
    return spec.model if spec.model.lower().endswith(".onnx") else f"{spec.model} (in {spec.models_dir}/rembg)"


def find_pretrained(spec: ModelSpec) -> Path:
    """A local model folder (``config.json``) or diffusers pipeline folder (``model_index.json``) for
    ``spec.model``: a path, or a repo id in the HF cache.

    Honours ``HF_HOME``/``HF_HUB_CACHE`` (through huggingface_hub); never goes online.

    Raises:
        BackendUnavailable: naming every place looked in.
    """
    candidates = _candidates(spec)
    for path in candidates:
        if (path / "config.json").is_file() or (path / "model_index.json").is_file():  # a model / a pipeline
            return path.resolve()
    looked = [str(p) for p in candidates]
    if "/" in spec.model and not spec.model.startswith((".", "/", "~")):
        try:
            from huggingface_hub.constants import HF_HUB_CACHE

            looked.append(f"Hugging Face cache {HF_HUB_CACHE}")
            # The repo's cache folder, as huggingface_hub names it: when it is not there, nothing is (and the
            # 0.1 s import of huggingface_hub's downloader is saved on every run that checks its backends).
            if Path(HF_HUB_CACHE, "models--" + spec.model.replace("/", "--")).is_dir():
                from huggingface_hub import snapshot_download

                return Path(snapshot_download(spec.model, local_files_only=True))
        except ImportError:
            pass
        except Exception:  # LocalEntryNotFoundError and friends: not in the cache
            pass
    raise BackendUnavailable(f"model {spec.model!r} not found (looked in: {', '.join(looked)})")


def weights_reason(finder: Callable[[ModelSpec], Path], spec: ModelSpec) -> str | None:
    """``unavailable_reason`` helper: None when ``finder(spec)`` finds the weights, else why not."""
    try:
        finder(spec)
    except BackendUnavailable as exc:
        return str(exc)
    return None
