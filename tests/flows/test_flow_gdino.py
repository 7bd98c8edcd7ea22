"""The place-product flow with the grounding-dino locator (tiny random-weight model) on a provided background."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.core.test_locate_gdino import build_tiny_gdino
from tests.flows.runs import place

pytestmark = pytest.mark.usefixtures("prefect_server")


@pytest.fixture(scope="module")
def tiny_gdino(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_gdino(tmp_path_factory.mktemp("tiny-gdino"))


def _background(folder: Path) -> Path:
    path = folder / "kitchen.png"
    rows = np.linspace(200, 90, 300)[:, None, None] * np.ones((300, 400, 3))
    rows[180:] = (120, 80, 50)  # a table below row 180
    Image.fromarray(rows.astype(np.uint8)).save(path)
    return path


def _run(product: Path, folder: Path, monkeypatch: pytest.MonkeyPatch, model: Path, threshold: float) -> dict:
    monkeypatch.setenv("PLACEWRIGHT_LOCATE__DETECTOR__MODEL", str(model))
    monkeypatch.setenv("PLACEWRIGHT_LOCATE__DETECTOR__DEVICE", "cpu")
    monkeypatch.setenv("PLACEWRIGHT_LOCATE__BOX_THRESHOLD", str(threshold))
    monkeypatch.setenv("PLACEWRIGHT_LOCATE__TEXT_THRESHOLD", str(threshold))
    manifest = place(
        product, backgrounds=[str(_background(folder))], surface="table", size="320x240", out=str(folder / "o")
    )
    (variant,) = manifest["variants"]
    assert variant["stages"]["scene"]["backend"] == "provided", "a provided background: detection is not skipped"
    return variant


def test_flow_records_grounding_dino(
    example_product: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_gdino: Path
) -> None:
    variant = _run(example_product, tmp_path, monkeypatch, tiny_gdino, 0.0)
    locate = variant["stages"]["locate"]
    assert locate["backend"] == "grounding-dino" and locate["fallback_from"] is None and locate["error"] is None
    x0, y0, x1, y1 = variant["surface_box"]
    assert 0 <= x0 < x1 <= 320 and 0 <= y0 < y1 <= 240
    assert y0 <= variant["surface_line_y"] < 240
    assert abs(variant["product_box"][3] - variant["surface_line_y"]) <= 3, "base rests on the detected line"


def test_flow_falls_back_to_classical_with_reason(
    example_product: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_gdino: Path
) -> None:
    variant = _run(example_product, tmp_path, monkeypatch, tiny_gdino, 1.0)
    locate = variant["stages"]["locate"]
    assert locate["fallback_from"] == "grounding-dino"
    assert "NoSurfaceDetected: no surface above thresholds" in locate["error"]
    # The classical edge: the table at row 180 of 300 is row 144 of 240; line 0.35 of the way down from it.
    assert locate["backend"] == "horizontal-edge" and variant["surface_box"] == [0, 144, 320, 240]
    assert variant["surface_line_y"] == round(144 + 0.35 * (240 - 144))
