"""The diffusers scene backend on tiny random-weight SD and Flux pipelines saved to a folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from placewright.errors import TransientBackendError
from placewright.models import MODELS
from placewright.scene import generate_scene
from placewright.scene.diffusion import FAMILIES, DiffusersScene, family_of, generation_size
from placewright.settings import ModelSpec, SceneSettings
from placewright.types import Size
from tests.tiny_diffusion import save_tiny_pipeline


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny-t2i")
    return {kind: save_tiny_pipeline(kind, root / kind) for kind in ("sd", "flux")}


def _options(folder: Path, **extra: object) -> SceneSettings:
    return SceneSettings(
        backend="diffusers", diffusion=ModelSpec(model=str(folder), device="cpu"), native_side=64, **extra
    )


def _spy(monkeypatch: pytest.MonkeyPatch, options: SceneSettings) -> list[dict]:
    """Record the keyword arguments (and the scheduler in use) of every call of the loaded pipeline."""
    pipe = DiffusersScene(options).pipeline()[0]
    real, calls = type(pipe).__call__, []

    def spy(self, *args, **kwargs):
        calls.append({**kwargs, "scheduler": type(self.scheduler).__name__})
        return real(self, *args, **kwargs)

    monkeypatch.setattr(type(pipe), "__call__", spy)
    return calls


@pytest.mark.parametrize("kind", ["sd", "flux"])
@pytest.mark.parametrize("size", [Size(96, 64), Size(64, 96)])
def test_output_has_exactly_the_requested_size(tiny: dict[str, Path], kind: str, size: Size) -> None:
    result = generate_scene(
        "a marble counter", size=size, seed=0, surface="table", options=_options(tiny[kind], steps=1)
    )
    assert result.record.backend == "diffusers" and result.record.error is None
    assert result.image.shape == (size.height, size.width, 3) and result.image.dtype == np.uint8
    assert result.surface is None, "an AI scene leaves the surface to the locate stage"
    assert result.image.std() > 1, "a generated image, not a flat fill"


@pytest.mark.parametrize("kind", ["sd", "flux"])
def test_same_seed_same_image_other_seed_other_image(tiny: dict[str, Path], kind: str) -> None:
    options, size = _options(tiny[kind], steps=1), Size(64, 64)
    first, again, other = (
        generate_scene("oak table", size=size, seed=s, surface="table", options=options).image for s in (7, 7, 8)
    )
    assert np.array_equal(first, again)
    assert np.abs(first.astype(int) - other).mean() > 1


def test_overrides_reach_the_pipeline(tiny: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    options = _options(tiny["sd"], steps=2, guidance=2.5, scheduler="EulerDiscreteScheduler", negative_prompt="no cats")
    calls = _spy(monkeypatch, options)
    generate_scene("a loft", size=Size(96, 64), seed=1, surface="desk", options=options)
    (call,) = calls
    assert call["num_inference_steps"] == 2 and call["guidance_scale"] == 2.5
    assert call["negative_prompt"] == "no cats" and call["scheduler"] == "EulerDiscreteScheduler"
    assert call["prompt"].startswith("a loft, an empty desk in the foreground")
    assert (call["width"], call["height"]) == (80, 56), "SD: multiples of 8, about the aspect and 64x64 pixels"
    assert type(DiffusersScene(options).pipeline()[0].scheduler).__name__ == "DDIMScheduler", "restored"


def test_flux_schnell_defaults(tiny: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    options = _options(tiny["flux"])
    calls = _spy(monkeypatch, options)
    generate_scene("a beach", size=Size(64, 96), seed=1, surface="table", options=options)
    (call,) = calls
    assert call["num_inference_steps"] == 4 and call["guidance_scale"] == 0.0
    assert call["max_sequence_length"] == 32, "schnell's 256 capped at the tiny T5 tokenizer's 32"
    assert "negative_prompt" not in call
    assert (call["width"], call["height"]) == (48, 80), "Flux: multiples of 16"


def test_family_from_model_index(tiny: dict[str, Path], tmp_path: Path) -> None:
    assert family_of(tiny["sd"]) == "sd" and family_of(tiny["flux"]) == "flux-schnell"
    dev = tmp_path / "dev"
    (dev / "transformer").mkdir(parents=True)
    shutil.copy(tiny["flux"] / "model_index.json", dev)
    config = json.loads((tiny["flux"] / "transformer" / "config.json").read_text())
    (dev / "transformer" / "config.json").write_text(json.dumps({**config, "guidance_embeds": True}, indent=2))
    assert family_of(dev) == "flux-dev" and FAMILIES["flux-dev"].guidance == 3.5


@pytest.mark.parametrize(("side", "factor"), [(1024, 16), (1024, 8), (512, 8)])
@pytest.mark.parametrize("size", [Size(1920, 1080), Size(1080, 1350), Size(800, 800), Size(3000, 500)])
def test_generation_size_keeps_aspect_and_pixel_count(side: int, factor: int, size: Size) -> None:
    work = generation_size(size, side, factor)
    assert work.width % factor == 0 and work.height % factor == 0
    assert abs(work.width * work.height / side**2 - 1) < 0.06
    aspect = min(size.width / size.height, 4.0)
    assert abs(work.width / work.height / aspect - 1) < 0.05


def test_loaded_once(tiny: dict[str, Path]) -> None:
    options = _options(tiny["sd"], steps=1)
    for seed in (1, 2):
        generate_scene("a shelf", size=Size(64, 64), seed=seed, surface="table", options=options)
    loads = [n for key, n in MODELS.loads.items() if str(tiny["sd"]) in str(key)]
    assert loads == [1]


def test_unavailable_without_weights_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    options = SceneSettings(diffusion=ModelSpec(model=str(missing)))
    reason = DiffusersScene.unavailable_reason(options)
    assert reason is not None and str(missing) in reason
    assert DiffusersScene.source(options) == str(missing)
    result = generate_scene("a table", size=Size(64, 48), seed=0, surface="table", options=options)
    assert result.record.backend == "procedural"
    assert any(s.startswith("diffusers:") and str(missing) in s for s in result.record.skipped)


def test_pipeline_error_falls_back_to_procedural(tiny: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    options = _options(tiny["sd"], steps=1)
    pipe = DiffusersScene(options).pipeline()[0]

    def broken(self, *args, **kwargs):
        raise RuntimeError("UNet exploded")

    monkeypatch.setattr(type(pipe), "__call__", broken)
    result = generate_scene("a table", size=Size(64, 48), seed=0, surface="table", options=options)
    assert result.record.backend == "procedural" and result.record.fallback_from == "diffusers"
    assert "UNet exploded" in result.record.error and result.surface is not None


def test_cuda_out_of_memory_is_transient(tiny: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    options = _options(tiny["sd"], steps=1)
    pipe = DiffusersScene(options).pipeline()[0]

    def oom(self, *args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(type(pipe), "__call__", oom)
    with pytest.raises(TransientBackendError, match="out of GPU memory"):
        generate_scene("a table", size=Size(64, 48), seed=0, surface="table", options=options, raise_transient=True)
