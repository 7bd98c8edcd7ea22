"""The place-product flow with the spandrel upscaler (tiny random-weight Real-ESRGAN-layout checkpoint)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from tests.core.test_enhance_spandrel import write_checkpoint
from tests.flows.runs import place

pytestmark = pytest.mark.usefixtures("prefect_server")


def _small_product(example_product: Path, folder: Path) -> Path:
    """The example bottle at 192x256: small enough that enhance upscales it (to 384x512 here)."""
    path = folder / "olive-oil-bottle.png"
    Image.open(example_product).convert("RGB").resize((192, 256), Image.Resampling.LANCZOS).save(path)
    return path


def _run(product: Path, folder: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    monkeypatch.setenv("PLACEWRIGHT_MODELS_DIR", str(folder / "models"))
    monkeypatch.setenv("PLACEWRIGHT_ENHANCE__TARGET_LONG_SIDE", "512")
    manifest = place(product, prompts=["marble counter"], size="320x256", out=str(folder / "out"))
    (variant,) = manifest["variants"]
    return variant["stages"]["enhance"]


def test_flow_records_spandrel(example_product: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    checkpoint = write_checkpoint(tmp_path)
    monkeypatch.setenv("PLACEWRIGHT_ENHANCE__UPSCALER__MODEL", str(checkpoint))
    monkeypatch.setenv("PLACEWRIGHT_ENHANCE__UPSCALER__DEVICE", "cpu")  # (only beside MODEL: env replaces the spec)
    stage = _run(_small_product(example_product, tmp_path), tmp_path, monkeypatch)
    assert stage["backend"] == "spandrel"
    assert stage["fallback_from"] is None and stage["error"] is None and stage["skipped"] == []


def test_flow_without_weights_records_lanczos_and_why(
    example_product: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stage = _run(_small_product(example_product, tmp_path), tmp_path, monkeypatch)
    assert stage["backend"] == "lanczos" and stage["fallback_from"] is None
    (skipped,) = [s for s in stage["skipped"] if s.startswith("spandrel:")]
    assert "RealESRGAN_x4plus.pth" in skipped and str(tmp_path / "models") in skipped
