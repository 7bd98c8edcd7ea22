"""A real Prefect server and a real process worker for end-to-end tests of the deployments.

:class:`LivePrefect` starts ``prefect server start`` on a free port of 127.0.0.1 with a Prefect home of
its own, creates the ``placewright`` process work pool, deploys ``prefect.yaml`` from the checkout and
starts ``prefect worker start`` polling every second, as an operator would (see README, "Running on a
Prefect server"). Every process is started in a session of its own and stopped by its process id:
SIGTERM to its process group, then SIGKILL; flow runs the worker started (in sessions of their own)
are found through ``/proc`` and stopped the same way.

The helpers talk to the server with Prefect's client, and retry a flow run exactly as the dashboard's
Retry button does (:meth:`LivePrefect.retry_from_dashboard`).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx

from placewright.processes import process_alive, signal_on_parent_death

ROOT = Path(__file__).resolve().parents[1]
WORK_POOL = "placewright"
PARENT = os.getpid()

# Prefect's server takes ~9 s to import and migrate a fresh database on a quiet machine, 25-50 s on a busy 2-core one.
SERVER_START_TIMEOUT_S = 120.0
# Sending SIGKILL after this long: the server and the worker stop on SIGTERM in about a second.
STOP_TIMEOUT_S = 15.0
# A flow run here takes 5-30 s; this bounds a run stuck behind a dead worker, not a slow one.
FLOW_RUN_TIMEOUT_S = 240.0
# How often the helpers poll the API while waiting: a small fraction of the shortest flow run.
POLL_S = 0.5
# Lines of a process's log quoted in an error message.
LOG_TAIL_LINES = 60
# The body the dashboard (Prefect 3.8.8's default UI, ui-v2: the flow run page's "Retry" dialog) posts to
# /flow_runs/{id}/set_state. The legacy UI (v1) sends the same state with force false.
DASHBOARD_RETRY = {
    "state": {"type": "SCHEDULED", "name": "AwaitingRetry", "message": "Retry from the UI"},
    "force": True,
}
# The worker polls for scheduled runs this often (default 10 s): flow runs start within about a second.
WORKER_QUERY_SECONDS = "1"
WORKER_PREFETCH_SECONDS = "2"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of a log file (empty if there is none yet)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _prefect_command() -> list[str]:
    """The ``prefect`` CLI of this interpreter's environment."""
    script = Path(sys.executable).with_name("prefect")
    return [str(script)] if script.exists() else [sys.executable, "-m", "prefect"]


def _clean_environment() -> dict[str, str]:
    """This process's environment without Prefect, Placewright or OpenAI settings (a developer's shell)."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "PLACEWRIGHT_", "OPENAI_"))}


def _children_of() -> dict[int, list[int]]:
    """Parent pid -> child pids of every process (Linux /proc; empty elsewhere)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()  # after "pid (comm) ": state, ppid, ...
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    return children


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (children, grandchildren...), also those in sessions of their own."""
    tree = _children_of()
    found: list[int] = []
    stack = [pid]
    while stack:
        for child in tree.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def _die_with_parent() -> None:
    """``preexec_fn``: SIGTERM the child (a server, a worker) when this test process dies."""
    signal_on_parent_death(signal.SIGTERM, PARENT)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    """Send ``sig`` to the process group led by ``pid`` (a process started with start_new_session=True)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def stop_process(process: subprocess.Popen, timeout_s: float = STOP_TIMEOUT_S) -> None:
    """Stop ``process``, its process group and every process it started: SIGTERM, then SIGKILL."""
    if process.poll() is not None:
        return
    others = descendants(process.pid)
    _signal_group(process.pid, signal.SIGTERM)
    for pid in others:
        _signal_group(pid, signal.SIGTERM)  # flow runs lead process groups of their own
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _signal_group(process.pid, signal.SIGKILL)
        process.wait(timeout=timeout_s)
    deadline = time.monotonic() + timeout_s
    while any(process_alive(pid) for pid in others) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in others:
        if process_alive(pid):
            _signal_group(pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


class LivePrefect:
    """A Prefect server, the ``placewright`` work pool, the repository's deployments and a process worker.

    Use as a context manager (or call :meth:`start` and, in a ``finally``, :meth:`stop`)::

        with LivePrefect(tmp_path) as prefect:
            flow_run_id = prefect.run_deployment("place-product/place-product", {...})
            flow_run = prefect.wait_for_final_state(flow_run_id)

    Args:
        workdir: an empty folder for the Prefect home, the logs, the worker's cache and outputs.
        worker_env: extra environment of the worker, hence of every flow run it starts.
    """

    def __init__(self, workdir: Path, worker_env: dict[str, str] | None = None) -> None:
        self.workdir = workdir
        self.home = workdir / "prefect-home"
        self.out_dir = workdir / "out"
        self.cache_dir = workdir / "cache"
        self.server_log = workdir / "server.log"
        self.worker_log = workdir / "worker.log"
        self.port = free_port()
        self.api_url = f"http://127.0.0.1:{self.port}/api"
        self.worker_env = dict(worker_env or {})
        self.server: subprocess.Popen | None = None
        self.worker: subprocess.Popen | None = None
        self.timings: dict[str, float] = {}  # seconds each step of start() took
        self.deployed_at: float | None = None  # time.monotonic() when the deployments were created

    # -- processes -------------------------------------------------------------------------------------------

    def environment(self, **extra: str) -> dict[str, str]:
        """The environment of every Prefect process here: this server, this home, no telemetry."""
        return _clean_environment() | {
            "PREFECT_HOME": str(self.home),
            "PREFECT_API_URL": self.api_url,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{self.home / 'prefect.db'}",
            "COLUMNS": "200",  # the CLI's tables wrap names at the terminal's width
            **extra,
        }

    def start(self) -> LivePrefect:
        """Start the server, create the work pool, deploy ``prefect.yaml`` and start the worker."""
        self.home.mkdir(parents=True, exist_ok=True)
        try:
            began = time.monotonic()
            self._start_server()
            self.timings["server"] = time.monotonic() - began
            began = time.monotonic()
            self.cli("work-pool", "create", WORK_POOL, "--type", "process")
            self.timings["work_pool"] = time.monotonic() - began
            began = time.monotonic()
            self.cli("--no-prompt", "deploy", "--all", env={"PLACEWRIGHT_CHECKOUT": str(ROOT)})
            self.deployed_at = time.monotonic()
            self.timings["deploy"] = time.monotonic() - began
            began = time.monotonic()
            self._start_worker()
            self.timings["worker"] = time.monotonic() - began
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the worker (and the flow runs it started), then the server."""
        for name in ("worker", "server"):
            process = getattr(self, name)
            if process is not None:
                stop_process(process)

    def __enter__(self) -> LivePrefect:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _spawn(self, args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
        handle = log.open("ab")
        try:
            return subprocess.Popen(
                args,
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop() signals it and its children
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
            )
        finally:
            handle.close()  # the child holds its own descriptor

    def _start_server(self) -> None:
        self.server = self._spawn(
            [*_prefect_command(), "server", "start", "--host", "127.0.0.1", "--port", str(self.port)],
            self.environment(),
            self.server_log,
        )
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.server.poll() is not None:
                raise RuntimeError(
                    f"prefect server exited with {self.server.returncode}; its log:\n{tail(self.server_log)}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.api_url}/health", timeout=2).status_code == 200:
                    return
            time.sleep(POLL_S)
        raise RuntimeError(
            f"prefect server not healthy at {self.api_url} after {SERVER_START_TIMEOUT_S:.0f} s; its log:\n"
            f"{tail(self.server_log)}"
        )

    def _start_worker(self) -> None:
        env = self.environment(
            PREFECT_WORKER_QUERY_SECONDS=WORKER_QUERY_SECONDS,
            PREFECT_WORKER_PREFETCH_SECONDS=WORKER_PREFETCH_SECONDS,
            PREFECT_LOCAL_STORAGE_PATH=str(self.home / "storage"),
            PLACEWRIGHT_CHECKOUT=str(ROOT),
            PLACEWRIGHT_CACHE_DIR=str(self.cache_dir),
            PLACEWRIGHT_OUT_DIR=str(self.out_dir),
            PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
            **self.worker_env,
        )
        self.worker = self._spawn(
            [*_prefect_command(), "worker", "start", "--pool", WORK_POOL, "--type", "process"],
            env,
            self.worker_log,
        )
        # Ready when the server has seen the worker's first heartbeat (it sends one on start).
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.worker.poll() is not None:
                raise RuntimeError(
                    f"prefect worker exited with {self.worker.returncode}; its log:\n{tail(self.worker_log)}"
                )
            with self.client() as client:
                if client.read_workers_for_work_pool(WORK_POOL):
                    return
            time.sleep(POLL_S)
        raise RuntimeError(f"prefect worker did not register; its log:\n{tail(self.worker_log)}")

    def cli(self, *args: str, env: dict[str, str] | None = None, timeout_s: float = 120) -> str:
        """Run ``prefect <args>`` against this server from the repository root; returns its stdout."""
        done = subprocess.run(
            [*_prefect_command(), *args],
            cwd=ROOT,
            env=self.environment(**(env or {})),
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"prefect {' '.join(args)} exited with {done.returncode}:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    # -- API helpers -----------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def client(self) -> Iterator[Any]:
        """Prefect's synchronous client, talking to this server."""
        from prefect.client.orchestration import get_client
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with temporary_settings({PREFECT_API_URL: self.api_url}), get_client(sync_client=True) as client:
            yield client

    def read_deployment(self, name: str) -> Any:
        with self.client() as client:
            return client.read_deployment_by_name(name)

    def deployment_names(self) -> list[str]:
        """``flow/deployment`` of every deployment, sorted (what ``prefect deployment ls`` lists)."""
        with self.client() as client:
            flows = {flow.id: flow.name for flow in client.read_flows()}
            return sorted(f"{flows[d.flow_id]}/{d.name}" for d in client.read_deployments())

    def scheduled_runs(self, deployment: str) -> list[Any]:
        """The deployment's flow runs in a Scheduled state (what its schedules created, among others)."""
        from prefect.client.schemas.filters import (
            DeploymentFilter,
            DeploymentFilterId,
            FlowRunFilter,
            FlowRunFilterState,
            FlowRunFilterStateName,
        )

        with self.client() as client:
            deployment_id = client.read_deployment_by_name(deployment).id
            return client.read_flow_runs(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])),
                flow_run_filter=FlowRunFilter(
                    state=FlowRunFilterState(name=FlowRunFilterStateName(any_=["Scheduled"]))
                ),
            )

    def run_deployment(self, name: str, parameters: dict[str, Any] | None = None) -> UUID:
        """Create a flow run of deployment ``flow/deployment`` (as "Quick run" or "Custom run" does); its id."""
        with self.client() as client:
            deployment = client.read_deployment_by_name(name)
            flow_run = client.create_flow_run_from_deployment(deployment.id, parameters=parameters or {})
        return flow_run.id

    def read_flow_run(self, flow_run_id: UUID) -> Any:
        with self.client() as client:
            return client.read_flow_run(flow_run_id)

    def wait_for_final_state(self, flow_run_id: UUID, timeout_s: float = FLOW_RUN_TIMEOUT_S) -> Any:
        """Poll until the flow run is Completed, Failed, Crashed or Cancelled; returns the flow run."""
        deadline = time.monotonic() + timeout_s
        with self.client() as client:
            while True:
                flow_run = client.read_flow_run(flow_run_id)
                if flow_run.state is not None and flow_run.state.is_final():
                    return flow_run
                if time.monotonic() > deadline:
                    state = flow_run.state.name if flow_run.state else None
                    raise AssertionError(
                        f"flow run {flow_run_id} still {state} after {timeout_s:.0f} s; the worker's log:\n"
                        f"{tail(self.worker_log)}"
                    )
                time.sleep(POLL_S)

    def task_runs(self, flow_run_id: UUID, timeout_s: float = 30.0) -> list[Any]:
        """Every task run of the flow run (of every attempt of it), oldest first, once the server has recorded them.

        The server records task runs from their events, a moment after the flow run ends: until two reads a
        poll apart agree and every task run has a state, it is still recording.
        """
        from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
        from prefect.client.schemas.sorting import TaskRunSort

        def read() -> list[Any]:
            with self.client() as client:
                return client.read_task_runs(
                    flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])),
                    sort=TaskRunSort.EXPECTED_START_TIME_ASC,
                )

        def seen(task_runs: list[Any]) -> list[tuple[Any, str | None]]:
            return [(t.id, t.state.name if t.state else None) for t in task_runs]

        deadline = time.monotonic() + timeout_s
        last = read()
        while True:
            time.sleep(POLL_S)
            now = read()
            settled = seen(now) == seen(last) and all(t.state is not None for t in now)
            if settled or time.monotonic() > deadline:
                return now
            last = now

    def flow_run_states(self, flow_run_id: UUID) -> list[Any]:
        """The flow run's state history, oldest first."""
        with self.client() as client:
            return sorted(client.read_flow_run_states(flow_run_id), key=lambda s: s.timestamp)

    def artifacts(self, flow_run_id: UUID) -> list[Any]:
        """The artifacts the flow run created (progress, tables, markdown...)."""
        from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

        with self.client() as client:
            return client.read_artifacts(
                artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
            )

    def retry_from_dashboard(self, flow_run_id: UUID) -> dict:
        """Retry a finished flow run exactly as the dashboard's Retry button does; returns the server's answer."""
        response = httpx.post(f"{self.api_url}/flow_runs/{flow_run_id}/set_state", json=DASHBOARD_RETRY, timeout=30)
        response.raise_for_status()
        return response.json()

    # -- measurements ----------------------------------------------------------------------------------------

    def timeline(self, flow_run_id: UUID) -> list[tuple[str, datetime]]:
        """``(state name, timestamp)`` of every state the flow run went through."""
        return [(state.name, state.timestamp) for state in self.flow_run_states(flow_run_id)]


def outputs_of(out_dir: Path, flow_run_id: UUID, name: str = "manifest.json") -> list[Path]:
    """The files ``name`` a flow run published under ``out_dir`` (its run folder ends with the run's id)."""
    return sorted(out_dir.rglob(f"*-{flow_run_id.hex[:6]}/**/{name}"))


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())
