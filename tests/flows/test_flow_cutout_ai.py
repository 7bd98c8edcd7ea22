"""The AI cut-out backends (rembg, SAM) inside the place-product flow, on tiny models, offline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.core.test_cutout_rembg import export_red_detector
from tests.core.test_cutout_sam import save_tiny_sam
from tests.flows.runs import place
from tests.synth import render_product_photo

pytestmark = pytest.mark.usefixtures("prefect_server")


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("ai-models")
    broken = root / "broken.onnx"
    broken.write_bytes(b"\x08\x07not really protobuf")
    return {
        "onnx": export_red_detector(root / "red-detector.onnx"),
        "sam": save_tiny_sam(root / "tiny-sam"),
        "broken": broken,
    }


@pytest.fixture
def red_bottle(tmp_path: Path) -> Path:
    path = tmp_path / "red-bottle.png"
    Image.fromarray(render_product_photo("bottle", size=(320, 288), label_rgb=(220, 60, 90)).rgb).save(path)
    return path


def run(product: Path, tmp_path: Path) -> tuple[dict, dict]:
    manifest = place(product, prompts=["marble counter"], size="320x256", out=str(tmp_path / "out"))
    return manifest, manifest["variants"][0]["stages"]["cutout"]


def cutout_alpha(manifest: dict, tmp_path: Path) -> np.ndarray:
    run_dir = tmp_path / "out" / manifest["run_id"]
    return np.asarray(Image.open(run_dir / manifest["product"]["cutout"]))[..., 3]


def test_rembg_model_from_the_environment(
    models: dict[str, Path], red_bottle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLACEWRIGHT_CUTOUT__REMBG__MODEL", str(models["onnx"]))
    manifest, stage = run(red_bottle, tmp_path)
    assert stage["backend"] == "rembg" and stage["error"] is None and stage["fallback_from"] is None
    alpha = cutout_alpha(manifest, tmp_path)
    assert alpha.max() == 255 and alpha[0, 0] == 0 and alpha[-1, -1] == 0
    # The bottle is 0.36 as wide as tall: the tight crop keeps that shape.
    assert alpha.shape[1] / alpha.shape[0] == pytest.approx(0.36, abs=0.05)


def test_forced_sam(models: dict[str, Path], red_bottle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLACEWRIGHT_CUTOUT__BACKEND", "sam")
    monkeypatch.setenv("PLACEWRIGHT_CUTOUT__SAM__MODEL", str(models["sam"]))
    monkeypatch.setenv("PLACEWRIGHT_CUTOUT__SAM__DEVICE", "cpu")
    manifest, stage = run(red_bottle, tmp_path)
    assert stage["backend"] == "sam" and stage["error"] is None
    assert cutout_alpha(manifest, tmp_path).max() == 255


def test_broken_onnx_falls_back_to_grabcut(
    models: dict[str, Path], red_bottle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLACEWRIGHT_CUTOUT__REMBG__MODEL", str(models["broken"]))
    manifest, stage = run(red_bottle, tmp_path)
    assert stage["backend"] == "grabcut" and stage["fallback_from"] == "rembg"
    assert stage["error"].startswith("rembg: ") and "broken.onnx" in stage["error"]
    assert cutout_alpha(manifest, tmp_path).max() == 255
