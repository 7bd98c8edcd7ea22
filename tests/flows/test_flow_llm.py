"""The place-product flow with the openai-vision analyzer pointed at a local OpenAI-compatible server."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.core.test_analyze_llm import GOOD_ANSWER, FakeOpenAI
from tests.flows.runs import place

pytestmark = pytest.mark.usefixtures("prefect_server")


@pytest.fixture(autouse=True)
def no_openai_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


def _point_at(server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLACEWRIGHT_ANALYZE__LLM_BASE_URL", server.url)
    monkeypatch.setenv("PLACEWRIGHT_ANALYZE__LLM_API_KEY", "sk-dummy")
    monkeypatch.setenv("PLACEWRIGHT_ANALYZE__LLM_MODEL", "tiny-vision")


def test_flow_records_the_llm_analysis(example_product: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeOpenAI([(200, json.dumps(GOOD_ANSWER), 0.0)]) as server:
        _point_at(server, monkeypatch)
        started = time.perf_counter()
        manifest = place(example_product, prompts=["white studio"], size="512x512", out=str(tmp_path))
        print(f"flow with openai-vision: {time.perf_counter() - started:.2f} s")
    analysis = manifest["product"]["analysis"]
    assert (analysis["name"], analysis["height_cm"], analysis["confidence"]) == ("green olive oil bottle", 29.0, 0.86)
    assert analysis["placement"] == GOOD_ANSWER["placement"]
    stage = manifest["variants"][0]["stages"]["analyze"]
    assert stage["backend"] == "openai-vision" and stage["error"] is None
    (request,) = server.requests
    assert request["body"]["model"] == "tiny-vision" and request["auth"] == "Bearer sk-dummy"
    assert "olive-oil-bottle.jpg" in json.dumps(request["body"]["messages"])
    saved = json.loads((tmp_path / manifest["run_id"] / "manifest.json").read_text())
    assert "sk-dummy" not in json.dumps(saved)


def test_flow_falls_back_after_retries_on_http_500(
    example_product: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLACEWRIGHT_RETRY__DELAY_SECONDS", "[0,0]")
    with FakeOpenAI([(500, "upstream exploded", 0.0)]) as server:
        _point_at(server, monkeypatch)
        started = time.perf_counter()
        manifest = place(example_product, prompts=["white studio"], size="512x512", out=str(tmp_path))
        print(f"flow with openai-vision failing: {time.perf_counter() - started:.2f} s")
    analysis = manifest["product"]["analysis"]
    assert analysis["category"] == "bottle" and analysis["placement"] is None, "the heuristic's analysis"
    assert analysis["height_cm"] is None
    stage = manifest["variants"][0]["stages"]["analyze"]
    assert stage["backend"] == "heuristic" and stage["fallback_from"] == "openai-vision"
    assert "HTTP 500" in stage["error"]
    assert len(server.requests) == 3, "two Prefect retries (retry.retries=2), then the fallback on the last attempt"
