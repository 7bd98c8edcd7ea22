"""The Prefect side of the service: jobs are flow runs of the place-product deployment.

:class:`Engine` registers the deployment (``service.deployment``: no work pool; the service's own
warm workers, :mod:`service.worker`, claim its scheduled runs), creates one flow run per job with a
namespaced idempotency key, reads flow-run states, cancels, and sends runs whose worker died back
to be run again. Prefect's flow-run idempotency keys are unique per flow and never expire, so the
service's are ``placewright-service/job/<job id>``: creating a job's flow run twice (a restart
between creating it and recording it) gives the same flow run.

Where a run's output lands follows from the flow run (:func:`placewright.publish.run_id_for`), so the
service finds a finished job's manifest without any help from the worker.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterId,
    FlowRunFilter,
    FlowRunFilterId,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.client.schemas.sorting import FlowRunSort
from prefect.exceptions import ObjectNotFound
from prefect.states import AwaitingRetry, Cancelled, Cancelling, Failed, Pending

from placewright.errors import first_line
from placewright.processes import process_alive
from placewright.publish import run_id_for

log = logging.getLogger("placewright.service")
_THREAD = threading.local()

FLOW_NAME = "place-product"
IDEMPOTENCY_NAMESPACE = "placewright-service/job/"
SERVICE_TAG = "placewright-service"
# A run whose worker died is run again at most this often (run_count counts each start).
MAX_RUN_STARTS = 3
# A claimed (Pending) run whose worker never said who it is, after this long, was claimed by a dead worker.
UNOWNED_PENDING_S = 30.0

# How a flow-run state reads as a job state.
JOB_STATES: dict[StateType, str] = {
    StateType.SCHEDULED: "queued",
    StateType.PENDING: "queued",
    StateType.PAUSED: "queued",
    StateType.RUNNING: "running",
    StateType.CANCELLING: "running",
    StateType.COMPLETED: "succeeded",
    StateType.FAILED: "failed",
    StateType.CRASHED: "failed",
    StateType.CANCELLED: "canceled",
}
ACTIVE_TYPES = [StateType.PENDING, StateType.RUNNING, StateType.CANCELLING]


def job_state(flow_run: FlowRun) -> str:
    """The job state of a flow run (queued, running, succeeded, failed, canceled)."""
    if flow_run.state is None:
        return "queued"
    return JOB_STATES.get(flow_run.state.type, "queued")


def flow_run_error(flow_run: FlowRun) -> str | None:
    """One line saying why a run failed, from its state's message (Prefect's "Flow run encountered..." removed)."""
    state = flow_run.state
    if state is None or state.type not in (StateType.FAILED, StateType.CRASHED):
        return None
    message = first_line(state.message or state.name or "failed")
    for prefix in ("Flow run encountered an exception. ", "Flow run encountered an exception: "):
        message = message.removeprefix(prefix)
    return message or "failed"


def host_name() -> str:
    return socket.gethostname()


def worker_tag(pid: int | None = None) -> str:
    """How a worker names itself on the runs it claims: ``<host>:<pid>`` (Prefect's infrastructure_pid)."""
    return f"{host_name()}:{pid if pid is not None else os.getpid()}"


@dataclass
class Engine:
    """Flow runs of the service's deployment, through the Prefect API at $PREFECT_API_URL."""

    deployment_name: str

    def client(self) -> contextlib.AbstractContextManager[SyncPrefectClient]:
        """This thread's Prefect client, opened once and kept (each new client asks the server for a CSRF token)."""
        client = getattr(_THREAD, "client", None)
        if client is None:
            client = get_client(sync_client=True)
            client.__enter__()
            _THREAD.client = client
        return contextlib.nullcontext(client)

    # --- the deployment ---------------------------------------------------------------------
    def ensure_deployment(self) -> UUID:
        """Register (or update) the deployment whose flow runs are jobs; returns its id."""
        from flows.place_product import place_product

        deployment = place_product.to_deployment(
            name=self.deployment_name,
            tags=["placewright", SERVICE_TAG],
            description="Jobs of the Placewright HTTP service (placewright serve); run by its warm workers.",
        )
        return deployment.apply()

    def deployment_id(self) -> UUID:
        with self.client() as client:
            return client.read_deployment_by_name(f"{FLOW_NAME}/{self.deployment_name}").id

    # --- jobs ---------------------------------------------------------------------------------
    def create_run(self, deployment_id: UUID, job_id: str, key_id: str, request: dict[str, Any]) -> FlowRun:
        """The job's flow run, created once: the same job id always gives the same flow run."""
        with self.client() as client:
            return client.create_flow_run_from_deployment(
                deployment_id,
                parameters={"request": request},
                idempotency_key=f"{IDEMPOTENCY_NAMESPACE}{job_id}",
                tags=[SERVICE_TAG, f"job:{job_id}", f"key:{key_id}"],
            )

    def read_run(self, flow_run_id: str) -> FlowRun | None:
        with self.client() as client:
            try:
                return client.read_flow_run(UUID(flow_run_id))
            except ObjectNotFound:
                return None

    def read_runs(self, flow_run_ids: list[str]) -> dict[str, FlowRun]:
        """The flow runs that exist among ``flow_run_ids``, by id."""
        found: dict[str, FlowRun] = {}
        with self.client() as client:
            for start in range(0, len(flow_run_ids), 200):
                batch = [UUID(i) for i in flow_run_ids[start : start + 200]]
                runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=batch)), limit=200)
                found.update({str(run.id): run for run in runs})
        return found

    def cancel(self, flow_run_id: str) -> FlowRun | None:
        """Cancel a job's run: at once when it has not started, else through Cancelling (its worker stops it).

        Returns the flow run as it is afterwards (None when it does not exist).
        """
        with self.client() as client:
            try:
                run = client.read_flow_run(UUID(flow_run_id))
            except ObjectNotFound:
                return None
            kind = run.state.type if run.state is not None else StateType.SCHEDULED
            if kind in (StateType.SCHEDULED, StateType.PENDING, StateType.PAUSED):
                client.set_flow_run_state(run.id, Cancelled(message="canceled by the client"), force=True)
            elif kind == StateType.RUNNING:
                client.set_flow_run_state(run.id, Cancelling(message="canceled by the client"), force=True)
            return client.read_flow_run(run.id)

    # --- workers ------------------------------------------------------------------------------
    def due_runs(self, deployment_id: UUID, limit: int = 8) -> list[FlowRun]:
        """Scheduled runs of the deployment that are due, oldest first (new jobs and dashboard retries)."""
        with self.client() as client:
            return client.read_flow_runs(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])),
                flow_run_filter=FlowRunFilter(
                    state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED])),
                ),
                sort=FlowRunSort.EXPECTED_START_TIME_ASC,
                limit=limit,
            )

    def claim(self, flow_run: FlowRun, tag: str) -> bool:
        """Take a scheduled run for this worker: Prefect lets only one proposal of Pending through."""
        if flow_run.next_scheduled_start_time and flow_run.next_scheduled_start_time > datetime.now(UTC):
            return False
        with self.client() as client:
            result = client.set_flow_run_state(flow_run.id, Pending(message=f"claimed by worker {tag}"))
            if result.status.value != "ACCEPT":
                return False
            client.update_flow_run(flow_run.id, infrastructure_pid=tag)
        return True

    def is_cancelling(self, flow_run_id: UUID) -> bool:
        with self.client() as client:
            run = client.read_flow_run(flow_run_id)
        return run.state is not None and run.state.type == StateType.CANCELLING

    def mark_cancelled(self, flow_run_id: UUID) -> None:
        with self.client() as client:
            client.set_flow_run_state(flow_run_id, Cancelled(message="canceled by the client"), force=True)

    def orphans(self, deployment_id: UUID, alive: set[str]) -> list[FlowRun]:
        """Active runs claimed on this host by a worker that is not alive (not in ``alive``, no such process).

        Runs claimed on other hosts are left to the workers there (``placewright worker`` does the same
        sweep for its own host when it starts).
        """
        here = f"{host_name()}:"
        now = datetime.now(UTC)
        with self.client() as client:
            runs = client.read_flow_runs(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])),
                flow_run_filter=FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=ACTIVE_TYPES))),
                limit=200,
            )
        found = []
        for run in runs:
            tag = run.infrastructure_pid
            if tag is None:
                since = run.state.timestamp if run.state is not None else run.created
                if since is not None and now - since.astimezone(UTC) > timedelta(seconds=UNOWNED_PENDING_S):
                    found.append(run)
                continue
            if not tag.startswith(here) or tag in alive:
                continue
            pid = tag.removeprefix(here)
            if not (pid.isdigit() and process_alive(int(pid))):
                found.append(run)
        return found

    def recover(self, flow_run: FlowRun) -> str:
        """Send a run whose worker died back to the queue (its finished stages are cached); say what was done."""
        with self.client() as client:
            if flow_run.state is not None and flow_run.state.type == StateType.CANCELLING:
                client.set_flow_run_state(
                    flow_run.id, Cancelled(message="canceled (its worker had stopped)"), force=True
                )
                return "canceled"
            if flow_run.run_count >= MAX_RUN_STARTS:
                client.set_flow_run_state(
                    flow_run.id,
                    Failed(message=f"its worker died {flow_run.run_count} times while running it; not run again"),
                    force=True,
                )
                return "failed"
            client.set_flow_run_state(
                flow_run.id,
                AwaitingRetry(message="its worker stopped; run again (finished stages are cached)"),
                force=True,
            )
            return "requeued"

    def runs_of_tag(self, deployment_id: UUID, tag: str) -> list[FlowRun]:
        with self.client() as client:
            runs = client.read_flow_runs(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])), limit=200
            )
        return [run for run in runs if tag in (run.tags or [])]


def run_folder(flow_run: FlowRun) -> str:
    """The run id (folder name) the flow gives this flow run's outputs."""
    assert flow_run.created is not None
    return run_id_for(flow_run.created, flow_run.id.hex)
