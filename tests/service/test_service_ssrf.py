"""SSRF through the API: URLs a client gives (product, backgrounds, webhook) may not reach private addresses.

One service serves the module with ``limits.allowed_hosts`` = ``["127.0.0.2"]`` only (a stand-in for
an operator's allowed host; Linux answers on all of 127/8): 127.0.0.1, ::1, the metadata address,
private networks and names resolving to them are refused with a 422 problem before anything exists,
and no connection is made (servers listening on 127.0.0.1 and ::1 count every connection). A product
URL on the allowed host that redirects to 127.0.0.1 is accepted, and its job fails with the refusal
recorded: the worker's download checks every redirect.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.service_harness import (
    ROOT,
    Receiver,
    ServiceProcess,
    SourceServer,
    deployment_flow_runs,
    verify_delivery,
    wait_for_job,
)

pytestmark = pytest.mark.prefect

ALLOWED = "127.0.0.2"
PRODUCT = (ROOT / "examples" / "olive-oil-bottle.jpg").read_bytes()


@dataclass
class Guarded:
    service: ServiceProcess
    key: dict[str, str]
    victim: SourceServer  # on 127.0.0.1: must never see a connection
    victim6: SourceServer  # on ::1
    allowed: SourceServer  # on 127.0.0.2 (allowlisted): serves the product, or redirects to the victim

    def client(self) -> httpx.Client:
        return self.service.client(self.key["token"])

    def untouched(self) -> None:
        assert (self.victim.connections, self.victim6.connections) == (0, 0), "a private address was connected to"

    def runs_of(self, key: dict[str, str]) -> list[Any]:
        return [run for run in deployment_flow_runs(self.service.deployment) if f"key:{key['id']}" in run.tags]


@pytest.fixture(scope="module")
def guarded(prefect_server: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Guarded]:
    service = ServiceProcess(
        tmp_path_factory.mktemp("service-ssrf") / "svc",
        workers=1,
        env_extra={
            "PLACEWRIGHT_LIMITS__ALLOWED_HOSTS": json.dumps([ALLOWED]),
            "PLACEWRIGHT_SERVICE__LEGACY_KEY": "prototype",
        },
    )
    service.create_key("prototype", cli=False)
    key = service.create_key("ssrf", cli=False)
    victim = SourceServer(PRODUCT)
    victim6 = SourceServer(PRODUCT, host="::1")
    allowed = SourceServer(PRODUCT, host=ALLOWED, redirect_to=victim.url())
    with victim, victim6, allowed, service:
        yield Guarded(service, key, victim, victim6, allowed)


# (what the URL is, its template: {v4} and {v6} are the victims' ports; the refusal's words)
PRIVATE = [
    ("loopback", "http://127.0.0.1:{v4}/product.jpg", "127.0.0.1 is a loopback address"),
    ("metadata", "http://169.254.169.254/latest/meta-data/", "169.254.169.254 is the link-local cloud metadata"),
    ("private", "http://10.0.0.1/product.jpg", "10.0.0.1 is a private address"),
    ("ipv6 loopback", "http://[::1]:{v6}/product.jpg", "::1 is a loopback address"),
    ("name of a loopback", "http://localhost:{v4}/product.jpg", "localhost resolves to 127.0.0.1, a loopback address"),
]


def assert_refused(answer: httpx.Response, field: str, words: str) -> None:
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    problem = answer.json()
    assert problem["status"] == 422 and problem["detail"].startswith(field), problem
    assert f"refused: {words}" in problem["detail"] and "limits.allowed_hosts" in problem["detail"], problem


@pytest.mark.parametrize(("kind", "template", "words"), PRIVATE, ids=[p[0] for p in PRIVATE])
def test_private_urls_are_refused_before_anything_exists(
    guarded: Guarded, kind: str, template: str, words: str
) -> None:
    url = template.format(v4=guarded.victim.port, v6=guarded.victim6.port)
    good = guarded.allowed.url()
    with guarded.client() as client:
        attempts = {
            "product": client.post("/v1/jobs", json={"request": {"product": url, "prompts": ["shelf"]}}),
            "background": client.post("/v1/jobs", json={"request": {"product": good, "backgrounds": [url]}}),
            "webhook_url": client.post(
                "/v1/jobs", json={"request": {"product": good, "prompts": ["shelf"]}, "webhook_url": url}
            ),
            "webhook_url (upload)": client.post(
                "/v1/jobs/upload",
                files={"product": ("bottle.jpg", PRODUCT, "image/jpeg")},
                data={"options": json.dumps({"prompts": ["shelf"]}), "webhook_url": url},
            ),
            # The prototype's route, as its clients call it (no key: the legacy key).
            "webhook_url (prototype)": httpx.post(
                f"{guarded.service.url}/image/generate",
                files={"product_image": ("bottle.jpg", PRODUCT, "image/jpeg")},
                data={"background_prompt": "shelf", "webhook_url": url},
            ),
        }
        for field, answer in attempts.items():
            assert_refused(answer, field.split(" ")[0], words)
        # Nothing was created, nothing was fetched.
        assert client.get("/v1/jobs").json()["jobs"] == []
    guarded.untouched()
    assert guarded.allowed.connections == 0, "checking a URL at intake fetches nothing"
    assert guarded.runs_of(guarded.key) == []


def test_a_redirect_to_a_private_address_fails_the_job(guarded: Guarded) -> None:
    with guarded.client() as client:
        answer = client.post(
            "/v1/jobs", json={"request": {"product": guarded.allowed.url("/redirect"), "prompts": ["a"]}}
        )
        assert answer.status_code == 201, answer.text  # the allowed host passes the intake check
        job = wait_for_job(client, answer.json()["links"]["self"])
    assert job["state"] == "failed", job
    error = job["error"]
    assert "\n" not in error and guarded.allowed.url("/redirect") in error, error
    assert "refused: 127.0.0.1 is a loopback address" in error, error
    assert guarded.allowed.paths == ["/redirect"]
    guarded.untouched()


def test_an_allowed_host_works(guarded: Guarded) -> None:
    key = guarded.service.create_key("ssrf-allowed", cli=False)
    with Receiver(host=ALLOWED) as receiver, guarded.service.client(key["token"]) as client:
        answer = client.post(
            "/v1/jobs",
            json={"request": {"product": guarded.allowed.url(), "prompts": ["shelf"]}, "webhook_url": receiver.url},
        )
        assert answer.status_code == 201, answer.text
        job = wait_for_job(client, answer.json()["links"]["self"])
        assert job["state"] == "succeeded", job
        deliveries = receiver.wait_for_job(job["id"], timeout_s=90)
    assert verify_delivery(deliveries[0], key["webhook_secret"])["type"] == "job.succeeded"
    assert "/product.jpg" in guarded.allowed.paths
    assert len(guarded.runs_of(key)) == 1
    guarded.untouched()
