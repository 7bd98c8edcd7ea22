"""The place-product flow with the diffusers-inpaint harmonizer (tiny random-weight SD-inpaint and Flux Fill)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.flows.runs import place
from tests.tiny_diffusion import save_tiny_pipeline

pytestmark = pytest.mark.usefixtures("prefect_server")


@pytest.mark.parametrize("kind", ["sd-inpaint", "flux-fill"])
def test_flow_records_diffusers_inpaint(
    kind: str, example_product: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = save_tiny_pipeline(kind, tmp_path / kind)
    monkeypatch.setenv("PLACEWRIGHT_HARMONIZE__INPAINT__MODEL", str(folder))
    monkeypatch.setenv("PLACEWRIGHT_HARMONIZE__INPAINT__DEVICE", "cpu")
    monkeypatch.setenv("PLACEWRIGHT_HARMONIZE__STEPS", "1")
    monkeypatch.setenv("PLACEWRIGHT_HARMONIZE__WORK_SIDE", "64")
    manifest = place(
        example_product, prompts=["marble counter"], size="256x192", format="png", out=str(tmp_path / "out")
    )
    (variant,) = manifest["variants"]
    stage = variant["stages"]["harmonize"]
    assert stage["backend"] == "diffusers-inpaint"
    assert stage["fallback_from"] is None and stage["error"] is None
    assert variant["product_fidelity"] == 0  # PNG: the product's pixels exactly as composited
