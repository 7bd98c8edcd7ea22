"""The quality gate in the flow: the pipeline broken on purpose, the gate catching it, the policy acting.

Each break is a test-only backend registered for one test:
- a cut-out with a band of the product missing, and one with a halo of backdrop: the cut-out stage's
  second opinion (GrabCut) catches both and is used instead; when the second opinion is no better,
  the variant is published flagged ``needs_review``, or left out;
- a compositor that leaves the product floating above the surface: placement fails, the variant is
  made again with its next seed (which the stub places right), or flagged, or dropped;
- an upscaler that rewrites the label, with the enhance stage's label guard off: the label check
  (real PP-OCR models) fails and the variant is flagged.
"""

from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import cv2
import numpy as np
import pytest
from PIL import Image

import placewright.cutout.verify
from placewright.composite import COMPOSITORS, Compositor
from placewright.composite.classical import ClassicalCompositor
from placewright.cutout import CUTTERS, Cutter
from placewright.cutout.classical import GrabCutCutter
from placewright.enhance import ENHANCERS, Enhancer, enhance
from placewright.enhance.classical import output_size
from placewright.errors import QualityGateFailed
from placewright.ocr import label_text
from placewright.quality import label_error, source_label
from placewright.settings import get_settings
from tests.core.test_ocr import LABEL_SET
from tests.flows.runs import place, place_state
from tests.real_models import only

pytestmark = pytest.mark.usefixtures("prefect_server")

HOLED, HALOED, FLOATING, REWRITER = "test-holed", "test-haloed", "test-floating", "test-label-rewriter-flow"
SMALL = "480x480"


@pytest.fixture(autouse=True)
def _test_backends(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The broken backends below are registered for each test of this module only."""
    for registry, extra in (
        (CUTTERS, {HOLED: _Holed, HALOED: _Haloed}),
        (COMPOSITORS, {FLOATING: _Floating}),
        (ENHANCERS, {REWRITER: _LabelRewriter}),
    ):
        monkeypatch.setattr(registry, "_backends", {**registry._backends, **extra})
    yield


def _settings(monkeypatch: pytest.MonkeyPatch, **values: str) -> None:
    for name, value in values.items():
        monkeypatch.setenv(f"PLACEWRIGHT_{name}", value)


class _Holed(Cutter):
    """GrabCut's cut-out with a vertical band through the product removed (what dark-on-dark did)."""

    name = HOLED

    def __call__(self, image: np.ndarray) -> np.ndarray:
        rgba = GrabCutCutter(self.options)(image)
        ys, xs = np.nonzero(rgba[..., 3] > 128)
        x0 = int(xs.min() + 0.35 * (xs.max() - xs.min()))
        rgba[ys.min() + 10 : ys.max() - 10, x0 : x0 + max(4, (xs.max() - xs.min()) // 6), 3] = 0
        return rgba


class _Haloed(Cutter):
    """GrabCut's cut-out grown by a band of backdrop (what the spotlit jar got)."""

    name = HALOED

    def __call__(self, image: np.ndarray) -> np.ndarray:
        rgba = GrabCutCutter(self.options)(image)
        side = max(image.shape[:2])
        radius = max(3, side // 40)
        grown = cv2.dilate(rgba[..., 3], cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1,) * 2))
        rgba[..., :3] = np.where((grown > 0)[..., None], image, rgba[..., :3])
        rgba[..., 3] = grown
        return rgba


def _cutout_alpha(manifest: dict) -> np.ndarray:
    return np.asarray(Image.open(Path(manifest["location"]) / manifest["product"]["cutout"]))[..., 3]


@pytest.mark.parametrize("broken", [_Holed, _Haloed], ids=["hole", "halo"])
def test_a_broken_cutout_is_caught_and_replaced_by_the_second_opinion(
    broken: type[Cutter], example_product: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(CUTTERS, "preference", (broken.name, "grabcut"))  # chosen automatically, as a model is
    manifest = place(example_product, prompts=["a wooden table"], size=SMALL, out=str(tmp_path / "out"))
    stage = manifest["variants"][0]["stages"]["cutout"]
    assert stage["backend"] == "grabcut"
    assert stage["note"].startswith(f"quality gate: {broken.name}'s cut-out failed")
    check = next(c for c in manifest["variants"][0]["quality"]["checks"] if c["name"] == "cutout")
    assert check["status"] == "pass"
    assert manifest["variants"][0]["verdict"] == "passed"
    # what was published is GrabCut's whole product (of the enhanced photo): no band missing, no backdrop band
    settings = get_settings()
    enhanced = enhance(np.asarray(Image.open(example_product).convert("RGB")), options=settings.enhance).image
    reference = int((GrabCutCutter(settings.cutout)(enhanced)[..., 3] > 128).sum())
    published = int((_cutout_alpha(manifest) > 128).sum())
    assert abs(published - reference) < 0.01 * reference


@pytest.mark.parametrize("policy", ["flag", "drop"])
def test_a_cutout_no_second_opinion_can_fix_is_flagged_or_dropped(
    policy: str, example_product: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _settings(monkeypatch, CUTOUT__BACKEND=HOLED, QUALITY__ON_FAILURE=policy)
    # The second opinion is another holed cut-out, so swapping cannot help.
    monkeypatch.setattr(placewright.cutout.verify, "second_opinion_backends", lambda used, options: [HALOED])
    out = tmp_path / "out"
    if policy == "flag":
        manifest = place(example_product, prompts=["a wooden table"], size=SMALL, out=str(out))
        variant = manifest["variants"][0]
        assert variant["verdict"] == "needs_review"
        assert variant["quality"]["failed"] == ["cutout"]
        assert variant["attempts"] == 1  # a product-level failure is not worth another seed
        assert variant["stages"]["cutout"]["backend"] == HOLED
        return
    state = place_state(example_product, prompts=["a wooden table"], size=SMALL, out=str(out))
    assert state.is_failed()
    with pytest.raises(QualityGateFailed, match="every variant failed the quality gate"):
        state.result()
    manifest = json.loads(next(out.glob("*/manifest.json")).read_text())
    assert manifest["variants"] == []
    assert [d["index"] for d in manifest["dropped"]] == [0]
    assert manifest["dropped"][0]["quality"]["failed"] == ["cutout"]
    assert not list(out.glob("*/variant-*")), "a dropped variant's image is not published"


class _Floating(Compositor):
    """The classical compositor with the product lifted above the surface, for seeds in ``floats_on``."""

    name = FLOATING
    floats_on: ClassVar[set[int] | None] = None  # None: every seed

    def __call__(self, scene, cutout, surface, analysis, seed, surface_phrase):  # type: ignore[override]
        floats = self.floats_on is None or seed in self.floats_on
        if floats:
            surface = dataclasses.replace(surface, line_y=int(surface.line_y - 0.25 * scene.shape[0]))
        return ClassicalCompositor(self.options)(scene, cutout, surface, analysis, seed, surface_phrase)


def test_a_floating_product_is_made_again_with_the_next_seed(
    example_product: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _settings(monkeypatch, COMPOSITE__BACKEND=FLOATING, SEED="10")
    monkeypatch.setattr(_Floating, "floats_on", {10})  # the first seed floats, the next one stands
    manifest = place(example_product, prompts=["a wooden table"], size=SMALL, out=str(tmp_path / "out"))
    variant = manifest["variants"][0]
    assert variant["attempts"] == 2 and variant["seed"] == 11
    assert variant["verdict"] == "passed"
    y1 = variant["product_box"][3]
    assert abs((y1 - 1) - variant["surface_line_y"]) <= 0.02 * variant["height"]


def test_a_product_that_keeps_floating_is_flagged_after_the_retries(
    example_product: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _settings(monkeypatch, COMPOSITE__BACKEND=FLOATING, QUALITY__RETRIES="2")
    monkeypatch.setattr(_Floating, "floats_on", None)
    manifest = place(example_product, prompts=["a wooden table"], size=SMALL, out=str(tmp_path / "out"))
    variant = manifest["variants"][0]
    assert variant["verdict"] == "needs_review" and variant["attempts"] == 3
    assert variant["quality"]["failed"] == ["placement"]
    placement = next(c for c in variant["quality"]["checks"] if c["name"] == "placement")
    assert "off the surface line" in placement["detail"]
    assert Path(manifest["location"], variant["image"]).is_file()  # flagged variants are published


def test_drop_leaves_out_only_the_failing_variant_and_the_sheet_shows_both(
    example_product: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _settings(monkeypatch, COMPOSITE__BACKEND=FLOATING, QUALITY__RETRIES="0", QUALITY__ON_FAILURE="drop")
    monkeypatch.setattr(_Floating, "floats_on", {1})  # seeds 0 and 1: the second variant floats
    manifest = place(example_product, prompts=["a wooden table", "a marble counter"], size=SMALL, out=str(tmp_path))
    assert [v["index"] for v in manifest["variants"]] == [0]
    assert [d["index"] for d in manifest["dropped"]] == [1]
    run = Path(manifest["location"])
    sheet = np.asarray(Image.open(run / manifest["contact_sheet"]).convert("RGB"))
    assert sheet.shape[1] > sheet.shape[0]  # two tiles side by side: the published and the dropped one
    gallery = (run / manifest["gallery"]).read_text()
    assert "Left out by the quality gate" in gallery and "placement" in gallery


class _LabelRewriter(Enhancer):
    """The product upscaled with its label lines drawn as other words (what a GAN does to small text)."""

    name = REWRITER

    def __call__(self, image: np.ndarray) -> tuple[np.ndarray, float]:
        product = LABEL_SET[0]
        width, height, scale = output_size(image.shape[1], image.shape[0], self.options)
        return product.render((width, height), texts=("AOUA", "PUMA", "Sprlng Waiter", "150 ml")), scale


def test_an_upscaler_that_rewrites_the_label_is_flagged_by_the_label_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    models = only("pp-ocrv4", folder=tmp_path)
    product = tmp_path / "bottle.png"
    buffer = io.BytesIO()
    Image.fromarray(LABEL_SET[0].render()).save(buffer, "PNG")
    product.write_bytes(buffer.getvalue())
    _settings(
        monkeypatch,
        MODELS_DIR=str(models),
        ENHANCE__BACKEND=REWRITER,
        ENHANCE__LABEL_GUARD="false",
        CUTOUT__BACKEND="grabcut",
    )
    manifest = place(product, prompts=["a wooden table"], out=str(tmp_path / "out"))
    variant = manifest["variants"][0]
    assert variant["stages"]["enhance"]["backend"] == REWRITER
    label = next(c for c in variant["quality"]["checks"] if c["name"] == "label")
    assert label["status"] == "fail", label["detail"]
    assert variant["verdict"] == "needs_review" and variant["attempts"] == 1

    _settings(monkeypatch, ENHANCE__LABEL_GUARD="true")  # the guard puts the source's label back
    get_settings.cache_clear()
    manifest = place(product, prompts=["a wooden table"], out=str(tmp_path / "out"))
    variant = manifest["variants"][0]
    label = next(c for c in variant["quality"]["checks"] if c["name"] == "label")
    assert label["status"] == "pass", (label["detail"], variant["stages"]["enhance"]["note"])
    assert variant["verdict"] == "passed"


# Defining a backend registers it everywhere: these are taken out again, and put in per test (above).
for _registry, _name in ((CUTTERS, HOLED), (CUTTERS, HALOED), (COMPOSITORS, FLOATING), (ENHANCERS, REWRITER)):
    _registry._backends.pop(_name, None)


@pytest.mark.parametrize("name", ["example", *(p.name for p in LABEL_SET)])
def test_the_published_label_reads_as_the_source_label(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The example and the label set through the whole pipeline, real u2netp and PP-OCR models: the label
    read in the published image (where the source's lines were placed) is the source's, character for character."""
    models = only("pp-ocrv4", "u2netp", folder=tmp_path)
    if name == "example":
        product = Path(__file__).resolve().parents[2] / "examples" / "olive-oil-bottle.jpg"
    else:
        product = tmp_path / f"{name}.png"
        Image.fromarray(next(p for p in LABEL_SET if p.name == name).render()).save(product)
    _settings(monkeypatch, MODELS_DIR=str(models))
    manifest = place(product, prompts=["a wooden table", "white minimal studio"], format="png", out=str(tmp_path / "o"))
    source = np.asarray(Image.open(product).convert("RGB"))
    expected = [line.text for line in source_label(source, f"test-{name}", get_settings().enhance.ocr) or []]
    assert len(expected) >= 3, expected
    for variant in manifest["variants"]:
        label = next(c for c in variant["quality"]["checks"] if c["name"] == "label")
        assert label["status"] == "pass" and label["score"] == 0.0, label["detail"]
        assert variant["verdict"] == "passed", variant["quality"]
        assert variant["stages"]["cutout"]["backend"] == "u2net"
        # ...and read afresh from the published file, independently of the gate (detection included)
        published = np.asarray(Image.open(Path(manifest["location"]) / variant["image"]).convert("RGB"))
        x0, y0, x1, y1 = variant["product_box"]
        lines = label_text(published[y0:y1, x0:x1], options=get_settings().enhance.ocr)
        assert label_error(expected, [line.text for line in lines]) <= 0.05, (expected, [line.text for line in lines])
