"""The diffusers-inpaint harmonize backend on tiny random-weight SD-inpaint and Flux-Fill pipelines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

import placewright.harmonize.diffusion as hd
import placewright.models.diffusion as md
from placewright.errors import TransientBackendError
from placewright.harmonize import harmonize
from placewright.harmonize.diffusion import DiffusersInpaintHarmonizer
from placewright.settings import DiffusionMemorySettings, HarmonizeSettings, ModelSpec
from tests.tiny_diffusion import save_tiny_pipeline

RING = 8


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("pipelines")
    return {kind: save_tiny_pipeline(kind, base / kind) for kind in ("sd-inpaint", "flux-fill")}


def scene() -> tuple[np.ndarray, np.ndarray]:
    """A (96, 80, 3) noise image and a product alpha: a solid box with a half-transparent top row."""
    image = np.random.default_rng(0).integers(0, 256, (96, 80, 3), dtype=np.uint8)
    alpha = np.zeros((96, 80), np.uint8)
    alpha[30:70, 30:50] = 255
    alpha[29, 30:50] = 128
    return image, alpha


def options(folder: Path, **extra: Any) -> HarmonizeSettings:
    spec = ModelSpec(model=str(folder), device="cpu")
    return HarmonizeSettings(inpaint=spec, steps=2, work_side=64, ring_px=RING, prompt="a table", **extra)


def distance_outside(alpha: np.ndarray) -> np.ndarray:
    return cv2.distanceTransform((alpha == 0).astype(np.uint8), cv2.DIST_L2, 3)


@pytest.mark.parametrize("kind", ["sd-inpaint", "flux-fill"])
def test_only_the_ring_changes(kind: str, folders: dict[str, Path]) -> None:
    image, alpha = scene()
    before = image.copy()
    out = DiffusersInpaintHarmonizer(options(folders[kind]))(image, alpha, prompt=None, seed=0)
    assert np.array_equal(image, before)  # input not modified
    assert out.shape == image.shape and out.dtype == np.uint8
    solid, distance = alpha == 255, distance_outside(alpha)
    assert np.array_equal(out[solid], image[solid])
    assert np.array_equal(out[distance >= RING], image[distance >= RING])
    near = (alpha == 0) & (distance <= RING / 2)
    assert (out[near] != image[near]).any(axis=1).mean() > 0.5  # random weights repaint the ring


def test_public_harmonize_keeps_product_pixels(folders: dict[str, Path]) -> None:
    image, alpha = scene()
    result = harmonize(image, alpha, seed=0, prompt=None, options=options(folders["flux-fill"]))
    assert result.record.backend == "diffusers-inpaint" and result.record.fallback_from is None
    assert np.array_equal(result.image[alpha == 255], image[alpha == 255])
    assert not np.array_equal(result.image[alpha == 128], image[alpha == 128])  # soft edge blends


def test_settings_reach_the_pipeline_loaded_once(folders: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict] = []
    loads: list[str] = []
    real_load, real_pipeline = md._load, hd.pipeline

    class Spy:
        def __init__(self, pipe: Any) -> None:
            self.pipe = pipe

        def __getattr__(self, name: str) -> Any:
            return getattr(self.pipe, name)

        def __call__(self, **kwargs: Any) -> Any:
            calls.append(kwargs)
            return self.pipe(**kwargs)

    monkeypatch.setattr(md, "_load", lambda name, *a: loads.append(name) or real_load(name, *a))
    monkeypatch.setattr(hd, "pipeline", lambda *a: Spy(real_pipeline(*a)))
    # A memory setting no other test uses: a new cache key, so this test sees the load.
    opts = options(folders["flux-fill"], strength=0.5, memory=DiffusionMemorySettings(attention_slicing=True))
    image, alpha = scene()
    first = DiffusersInpaintHarmonizer(opts)(image, alpha, prompt="a kitchen", seed=7)
    second = DiffusersInpaintHarmonizer(opts)(image, alpha, prompt="a kitchen", seed=7)
    other = DiffusersInpaintHarmonizer(opts)(image, alpha, prompt="a kitchen", seed=8)
    assert loads == ["FluxFillPipeline"]
    assert np.array_equal(first, second), "the same seed gives the same image"
    assert not np.array_equal(first, other), "another seed, other noise"
    call = calls[0]
    assert call["strength"] == 0.5 and int(call["num_inference_steps"] * 0.5) == 2
    assert call["prompt"] == "a kitchen, a table", "the variant's scene prompt, then harmonize.prompt"
    assert call["guidance_scale"] == 30.0 and call["max_sequence_length"] == 32
    assert [c["generator"].initial_seed() for c in calls] == [7, 7, 8], "the variant's seed"
    assert max(call["width"], call["height"]) == 64 and call["width"] % 16 == 0 and call["height"] % 16 == 0
    assert call["image"].size == call["mask_image"].size == (call["width"], call["height"])
    mask = np.asarray(call["mask_image"])
    assert mask.max() == 255 and mask[call["height"] // 2, call["width"] // 2] == 0  # product kept, ring repainted


def test_unavailable_without_weights(tmp_path: Path) -> None:
    opts = HarmonizeSettings(inpaint=ModelSpec(model=str(tmp_path / "no-such-model")))
    reason = DiffusersInpaintHarmonizer.unavailable_reason(opts)
    assert reason is not None and "no-such-model" in reason
    image, alpha = scene()
    record = harmonize(image, alpha, seed=0, prompt=None, options=opts).record
    assert record.backend == "classical"
    assert any(s.startswith("diffusers-inpaint:") and "no-such-model" in s for s in record.skipped)
    assert "no-such-model" in DiffusersInpaintHarmonizer.source(opts)


def test_pipeline_error_falls_back_to_classical(folders: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    def broken(**kwargs: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(hd, "pipeline", lambda *a: broken)
    image, alpha = scene()
    record = harmonize(image, alpha, seed=0, prompt=None, options=options(folders["sd-inpaint"])).record
    assert record.backend == "classical" and record.fallback_from == "diffusers-inpaint"
    assert "boom" in record.error

    def out_of_memory(**kwargs: Any) -> Any:
        raise torch.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(hd, "pipeline", lambda *a: out_of_memory)
    with pytest.raises(TransientBackendError, match="out of GPU memory"):
        harmonize(image, alpha, seed=0, prompt=None, options=options(folders["sd-inpaint"]), raise_transient=True)


def test_pipeline_folder_found_in_models_dir(folders: dict[str, Path]) -> None:
    folder = folders["sd-inpaint"]
    spec = ModelSpec(model=folder.name, models_dir=folder.parent)
    assert DiffusersInpaintHarmonizer.unavailable_reason(HarmonizeSettings(inpaint=spec)) is None
    assert hd.pipeline_class(folder) == ("AutoPipelineForInpainting", "sd")
    assert hd.pipeline_class(folders["flux-fill"]) == ("FluxFillPipeline", "flux-fill")
