"""The place-product flow end to end on the embedded classical backends, against a Prefect test server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from PIL import Image

from placewright.enhance import ENHANCERS, Enhancer
from placewright.errors import TransientBackendError
from tests.flows.runs import place, place_state

pytestmark = pytest.mark.usefixtures("prefect_server")

STAGES = ["enhance", "cutout", "analyze", "scene", "locate", "composite", "harmonize"]


def test_two_variants_end_to_end(example_product: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    manifest = place(
        example_product,
        prompts=["sunlit marble counter", "rustic wooden table"],
        size="640x512",
        seed=3,
        out=str(out),
    )
    run_dir = out / manifest["run_id"]
    assert json.loads((run_dir / "manifest.json").read_text()) == manifest
    assert manifest["product"]["sha256"] and manifest["product"]["analysis"]["category"] == "bottle"

    cutout = np.asarray(Image.open(run_dir / manifest["product"]["cutout"]))
    assert cutout.shape[2] == 4
    assert cutout[..., 3].max() == 255 and cutout[0, 0, 3] == 0 and cutout[-1, -1, 3] == 0

    assert [v["index"] for v in manifest["variants"]] == [0, 1]
    assert [v["seed"] for v in manifest["variants"]] == [3, 4]
    for variant in manifest["variants"]:
        image = Image.open(run_dir / variant["image"])
        assert image.format == "WEBP" and image.size == (640, 512)
        assert variant["url"].startswith("file://") and variant["url"].endswith(variant["image"])
        x0, y0, x1, y1 = variant["product_box"]
        assert 0 <= x0 < x1 <= 640 and 0 <= y0 < y1 <= 512, "product fully in frame"
        assert abs(y1 - variant["surface_line_y"]) <= 3, "base rests on the surface line"
        assert list(variant["stages"]) == STAGES
        assert all(s["error"] is None for s in variant["stages"].values())
        assert variant["stages"]["scene"]["backend"] == "procedural"
        assert 0 <= variant["product_fidelity"] <= 40, "WebP at quality 90 changes product pixels only a little"
    first, second = (np.asarray(Image.open(run_dir / v["image"])) for v in manifest["variants"])
    assert np.abs(first.astype(int) - second).mean() > 5, "two prompts give two different scenes"
    assert _latest_artifact_markdown().count(manifest["run_id"]) >= 1


def _latest_artifact_markdown() -> str:
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    with get_client(sync_client=True) as client:  # the newest (the session's server holds every test's runs)
        (artifact,) = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["place-product-run"])),
            sort=ArtifactSort.CREATED_DESC,
            limit=1,
        )
    text = artifact.data
    assert "| 0 | sunlit marble counter |" in text and "| 1 | rustic wooden table |" in text
    assert "scene: procedural" in text and "cutout: grabcut" in text
    return text


def test_background_variant(example_product: Path, tmp_path: Path) -> None:
    background = tmp_path / "kitchen.png"
    rows = np.linspace(200, 90, 600)[:, None, None] * np.ones((600, 900, 3))
    rows[380:] = (120, 80, 50)  # a table below row 380
    Image.fromarray(rows.astype(np.uint8)).save(background)
    manifest = place(example_product, backgrounds=[str(background)], size="600x400", out=str(tmp_path))
    (variant,) = manifest["variants"]
    assert variant["prompt"] is None and variant["background"] == str(background)
    assert variant["stages"]["scene"]["backend"] == "provided"
    assert variant["width"] == 600 and variant["height"] == 400


def test_second_run_reuses_cached_stages(example_product: Path, tmp_path: Path, stage_calls: dict) -> None:
    args = dict(prompts=["white studio"], size="512x512", out=str(tmp_path / "out"))
    first = place(example_product, **args)
    assert all(n == 1 for n in stage_calls.values()), stage_calls
    second = place(example_product, **args)
    assert all(n == 1 for n in stage_calls.values()), f"stages ran again: {stage_calls}"
    assert first["run_id"] != second["run_id"]
    a, b = (np.asarray(Image.open(tmp_path / "out" / m["run_id"] / m["variants"][0]["image"])) for m in (first, second))
    assert np.array_equal(a, b)


def test_cache_follows_content_not_path(example_product: Path, tmp_path: Path, stage_calls: dict) -> None:
    copy = tmp_path / "renamed.jpg"
    copy.write_bytes(example_product.read_bytes())
    place(example_product, prompts=["white studio"], size="512x512", out=str(tmp_path))
    place(copy, prompts=["white studio"], size="512x512", out=str(tmp_path))
    assert stage_calls["cutout"] == 1 and stage_calls["enhance"] == 1
    assert stage_calls["analyze"] == 2, "the file name is part of the analysis input"


class _Flaky(Enhancer):
    """An enhance backend that fails transiently a set number of times (registered per test, below)."""

    name = "flaky"
    version = "1"
    failures_left: ClassVar[int] = 0
    calls: ClassVar[int] = 0

    def __call__(self, image: np.ndarray) -> tuple[np.ndarray, float]:
        type(self).calls += 1
        if type(self).failures_left > 0:
            type(self).failures_left -= 1
            raise TransientBackendError("HTTP 503 from the upscaler")
        return image.copy(), 1.0


ENHANCERS._backends.pop(_Flaky.name)  # defining it registered it everywhere; each test puts it in for itself


@pytest.mark.parametrize(("failures", "expected_backend"), [(1, "flaky"), (5, "lanczos")])
def test_transient_failures_retry_then_fall_back(
    example_product: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failures: int, expected_backend: str
) -> None:
    monkeypatch.setitem(ENHANCERS._backends, "flaky", _Flaky)
    monkeypatch.setattr(_Flaky, "failures_left", failures)
    monkeypatch.setattr(_Flaky, "calls", 0)
    monkeypatch.setenv("PLACEWRIGHT_ENHANCE__BACKEND", "flaky")
    monkeypatch.setenv("PLACEWRIGHT_RETRY__DELAY_SECONDS", "[0, 0]")
    manifest = place(example_product, size="256x256", out=str(tmp_path))
    record = manifest["variants"][0]["stages"]["enhance"]
    assert record["backend"] == expected_backend
    if expected_backend == "flaky":
        assert _Flaky.calls == 2 and record["error"] is None
    else:
        assert _Flaky.calls == 3, "two retries, then the fallback on the last attempt"
        assert record["fallback_from"] == "flaky" and "HTTP 503" in record["error"]
    # A fallback after failures is not cached: the next run tries the preferred backend again.
    monkeypatch.setattr(_Flaky, "failures_left", 0)
    again = place(example_product, size="256x256", out=str(tmp_path))
    assert again["variants"][0]["stages"]["enhance"]["backend"] == "flaky"
    assert _Flaky.calls == (2 if expected_backend == "flaky" else 4), "healthy results are reused, degraded are not"


def test_invalid_product_fails_the_run_without_output(tmp_path: Path) -> None:
    bad = tmp_path / "bad.png"
    bad.write_text("nope")
    state = place_state(bad, out=str(tmp_path / "out"))
    assert state.is_failed()
    assert not (tmp_path / "out").exists()
