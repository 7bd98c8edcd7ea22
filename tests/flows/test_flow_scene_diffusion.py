"""The place-product flow with the diffusers scene backend (tiny random-weight SD and Flux pipelines)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.flows.runs import place
from tests.tiny_diffusion import save_tiny_pipeline

pytestmark = pytest.mark.usefixtures("prefect_server")


@pytest.mark.parametrize("kind", ["sd", "flux"])
def test_flow_records_diffusers_scene(
    kind: str, example_product: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = save_tiny_pipeline(kind, tmp_path / f"tiny-{kind}")
    monkeypatch.setenv("PLACEWRIGHT_SCENE__DIFFUSION__MODEL", str(folder))
    monkeypatch.setenv("PLACEWRIGHT_SCENE__DIFFUSION__DEVICE", "cpu")
    monkeypatch.setenv("PLACEWRIGHT_SCENE__STEPS", "1")
    args = dict(prompts=["marble counter"], size="320x256", seed=7, format="png", out=str(tmp_path / "o"))
    manifest = place(example_product, **args)
    (variant,) = manifest["variants"]
    scene = variant["stages"]["scene"]
    assert scene["backend"] == "diffusers" and scene["error"] is None
    first = np.asarray(Image.open(tmp_path / "o" / manifest["run_id"] / variant["image"]))
    assert first.shape[:2] == (256, 320), "exactly the requested size"
    assert variant["stages"]["locate"]["backend"] != "scene-geometry", "the locate stage found the surface"

    again = place(example_product, refresh=True, **args)  # computed again, not from the cache
    second = np.asarray(Image.open(tmp_path / "o" / again["run_id"] / again["variants"][0]["image"]))
    assert np.array_equal(first, second), "the same seed gives the same image"
