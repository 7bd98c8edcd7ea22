"""Run options reach the stages that use them, and the same seed makes the same files.

- the run's ``surface`` is what the diffusion model is asked to leave empty, what GroundingDINO searches
  for and what the compositor scales by (tiny random-weight SD and GroundingDINO models);
- each variant's seed and prompt reach harmonize: two variants of the same scene get different noise,
  and the same seed makes the same published file, byte for byte (tiny SD-inpaint);
- a product that a product stage refuses is bad input with that stage's own message, and a failure in
  a product stage fails the run with its own error (not a downstream "unfinished run").
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from PIL import Image

import tasks.composite
from placewright.errors import InvalidInput, StageFailed
from tests.core.test_locate_gdino import build_tiny_gdino
from tests.flows.runs import place, place_state
from tests.tiny_diffusion import save_tiny_pipeline

pytestmark = pytest.mark.usefixtures("prefect_server")


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny-models")
    return {
        "sd": save_tiny_pipeline("sd", root / "sd"),
        "sd-inpaint": save_tiny_pipeline("sd-inpaint", root / "sd-inpaint"),
        "gdino": build_tiny_gdino(root / "gdino"),
    }


def _configure(monkeypatch: pytest.MonkeyPatch, **settings: str) -> None:
    """Set ``PLACEWRIGHT_<NAME>`` for each setting (``SCENE__STEPS="1"``), as a user's environment would.

    Random-weight models make noise, which the quality gate would send back for another seed: here each
    variant is made once (``quality.retries`` 0), so the calls counted are the run's own.
    """
    settings = {"QUALITY__RETRIES": "0", **settings}
    for name, value in settings.items():
        monkeypatch.setenv(f"PLACEWRIGHT_{name}", value)


def _spy_on(monkeypatch: pytest.MonkeyPatch, cls: type, key: str) -> list[Any]:
    """Record ``key`` of every call of ``cls.__call__`` (a pipeline or processor class, as the model receives it)."""
    real, seen = cls.__call__, []

    def spy(self: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs.get(key))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(cls, "__call__", spy)
    return seen


def test_the_surface_reaches_the_scene_prompt_the_detector_and_the_compositor(
    example_product: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_models: dict[str, Path]
) -> None:
    from diffusers import StableDiffusionPipeline
    from transformers import GroundingDinoProcessor

    _configure(
        monkeypatch,
        SCENE__DIFFUSION__MODEL=str(tiny_models["sd"]),
        SCENE__DIFFUSION__DEVICE="cpu",
        SCENE__STEPS="1",
        SCENE__NATIVE_SIDE="64",
        LOCATE__DETECTOR__MODEL=str(tiny_models["gdino"]),
        LOCATE__DETECTOR__DEVICE="cpu",
        LOCATE__BOX_THRESHOLD="0",
        LOCATE__TEXT_THRESHOLD="0",
    )
    prompts = _spy_on(monkeypatch, StableDiffusionPipeline, "prompt")
    queries = _spy_on(monkeypatch, GroundingDinoProcessor, "text")
    phrases = []
    real_composite = tasks.composite.composite

    def composite_spy(*args: Any, **kwargs: Any) -> Any:
        phrases.append(kwargs["surface_phrase"])
        return real_composite(*args, **kwargs)

    monkeypatch.setattr(tasks.composite, "composite", composite_spy)

    manifest = place(example_product, prompts=["a bakery"], surface="shelf", size="256x192", out=str(tmp_path))

    (variant,) = manifest["variants"]
    assert variant["stages"]["scene"]["backend"] == "diffusers" and variant["stages"]["locate"]["backend"] == (
        "grounding-dino"
    )
    (prompt,) = prompts
    assert prompt.startswith("a bakery, an empty shelf in the foreground"), prompt
    assert queries == ["shelf."], "GroundingDINO searched for the run's surface"
    assert phrases == ["shelf"], "the compositor scales by the run's surface"


def _published(tmp_path: Path, manifest: dict[str, Any], name: str) -> bytes:
    return (tmp_path / manifest["run_id"] / name).read_bytes()


def test_each_variant_seed_reaches_harmonize_and_the_same_seed_makes_the_same_file(
    example_product: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_models: dict[str, Path]
) -> None:
    from diffusers import StableDiffusionInpaintPipeline

    _configure(
        monkeypatch,
        HARMONIZE__INPAINT__MODEL=str(tiny_models["sd-inpaint"]),
        HARMONIZE__INPAINT__DEVICE="cpu",
        HARMONIZE__STEPS="1",
        HARMONIZE__WORK_SIDE="64",
    )
    generators = _spy_on(monkeypatch, StableDiffusionInpaintPipeline, "generator")
    background = tmp_path / "kitchen.png"
    rows = np.linspace(210, 120, 240)[:, None, None] * np.ones((240, 320, 3))
    rows[150:] = (150, 110, 70)
    Image.fromarray(rows.astype(np.uint8)).save(background)
    # The same background twice: the same scene, placement and composite; only the seed differs (40, 41).
    request = dict(backgrounds=[str(background)] * 2, size="320x240", seed=40, format="png", out=str(tmp_path))

    first = place(example_product, **request)
    assert [v["stages"]["harmonize"]["backend"] for v in first["variants"]] == ["diffusers-inpaint"] * 2
    assert sorted(g.initial_seed() for g in generators) == [40, 41], "each variant's own seed"
    images = [np.asarray(Image.open(tmp_path / first["run_id"] / v["image"])) for v in first["variants"]]
    changed = np.any(images[0] != images[1], axis=2)
    assert changed.any(), "two seeds, two different relightings"
    product = np.zeros(changed.shape, np.uint8)
    x0, y0, x1, y1 = first["variants"][0]["product_box"]
    product[y0:y1, x0:x1] = 1
    far = cv2.distanceTransform(1 - product, cv2.DIST_L2, 3) > 2 * 24 + 2  # beyond the relit ring (ring_px 24)
    assert not changed[far].any(), "only the ring around the product is relit"

    again = place(example_product, refresh=True, **request)  # every stage computed again
    for a, b in zip(first["variants"], again["variants"], strict=True):
        assert _published(tmp_path, first, a["image"]) == _published(tmp_path, again, b["image"]), "byte for byte"
        assert a["sha256"] == b["sha256"]
    cutout = "product/cutout.png"
    assert _published(tmp_path, first, cutout) == _published(tmp_path, again, cutout)

    # Variant 1 of the first run again, as variant 0 of a run whose seed is 41.
    alone = place(example_product, **{**request, "backgrounds": [str(background)], "seed": 41})
    (variant,) = alone["variants"]
    assert hashlib.sha256(_published(tmp_path, alone, variant["image"])).hexdigest() == first["variants"][1]["sha256"]


def _almost_transparent(path: Path) -> Path:
    rgba = np.zeros((200, 200, 4), np.uint8)
    rgba[100:102, 100:102] = (200, 40, 40, 255)  # 4 visible pixels: 0.01 % of the image
    Image.fromarray(rgba).save(path)
    return path


def test_a_product_the_cutout_refuses_is_bad_input_with_the_stage_message(tmp_path: Path) -> None:
    state = place_state(_almost_transparent(tmp_path / "ghost.png"), size="256x256", out=str(tmp_path / "out"))
    assert state.is_failed()
    with pytest.raises(InvalidInput, match=r"^the product image is almost fully transparent: only 0\.01% of it"):
        state.result()
    assert not (tmp_path / "out").exists(), "nothing published"


@pytest.mark.parametrize("stage", ["enhance", "cutout", "analyze"])
def test_a_failed_product_stage_fails_the_run_with_its_own_error(
    stage: str, example_product: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLACEWRIGHT_FAULTS__FAIL_STAGE", stage)
    monkeypatch.setenv("PLACEWRIGHT_RETRY__RETRIES", "0")
    state = place_state(example_product, prompts=["a", "b"], size="256x256", out=str(tmp_path / "out"))
    assert state.is_failed()
    with pytest.raises(StageFailed, match=rf"^injected fault in stage {stage} "):
        state.result()
