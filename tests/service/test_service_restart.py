"""The service stopped under load: a crash (SIGKILL) and a graceful shutdown (SIGTERM), then a restart.

Each test runs its own ``placewright serve`` process (tests/service_harness.py) against the session's
Prefect test server, stops it while jobs are queued and running, and starts it again on the same
folders, records, deployment and port: every accepted job must end succeeded, exactly once, and
every webhook must be delivered (a crash may deliver one twice, with one webhook-id).
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import httpx
import pytest

from tests.live_prefect import descendants
from tests.service_harness import (
    JOB_TIMEOUT_S,
    Receiver,
    ServiceProcess,
    alive,
    deployment_flow_runs,
    flow_run_of_job,
    kill_all,
    processes_of,
    verify_delivery,
    wait_for_job,
    wait_until,
)

pytestmark = pytest.mark.prefect

# Jobs big enough to be caught running (about 2-4 s each on a warm worker here), each with its own
# seed so that no stage is served from the cache of an earlier job.
SIZE = "512x512"


def submit(client: httpx.Client, product: Path, seed: int, webhook_url: str | None = None, size: str = SIZE) -> str:
    options = {"prompts": [f"sunlit kitchen counter {seed}"], "seed": seed, "size": size}
    data = {"options": json.dumps(options)}
    if webhook_url:
        data["webhook_url"] = webhook_url
    with product.open("rb") as handle:
        answer = client.post("/v1/jobs/upload", files={"product": ("bottle.jpg", handle, "image/jpeg")}, data=data)
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


def states_of(client: httpx.Client, job_ids: list[str]) -> dict[str, str]:
    return {job_id: client.get(f"/v1/jobs/{job_id}").json()["state"] for job_id in job_ids}


def test_a_crash_loses_no_job_and_no_webhook(prefect_server: None, tmp_path: Path, example_product: Path) -> None:
    # A short delivery time limit: an attempt under way at the crash is tried again after its lease
    # (the time limit + 30 s), not after 45 s.
    service = ServiceProcess(tmp_path / "svc", workers=2, env_extra={"PLACEWRIGHT_SERVICE__WEBHOOK_TIMEOUT_S": "2"})
    key = service.create_key("crash", cli=False)
    restarted: ServiceProcess | None = None
    family: list[int] = []
    with Receiver() as receiver:
        service.start()
        try:
            with service.client(key["token"]) as client:
                job_ids = [submit(client, example_product, seed, receiver.url) for seed in range(6)]
                wait_until(
                    lambda: "running" in states_of(client, job_ids).values(), 60, "a job running before the crash"
                )
                before = states_of(client, job_ids)
            workers = service.worker_pids()
            family += service.kill()
            assert "running" in before.values() and "queued" in before.values(), before
            assert len(workers) == 2 and set(workers) <= set(family), (workers, family)

            # The workers die with the service (PR_SET_PDEATHSIG): nothing of it is left.
            wait_until(
                lambda: not [pid for pid in family if alive(pid)], 15, f"the killed service's processes {family}"
            )
            assert processes_of(service) == []

            restarted = service.again().start()
            with restarted.client(key["token"]) as client:
                jobs = {job_id: wait_for_job(client, f"/v1/jobs/{job_id}") for job_id in job_ids}
                listed = client.get("/v1/jobs", params={"limit": 100}).json()["jobs"]
            assert {job_id: job["state"] for job_id, job in jobs.items()} == dict.fromkeys(job_ids, "succeeded"), (
                jobs,
                restarted.logs(),
            )
            assert sorted(job["id"] for job in listed) == sorted(job_ids)

            # Exactly one flow run per job; the ones running at the crash were run again (run_count 2).
            runs = deployment_flow_runs(service.deployment)
            assert len(runs) == len(job_ids)
            assert all(run.state.name == "Completed" for run in runs)
            for job_id, state in before.items():
                if state == "running":
                    assert flow_run_of_job(job_id).run_count == 2, f"job {job_id} was running at the crash"

            # Every job's webhook arrives, signed; repeats (a delivery cut by the crash) carry one webhook-id.
            for job_id in job_ids:
                deliveries = receiver.wait_for_job(job_id, timeout_s=60)
                assert len({d.webhook_id for d in deliveries}) == 1, deliveries
                for delivery in deliveries:
                    body = verify_delivery(delivery, key["webhook_secret"])
                    assert body["type"] == "job.succeeded" and body["data"]["state"] == "succeeded"
        finally:
            if restarted is not None:
                restarted.stop()
            service.stop()
            kill_all(family)  # only if the test failed: the workers should have died with the service


def test_sigterm_lets_the_running_job_finish(prefect_server: None, tmp_path: Path, example_product: Path) -> None:
    # A grace long enough for the job in hand on a busy machine (the harness's 20 s may not be).
    service = ServiceProcess(tmp_path / "svc", workers=1, env_extra={"PLACEWRIGHT_SERVICE__SHUTDOWN_GRACE_S": "90"})
    key = service.create_key("graceful", cli=False)
    restarted: ServiceProcess | None = None
    family: list[int] = []
    service.start()
    try:
        with service.client(key["token"]) as client:
            # Enough jobs that some are still queued when one is seen running (a job takes ~1 s here).
            # Large outputs (several seconds each), so the later ones are surely still queued.
            job_ids = [submit(client, example_product, seed, size="2048x2048") for seed in range(100, 104)]
            wait_until(lambda: "running" in states_of(client, job_ids).values(), 60, "a job running")
            before = states_of(client, job_ids)
        running = [job_id for job_id, state in before.items() if state == "running"]
        queued = [job_id for job_id, state in before.items() if state == "queued"]
        assert len(running) == 1 and len(queued) >= 2, before

        family = descendants(service.pid)
        assert len(family) >= 1
        # uvicorn shuts down on SIGTERM, then raises the signal again: the exit status says SIGTERM.
        assert service.stop(timeout_s=JOB_TIMEOUT_S, sweep=False) in (0, -signal.SIGTERM), service.logs()
        # The service waited for its worker, which finished its job and exited on its own.
        assert [pid for pid in family if alive(pid)] == [] and processes_of(service) == []
        # The running job was let finish (within service.shutdown_grace_s), once; the queued ones wait.
        finished = flow_run_of_job(running[0])
        assert finished.state.name == "Completed", (finished.state, service.logs())
        assert finished.run_count == 1
        # The queued ones wait for the restart (one may have been taken in the instant before SIGTERM).
        waiting = [flow_run_of_job(job_id) for job_id in queued]
        assert all(run.state.name in ("Scheduled", "Completed") and run.run_count <= 1 for run in waiting), waiting
        assert sum(run.state.name == "Scheduled" for run in waiting) >= len(queued) - 1

        restarted = service.again().start()
        with restarted.client(key["token"]) as client:
            jobs = {job_id: wait_for_job(client, f"/v1/jobs/{job_id}") for job_id in job_ids}
        assert {job_id: job["state"] for job_id, job in jobs.items()} == dict.fromkeys(job_ids, "succeeded"), jobs
        assert len(deployment_flow_runs(service.deployment)) == len(job_ids)
        assert all(flow_run_of_job(job_id).run_count == 1 for job_id in job_ids)
    finally:
        if restarted is not None:
            restarted.stop()
        service.stop()
        kill_all(family)
