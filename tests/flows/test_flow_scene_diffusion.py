"""The place-product flow with the diffusers scene backend (tiny random-weight SD pipeline)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

pytest.importorskip("torch")
pytest.importorskip("diffusers")

from flows.place_product import place_product
from tests.tiny_diffusion import save_tiny_pipeline

pytestmark = pytest.mark.usefixtures("prefect_server")


def test_flow_records_diffusers_scene(example_product: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = save_tiny_pipeline("sd", tmp_path / "tiny-sd")
    monkeypatch.setenv("PLACEWRIGHT_SCENE__DIFFUSION__MODEL", str(folder))
    monkeypatch.setenv("PLACEWRIGHT_SCENE__DIFFUSION__DEVICE", "cpu")
    monkeypatch.setenv("PLACEWRIGHT_SCENE__STEPS", "1")
    manifest = place_product(str(example_product), prompts=["marble counter"], size="320x256", out=str(tmp_path / "o"))
    (variant,) = manifest["variants"]
    scene = variant["stages"]["scene"]
    assert scene["backend"] == "diffusers" and scene["error"] is None
    assert Image.open(tmp_path / "o" / manifest["run_id"] / variant["image"]).size == (320, 256)
    assert variant["stages"]["locate"]["backend"] != "scene-geometry", "the locate stage found the surface"
