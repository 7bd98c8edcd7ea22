"""The openai-vision analyzer: the real openai client against a local OpenAI-compatible server."""

from __future__ import annotations

import base64
import io
import json
import time
from typing import Any

import numpy as np
import pytest
from PIL import Image
from pydantic import TypeAdapter

from placewright.analyze import ANALYZERS, Analysis, analyze
from placewright.analyze.llm import OpenAIVisionAnalyzer
from placewright.errors import TransientBackendError
from placewright.settings import AnalyzeSettings
from tests.fake_http import FakeJsonServer

GOOD_ANSWER = {
    "name": "green olive oil bottle",
    "category": "bottle",
    "width_cm": 7.5,
    "height_cm": 29.0,
    "size_fraction": 0.45,
    "placement": "upright on the table, label facing the camera",
    "confidence": 0.86,
}


class FakeOpenAI(FakeJsonServer):
    """A tiny OpenAI-compatible server on 127.0.0.1 answering POST /v1/chat/completions.

    ``replies`` is a queue of ``(status, content, delay_s)``: status 200 sends ``content`` as
    the assistant message, other statuses an error body; the last reply repeats. Every request
    body is kept in ``requests``.
    """

    def __init__(self, replies: list[tuple[int, str, float]]) -> None:
        self.replies = list(replies)
        super().__init__(url_path="/v1")

    def answer(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        status, content, delay = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        time.sleep(delay)
        if path != "/v1/chat/completions":
            status, content = 404, "no such path"
        if status != 200:
            return status, {"error": {"message": content, "type": "server_error"}}
        return status, {
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "created": 0,
            "model": body.get("model"),
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
        }


def good(answer: dict[str, Any] | None = None) -> tuple[int, str, float]:
    return (200, json.dumps(answer or GOOD_ANSWER), 0.0)


@pytest.fixture(autouse=True)
def no_openai_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the key and URL a test configures count, never the developer's own."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


def _options(server: FakeOpenAI, **extra: Any) -> AnalyzeSettings:
    return AnalyzeSettings(llm_base_url=server.url, llm_api_key="sk-test", llm_model="tiny-vision", **extra)


def _bottle(height: int = 900, width: int = 300) -> np.ndarray:
    """An RGBA bottle-like cut-out: opaque green body on a transparent canvas."""
    image = np.zeros((height, width, 4), np.uint8)
    image[40:-40, 60:-60] = (30, 120, 40, 255)
    return image


def _analyze(options: AnalyzeSettings, **kwargs: Any):
    return analyze(_bottle(), filename="IMG_0042.jpg", prompts=["marble counter"], options=options, **kwargs)


def test_good_answer_is_validated_and_the_request_is_well_formed() -> None:
    with FakeOpenAI([good()]) as server:
        started = time.perf_counter()
        result = _analyze(_options(server))
        elapsed = time.perf_counter() - started
    print(f"openai-vision analyze, local server: {elapsed * 1000:.0f} ms")
    a = result.analysis
    assert result.record.backend == "openai-vision" and result.record.error is None
    assert (a.name, a.category, a.width_cm, a.height_cm, a.confidence) == (
        "green olive oil bottle",
        "bottle",
        7.5,
        29.0,
        0.86,
    )
    assert a.placement == "upright on the table, label facing the camera"
    assert a.size_fraction == pytest.approx(0.45) and a.aspect == pytest.approx(820 / 180)
    assert TypeAdapter(Analysis).dump_python(a, mode="json")["height_cm"] == 29.0

    (request,) = server.requests
    assert request["path"] == "/v1/chat/completions" and request["auth"] == "Bearer sk-test"
    body = request["body"]
    assert body["model"] == "tiny-vision"
    fmt = body["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["strict"] is True
    schema = fmt["json_schema"]["schema"]
    assert set(schema["required"]) == set(GOOD_ANSWER) and schema["additionalProperties"] is False
    assert "bottle" in schema["properties"]["category"]["enum"]
    parts = body["messages"][-1]["content"]
    text = next(p["text"] for p in parts if p["type"] == "text")
    assert "IMG_0042.jpg" in text and "marble counter" in text
    url = next(p["image_url"]["url"] for p in parts if p["type"] == "image_url")
    assert url.startswith("data:image/png;base64,")
    sent = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert sent.format == "PNG" and sent.mode == "RGB" and max(sent.size) == 512 and sent.size[1] > sent.size[0]
    pixels = np.asarray(sent)
    assert (pixels[0, 0] == 255).all(), "transparent pixels are flattened on white"
    assert np.abs(pixels[256, 85].astype(int) - (30, 120, 40)).max() <= 2, "the product's colour is kept"


def test_malformed_json_falls_back_to_the_heuristic_with_the_reason() -> None:
    with FakeOpenAI([(200, '{"name": "bottle", "category": ', 0.0)]) as server:
        result = _analyze(_options(server))
    assert result.record.backend == "heuristic" and result.record.fallback_from == "openai-vision"
    assert "malformed JSON" in result.record.error
    assert result.analysis.height_cm is None and len(server.requests) == 1


def test_schema_violation_is_a_permanent_failure() -> None:
    answer = {k: v for k, v in GOOD_ANSWER.items() if k != "height_cm"} | {"confidence": "very"}
    with FakeOpenAI([good(answer)]) as server:
        result = _analyze(_options(server), raise_transient=True)  # not transient: no raise, a fallback
    assert result.record.backend == "heuristic"
    assert "does not match the schema" in result.record.error and "height_cm" in result.record.error
    assert len(server.requests) == 1


def test_out_of_range_values_are_clamped() -> None:
    wild = {
        **GOOD_ANSWER,
        "category": "Wine Bottle",
        "width_cm": -3,
        "height_cm": 5000,
        "size_fraction": 3.0,
        "confidence": 7,
        "name": "  very   " + "long " * 40,
    }
    with FakeOpenAI([good(wild)]) as server:
        a = _analyze(_options(server, size_scale=1.0)).analysis
    assert a.category == "bottle", "an unknown category is matched by keyword"
    assert (a.width_cm, a.height_cm, a.confidence) == (0.5, 300.0, 1.0)
    assert a.size_fraction == 0.75 and len(a.name) == 80 and a.name.startswith("very long")
    with FakeOpenAI([good({**GOOD_ANSWER, "category": "spaceship", "size_fraction": 0.01})]) as server:
        b = _analyze(_options(server)).analysis
    assert b.category == "product" and b.size_fraction == 0.12


def test_http_500_is_transient_then_falls_back() -> None:
    with FakeOpenAI([(500, "upstream exploded", 0.0)]) as server:
        with pytest.raises(TransientBackendError, match="HTTP 500"):
            _analyze(_options(server), raise_transient=True)
        assert len(server.requests) == 1, "the client does not retry on its own (llm_max_retries=0)"
        result = _analyze(_options(server))
    assert result.record.backend == "heuristic" and result.record.fallback_from == "openai-vision"
    assert "TransientBackendError: HTTP 500" in result.record.error and "upstream exploded" in result.record.error


def test_timeout_is_transient_then_falls_back() -> None:
    with FakeOpenAI([(200, json.dumps(GOOD_ANSWER), 1.5)]) as server:
        options = _options(server, llm_timeout_seconds=0.3)
        started = time.perf_counter()
        with pytest.raises(TransientBackendError, match=r"timed out after 0\.3 s"):
            _analyze(options, raise_transient=True)
        assert time.perf_counter() - started < 1.4, "the configured timeout is honoured"
        result = _analyze(options)
    assert result.record.backend == "heuristic" and "timed out" in result.record.error


def test_client_retries_when_configured() -> None:
    with FakeOpenAI([(503, "busy", 0.0), good()]) as server:
        result = _analyze(_options(server, llm_max_retries=1))
    assert result.record.backend == "openai-vision" and len(server.requests) == 2


def test_availability_needs_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    assert "no API key" in OpenAIVisionAnalyzer.unavailable_reason(AnalyzeSettings())
    assert ANALYZERS.signature("auto", AnalyzeSettings()).startswith("openai-vision@-")
    assert OpenAIVisionAnalyzer.unavailable_reason(AnalyzeSettings(llm_api_key="k")) is None
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    assert OpenAIVisionAnalyzer.unavailable_reason(AnalyzeSettings()) is None
    configured = AnalyzeSettings(llm_api_key="sk-from-env", llm_base_url="http://gpu-box:8000/v1")
    assert "sk-from-env" not in repr(configured.model_dump(mode="json")), "the key stays out of cache keys"
    source = OpenAIVisionAnalyzer.source(configured)
    assert source == "gpt-4o-mini at http://gpu-box:8000/v1 (key: analyze.llm_api_key)"


def test_the_openai_environment_variables_reach_the_client(monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeOpenAI([good()]) as server:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
        monkeypatch.setenv("OPENAI_BASE_URL", server.url)
        result = _analyze(AnalyzeSettings())
    assert result.record.backend == "openai-vision"
    assert server.requests[0]["auth"] == "Bearer sk-env" and server.requests[0]["body"]["model"] == "gpt-4o-mini"


def test_rejected_key_falls_back_at_once() -> None:
    with FakeOpenAI([(401, "bad key", 0.0)]) as server:
        result = _analyze(_options(server), raise_transient=True)
    assert result.record.backend == "heuristic" and "BackendUnavailable: HTTP 401" in result.record.error
