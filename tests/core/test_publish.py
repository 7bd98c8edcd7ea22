"""Publishing a run folder: complete or absent, with a manifest that describes it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import placewright.publish as publish_module
from placewright.backends import StageRecord
from placewright.publish import ProductOutput, VariantOutput, new_run_id, publish_run, slugify
from placewright.settings import OutputSettings
from placewright.types import Box


def _product() -> ProductOutput:
    cutout = np.zeros((50, 30, 4), np.uint8)
    cutout[5:45, 5:25] = (200, 30, 30, 255)
    return ProductOutput(
        source="bottle.png",
        sha256="ab" * 32,
        cutout=cutout,
        analysis={"name": "bottle", "category": "bottle", "size_fraction": 0.4, "aspect": 1.6, "backend": "heuristic"},
        stages={"cutout": StageRecord("grabcut", 0.1)},
    )


def _variants(n: int = 2) -> list[VariantOutput]:
    return [
        VariantOutput(
            index=i,
            seed=7 + i,
            prompt=f"scene number {i}",
            image=np.full((64, 96, 3), 40 * i, np.uint8),
            product_box=Box(10, 10, 30, 50),
            surface_box=None,
            surface_line_y=50,
            stages={"scene": StageRecord("procedural", 0.05, fallback_from="flux", error="flux: no weights")},
        )
        for i in range(n)
    ]


@pytest.mark.parametrize("fmt", ["webp", "jpeg", "png"])
def test_run_folder_contents(tmp_path: Path, fmt: str) -> None:
    manifest = publish_run(
        out_dir=str(tmp_path), run_id="r1", product=_product(), variants=_variants(), output=OutputSettings(format=fmt)
    )
    run_dir = tmp_path / "r1"
    on_disk = json.loads((run_dir / "manifest.json").read_text())
    assert on_disk == manifest.model_dump(mode="json")
    assert Image.open(run_dir / "product" / "cutout.png").mode == "RGBA"
    assert len(on_disk["variants"]) == 2
    for variant in on_disk["variants"]:
        image = Image.open(run_dir / variant["image"])
        assert image.format == {"webp": "WEBP", "jpeg": "JPEG", "png": "PNG"}[fmt]
        assert (variant["width"], variant["height"]) == image.size == (96, 64)
        assert variant["url"] == (run_dir / variant["image"]).resolve().as_uri()
        assert variant["stages"]["scene"]["fallback_from"] == "flux"
        assert variant["stages"]["cutout"]["backend"] == "grabcut"
    assert [p.name for p in tmp_path.iterdir()] == ["r1"]


def test_failure_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"n": 0}
    real = publish_module.encode_image

    def fail_on_second_variant(pixels, fmt, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:  # cut-out, variant 0, then variant 1 fails
            raise OSError("disk full")
        return real(pixels, fmt, **kwargs)

    monkeypatch.setattr(publish_module, "encode_image", fail_on_second_variant)
    with pytest.raises(OSError, match="disk full"):
        publish_run(
            out_dir=str(tmp_path), run_id="r2", product=_product(), variants=_variants(), output=OutputSettings()
        )
    assert list(tmp_path.iterdir()) == []


def test_existing_run_folder_is_not_overwritten(tmp_path: Path) -> None:
    (tmp_path / "r3").mkdir()
    with pytest.raises(FileExistsError):
        publish_run(
            out_dir=str(tmp_path), run_id="r3", product=_product(), variants=_variants(), output=OutputSettings()
        )


def test_run_ids_are_unique_and_sortable() -> None:
    ids = {new_run_id() for _ in range(50)}
    assert len(ids) == 50
    assert all(len(i) == len("20261122T041502Z-3f9a1c") for i in ids)


def test_slugify() -> None:
    assert slugify("Sunlit marble counter, morning!") == "sunlit-marble-counter-morning"
    assert slugify("???") == "scene"


@pytest.mark.parametrize(("fmt", "lossless"), [("png", True), ("webp", False), ("jpeg", False)])
def test_product_fidelity_is_measured_on_the_published_file(tmp_path: Path, fmt: str, lossless: bool) -> None:
    rng = np.random.default_rng(0)
    composite = rng.integers(0, 256, (64, 96, 3), dtype=np.uint8)  # noisy: lossy codecs must change it
    alpha = np.zeros((64, 96), np.uint8)
    alpha[10:50, 20:60] = 255
    variant = VariantOutput(
        index=0,
        seed=0,
        prompt="p",
        image=composite.copy(),
        product_box=Box(20, 10, 60, 50),
        surface_box=None,
        surface_line_y=50,
        stages={},
        composite=composite,
        product_alpha=alpha,
    )
    manifest = publish_run(
        out_dir=str(tmp_path), run_id="f", product=_product(), variants=[variant], output=OutputSettings(format=fmt)
    )
    fidelity = manifest.variants[0].product_fidelity
    assert (fidelity == 0) if lossless else (fidelity is not None and fidelity > 0)


def test_product_fidelity_sees_a_changed_label(tmp_path: Path) -> None:
    composite = np.full((64, 96, 3), 100, np.uint8)
    alpha = np.zeros((64, 96), np.uint8)
    alpha[10:50, 20:60] = 255
    final = composite.copy()
    final[30, 40] = (140, 100, 100)  # one product pixel drifted by 40
    variant = VariantOutput(
        index=0,
        seed=0,
        prompt="p",
        image=final,
        product_box=Box(20, 10, 60, 50),
        surface_box=None,
        surface_line_y=50,
        stages={},
        composite=composite,
        product_alpha=alpha,
    )
    manifest = publish_run(
        out_dir=str(tmp_path), run_id="g", product=_product(), variants=[variant], output=OutputSettings(format="png")
    )
    assert manifest.variants[0].product_fidelity == 40
