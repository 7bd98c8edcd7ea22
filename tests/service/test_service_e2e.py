"""The HTTP job service end to end: a real ``placewright serve`` process, its warm workers and real clients.

One service serves the module (tests/service_harness.py; 2 workers, 384x384 outputs, 127.0.0.1
allowlisted, the prototype's routes open as the ``prototype`` key, and ``faults.fail_stage=harmonize``
armed only while a flag file exists); each test uses keys of its own. A service without workers
shows a queued job being canceled. Clients are plain httpx; webhook receivers verify every delivery
with the Standard Webhooks reference library.
"""

from __future__ import annotations

import io
import itertools
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.live_prefect import DASHBOARD_RETRY
from tests.service_harness import (
    CLIENT_TIMEOUT_S,
    JOB_TIMEOUT_S,
    Receiver,
    ServiceProcess,
    SourceServer,
    alive,
    flow_run_of_job,
    prefect_api_url,
    task_runs,
    verify_delivery,
    wait_for_job,
    wait_for_state,
    wait_until,
)

pytestmark = pytest.mark.prefect

SIZE = (384, 384)  # the harness's output.size
LEGACY_KEY = "prototype"
# The prototype's answers and webhook body, field for field.
PROTOTYPE_ACCEPTED = {"job_id", "status", "message"}
PROTOTYPE_STATUS = {"job_id", "status", "created_at", "completed_at", "public_url"}
PROTOTYPE_WEBHOOK = {"job_id", "status", "public_url", "completed_at"}
# The webhook of a job that ended (the reconciler queues it, the outbox sends it at once).
WEBHOOK_TIMEOUT_S = 90.0
# Every stage before harmonize: a retry after a harmonize failure reuses them all.
FINISHED_STAGES = ("ingest", "enhance", "cutout", "analyze", "scene", "locate", "composite")


@dataclass
class Shared:
    service: ServiceProcess
    fault_flag: Path  # harmonize fails while this file exists
    legacy: dict[str, str]  # the key the prototype's routes act as

    def key(self, name: str) -> dict[str, str]:
        return self.service.create_key(name, cli=False)


@pytest.fixture(scope="module")
def shared(prefect_server: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shared]:
    workdir = tmp_path_factory.mktemp("service-e2e")
    flag = workdir / "fail-harmonize"
    service = ServiceProcess(
        workdir / "svc",
        workers=2,
        env_extra={
            "PLACEWRIGHT_SERVICE__LEGACY_KEY": LEGACY_KEY,
            "PLACEWRIGHT_RETRY__RETRIES": "0",  # a failed stage fails its job at once
            "PLACEWRIGHT_FAULTS__FAIL_STAGE": "harmonize",
            "PLACEWRIGHT_FAULTS__WHILE_FILE_EXISTS": str(flag),
        },
    )
    legacy = service.create_key(LEGACY_KEY)  # with `placewright keys create`, as an operator does
    with service:
        yield Shared(service, flag, legacy)


@pytest.fixture
def product_bytes(example_product: Path) -> bytes:
    return example_product.read_bytes()


def upload(
    client: httpx.Client, product: bytes, options: dict[str, Any], webhook_url: str | None = None
) -> dict[str, Any]:
    data = {"options": json.dumps(options)}
    if webhook_url:
        data["webhook_url"] = webhook_url
    answer = client.post("/v1/jobs/upload", files={"product": ("bottle.jpg", product, "image/jpeg")}, data=data)
    assert answer.status_code == 201, answer.text
    return answer.json()


def view_when(
    client: httpx.Client, job: dict[str, Any], check: Callable[[dict[str, Any]], bool], what: str
) -> dict[str, Any]:
    """The job's v1 view once ``check`` holds for it (within 10 s)."""

    def seen() -> dict[str, Any] | None:
        view = client.get(job["links"]["self"]).json()
        return view if check(view) else None

    return wait_until(seen, 10, what)


def decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def assert_product_placed(image: Image.Image, manifest: dict[str, Any], cutout: Image.Image, index: int = 0) -> None:
    """The product's cut-out is in the image at the variant's product_box, and not just anything is."""
    x0, y0, x1, y1 = manifest["variants"][index]["product_box"]
    assert 0 <= x0 < x1 <= image.width and 0 <= y0 < y1 <= image.height, (x0, y0, x1, y1)
    pixels = np.asarray(image.convert("RGB"), dtype=float)
    placed = np.asarray(cutout.convert("RGBA").resize((x1 - x0, y1 - y0)), dtype=float)
    opaque = placed[..., 3] > 200
    assert opaque.mean() > 0.3, "the cut-out is mostly empty"
    inside = np.abs(pixels[y0:y1, x0:x1][opaque] - placed[..., :3][opaque]).mean()
    # The same shape anywhere else in the scene (the left or right half, away from the product).
    dx = -x0 if x0 > image.width - x1 else image.width - x1
    elsewhere = np.abs(pixels[y0:y1, x0 + dx : x1 + dx][opaque] - placed[..., :3][opaque]).mean()
    assert inside < 40, f"the product's pixels differ from its cut-out by {inside:.1f} levels on average"
    assert elsewhere > 2 * inside, (inside, elsewhere)


# --- 1. the prototype's client --------------------------------------------------------------------


def test_the_prototype_client_works_unchanged(shared: Shared, example_product: Path) -> None:
    base = shared.service.url
    with Receiver() as receiver:
        # The prototype's client, as it was written: multipart with its four fields, no API key.
        with example_product.open("rb") as handle:
            response = httpx.post(
                f"{base}/image/generate",
                files={"product_image": ("olive-oil-bottle.jpg", handle, "image/jpeg")},
                data={
                    "background_prompt": "rustic wooden kitchen table, morning light",
                    "product_placement": "table",
                    "webhook_url": receiver.url,
                },
                timeout=CLIENT_TIMEOUT_S,
            )
        response.raise_for_status()
        accepted = response.json()
        job_id = accepted["job_id"]
        deadline = time.monotonic() + JOB_TIMEOUT_S
        while True:
            status = httpx.get(f"{base}/image/status/{job_id}", timeout=CLIENT_TIMEOUT_S).json()
            if status["status"] == "completed":
                break
            assert status["status"] in ("pending", "processing"), status
            assert time.monotonic() < deadline, status
            time.sleep(0.5)
        image_response = httpx.get(status["public_url"], timeout=CLIENT_TIMEOUT_S)
        image_response.raise_for_status()
        webhook = receiver.wait_for_job(job_id, timeout_s=WEBHOOK_TIMEOUT_S)

    assert set(accepted) == PROTOTYPE_ACCEPTED and accepted["status"] == "pending", accepted
    assert set(status) >= PROTOTYPE_STATUS and status["job_id"] == job_id, status
    assert status["completed_at"] and status["public_url"] == f"{base}/image/output/{job_id}.webp", status
    assert image_response.headers["content-type"].startswith("image/")
    image = decode(image_response.content)
    assert image.size == SIZE

    # The prototype's webhook body, exactly its fields (and signed, though its receiver need not check).
    assert len(webhook) == 1
    body = webhook[0].json()
    assert set(body) == PROTOTYPE_WEBHOOK, body
    assert body == {
        "job_id": job_id,
        "status": "completed",
        "public_url": status["public_url"],
        "completed_at": status["completed_at"],
    }
    assert webhook[0].headers["webhook-id"].startswith("evt_")

    # The product is in the picture where the manifest says (read through v1 with the same key).
    with shared.service.client(shared.legacy["token"]) as client:
        view = client.get(f"/v1/jobs/{job_id}").json()
    assert view["state"] == "succeeded" and view["completed_at"] == status["completed_at"]
    assert view["request"]["surface"] == "table"
    assert view["request"]["prompts"] == ["rustic wooden kitchen table, morning light"]
    assert httpx.get(view["result"]["images"][0]["url"]).content == image_response.content
    manifest = httpx.get(view["result"]["manifest_url"]).json()
    cutout = decode(httpx.get(manifest["product"]["cutout_url"]).content)
    assert_product_placed(image, manifest, cutout)
    with shared.service.client(shared.key("prototype-stranger")["token"]) as stranger:
        assert stranger.get(f"/image/status/{job_id}").status_code == 404
        assert stranger.get(f"/v1/jobs/{job_id}").status_code == 404


# --- 2. v1: a job from a URL and an upload, signed webhooks, results, lists, other keys ------------


def test_v1_jobs_from_a_url_and_an_upload(shared: Shared, product_bytes: bytes) -> None:
    key = shared.key("v1-owner")
    other = shared.key("v1-other")
    with Receiver() as receiver, SourceServer(product_bytes) as source, shared.service.client(key["token"]) as client:
        answer = client.post(
            "/v1/jobs",
            json={
                "request": {"product": source.url(), "prompts": ["white minimal studio", "marble counter"], "seed": 7},
                "webhook_url": receiver.url,
            },
        )
        assert answer.status_code == 201, answer.text
        by_url = answer.json()
        assert by_url["state"] == "queued" and answer.headers["location"] == by_url["links"]["self"]
        by_upload = upload(client, product_bytes, {"prompts": ["wooden shelf"], "size": "320x256"}, receiver.url)

        jobs = {job["id"]: wait_for_job(client, job["links"]["self"]) for job in (by_url, by_upload)}
        assert [job["state"] for job in jobs.values()] == ["succeeded", "succeeded"], jobs
        assert source.paths == ["/product.jpg"], "the worker fetched the product once"

        # Webhooks: one per job, each verified with the key's secret.
        for job_id in jobs:
            deliveries = receiver.wait_for_job(job_id, timeout_s=WEBHOOK_TIMEOUT_S)
            assert len(deliveries) == 1
            body = verify_delivery(deliveries[0], key["webhook_secret"])
            assert body["type"] == "job.succeeded" and body["data"]["id"] == job_id
            assert body["data"]["state"] == "succeeded" and body["data"]["result"] == jobs[job_id]["result"]
            assert body["timestamp"] == jobs[job_id]["completed_at"]
            view = view_when(client, jobs[job_id], lambda v: bool(v["deliveries"]), "the delivery recorded")
            assert [(d["event_id"], d["status_code"]) for d in view["deliveries"]] == [(deliveries[0].webhook_id, 200)]

        # Results: images at their /files URLs decode at the size asked; manifests are fetchable.
        sizes = {by_url["id"]: [SIZE, SIZE], by_upload["id"]: [(320, 256)]}
        for job_id, job in jobs.items():
            result = client.get(f"/v1/jobs/{job_id}/result").json()
            assert result == job["result"]
            assert [(i["width"], i["height"]) for i in result["images"]] == sizes[job_id]
            for image in result["images"]:
                assert image["url"].startswith(f"{shared.service.url}/files/{key['id']}/")
                assert decode(httpx.get(image["url"]).content).size == (image["width"], image["height"])
            manifest = httpx.get(result["manifest_url"])
            assert manifest.status_code == 200
            assert [v["url"] for v in manifest.json()["variants"]] == [i["url"] for i in result["images"]]

        # The key's list shows both (newest first); the other key sees none of them.
        listed = client.get("/v1/jobs").json()
        assert [job["id"] for job in listed["jobs"]] == [by_upload["id"], by_url["id"]]
        assert client.get("/v1/jobs", params={"state": "succeeded", "limit": 1}).json()["next_cursor"]
    with shared.service.client(other["token"]) as stranger:
        assert stranger.get("/v1/jobs").json()["jobs"] == []
        for job_id in jobs:
            for answer in (
                stranger.get(f"/v1/jobs/{job_id}"),
                stranger.get(f"/v1/jobs/{job_id}/result"),
                stranger.post(f"/v1/jobs/{job_id}/cancel"),
            ):
                assert answer.status_code == 404, answer.text
                assert answer.headers["content-type"].startswith("application/problem+json")
    with shared.service.client() as anonymous:
        assert anonymous.get(f"/v1/jobs/{by_url['id']}").status_code == 401


# --- 5. a receiver that is down -----------------------------------------------------------------


def test_webhooks_are_retried_while_the_receiver_is_down(shared: Shared, product_bytes: bytes) -> None:
    key = shared.key("receiver-down")
    with shared.service.client(key["token"]) as client:
        # Answering 503 three times, then 200.
        with Receiver(answers=[503, 503, 503]) as receiver:
            job = upload(client, product_bytes, {"prompts": ["kitchen counter"], "seed": 11}, receiver.url)
            deliveries = receiver.wait_for_job(job["id"], timeout_s=JOB_TIMEOUT_S)
        assert [d.status for d in deliveries] == [503, 503, 503, 200]
        assert len({d.webhook_id for d in deliveries}) == 1
        for delivery in deliveries:  # each attempt signed anew (its own timestamp)
            assert verify_delivery(delivery, key["webhook_secret"])["data"]["id"] == job["id"]
        gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(deliveries)]
        # service.webhook_schedule_s is [0, 0.5, 1, 2, 4] here (no jitter): waits of 0.5, 1 and 2 s.
        assert gaps[0] < gaps[1] < gaps[2], gaps
        for gap, delay in zip(gaps, [0.5, 1, 2], strict=True):
            assert delay - 0.05 <= gap < delay + 1.5, gaps
        view = view_when(client, job, lambda v: len(v["deliveries"]) == 4, "4 attempts recorded")
        assert [(d["number"], d["status_code"]) for d in view["deliveries"]] == [(1, 503), (2, 503), (3, 503), (4, 200)]
        assert {d["event_id"] for d in view["deliveries"]} == {deliveries[0].webhook_id}
        assert all("503" in d["error"] for d in view["deliveries"][:3]) and view["deliveries"][3]["error"] is None

        # Not listening at all for the first attempt(s), then answering.
        late = Receiver()
        job = upload(client, product_bytes, {"prompts": ["kitchen counter"], "seed": 12}, late.url)
        # Watched in the service's records (no request to the service, which might be slow): the
        # receiver must start listening before the schedule (7.5 s) runs out.
        refused = wait_until(lambda: shared.service.attempts(job["id"]), JOB_TIMEOUT_S, "a refused delivery attempt")
        with late:
            delivered = late.wait_for_job(job["id"], timeout_s=WEBHOOK_TIMEOUT_S)
        assert refused[0].status_code is None and "cannot deliver" in refused[0].error, refused
        view = view_when(client, job, lambda v: v["deliveries"][-1]["error"] is None, "the delivery recorded")
        codes = [d["status_code"] for d in view["deliveries"]]
        assert codes[-1] == 200 and set(codes[:-1]) == {None} and len(codes) >= 2, view["deliveries"]
        assert {d["event_id"] for d in view["deliveries"]} == {d.webhook_id for d in delivered}


# --- 7. cancel ------------------------------------------------------------------------------------


def test_canceling_a_running_job_replaces_its_worker(shared: Shared, product_bytes: bytes) -> None:
    key = shared.key("cancel-running")
    service = shared.service
    # The product arrives slowly (about 40 s for the whole file): the job is running all that while.
    with (
        SourceServer(product_bytes, slow_chunk=256, slow_every_s=0.25) as source,
        service.client(key["token"]) as client,
    ):
        answer = client.post("/v1/jobs", json={"request": {"product": source.url("/slow.jpg"), "prompts": ["shelf"]}})
        assert answer.status_code == 201, answer.text
        job = answer.json()
        assert source.slow_started.wait(60), service.logs()
        wait_for_state(client, job["links"]["self"], ("running",), timeout_s=60)
        flow_run_id = str(flow_run_of_job(job["id"]).id)
        busy = wait_until(
            lambda: [s["pid"] for s in service.worker_statuses() if s["current"] == flow_run_id],
            10,
            "the worker running the job",
        )

        canceled = client.post(job["links"]["cancel"])
        assert canceled.status_code == 200, canceled.text
        assert canceled.json()["state"] in ("running", "canceled")  # Cancelling until its worker stops it
        final = wait_for_job(client, job["links"]["self"], timeout_s=60)  # the product takes 40 s to arrive
        assert final["state"] == "canceled", final
        assert flow_run_of_job(job["id"]).state.name == "Cancelled"

        # Its worker exited and another took its place; the service is ready and runs the next job.
        wait_until(lambda: not alive(busy[0]), 10, f"worker {busy[0]} gone")
        wait_until(
            lambda: len([s for s in service.worker_statuses() if s["pid"] != busy[0]]) == 2,
            60,
            "two workers again",
        )
        assert httpx.get(f"{service.url}/ready").status_code == 200
        after = upload(client, product_bytes, {"prompts": ["shelf"], "seed": 21})
        assert wait_for_job(client, after["links"]["self"])["state"] == "succeeded"
        assert client.get(f"/v1/jobs/{job['id']}/result").status_code == 409  # a canceled job has no result


def test_canceling_a_queued_job_is_immediate(prefect_server: None, tmp_path: Path, product_bytes: bytes) -> None:
    service = ServiceProcess(tmp_path / "svc", workers=0)  # nothing takes its jobs: they stay queued
    key = service.create_key("cancel-queued", cli=False)
    with Receiver() as receiver, service, service.client(key["token"]) as client:
        job = upload(client, product_bytes, {"prompts": ["shelf"]}, receiver.url)
        assert client.get(job["links"]["self"]).json()["state"] == "queued"
        answer = client.post(job["links"]["cancel"])
        assert answer.status_code == 200 and answer.json()["state"] == "canceled", answer.text
        assert client.get(job["links"]["self"]).json()["state"] == "canceled"
        assert flow_run_of_job(job["id"]).state.name == "Cancelled"
        deliveries = receiver.wait_for_job(job["id"], timeout_s=WEBHOOK_TIMEOUT_S)
        body = verify_delivery(deliveries[0], key["webhook_secret"])
        assert body["type"] == "job.canceled" and body["data"]["state"] == "canceled"
        assert client.get(f"/v1/jobs/{job['id']}/result").status_code == 409


# --- 9. a failed job retried from the Prefect dashboard --------------------------------------------


def test_a_job_failed_by_a_fault_succeeds_when_retried_from_the_dashboard(shared: Shared, product_bytes: bytes) -> None:
    key = shared.key("dashboard-retry")
    with Receiver() as receiver, shared.service.client(key["token"]) as client:
        shared.fault_flag.touch()
        try:
            job = upload(client, product_bytes, {"prompts": ["kitchen counter", "studio"], "seed": 31}, receiver.url)
            failed = wait_for_job(client, job["links"]["self"])
        finally:
            shared.fault_flag.unlink(missing_ok=True)
        assert failed["state"] == "failed", failed
        assert "injected fault in stage harmonize" in failed["error"] and "\n" not in failed["error"], failed

        # Retry as the dashboard's Retry button does.
        flow_run = flow_run_of_job(job["id"])
        retried = httpx.post(f"{prefect_api_url()}/flow_runs/{flow_run.id}/set_state", json=DASHBOARD_RETRY)
        assert retried.status_code in (200, 201) and retried.json()["status"] == "ACCEPT", retried.text
        done = wait_for_job(client, job["links"]["self"])
        assert done["state"] == "succeeded" and done["error"] is None, done
        assert len(done["result"]["images"]) == 2

        # The second attempt read every stage finished before harmonize from the cache. (The server
        # records task-run states from their events, a moment after the flow run ends: a task run can be
        # listed before its state is.)
        def second_attempt() -> dict[str, set[str]] | None:
            states: dict[str, set[str]] = {}
            for task_run in task_runs(flow_run.id):
                if task_run.flow_run_run_count == 2:
                    if task_run.state is None or not task_run.state.is_final():
                        return None
                    states.setdefault(task_run.name.rsplit("-", 1)[0], set()).add(task_run.state.name)
            return states if states.get("publish") == {"Completed"} else None

        states = wait_until(second_attempt, 30, "the task runs recorded")
        for stage in FINISHED_STAGES:
            assert states.get(stage) == {"Cached"}, (stage, states)
        assert states["harmonize"] == {"Completed"}, states

        # Its webhooks: job.failed, then job.succeeded (a new event).
        receiver.wait_for(2, timeout_s=WEBHOOK_TIMEOUT_S)
        bodies = [verify_delivery(d, key["webhook_secret"]) for d in receiver.received()]
        assert [b["type"] for b in bodies] == ["job.failed", "job.succeeded"]
        assert len({d.webhook_id for d in receiver.received()}) == 2
