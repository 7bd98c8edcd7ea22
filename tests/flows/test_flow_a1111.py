"""The place-product flow with scenes and harmonization from a (fake) AUTOMATIC1111 server."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.core.test_a1111 import FakeA1111, closed_port_url
from tests.flows.runs import place

pytestmark = pytest.mark.usefixtures("prefect_server")


def _point_at(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLACEWRIGHT_SCENE__A1111__BASE_URL", url)
    monkeypatch.setenv("PLACEWRIGHT_HARMONIZE__A1111__BASE_URL", url)
    monkeypatch.setenv("PLACEWRIGHT_RETRY__DELAY_SECONDS", "[0,0]")


def test_flow_uses_the_a1111_server_for_scene_and_harmonize(
    example_product: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeA1111(round_to=8) as server:
        _point_at(server.url, monkeypatch)
        # The fake server's img2img answer is not a relit scene (the quality gate would make the variant
        # again, with more requests): here only the requests count.
        monkeypatch.setenv("PLACEWRIGHT_QUALITY__RETRIES", "0")
        monkeypatch.setenv("PLACEWRIGHT_SCENE__A1111__USERNAME", "ada")
        monkeypatch.setenv("PLACEWRIGHT_SCENE__A1111__PASSWORD", "s3cret-pw")
        started = time.perf_counter()
        manifest = place(
            example_product, prompts=["sunny kitchen"], surface="shelf", size="260x200", seed=5, out=str(tmp_path)
        )
        print(f"flow with a1111: {time.perf_counter() - started:.2f} s")
    variant = manifest["variants"][0]
    assert (variant["width"], variant["height"]) == (260, 200)
    for stage in ("scene", "harmonize"):
        assert variant["stages"][stage]["backend"] == "a1111" and variant["stages"][stage]["error"] is None
    paths = [r["path"] for r in server.requests]
    assert paths == ["/sdapi/v1/txt2img", "/sdapi/v1/img2img"]
    txt2img, img2img = (r["body"] for r in server.requests)
    assert txt2img["prompt"].startswith("sunny kitchen, an empty shelf in the foreground"), "the run's surface"
    assert (txt2img["seed"], txt2img["width"], txt2img["height"]) == (5, 260, 200)
    assert img2img["seed"] == 5 and img2img["prompt"].startswith("sunny kitchen, "), "the variant's seed and prompt"
    assert server.requests[0]["auth"].startswith("Basic ") and server.requests[1]["auth"] is None
    assert img2img["inpainting_mask_invert"] == 1 and img2img["denoising_strength"] == 0.35
    saved = (tmp_path / manifest["run_id"] / "manifest.json").read_text()
    assert "s3cret-pw" not in saved and json.loads(saved)["variants"][0]["stages"]["scene"]["backend"] == "a1111"


def test_flow_falls_back_when_the_server_is_down(
    example_product: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _point_at(closed_port_url(), monkeypatch)
    started = time.perf_counter()
    manifest = place(example_product, prompts=["white studio"], size="256x256", out=str(tmp_path))
    print(f"flow with a1111 down: {time.perf_counter() - started:.2f} s")
    stages = manifest["variants"][0]["stages"]
    assert stages["scene"]["backend"] == "procedural" and stages["harmonize"]["backend"] == "classical"
    for stage in ("scene", "harmonize"):
        assert stages[stage]["fallback_from"] == "a1111"
        assert "TransientBackendError" in stages[stage]["error"] and "cannot reach" in stages[stage]["error"]
