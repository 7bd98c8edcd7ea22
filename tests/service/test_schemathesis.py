"""Property-based tests of the HTTP API from its own OpenAPI schema (schemathesis).

Every operation the schema declares is called with generated requests, valid and invalid, with a
live API key: no answer may be a 5xx, and every answer must be one the schema declares (status
code, content type, body schema, headers). The service runs in-process against the session's
Prefect test server, with no worker: jobs stay queued.

How the app is reached: schemathesis 4.32.5 runs an ASGI app's lifespan itself, starting it on the
first request (here: when the schema is loaded, at import, before any Prefect server exists) and
ending it after each test. The service's lifespan needs that server, and its lazy alternative
(``schemathesis.pytest.from_fixture``) fails under pytest 9 (``Function`` has no ``_nodeid``). So the
schema is loaded through :class:`ServiceUnderTest`, a thin ASGI front that answers lifespan messages
itself and passes requests on to the app under test, whose lifespan a ``TestClient`` context runs (one
service for the module, with its own state folder).
"""

from __future__ import annotations

import os
import tempfile
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from placewright.settings import ServiceSettings, Settings, get_settings
from service.app import create_app
from service.records import Records
from tests.service.test_api import PRODUCT, Api, job_body, png, run_job, upload_job

pytestmark = pytest.mark.usefixtures("prefect_server")

DEPLOYMENT = f"fuzz-{uuid.uuid4().hex[:8]}"
# Examples per operation (11 operations): about a minute in all.
EXAMPLES = 25


class ServiceUnderTest:
    """An ASGI app that passes HTTP requests to ``app`` and answers lifespan messages itself."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return


def _docs_app() -> FastAPI:
    """The app as its schema describes it (no lifespan: nothing runs, nothing is written)."""
    with tempfile.TemporaryDirectory() as tmp:
        service = ServiceSettings(state_dir=Path(tmp) / "state", out="memory://placewright-docs")
        return create_app(Settings(out_dir=tmp, cache_dir=Path(tmp), models_dir=Path(tmp), service=service))


DOCS = _docs_app()
SERVICE = ServiceUnderTest(DOCS)
schema = schemathesis.openapi.from_asgi("/openapi.json", SERVICE)


@dataclass
class Service:
    """The running service of a test: its API key and jobs of each kind to aim cases at."""

    token: str
    jobs: list[str]  # succeeded, queued, canceled, and the prototype's


@pytest.fixture(scope="module")
def service(prefect_server: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """The running service (behind :data:`SERVICE`) every operation is tried on, its API key, and some jobs."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        yield from _service(tmp_path_factory.mktemp("schemathesis"), monkeypatch)


def _service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Service]:
    state = tmp_path / "state"
    state.mkdir()
    with Records(state / "service.db") as records:
        _, token = records.create_key("schemathesis")
    # Isolated as conftest's (function-scoped) isolated_settings isolates a test: a module fixture runs first.
    for name in [name for name in os.environ if name.startswith(("PLACEWRIGHT_", "OPENAI_"))]:
        monkeypatch.delenv(name)
    for name, value in {
        "PLACEWRIGHT_CACHE_DIR": str(tmp_path / "cache"),
        "PLACEWRIGHT_OUT_DIR": str(tmp_path / "out"),
        "PLACEWRIGHT_MODELS_DIR": str(tmp_path / "models"),
        "PLACEWRIGHT_SERVICE__DEPLOYMENT": DEPLOYMENT,
        "PLACEWRIGHT_SERVICE__STATE_DIR": str(state),
        "PLACEWRIGHT_SERVICE__OUT": str(tmp_path / "jobs"),
        "PLACEWRIGHT_LIMITS__ALLOWED_HOSTS": '["127.0.0.1"]',
        # Generated requests come fast: no rate limit or job cap gets in their way, and Prefer: wait=N
        # waits at most a second (a queued job never ends here).
        "PLACEWRIGHT_SERVICE__RATE_PER_MINUTE": "1000000",
        "PLACEWRIGHT_SERVICE__MAX_ACTIVE_JOBS": "1000000",
        "PLACEWRIGHT_SERVICE__MAX_WAIT_S": "1",
        # The prototype's routes without a key act as this one (with one, as that key).
        "PLACEWRIGHT_SERVICE__LEGACY_KEY": "schemathesis",
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    settings = get_settings()
    app = create_app(settings, workers=0)
    with TestClient(app) as client:  # runs the app's lifespan: records, engine, reconciler, outbox
        api = Api(client, app, settings)
        headers = {"Authorization": f"Bearer {token}"}
        succeeded = upload_job(api, headers)["id"]
        run_job(api, succeeded, monkeypatch)
        queued = api.create(headers).json()["id"]
        canceled = api.create(headers, job_body("canceled")).json()["id"]
        assert client.post(f"/v1/jobs/{canceled}/cancel", headers=headers).json()["state"] == "canceled"
        legacy = client.post("/image/generate", files={"product_image": ("p.png", png(), "image/png")}).json()
        SERVICE.app = app
        try:
            yield Service(token, [succeeded, queued, canceled, legacy["job_id"]])
        finally:
            SERVICE.app = DOCS


def aim(case: schemathesis.Case, service: Service) -> None:
    """Half of the schema-valid cases (by a hash of the case) are aimed at what exists here.

    Generated job ids name no job and generated product URLs name nothing the service may fetch:
    alone, they would only ever meet 404 and 422, and the answers about real jobs would go unchecked.
    """
    meta = case.meta
    if meta is None or not all(part.mode.is_positive for part in [meta.generation, *meta.components.values()]):
        return  # a negative case stays one (an unexpected header too)
    choice = zlib.crc32(repr((case.path_parameters, case.body)).encode())
    if choice % 2:
        return
    job_id = service.jobs[(choice >> 1) % len(service.jobs)]
    # New objects, never changes in place: schemathesis builds other cases from the same ones.
    parameters = dict(case.path_parameters or {})
    if "job_id" in parameters:
        parameters["job_id"] = job_id
    if "filename" in parameters:
        parameters["filename"] = f"{job_id}.webp"
    case.path_parameters = parameters
    # Multipart bodies are left as they are: schemathesis takes one with a file's bytes in it for a
    # negative case (the upload routes' answers to real images are checked in test_api).
    body = case.body
    if case.operation.path == "/v1/jobs" and isinstance(body, dict) and isinstance(body.get("request"), dict):
        request = {k: v for k, v in body["request"].items() if k != "out"} | {"product": PRODUCT, "backgrounds": []}
        case.body = {"request": request}


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_every_operation_conforms_to_its_schema(case: schemathesis.Case, service: Service) -> None:
    aim(case, service)
    case.call_and_validate(
        headers={"Authorization": f"Bearer {service.token}"},
        excluded_checks=[
            # A schema-valid request is not always one the service can take: the contract's product
            # and backgrounds are any http(s) or storage URL by the schema, but the service refuses
            # (422) hosts that do not resolve to public addresses and storage URLs outside
            # access.input_roots, and a well-formed job id that no job has is 404. These depend on
            # the world (DNS, the records), not on the request's shape.
            positive_data_acceptance,
        ],
    )
