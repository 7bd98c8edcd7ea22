"""Publishing a run to a local folder: images first, manifest last, idempotent, clean on failure."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms

import placewright.publish as publish_module
from placewright.analyze import Analysis
from placewright.backends import StageRecord
from placewright.publish import FinishedVariant, PublishedRun, new_run_id, publish_run
from placewright.request import Product, Variant
from placewright.settings import OutputSettings, StorageSettings
from placewright.storage import open_location
from placewright.types import Box, Surface


def _publish(
    root: Path, run_id: str, variants: list[FinishedVariant], output: OutputSettings, **storage
) -> PublishedRun:
    return publish_run(
        location=open_location(str(root), StorageSettings(**storage)),
        run_path=run_id,
        run_id=run_id,
        created_at="2026-11-22T05:00:00+00:00",
        **product_parts(),
        variants=variants,
        output=output,
    )


def product_parts() -> dict:
    """The product side of a run: what it is, its cut-out and its analysis."""
    cutout = np.zeros((50, 30, 4), np.uint8)
    cutout[5:45, 5:25] = (200, 30, 30, 255)
    return {
        "product": Product(source="bottle.png", sha256="ab" * 32),
        "cutout": cutout,
        "analysis": Analysis(name="bottle", category="bottle", size_fraction=0.4, aspect=1.6),
    }


def finished(index: int, image: np.ndarray, **extra) -> FinishedVariant:
    """A finished variant of prompt ``scene number <index>``."""
    stages = {
        "cutout": StageRecord("grabcut", 0.1),
        "scene": StageRecord("procedural", 0.05, fallback_from="flux", error="flux: no weights"),
    }
    return FinishedVariant(
        variant=Variant(index=index, seed=7 + index, prompt=f"scene number {index}", background=None),
        image=image,
        product_box=Box(10, 10, 30, 50),
        surface=Surface(line_y=50, center_x=20, box=None, backend="band"),
        stages=extra.pop("stages", stages),
        **extra,
    )


def _variants(n: int = 2) -> list[FinishedVariant]:
    return [finished(i, np.full((64, 96, 3), 40 * i, np.uint8)) for i in range(n)]


@pytest.mark.parametrize("fmt", ["webp", "jpeg", "png"])
def test_run_folder_contents(tmp_path: Path, fmt: str) -> None:
    published = _publish(tmp_path, "r1", _variants(), OutputSettings(format=fmt))
    manifest = published.manifest
    run_dir = tmp_path / "r1"
    on_disk = json.loads((run_dir / "manifest.json").read_text())
    assert on_disk == manifest.model_dump(mode="json")
    assert on_disk["location"] == str(run_dir.resolve())
    assert on_disk["urls_expire_at"] is None
    assert published.manifest_url == (run_dir / "manifest.json").resolve().as_uri()
    assert Image.open(run_dir / "product" / "cutout.png").mode == "RGBA"
    assert len(on_disk["variants"]) == 2
    for variant in on_disk["variants"]:
        image = Image.open(run_dir / variant["image"])
        assert image.format == {"webp": "WEBP", "jpeg": "JPEG", "png": "PNG"}[fmt]
        assert (variant["width"], variant["height"]) == image.size == (96, 64)
        assert variant["bytes"] == (run_dir / variant["image"]).stat().st_size
        assert variant["url"] == (run_dir / variant["image"]).resolve().as_uri()
        assert variant["preview"] is None, "a 96x64 image needs no 512 px preview"
        assert variant["stages"]["scene"]["fallback_from"] == "flux"
        assert variant["stages"]["cutout"]["backend"] == "grabcut"
    assert [p.name for p in tmp_path.iterdir()] == ["r1"]
    assert not list(run_dir.rglob("*.partial"))


@pytest.mark.parametrize("fmt", ["webp", "jpeg", "png"])
def test_web_ready_outputs_have_a_preview_and_an_srgb_profile(tmp_path: Path, fmt: str) -> None:
    variants = [replace_image(v, np.full((600, 900, 3), 90, np.uint8)) for v in _variants(1)]
    manifest = _publish(tmp_path, "w", variants, OutputSettings(format=fmt, preview_side=300)).manifest
    entry = manifest.variants[0]
    full = Image.open(tmp_path / "w" / entry.image)
    preview = Image.open(tmp_path / "w" / str(entry.preview))
    assert full.size == (900, 600) and preview.size == (300, 200)
    assert entry.preview_url == (tmp_path / "w" / str(entry.preview)).resolve().as_uri()
    for image in (full, preview, Image.open(tmp_path / "w" / "product" / "cutout.png")):
        profile = ImageCms.ImageCmsProfile(io.BytesIO(image.info["icc_profile"]))
        assert "sRGB" in ImageCms.getProfileDescription(profile), "the sRGB profile is embedded"
    if fmt == "jpeg":
        assert full.info.get("progressive") or full.info.get("progression"), "JPEGs are progressive"


def test_no_profile_and_no_preview_when_turned_off(tmp_path: Path) -> None:
    variants = [replace_image(v, np.full((600, 900, 3), 90, np.uint8)) for v in _variants(1)]
    manifest = _publish(tmp_path, "n", variants, OutputSettings(preview_side=0, srgb_profile=False)).manifest
    assert manifest.variants[0].preview is None
    assert "icc_profile" not in Image.open(tmp_path / "n" / manifest.variants[0].image).info
    assert sorted(p.name for p in (tmp_path / "n").iterdir()) == sorted(
        ["manifest.json", "product", manifest.variants[0].image, "contact-sheet.webp", "index.html"]
    )


def test_failure_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from placewright.storage import Location

    calls = {"n": 0}
    real = Location.write

    def fail_on_third_object(self, item):
        calls["n"] += 1
        if calls["n"] == 3:  # cut-out and a variant are written, then the disk fills up
            raise OSError("disk full")
        return real(self, item)

    monkeypatch.setattr(Location, "write", fail_on_third_object)
    monkeypatch.setattr(publish_module, "PUBLISH_THREADS", 1)  # a fixed order of writes
    with pytest.raises(OSError, match="disk full"):
        _publish(tmp_path, "r2", _variants(), OutputSettings())
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_publishing_again_writes_nothing_new(tmp_path: Path) -> None:
    first = _publish(tmp_path, "r3", _variants(), OutputSettings())
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "r3").rglob("*") if p.is_file()}
    second = _publish(tmp_path, "r3", _variants(), OutputSettings())
    assert second.written == [] and len(second.unchanged) == len(first.written) == len(stamps)
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "r3").rglob("*") if p.is_file()} == stamps
    assert second.manifest == first.manifest


def test_a_changed_run_replaces_what_changed(tmp_path: Path) -> None:
    _publish(tmp_path, "r4", _variants(), OutputSettings())
    changed = _variants()
    changed[1] = replace_image(changed[1], np.full((64, 96, 3), 222, np.uint8))
    again = _publish(tmp_path, "r4", changed, OutputSettings())
    # the variant, and what shows it: the contact sheet and the manifest (the gallery's links did not change)
    shows = ["r4/contact-sheet.webp", "r4/manifest.json"]
    assert sorted(again.written) == sorted(["r4/" + again.manifest.variants[1].image, *shows])
    on_disk = np.asarray(Image.open(tmp_path / "r4" / again.manifest.variants[1].image).convert("RGB"))
    assert abs(int(on_disk.mean()) - 222) <= 2


def test_public_base_url(tmp_path: Path) -> None:
    manifest = _publish(tmp_path, "p", _variants(1), OutputSettings(), public_base_url="https://cdn.example.com/ads/")
    assert manifest.manifest.variants[0].url == f"https://cdn.example.com/ads/p/{manifest.manifest.variants[0].image}"
    assert manifest.manifest.product.cutout_url == "https://cdn.example.com/ads/p/product/cutout.png"
    assert manifest.manifest_url == "https://cdn.example.com/ads/p/manifest.json"


def replace_image(variant: FinishedVariant, image: np.ndarray) -> FinishedVariant:
    import dataclasses

    return dataclasses.replace(variant, image=image)


def test_run_ids_are_unique_and_sortable() -> None:
    ids = {new_run_id() for _ in range(50)}
    assert len(ids) == 50
    assert all(len(i) == len("20261122T041502Z-3f9a1c") for i in ids)


def test_file_names_follow_the_scene() -> None:
    prompt = Variant(index=3, seed=0, prompt="Sunlit marble counter, morning!", background=None)
    assert publish_module.variant_filename(prompt, "jpeg") == "variant-03-sunlit-marble-counter-morning.jpg"
    assert publish_module.variant_filename(prompt.model_copy(update={"prompt": "???"}), "png") == "variant-03-scene.png"
    background = Variant(index=1, seed=0, prompt=None, background="/shots/Cafe Terrace.v2.jpg")
    assert (
        publish_module.variant_filename(background, "webp", preview=True) == "variant-01-cafe-terrace-v2.preview.webp"
    )


@pytest.mark.parametrize(("fmt", "lossless"), [("png", True), ("webp", False), ("jpeg", False)])
def test_product_fidelity_is_measured_on_the_published_file(tmp_path: Path, fmt: str, lossless: bool) -> None:
    rng = np.random.default_rng(0)
    composite = rng.integers(0, 256, (64, 96, 3), dtype=np.uint8)  # noisy: lossy codecs must change it
    alpha = np.zeros((64, 96), np.uint8)
    alpha[10:50, 20:60] = 255
    variant = finished(0, composite.copy(), stages={}, composite=composite, product_alpha=alpha)
    manifest = _publish(tmp_path, "f", [variant], OutputSettings(format=fmt)).manifest
    fidelity = manifest.variants[0].product_fidelity
    assert (fidelity == 0) if lossless else (fidelity is not None and fidelity > 0)


def test_product_fidelity_sees_a_changed_label(tmp_path: Path) -> None:
    composite = np.full((64, 96, 3), 100, np.uint8)
    alpha = np.zeros((64, 96), np.uint8)
    alpha[10:50, 20:60] = 255
    final = composite.copy()
    final[30, 40] = (140, 100, 100)  # one product pixel drifted by 40
    variant = finished(0, final, stages={}, composite=composite, product_alpha=alpha)
    manifest = _publish(tmp_path, "g", [variant], OutputSettings(format="png")).manifest
    assert manifest.variants[0].product_fidelity == 40
