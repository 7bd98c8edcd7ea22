"""The place-product flow with the spandrel upscaler (tiny random-weight Real-ESRGAN-layout checkpoint)."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import pytest
from PIL import Image

from tests.core.test_enhance_spandrel import write_checkpoint
from tests.flows.runs import place
from tests.real_models import pulled

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
    assert "realesrgan-x4plus.safetensors" in skipped and str(tmp_path / "models") in skipped


def test_replacing_the_checkpoint_behind_the_same_path_reruns_enhance(
    example_product: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stage_calls: dict
) -> None:
    """The enhance cache key holds the weights' content, not their path: a new file is not answered from the cache.

    Real weights (Real-ESRGAN animevideov3): a random network's colours would defeat the cut-out.
    The replacement differs in one bias by 1e-3, with the same size and the old mtime.
    """
    checkpoint = tmp_path / "upscaler.safetensors"
    checkpoint.write_bytes((pulled("realesr-animevideov3") / "realesr-animevideov3-x4.safetensors").read_bytes())
    monkeypatch.setenv("PLACEWRIGHT_ENHANCE__UPSCALER__MODEL", str(checkpoint))
    monkeypatch.setenv("PLACEWRIGHT_ENHANCE__UPSCALER__DEVICE", "cpu")
    product = _small_product(example_product, tmp_path)
    assert _run(product, tmp_path, monkeypatch)["backend"] == "spandrel"
    _run(product, tmp_path, monkeypatch)
    assert stage_calls["enhance"] == 1, "unchanged weights: cached"
    stat, data = checkpoint.stat(), bytearray(checkpoint.read_bytes())
    length = struct.unpack("<Q", data[:8])[0]
    start = 8 + length + json.loads(data[8 : 8 + length])["body.34.bias"]["data_offsets"][0]
    data[start : start + 4] = struct.pack("<f", struct.unpack("<f", data[start : start + 4])[0] + 1e-3)
    checkpoint.write_bytes(bytes(data))
    os.utime(checkpoint, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert checkpoint.stat().st_size == stat.st_size
    assert _run(product, tmp_path, monkeypatch)["backend"] == "spandrel"
    assert stage_calls["enhance"] == 2, "new weights behind the same path: enhance ran again"
