"""The HTTP API's contract, in-process: ``TestClient(create_app(settings, workers=0))`` with its lifespan running.

Each test starts its own service (records, engine, reconciler, outbox) against the session's Prefect
test server, with its own state folder and this module's own deployment name. With no worker, jobs
stay queued: what these tests want (auth, limits, idempotency, paging, errors). To see a succeeded
job's answers, :func:`run_job` runs a job's flow run in the test process as a warm worker would;
warm workers themselves are the business of the tests that start a real ``placewright serve``.

Every error answer is checked to be RFC 9457 problem details with no stack trace in it.
"""

from __future__ import annotations

import base64
import io
import json
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image

from placewright.settings import Settings, get_settings
from service.app import create_app
from service.records import ApiKey, Records
from service.runtime import Runtime
from tests.service_harness import wait_until

pytestmark = pytest.mark.usefixtures("prefect_server")

# This module's deployment: no other module's service (or worker) sees its flow runs.
DEPLOYMENT = f"api-{uuid.uuid4().hex[:8]}"
# A product URL the intake accepts without a network (127.0.0.1 is allowlisted); no worker ever fetches it.
PRODUCT = "http://127.0.0.1:9/product.jpg"
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "olive-oil-bottle.jpg"
TRACE_MARKERS = ("Traceback", 'File "', "site-packages")


def png(width: int = 16, height: int = 16) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 120, 40)).save(buffer, format="PNG")
    return buffer.getvalue()


def job_body(*prompts: str, **request: Any) -> dict[str, Any]:
    return {"request": {"product": PRODUCT, "prompts": list(prompts or ["a wooden table"]), **request}}


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """``response`` is an RFC 9457 problem of ``status`` without internals; returns its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    for marker in TRACE_MARKERS:
        assert marker not in response.text, response.text
    body = response.json()
    assert body["status"] == status
    assert isinstance(body["type"], str) and body["type"]
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and body["detail"]
    return body


@dataclass
class Api:
    """A running in-process service and what its tests need of it."""

    client: TestClient
    app: FastAPI
    settings: Settings

    @property
    def runtime(self) -> Runtime:
        return self.app.state.runtime

    @property
    def records(self) -> Records:
        return self.runtime.records

    @property
    def uploads(self) -> Path:
        return Path(self.runtime.places.uploads)

    @property
    def out_root(self) -> Path:
        return Path(self.runtime.places.out_root)

    def key(self, name: str | None = None) -> tuple[ApiKey, dict[str, str]]:
        """A new API key and the headers that use it."""
        key, token = self.records.create_key(name or f"key-{uuid.uuid4().hex[:8]}")
        return key, {"Authorization": f"Bearer {token}"}

    def create(self, headers: dict[str, str], body: dict[str, Any] | None = None, **kwargs: Any) -> httpx.Response:
        return self.client.post("/v1/jobs", json=body or job_body(), headers=headers, **kwargs)

    def stored_uploads(self) -> list[Path]:
        return sorted(p for p in self.uploads.rglob("*") if p.is_file()) if self.uploads.exists() else []


@pytest.fixture
def start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Api]]:
    """``start(raise_server_exceptions=True, **service_fields)``: a service with those ``service.*`` settings.

    Settings come from the environment, as ``placewright serve`` reads them (``PLACEWRIGHT_SERVICE__*``).
    """
    stack = ExitStack()

    def run(*, raise_server_exceptions: bool = True, **fields: Any) -> Api:
        env = {
            "PLACEWRIGHT_SERVICE__DEPLOYMENT": DEPLOYMENT,
            "PLACEWRIGHT_SERVICE__STATE_DIR": str(tmp_path / "state"),
            "PLACEWRIGHT_SERVICE__OUT": str(tmp_path / "jobs"),
            "PLACEWRIGHT_SERVICE__POLL_INTERVAL_S": "0.2",
            "PLACEWRIGHT_LIMITS__ALLOWED_HOSTS": '["127.0.0.1"]',
        }
        env |= {f"PLACEWRIGHT_SERVICE__{name.upper()}": str(value) for name, value in fields.items()}
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()
        settings = get_settings()
        app = create_app(settings, workers=0)
        client = stack.enter_context(TestClient(app, raise_server_exceptions=raise_server_exceptions))
        return Api(client, app, settings)

    yield run
    stack.close()


@pytest.fixture
def api(start: Callable[..., Api]) -> Api:
    return start()


def run_job(api: Api, job_id: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run a job's flow run here, as a warm worker does (claim it, then Prefect's ``run_flow``), with the
    settings a worker of this service gets (uploads readable, the jobs' folder writable)."""
    from prefect.flow_engine import run_flow

    from flows.place_product import place_product
    from service.supervisor import worker_environment

    for name, value in worker_environment(api.settings, api.runtime.places).items():
        if name.startswith("PLACEWRIGHT_"):
            monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    engine = api.runtime.engine
    flow_run = engine.read_run(api.records.job(job_id).flow_run_id)
    assert engine.claim(flow_run, "test-worker:1")
    state = run_flow(place_product, flow_run=engine.read_run(str(flow_run.id)), return_type="state")
    assert state.is_completed(), state


def upload_job(api: Api, headers: dict[str, str], **options: Any) -> dict[str, Any]:
    """A job of the example product, uploaded (a worker here can read it), at a small size."""
    response = api.client.post(
        "/v1/jobs/upload",
        files={"product": ("bottle.jpg", EXAMPLE.read_bytes(), "image/jpeg")},
        data={"options": json.dumps({"prompts": ["a wooden table"], "size": "256x256"} | options)},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    return response.json()


# --- authentication -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/v1/jobs"), ("POST", "/v1/jobs"), ("GET", "/v1/jobs/abc"), ("POST", "/v1/jobs/abc/cancel")],
)
def test_requests_without_a_key_are_401(api: Api, method: str, path: str) -> None:
    response = api.client.request(method, path, json=job_body() if method == "POST" else None)
    body = assert_problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "API key" in body["detail"]


def test_a_wrong_or_revoked_key_is_401(api: Api) -> None:
    key, headers = api.key("soon-revoked")
    assert api.client.get("/v1/jobs", headers=headers).status_code == 200
    for wrong in ("nonsense", f"pw_{key.id}_{'0' * 43}", "pw_0000000000000000_x", "x" * 300):
        response = api.client.get("/v1/jobs", headers={"Authorization": f"Bearer {wrong}"})
        assert_problem(response, 401)
        assert response.headers["www-authenticate"].startswith("Bearer")
    assert_problem(api.client.get("/v1/jobs", headers={"Authorization": "Basic abc"}), 401)
    assert api.records.revoke_key("soon-revoked")
    response = api.client.get("/v1/jobs", headers=headers)
    assert assert_problem(response, 401)["detail"] == "the API key is not valid"
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_the_x_api_key_header_works_too(api: Api) -> None:
    _, headers = api.key()
    token = headers["Authorization"].removeprefix("Bearer ")
    assert api.client.get("/v1/jobs", headers={"X-Api-Key": token}).status_code == 200


# --- jobs: create, read, isolation --------------------------------------------------------------------------
def test_a_created_job_is_queued_and_readable(api: Api) -> None:
    key, headers = api.key()
    response = api.create(headers)
    assert response.status_code == 201, response.text
    job = response.json()
    assert job["state"] == "queued"
    assert response.headers["location"].endswith(f"/v1/jobs/{job['id']}")
    assert job["links"]["self"].endswith(f"/v1/jobs/{job['id']}")
    # The service decides where the job publishes: the key's own folder.
    assert job["request"]["out"] == f"{api.out_root}/{key.id}"
    read = api.client.get(f"/v1/jobs/{job['id']}", headers=headers)
    assert read.status_code == 200
    assert read.json()["id"] == job["id"] and read.json()["state"] == "queued"
    flow_run = api.runtime.engine.read_run(api.records.job(job["id"]).flow_run_id)
    assert flow_run is not None and flow_run.parameters["request"]["product"] == PRODUCT


def test_another_keys_job_is_404_everywhere(api: Api) -> None:
    _, alice = api.key("alice")
    _, bob = api.key("bob")
    job_id = api.create(alice).json()["id"]
    bobs_job = api.create(bob).json()["id"]
    for method, path in [
        ("GET", f"/v1/jobs/{job_id}"),
        ("GET", f"/v1/jobs/{job_id}/result"),
        ("POST", f"/v1/jobs/{job_id}/cancel"),
    ]:
        body = assert_problem(api.client.request(method, path, headers=bob), 404)
        assert job_id[:8] in body["detail"]
    # Bob's cancel did nothing to Alice's job; each list shows only its own key's jobs.
    assert api.client.get(f"/v1/jobs/{job_id}", headers=alice).json()["state"] == "queued"
    assert [j["id"] for j in api.client.get("/v1/jobs", headers=alice).json()["jobs"]] == [job_id]
    assert [j["id"] for j in api.client.get("/v1/jobs", headers=bob).json()["jobs"]] == [bobs_job]


def test_an_unknown_job_is_404(api: Api) -> None:
    _, headers = api.key()
    for path in (f"/v1/jobs/{uuid.uuid4()}", f"/v1/jobs/{uuid.uuid4()}/result", "/v1/jobs/%2e%2e"):
        assert_problem(api.client.get(path, headers=headers), 404)
    assert_problem(api.client.post(f"/v1/jobs/{uuid.uuid4()}/cancel", headers=headers), 404)


# --- lists --------------------------------------------------------------------------------------------------
def test_pages_of_25_jobs_by_10(api: Api) -> None:
    _, headers = api.key()
    created = [api.create(headers, job_body(f"scene {i}")).json()["id"] for i in range(25)]
    assert len(set(created)) == 25
    pages: list[list[str]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 10} | ({"cursor": cursor} if cursor else {})
        response = api.client.get("/v1/jobs", params=params, headers=headers)
        assert response.status_code == 200, response.text
        page = response.json()
        pages.append([job["id"] for job in page["jobs"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert len(pages) < 5, "the pages never end"
    assert [len(page) for page in pages] == [10, 10, 5]
    seen = [job_id for page in pages for job_id in page]
    assert len(seen) == len(set(seen)) == 25
    assert seen == created[::-1]  # newest first
    # A state filter, and a page size of one.
    queued = api.client.get("/v1/jobs", params={"state": "queued", "limit": 1}, headers=headers).json()
    assert len(queued["jobs"]) == 1 and queued["next_cursor"]
    assert api.client.get("/v1/jobs", params={"state": "succeeded"}, headers=headers).json()["jobs"] == []


@pytest.mark.parametrize(
    "params",
    [
        {"cursor": "not-a-cursor"},
        {"cursor": base64.urlsafe_b64encode(b'[9,"2020-01-01",1]').decode()},
        {"cursor": "x" * 600},
        {"limit": 0},
        {"limit": 101},
        {"limit": "ten"},
        {"state": "done"},
    ],
)
def test_bad_list_parameters_are_422(api: Api, params: dict[str, Any]) -> None:
    _, headers = api.key()
    assert_problem(api.client.get("/v1/jobs", params=params, headers=headers), 422)


# --- idempotency --------------------------------------------------------------------------------------------
def test_idempotency_key_replays_the_same_job(api: Api) -> None:
    _, headers = api.key()
    first = api.create(headers | {"Idempotency-Key": "order-1"})
    assert first.status_code == 201
    assert "idempotent-replayed" not in first.headers
    again = api.create(headers | {"Idempotency-Key": "order-1"})
    assert again.status_code == 200, again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    # Key order in the body does not matter: bodies are compared as canonical JSON.
    reordered = {"request": dict(reversed(list(job_body()["request"].items())))}
    assert api.create(headers | {"Idempotency-Key": "order-1"}, reordered).json()["id"] == first.json()["id"]
    # Without the header, the same body is a new job.
    assert api.create(headers).json()["id"] != first.json()["id"]
    assert len(api.client.get("/v1/jobs", headers=headers).json()["jobs"]) == 2


def test_idempotency_key_with_another_body_is_422(api: Api) -> None:
    _, headers = api.key()
    assert api.create(headers | {"Idempotency-Key": "order-2"}).status_code == 201
    response = api.create(headers | {"Idempotency-Key": "order-2"}, job_body("another scene"))
    assert "different request body" in assert_problem(response, 422)["detail"]
    assert len(api.client.get("/v1/jobs", headers=headers).json()["jobs"]) == 1


def test_idempotency_keys_are_per_api_key(api: Api) -> None:
    _, alice = api.key()
    _, bob = api.key()
    a = api.create(alice | {"Idempotency-Key": "same"})
    b = api.create(bob | {"Idempotency-Key": "same"}, job_body("something else"))
    assert (a.status_code, b.status_code) == (201, 201)
    assert a.json()["id"] != b.json()["id"]
    assert api.create(alice | {"Idempotency-Key": "same"}).json()["id"] == a.json()["id"]


def test_an_overlong_idempotency_key_is_422(api: Api) -> None:
    _, headers = api.key()
    assert_problem(api.create(headers | {"Idempotency-Key": "k" * 256}), 422)


# --- limits -------------------------------------------------------------------------------------------------
def test_rate_limit_per_key(start: Callable[..., Api]) -> None:
    api = start(rate_per_minute=5)
    _, headers = api.key()
    _, other = api.key()
    for _ in range(5):
        assert api.client.get("/v1/jobs", headers=headers).status_code == 200
    response = api.client.get("/v1/jobs", headers=headers)
    assert "5 requests a minute" in assert_problem(response, 429)["detail"]
    retry_after = response.headers["retry-after"]
    assert retry_after.isdigit() and 1 <= int(retry_after) <= 60
    assert_problem(api.create(headers), 429)  # every route of the key counts
    assert api.client.get("/v1/jobs", headers=other).status_code == 200  # another key is not limited


def test_active_job_cap(start: Callable[..., Api]) -> None:
    api = start(max_active_jobs=2)
    _, headers = api.key()
    first, second = (api.create(headers, job_body(f"scene {i}")) for i in range(2))
    assert (first.status_code, second.status_code) == (201, 201)
    third = api.create(headers, job_body("scene 3"))
    assert "2 queued or running jobs" in assert_problem(third, 429)["detail"]
    assert third.headers["retry-after"].isdigit()
    _, other = api.key()
    assert api.create(other).status_code == 201  # the cap is per key
    # Once one is canceled there is room again.
    assert api.client.post(f"/v1/jobs/{first.json()['id']}/cancel", headers=headers).json()["state"] == "canceled"
    assert api.create(headers, job_body("scene 3")).status_code == 201


def test_a_replay_is_answered_at_the_cap(start: Callable[..., Api]) -> None:
    api = start(max_active_jobs=1)
    _, headers = api.key()
    first = api.create(headers | {"Idempotency-Key": "k1"})
    again = api.create(headers | {"Idempotency-Key": "k1"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]


def _multipart(fields: dict[str, str], files: dict[str, tuple[str, bytes, str]]) -> tuple[bytes, str]:
    """A multipart body as httpx encodes it, and its content type."""
    request = httpx.Request("POST", "http://x/", data=fields, files=files)
    return request.read(), request.headers["content-type"]


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_body_over_the_limit_is_413_and_nothing_is_stored(start: Callable[..., Api], chunked: bool) -> None:
    api = start(max_body_bytes=4096)
    _, auth = api.key()
    large = _noisy_png(128, 128)
    assert len(large) > 4096
    body, content_type = _multipart(
        {"options": json.dumps({"prompts": ["a table"]})}, {"product": ("p.png", large, "image/png")}
    )
    headers = auth | {"Content-Type": content_type}
    if chunked:
        response = api.client.post("/v1/jobs/upload", content=iter([body[:1000], body[1000:]]), headers=headers)
        assert response.request.headers.get("transfer-encoding") == "chunked"
        assert "content-length" not in response.request.headers
    else:
        response = api.client.post("/v1/jobs/upload", content=body, headers=headers)
        assert response.request.headers["content-length"] == str(len(body))
    assert "4096 bytes" in assert_problem(response, 413)["detail"]
    assert api.stored_uploads() == []
    assert api.client.get("/v1/jobs", headers=auth).json()["jobs"] == []
    # A JSON body over the limit too.
    text = json.dumps(job_body("x" * 1900, "y" * 1900, "z" * 1900)).encode()
    assert len(text) > 4096
    json_headers = auth | {"Content-Type": "application/json"}
    if chunked:
        response = api.client.post("/v1/jobs", content=iter([text[:100], text[100:]]), headers=json_headers)
    else:
        response = api.client.post("/v1/jobs", content=text, headers=json_headers)
    assert_problem(response, 413)
    assert api.client.get("/v1/jobs", headers=auth).json()["jobs"] == []
    # Under the limit, the same route takes the upload.
    body, content_type = _multipart({}, {"product": ("p.png", png(), "image/png")})
    response = api.client.post("/v1/jobs/upload", content=body, headers=auth | {"Content-Type": content_type})
    assert response.status_code == 201, response.text
    assert len(api.stored_uploads()) == 1


def _noisy_png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    noise = random.Random(0).randbytes(width * height * 3)  # incompressible: the file is about that large
    Image.frombytes("RGB", (width, height), noise).save(buffer, format="PNG")
    return buffer.getvalue()


def test_uploads_are_checked_before_they_are_stored(start: Callable[..., Api]) -> None:
    api = start(max_pixels=1000)
    _, headers = api.key()
    too_big = api.client.post(
        "/v1/jobs/upload", files={"product": ("p.png", png(40, 40), "image/png")}, headers=headers
    )
    assert "1600 pixels" in assert_problem(too_big, 413)["detail"]
    not_image = api.client.post(
        "/v1/jobs/upload", files={"product": ("p.png", b"%PDF-1.4 not an image", "image/png")}, headers=headers
    )
    assert "not an image" in assert_problem(not_image, 422)["detail"]
    empty = api.client.post("/v1/jobs/upload", files={"product": ("p.png", b"", "image/png")}, headers=headers)
    assert_problem(empty, 422)
    bad_background = api.client.post(
        "/v1/jobs/upload",
        files=[("product", ("p.png", png(), "image/png")), ("backgrounds", ("b.png", b"GIF89 no", "image/png"))],
        headers=headers,
    )
    assert "background" in assert_problem(bad_background, 422)["detail"]
    for options in (
        '{"out": "/tmp/x"}',
        "[1]",
        "{not json",
        '{"product": "http://127.0.0.1/x.png"}',
        '{"backgrounds": "http://127.0.0.1/b.png"}',
        '{"backgrounds": ["/etc/hosts"]}',
        '{"prompts": ["a"], "size": "1x1"}',
        json.dumps({"prompts": [f"scene {i}" for i in range(20)]}),
    ):
        response = api.client.post(
            "/v1/jobs/upload",
            files={"product": ("p.png", png(), "image/png")},
            data={"options": options},
            headers=headers,
        )
        assert_problem(response, 422)
    assert api.stored_uploads() == []
    assert api.client.get("/v1/jobs", headers=headers).json()["jobs"] == []


def test_an_upload_becomes_a_job(api: Api) -> None:
    key, headers = api.key()

    def upload(product: bytes, idempotency_key: str) -> httpx.Response:
        return api.client.post(
            "/v1/jobs/upload",
            files=[("product", ("p.png", product, "image/png")), ("backgrounds", ("b.jpg", png(32, 32), "image/jpeg"))],
            data={"options": json.dumps({"prompts": ["a marble counter"], "seed": 7})},
            headers=headers | {"Idempotency-Key": idempotency_key},
        )

    response = upload(png(), "upload-1")
    assert response.status_code == 201, response.text
    request = response.json()["request"]
    stored = api.stored_uploads()
    assert len(stored) == 2 and all(path.parent.name == key.id for path in stored)
    assert {request["product"], *request["backgrounds"]} == {str(path) for path in stored}
    assert request["prompts"] == ["a marble counter"] and request["seed"] == 7
    # The same files again with the same Idempotency-Key: the same job; other files: a mismatch.
    again = upload(png(), "upload-1")
    assert again.status_code == 200 and again.json()["id"] == response.json()["id"]
    assert again.headers["idempotent-replayed"] == "true"
    assert_problem(upload(png(24, 24), "upload-1"), 422)
    assert len(api.client.get("/v1/jobs", headers=headers).json()["jobs"]) == 1


@pytest.mark.parametrize(
    ("request_fields", "expected"),
    [
        ({"prompts": [f"scene {i}" for i in range(17)]}, "too many variants"),
        ({"prompts": ["a"] * 10, "backgrounds": [PRODUCT] * 7}, "too many variants"),
        ({"out": "/tmp/somewhere"}, "request.out"),
        ({"product": "/etc/passwd"}, "product"),
        ({"product": "file:///etc/passwd"}, "product"),
        ({"product": "./examples/olive-oil-bottle.jpg"}, "product"),
        ({"product": "s3://bucket/product.jpg"}, "input_roots"),
        ({"product": "http://10.0.0.1/p.jpg"}, "product"),
        ({"product": "http://no-such-host.invalid/p.jpg"}, "product"),
        ({"backgrounds": ["/etc/hosts"]}, "background"),
        ({"product": "ftp://example.com/p.jpg"}, "product"),
        ({"size": "10x10"}, "size"),
        ({"unknown": 1}, "unknown"),
    ],
)
def test_requests_the_service_refuses_are_422(api: Api, request_fields: dict[str, Any], expected: str) -> None:
    _, headers = api.key()
    body = {"request": {"product": PRODUCT, "prompts": ["a table"], **request_fields}}
    response = api.create(headers, body)
    assert expected in assert_problem(response, 422)["detail"]
    assert api.client.get("/v1/jobs", headers=headers).json()["jobs"] == []


def test_a_private_webhook_url_is_422(api: Api) -> None:
    _, headers = api.key()
    response = api.create(headers, job_body() | {"webhook_url": "http://169.254.169.254/hook"})
    assert "webhook_url" in assert_problem(response, 422)["detail"]


@pytest.mark.parametrize("body", [b"{", b"[]", b'{"request": {}}', b'{"request": {"product": 1}}', b""])
def test_malformed_bodies_are_422(api: Api, body: bytes) -> None:
    _, headers = api.key()
    response = api.client.post("/v1/jobs", content=body, headers=headers | {"Content-Type": "application/json"})
    problem = assert_problem(response, 422)
    assert isinstance(problem.get("errors", []), list)


# --- waiting, canceling, results ----------------------------------------------------------------------------
def test_prefer_wait_on_a_queued_job(api: Api) -> None:
    _, headers = api.key()
    began = time.monotonic()
    response = api.create(headers | {"Prefer": "wait=1"})
    elapsed = time.monotonic() - began
    assert response.status_code == 201
    assert response.headers["preference-applied"] == "wait=1"
    assert response.json()["state"] == "queued"
    assert 1.0 <= elapsed < 10.0, elapsed  # a second of waiting (the upper bound: not much more)
    job_url = f"/v1/jobs/{response.json()['id']}"
    began = time.monotonic()
    read = api.client.get(job_url, headers=headers | {"Prefer": "respond-async, wait=1"})
    assert 1.0 <= time.monotonic() - began < 10.0
    assert read.headers["preference-applied"] == "wait=1"
    # No preference (or one without a number): no Preference-Applied.
    for prefer in ({}, {"Prefer": "wait=soon"}, {"Prefer": "respond-async"}):
        read = api.client.get(job_url, headers=headers | prefer)
        assert read.status_code == 200 and "preference-applied" not in read.headers


def test_prefer_wait_is_capped_by_max_wait_s(start: Callable[..., Api]) -> None:
    api = start(max_wait_s=1)
    _, headers = api.key()
    began = time.monotonic()
    response = api.create(headers | {"Prefer": "wait=600"})
    assert 1.0 <= time.monotonic() - began < 10.0
    assert response.headers["preference-applied"] == "wait=1"


def test_cancel_a_queued_job_twice(api: Api) -> None:
    _, headers = api.key()
    job = api.create(headers).json()
    response = api.client.post(f"/v1/jobs/{job['id']}/cancel", headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["state"] == "canceled"
    flow_run = api.runtime.engine.read_run(api.records.job(job["id"]).flow_run_id)
    assert flow_run.state.type.value == "CANCELLED"
    # Canceling a canceled job is not an error: the answer is the job, still canceled.
    again = api.client.post(f"/v1/jobs/{job['id']}/cancel", headers=headers)
    assert again.status_code == 200 and again.json()["state"] == "canceled"
    assert api.client.get(f"/v1/jobs/{job['id']}", headers=headers).json()["state"] == "canceled"
    result = api.client.get(f"/v1/jobs/{job['id']}/result", headers=headers)
    assert assert_problem(result, 409)["state"] == "canceled"


def test_cancel_a_failed_job_is_409(api: Api) -> None:
    from prefect.states import Failed

    _, headers = api.key()
    job = api.create(headers).json()
    flow_run_id = api.records.job(job["id"]).flow_run_id
    with api.runtime.engine.client() as client:  # the job's flow run fails (as a worker would record it)
        client.set_flow_run_state(uuid.UUID(flow_run_id), Failed(message="it broke"), force=True)
    read = api.client.get(f"/v1/jobs/{job['id']}", headers=headers).json()
    assert read["state"] == "failed" and read["error"] == "it broke"
    response = api.client.post(f"/v1/jobs/{job['id']}/cancel", headers=headers)
    assert assert_problem(response, 409)["state"] == "failed"
    assert assert_problem(api.client.get(f"/v1/jobs/{job['id']}/result", headers=headers), 409)["state"] == "failed"


def test_the_result_of_an_unfinished_job_is_409(api: Api) -> None:
    _, headers = api.key()
    job = api.create(headers).json()
    response = api.client.get(f"/v1/jobs/{job['id']}/result", headers=headers)
    body = assert_problem(response, 409)
    assert body["state"] == "queued" and "only a succeeded job" in body["detail"]


def test_a_succeeded_job(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    _, headers = api.key()
    job = upload_job(api, headers)
    run_job(api, job["id"], monkeypatch)
    began = time.monotonic()
    read = api.client.get(f"/v1/jobs/{job['id']}", headers=headers | {"Prefer": "wait=30"})
    assert time.monotonic() - began < 5
    done = read.json()
    assert done["state"] == "succeeded" and done["completed_at"] and done["error"] is None
    result = api.client.get(f"/v1/jobs/{job['id']}/result", headers=headers)
    assert result.status_code == 200
    assert result.json() == done["result"]
    [image] = result.json()["images"]
    assert (image["width"], image["height"], image["prompt"]) == (256, 256, "a wooden table")
    # Its files are served at /files (a local store), the manifest among them.
    base = api.runtime.places.base_url
    assert image["url"].startswith(f"{base}/files/")
    served = api.client.get(image["url"].removeprefix(base))
    assert served.status_code == 200 and served.headers["content-type"] == "image/webp"
    manifest = api.client.get(result.json()["manifest_url"].removeprefix(base))
    assert manifest.status_code == 200 and manifest.json()["variants"][0]["url"] == image["url"]
    assert_problem(api.client.post(f"/v1/jobs/{job['id']}/cancel", headers=headers), 409)
    # The prototype's routes see it too, by their own words.
    status = api.client.get(f"/image/status/{job['id']}", headers=headers).json()
    assert status["status"] == "completed"
    assert status["public_url"] == f"{base}/image/output/{job['id']}.webp"
    output = api.client.get(f"/image/output/{job['id']}.webp", headers=headers)
    assert output.status_code == 200 and output.content == served.content
    # Files removed from the store (a retention policy): the image is gone, not a server error.
    run_folder = api.out_root / image["url"].removeprefix(f"{base}/files/").rsplit("/", 1)[0]
    for path in sorted(run_folder.rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    assert_problem(api.client.get(f"/image/output/{job['id']}.webp", headers=headers), 404)
    assert_problem(api.client.get(image["url"].removeprefix(base)), 404)


# --- published files ----------------------------------------------------------------------------------------
def test_files_serves_published_files_read_only(api: Api) -> None:
    folder = api.out_root / "0123456789abcdef" / "run-1"
    folder.mkdir(parents=True)
    (folder / "variant-0.png").write_bytes(png())
    (folder / ".placewright").mkdir()
    (folder / ".placewright" / "state.json").write_text('{"secret": true}')
    (api.out_root / ".hidden").mkdir()
    (api.out_root / ".hidden" / "x.txt").write_text("secret")
    (api.out_root.parent / "outside.txt").write_text("secret")
    served = api.client.get("/files/0123456789abcdef/run-1/variant-0.png")
    assert served.status_code == 200
    assert served.content == png() and served.headers["content-type"] == "image/png"
    for path in (
        "/files/0123456789abcdef/run-1/.placewright/state.json",
        "/files/.hidden/x.txt",
        "/files/0123456789abcdef/run-1/missing.png",
        "/files/%2e%2e/outside.txt",
        "/files/..%2Foutside.txt",
        "/files/0123456789abcdef/%2e%2e/%2e%2e/outside.txt",
        "/files/0123456789abcdef/run-1/%2e%2e/%2e%2e/%2e%2e/outside.txt",
    ):
        response = api.client.get(path)
        assert response.status_code == 404, (path, response.status_code)
        assert "secret" not in response.text
        assert_problem(response, 404)
    for method in ("PUT", "POST", "DELETE", "PATCH"):
        response = api.client.request(method, "/files/0123456789abcdef/run-1/variant-0.png", content=b"x")
        assert_problem(response, 405)
        assert response.headers["allow"] == "GET, HEAD"
    assert (folder / "variant-0.png").read_bytes() == png()


def test_files_refuses_traversal_at_the_asgi_level(api: Api) -> None:
    """A raw ``..`` in the path (which an HTTP client would normalise away) reaches nothing outside."""
    (api.out_root.parent / "outside.txt").write_text("secret")
    api.out_root.mkdir(parents=True, exist_ok=True)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/files/../outside.txt",
        "raw_path": b"/files/../outside.txt",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 1),
        "server": ("testserver", 80),
    }
    api.client.portal.call(api.app, scope, receive, send)
    assert sent[0]["status"] == 404
    assert b"secret" not in b"".join(m.get("body", b"") for m in sent[1:])


# --- health, readiness, errors ------------------------------------------------------------------------------
def test_health_and_readiness(api: Api) -> None:
    health = api.client.get("/health")
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    ready = api.client.get("/ready")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checks": {"engine": "ok", "records": "ok"}}


def test_readiness_says_when_the_engine_is_unreachable(api: Api) -> None:
    def unreachable() -> None:
        raise ConnectionError("all connection attempts failed\nmore")

    api.runtime.engine.deployment_id = unreachable  # type: ignore[method-assign]
    ready = api.client.get("/ready")
    assert ready.status_code == 503
    assert ready.json()["status"] == "not ready"
    assert ready.json()["checks"]["engine"] == "unreachable: all connection attempts failed"


def test_unknown_routes_and_methods_are_problems(api: Api) -> None:
    _, headers = api.key()
    assert_problem(api.client.get("/nope"), 404)
    # 405 names every method the path takes (GET and POST /v1/jobs are two routes).
    for method, path, allow in [
        ("PUT", "/v1/jobs", "GET, POST"),
        ("OPTIONS", "/v1/jobs", "GET, POST"),
        ("DELETE", f"/v1/jobs/{uuid.uuid4()}", "GET"),
        ("GET", f"/v1/jobs/{uuid.uuid4()}/cancel", "POST"),
        ("POST", "/health", "GET"),
    ]:
        response = api.client.request(method, path, headers=headers)
        assert_problem(response, 405)
        assert response.headers["allow"] == allow, (method, path)


def test_an_unexpected_error_is_a_500_problem_without_internals(
    start: Callable[..., Api], monkeypatch: pytest.MonkeyPatch
) -> None:
    api = start(raise_server_exceptions=False)
    _, headers = api.key()

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("database at /srv/secret/service.db is on fire")

    monkeypatch.setattr(Records, "jobs_page", broken)
    monkeypatch.setattr(Records, "add_job", broken)
    for response in (api.client.get("/v1/jobs", headers=headers), api.create(headers)):
        body = assert_problem(response, 500)
        assert body["title"] == "Internal Server Error"
        assert "secret" not in response.text and "RuntimeError" not in response.text and "fire" not in response.text


# --- the prototype's routes ---------------------------------------------------------------------------------
def test_legacy_routes_need_a_key_without_legacy_key(api: Api) -> None:
    response = api.client.post("/image/generate", files={"product_image": ("p.png", png(), "image/png")})
    assert_problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert_problem(api.client.get(f"/image/status/{uuid.uuid4()}"), 401)
    assert_problem(api.client.get(f"/image/output/{uuid.uuid4()}.png"), 401)
    assert api.stored_uploads() == []


def test_legacy_routes_with_a_key(api: Api) -> None:
    _, headers = api.key()
    response = api.client.post(
        "/image/generate",
        files={"product_image": ("p.png", png(), "image/png")},
        data={"background_prompt": "a beach at dusk"},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "pending"
    status = api.client.get(f"/image/status/{response.json()['job_id']}", headers=headers)
    assert status.status_code == 200 and status.json()["status"] == "pending"


def test_legacy_routes_open_with_legacy_key(start: Callable[..., Api]) -> None:
    api = start(legacy_key="prototype")
    # The named key does not exist yet: still closed.
    assert_problem(api.client.get(f"/image/status/{uuid.uuid4()}"), 401)
    key, _ = api.key("prototype")
    response = api.client.post(
        "/image/generate",
        files={"product_image": ("p.png", png(), "image/png")},
        data={"background_prompt": "a beach at dusk", "product_placement": "sand"},
    )
    assert response.status_code == 200, response.text
    accepted = response.json()
    assert accepted["status"] == "pending" and accepted["job_id"]
    job = api.records.job(accepted["job_id"], key.id)
    assert job is not None and job.api == "legacy"
    assert job.request["prompts"] == ["a beach at dusk"] and job.request["surface"] == "sand"
    status = api.client.get(f"/image/status/{accepted['job_id']}")
    assert status.status_code == 200
    assert status.json()["status"] == "pending" and status.json()["public_url"] is None
    assert_problem(api.client.get(f"/image/status/{uuid.uuid4()}"), 404)
    assert_problem(api.client.get(f"/image/output/{accepted['job_id']}.png"), 404)  # not finished
    assert_problem(api.client.get(f"/image/output/{uuid.uuid4()}.png"), 404)
    not_image = api.client.post("/image/generate", files={"product_image": ("p.png", b"nope", "image/png")})
    assert_problem(not_image, 422)
    uploads = api.stored_uploads()
    long_prompt = api.client.post(
        "/image/generate",
        files={"product_image": ("q.png", png(20, 20), "image/png")},
        data={"background_prompt": "x" * 3000},
    )
    assert "too long" in assert_problem(long_prompt, 422)["detail"]
    assert api.stored_uploads() == uploads  # the refused upload was not kept
    # The legacy key's jobs are v1 jobs of that key as well, and revoking it closes the routes again.
    assert api.records.revoke_key("prototype")
    assert_problem(api.client.get(f"/image/status/{accepted['job_id']}"), 401)


@dataclass
class HeldCreations:
    """The engine's flow-run creation, held until ``release()``: how many ran at once, at most, and how many
    are under way now."""

    gate: threading.Event
    lock: threading.Lock
    running: int = 0
    most: int = 0
    calls: int = 0

    def release(self) -> None:
        self.gate.set()


def hold_creations(api: Api, monkeypatch: pytest.MonkeyPatch) -> HeldCreations:
    engine = api.runtime.engine
    real = engine.create_run
    held = HeldCreations(threading.Event(), threading.Lock())

    def create_run(*args: Any, **kwargs: Any) -> Any:
        with held.lock:
            held.running += 1
            held.calls += 1
            held.most = max(held.most, held.running)
        try:
            assert held.gate.wait(60), "creations held for 60 s"
            return real(*args, **kwargs)
        finally:
            with held.lock:
                held.running -= 1

    monkeypatch.setattr(engine, "create_run", create_run)
    return held


def test_a_burst_of_jobs_is_answered_while_their_runs_are_created_one_at_a_time(
    start: Callable[..., Api], monkeypatch: pytest.MonkeyPatch
) -> None:
    api = start(create_wait_s=0.2)
    _, headers = api.key()
    held = hold_creations(api, monkeypatch)
    with ThreadPoolExecutor(6) as pool:  # six clients post at once while the Prefect database is slow
        answers = list(pool.map(lambda i: api.create(headers, job_body(f"scene {i}")), range(6)))
    # Every answer came while the first creation was still held: none waited for its run.
    assert held.running == 1 and held.calls == 1
    assert [a.status_code for a in answers] == [201] * 6
    jobs = [a.json() for a in answers]
    assert {j["state"] for j in jobs} == {"queued"}
    assert all(api.records.job(j["id"]).flow_run_id is None for j in jobs)
    # A job without its run yet reads as queued, with nothing missing.
    read = api.client.get(f"/v1/jobs/{jobs[-1]['id']}", headers=headers)
    assert read.status_code == 200 and read.json()["state"] == "queued"

    held.release()
    wait_until(lambda: all(api.records.job(j["id"]).flow_run_id for j in jobs), 30, "every job has its flow run")
    assert held.most == 1 and held.calls == 6  # one creation at a time, each job once
    for job in jobs:
        flow_run = api.runtime.engine.read_run(api.records.job(job["id"]).flow_run_id)
        assert f"job:{job['id']}" in flow_run.tags
        assert flow_run.parameters["request"]["prompts"] == job["request"]["prompts"]
        assert flow_run.state.type.value == "SCHEDULED"


def test_a_job_canceled_while_its_run_is_created_never_runs(
    start: Callable[..., Api], monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags

    api = start(create_wait_s=0)
    _, headers = api.key()
    held = hold_creations(api, monkeypatch)
    first, second = api.create(headers).json(), api.create(headers).json()
    wait_until(lambda: held.running == 1, 30, "the first job's creation is under way")
    for job in (first, second):  # one being created, one queued behind it: both answer at once
        response = api.client.post(f"/v1/jobs/{job['id']}/cancel", headers=headers)
        assert response.status_code == 200, response.text
        assert response.json()["state"] == "canceled"
    held.release()
    wait_until(lambda: not api.runtime._creations, 30, "the creator is done")

    def runs_of(job: dict[str, Any]) -> list[Any]:
        with api.runtime.engine.client() as client:
            tags = FlowRunFilterTags(all_=[f"job:{job['id']}"])
            return client.read_flow_runs(flow_run_filter=FlowRunFilter(tags=tags))

    # The run made for the first while it was canceled is canceled too; the second never got one.
    wait_until(lambda: runs_of(first) and runs_of(first)[0].state.type.value == "CANCELLED", 30, "first run canceled")
    assert runs_of(second) == []
    assert held.calls == 1
    for job in (first, second):
        record = api.records.job(job["id"])
        assert record.state == "canceled" and record.flow_run_id is None
        assert api.client.get(f"/v1/jobs/{job['id']}", headers=headers).json()["state"] == "canceled"
