"""The a1111 scene and harmonize backends against a local fake AUTOMATIC1111 server."""

from __future__ import annotations

import base64
import io
import socket
import time
from typing import Any

import numpy as np
import pytest
from PIL import Image

from placewright.errors import TransientBackendError
from placewright.harmonize import harmonize
from placewright.harmonize.a1111 import A1111Harmonizer
from placewright.scene import generate_scene
from placewright.scene.a1111 import A1111Scene
from placewright.settings import A1111Settings, HarmonizeSettings, SceneSettings
from placewright.types import Size
from tests.fake_http import FakeJsonServer

# What the fake server adds to every channel of an img2img init image ("relit").
RELIGHT = 40


def png_b64(array: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def from_b64(data: str) -> np.ndarray:
    with Image.open(io.BytesIO(base64.b64decode(data))) as image:
        return np.asarray(image).copy()


def scene_image(width: int, height: int) -> np.ndarray:
    """A wall (top 60%) over a darker table: something the locate stage can work with."""
    image = np.full((height, width, 3), (200, 190, 170), np.uint8)
    image[int(height * 0.6) :] = (120, 80, 50)
    return image


class FakeA1111(FakeJsonServer):
    """A tiny AUTOMATIC1111 API on 127.0.0.1: POST /sdapi/v1/txt2img and /sdapi/v1/img2img.

    ``status``: 200 answers with one base64 PNG (txt2img: a wall-and-table scene of the requested
    size, rounded down to multiples of ``round_to``; img2img: the init image brightened by RELIGHT);
    ``"garbage"`` answers 200 with an undecodable image; other numbers an error body. ``delay``
    seconds pass before answering. Every request is kept in ``requests`` (path, auth, body).
    """

    def __init__(self, status: int | str = 200, *, round_to: int = 1, delay: float = 0.0) -> None:
        self.status, self.round_to, self.delay = status, round_to, delay
        super().__init__()

    def answer(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        time.sleep(self.delay)
        if self.status == "garbage":
            return 200, {"images": ["this is not a png"], "parameters": {}, "info": ""}
        if self.status != 200:
            return int(self.status), {"error": "boom", "detail": "the GPU caught fire"}
        if path == "/sdapi/v1/txt2img":
            r = self.round_to
            image = scene_image(body["width"] // r * r, body["height"] // r * r)
        elif path == "/sdapi/v1/img2img":
            init = from_b64(body["init_images"][0])
            image = np.clip(init.astype(np.int16) + RELIGHT, 0, 255).astype(np.uint8)
        else:
            return 404, {"detail": "Not Found"}
        return 200, {"images": [png_b64(image)], "parameters": {}, "info": "{}"}


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def a1111(url: str, **extra: Any) -> A1111Settings:
    return A1111Settings(base_url=url, **extra)


def composite() -> tuple[np.ndarray, np.ndarray]:
    """A (48, 64, 3) composite and its product alpha: a solid block with a soft 1-px rim."""
    rng = np.random.default_rng(3)
    image = rng.integers(0, 200, (48, 64, 3), dtype=np.uint8)
    alpha = np.zeros((48, 64), np.uint8)
    alpha[11:41, 19:45] = 128
    alpha[12:40, 20:44] = 255
    return image, alpha


def test_unavailable_without_a_base_url_and_never_probes() -> None:
    assert A1111Scene.unavailable_reason(SceneSettings()) == "no AUTOMATIC1111 server configured (scene.a1111.base_url)"
    assert "harmonize.a1111.base_url" in A1111Harmonizer.unavailable_reason(HarmonizeSettings())
    down = closed_port_url()
    assert A1111Scene.unavailable_reason(SceneSettings(a1111=a1111(down))) is None  # configured: no network check
    assert A1111Scene.source(SceneSettings(a1111=a1111(down + "/"))) == down + "/sdapi/v1/txt2img"
    assert A1111Harmonizer.source(HarmonizeSettings(a1111=a1111(down))) == down + "/sdapi/v1/img2img"
    result = generate_scene("studio", size=Size(64, 48), seed=1, surface="table", options=SceneSettings())
    assert result.record.backend == "procedural"
    assert "a1111: no AUTOMATIC1111 server configured (scene.a1111.base_url)" in result.record.skipped


def test_scene_sends_the_request_fields_and_fits_the_answer_exactly() -> None:
    with FakeA1111(round_to=8) as server:
        options = SceneSettings(
            a1111=a1111(server.url, steps=7, cfg_scale=5.5, sampler="Euler a", negative_prompt="no people")
        )
        result = generate_scene("a sunny beach", size=Size(100, 60), seed=42, surface="table", options=options)
    assert result.record.backend == "a1111" and result.record.error is None
    assert result.image.shape == (60, 100, 3) and result.image.dtype == np.uint8
    assert result.surface is None
    # The answer (96x56) was covered and centre-cropped, not stretched: wall over table, as sent.
    assert tuple(result.image[5, 50]) == (200, 190, 170) and tuple(result.image[55, 50]) == (120, 80, 50)
    (request,) = server.requests
    body = request["body"]
    assert request["path"] == "/sdapi/v1/txt2img" and request["auth"] is None
    assert body["prompt"].startswith("a sunny beach, an empty table in the foreground"), "scene.prompt_template"
    assert (body["negative_prompt"], body["seed"]) == ("no people", 42)
    assert (body["width"], body["height"], body["steps"], body["cfg_scale"]) == (100, 60, 7, 5.5)
    assert body["sampler_name"] == "Euler a"


def test_basic_auth_header_when_configured() -> None:
    with FakeA1111() as server:
        options = SceneSettings(a1111=a1111(server.url, username="ada", password="s3cret"))
        generate_scene("studio", size=Size(32, 32), seed=0, surface="table", options=options)
    expected = "Basic " + base64.b64encode(b"ada:s3cret").decode()
    assert server.requests[0]["auth"] == expected


def test_harmonize_keeps_the_product_and_relights_around_it() -> None:
    image, alpha = composite()
    before = image.copy()
    with FakeA1111() as server:
        options = HarmonizeSettings(a1111=a1111(server.url, mask_blur=5, steps=9))
        result = harmonize(image, alpha, seed=0, prompt=None, options=options)
    assert result.record.backend == "a1111"
    np.testing.assert_array_equal(image, before)  # input not mutated
    solid = alpha == 255
    np.testing.assert_array_equal(result.image[solid], image[solid])  # product pixels unchanged
    outside = alpha == 0
    expected = np.clip(image.astype(np.int16) + RELIGHT, 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(result.image[outside], expected[outside])  # the server's relit surroundings
    (request,) = server.requests
    body = request["body"]
    assert request["path"] == "/sdapi/v1/img2img"
    assert body["inpainting_mask_invert"] == 1 and body["denoising_strength"] == 0.35
    assert (body["inpainting_fill"], body["inpaint_full_res"], body["mask_blur"]) == (1, False, 5)
    assert (body["steps"], body["width"], body["height"]) == (9, 64, 48)
    assert isinstance(body["seed"], int) and body["prompt"]
    np.testing.assert_array_equal(from_b64(body["init_images"][0]), image)
    np.testing.assert_array_equal(from_b64(body["mask"]), alpha)  # the product mask itself, (48, 64)


def test_harmonize_strength_is_the_denoising_strength_and_the_size_is_restored() -> None:
    image, alpha = composite()
    direct = A1111Harmonizer(HarmonizeSettings(strength=0.6, a1111=a1111("http://unused")))
    payload = direct.payload(image, alpha, prompt="a kitchen", seed=7)
    assert (payload["denoising_strength"], payload["seed"]) == (0.6, 7)
    assert payload["prompt"] == f"a kitchen, {HarmonizeSettings().prompt}", (
        "the variant's prompt, then harmonize.prompt"
    )
    assert direct.payload(image, alpha, prompt=None, seed=7)["prompt"] == HarmonizeSettings().prompt
    with FakeA1111() as server:
        server.answer = lambda path, body: (200, {"images": [png_b64(scene_image(32, 24))]})  # a rounded size
        out = A1111Harmonizer(HarmonizeSettings(a1111=a1111(server.url)))(image, alpha, prompt=None, seed=0)
    assert out.shape == image.shape and out.dtype == np.uint8


@pytest.mark.parametrize("stage", ["scene", "harmonize"])
def test_http_500_is_transient_then_falls_back_with_the_reason(stage: str) -> None:
    image, alpha = composite()
    with FakeA1111(500) as server:

        def run(raise_transient: bool):
            if stage == "scene":
                options = SceneSettings(a1111=a1111(server.url))
                return generate_scene(
                    "x", size=Size(32, 32), seed=0, surface="table", options=options, raise_transient=raise_transient
                )
            options = HarmonizeSettings(a1111=a1111(server.url))
            return harmonize(image, alpha, seed=0, prompt=None, options=options, raise_transient=raise_transient)

        with pytest.raises(TransientBackendError, match="HTTP 500"):
            run(True)
        result = run(False)
    assert result.record.backend == ("procedural" if stage == "scene" else "classical")
    assert result.record.fallback_from == "a1111"
    assert "TransientBackendError" in result.record.error and "the GPU caught fire" in result.record.error
    assert len(server.requests) == 2


@pytest.mark.parametrize(("status", "why"), [(400, "HTTP 400"), (404, "HTTP 404"), ("garbage", "cannot be decoded")])
def test_client_errors_and_malformed_answers_fall_back_at_once(status: int | str, why: str) -> None:
    with FakeA1111(status) as server:
        options = SceneSettings(a1111=a1111(server.url))
        # Not transient: even when transient errors are re-raised, the stage falls back at once.
        result = generate_scene("x", size=Size(32, 32), seed=0, surface="table", options=options, raise_transient=True)
    assert result.record.backend == "procedural" and result.record.fallback_from == "a1111"
    assert "StageFailed" in result.record.error and why in result.record.error


def test_a_down_server_falls_back_with_the_reason() -> None:
    image, alpha = composite()
    down = closed_port_url()
    scene = generate_scene("x", size=Size(32, 32), seed=0, surface="table", options=SceneSettings(a1111=a1111(down)))
    assert scene.record.backend == "procedural" and scene.record.fallback_from == "a1111"
    assert "cannot reach" in scene.record.error
    harmonized = harmonize(image, alpha, seed=0, prompt=None, options=HarmonizeSettings(a1111=a1111(down)))
    assert harmonized.record.backend == "classical" and "cannot reach" in harmonized.record.error
    with pytest.raises(TransientBackendError):
        harmonize(image, alpha, seed=0, prompt=None, options=HarmonizeSettings(a1111=a1111(down)), raise_transient=True)


def test_a_timeout_is_transient() -> None:
    with FakeA1111(delay=1.0) as server:
        options = SceneSettings(a1111=a1111(server.url, timeout_seconds=0.2))
        with pytest.raises(TransientBackendError, match="timed out"):
            generate_scene("x", size=Size(32, 32), seed=0, surface="table", options=options, raise_transient=True)
