"""Load: 50 jobs submitted at once by 3 keys to a service with 2 warm workers.

Every job must end succeeded, exactly once (one flow run each, run once, one run folder each), and
each key must see exactly its own jobs. Clients submit as careful clients do, with an Idempotency-Key,
sending a request again after a 5xx or no answer (the Prefect test server, SQLite, answers concurrent
writes with 503 at times, which Prefect's client waits out with growing delays), and follow their
jobs through the list endpoint (one request per key per poll, well inside the per-key rate limit).
"""

from __future__ import annotations

import json
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.service_harness import ServiceProcess, deployment_flow_runs, wait_until

pytestmark = pytest.mark.prefect

JOBS = 50
KEYS = ("load-a", "load-b", "load-c")
LOAD_TIMEOUT_S = 400.0
# Flow runs created at once make the Prefect test server (SQLite) answer 503 now and then; Prefect's
# client then waits 2, 4, 8... s before trying again (six tries), so one submission may take a minute.
SUBMIT_TIMEOUT_S = 120.0
SUBMIT_TRIES = 3


def list_all(client: httpx.Client) -> list[dict]:
    """Every job of the client's key, page by page."""
    jobs: list[dict] = []
    cursor = None
    while True:
        page = client.get("/v1/jobs", params={"limit": 100, **({"cursor": cursor} if cursor else {})}).json()
        jobs.extend(page["jobs"])
        cursor = page["next_cursor"]
        if cursor is None:
            return jobs


def test_fifty_concurrent_jobs_from_three_keys(prefect_server: None, tmp_path: Path, example_product: Path) -> None:
    service = ServiceProcess(tmp_path / "svc", workers=2, env_extra={"PLACEWRIGHT_OUTPUT__SIZE": '"256x256"'})
    keys = {name: service.create_key(name, cli=False) for name in KEYS}
    product = example_product.read_bytes()
    # Jobs 0..49 dealt to the keys in a shuffled order; a few repeat a request (cached stages, same answer).
    owners = [KEYS[i % len(KEYS)] for i in range(JOBS)]
    random.Random(5).shuffle(owners)
    barrier = threading.Barrier(16)
    local = threading.local()
    made: list[httpx.Client] = []
    latencies: list[float] = []
    resent: list[tuple[int, int | str]] = []

    def submit(number: int) -> tuple[str, str]:
        name = owners[number]
        if not hasattr(local, "clients"):
            local.clients = {}
            barrier.wait(timeout=30)  # the first requests of every thread go out together
        if name not in local.clients:
            local.clients[name] = service.client(keys[name]["token"], timeout_s=SUBMIT_TIMEOUT_S)
            made.append(local.clients[name])
        client = local.clients[name]
        options = {"prompts": [f"scene {number % 20}"], "seed": number % 20}
        began = time.monotonic()
        # As a careful client submits: with an Idempotency-Key, sent again after a 5xx or no answer.
        for attempt in range(SUBMIT_TRIES):
            try:
                answer = client.post(
                    "/v1/jobs/upload",
                    files={"product": ("bottle.jpg", product, "image/jpeg")},
                    data={"options": json.dumps(options)},
                    headers={"Idempotency-Key": f"load-{number}"},
                )
            except httpx.TimeoutException:
                answer = None
            if answer is not None and answer.status_code < 500:
                break
            resent.append((number, answer.status_code if answer is not None else "timeout"))
            assert attempt + 1 < SUBMIT_TRIES, f"submission {number}: no answer after {SUBMIT_TRIES} tries"
        assert answer is not None and answer.status_code in (200, 201), answer.text
        assert answer.status_code == 201 or answer.headers["idempotent-replayed"] == "true"
        latencies.append(time.monotonic() - began)
        return name, answer.json()["id"]

    with service:
        started = time.monotonic()
        try:
            with ThreadPoolExecutor(max_workers=16) as pool:
                submitted = list(pool.map(submit, range(JOBS)))
        finally:
            for client in made:
                client.close()
        submit_s = time.monotonic() - started
        ids = [job_id for _, job_id in submitted]
        assert len(set(ids)) == JOBS, "every submission is a job of its own"
        mine = {name: sorted(job_id for owner, job_id in submitted if owner == name) for name in KEYS}

        clients = {name: service.client(keys[name]["token"]) for name in KEYS}
        try:

            def all_final() -> bool:
                states = [job["state"] for name in KEYS for job in list_all(clients[name])]
                return len(states) == JOBS and all(s in ("succeeded", "failed", "canceled") for s in states)

            wait_until(all_final, LOAD_TIMEOUT_S, f"{JOBS} jobs final", interval_s=2.0)
            run_s = time.monotonic() - started
            for name in KEYS:
                listed = list_all(clients[name])
                # Each key's list holds exactly its own jobs, each once, all succeeded.
                assert sorted(job["id"] for job in listed) == mine[name], name
                failed = [job for job in listed if job["state"] != "succeeded"]
                assert not failed, f"{[(job['id'], job['error']) for job in failed]}\n{service.logs()}"
                # ...and reading another key's job is a 404.
                stranger = clients[KEYS[(KEYS.index(name) + 1) % len(KEYS)]]
                for job_id in mine[name][:3]:
                    assert stranger.get(f"/v1/jobs/{job_id}").status_code == 404
                # One run folder per job under the key's folder.
                folders = {job["result"]["manifest_url"].rsplit("/", 2)[-2] for job in listed}
                assert len(folders) == len(mine[name])
                assert len(list((service.out / keys[name]["id"]).glob("*/manifest.json"))) == len(mine[name])
        finally:
            for client in clients.values():
                client.close()

    # The Prefect server holds exactly one flow run per job, each run once and completed.
    runs = deployment_flow_runs(service.deployment)
    assert len(runs) == JOBS
    job_tags = sorted(tag.removeprefix("job:") for run in runs for tag in run.tags if tag.startswith("job:"))
    assert job_tags == sorted(ids)
    assert {run.state.name for run in runs} == {"Completed"}
    again = [run for run in runs if run.run_count != 1]
    assert not again, f"runs started more than once: {_histories(again)}\n{service.logs()}"
    print(
        f"{JOBS} jobs: submitted in {submit_s:.1f} s (slowest answer {max(latencies):.1f} s; sent again: {resent}), "
        f"all finished after {run_s:.1f} s"
    )


def _histories(runs: list) -> str:
    """Each run's states in order (name, message), to tell a re-queue by the service from a repeated start."""
    from tests.service_harness import prefect_client

    with prefect_client() as client:
        return "; ".join(
            f"{run.id} (run_count {run.run_count}): "
            + " -> ".join(
                f"{s.name} ({s.message or ''})"
                for s in sorted(client.read_flow_run_states(run.id), key=lambda s: s.timestamp)
            )
            for run in runs
        )
