"""``placewright serve`` as a real process on 127.0.0.1 for the service tests, and the servers around it.

:class:`ServiceProcess` runs the service command in a session of its own, with its own state folder,
output folder and deployment name (so services of different tests never take each other's runs),
against the session's Prefect test server; it creates API keys with ``placewright keys create`` as
an operator would (or straight in the records, quicker), and stops the service by its process id
(SIGTERM, or SIGKILL to test a crash). :meth:`ServiceProcess.again` is the same service started anew
(same folders, deployment and port), as after a restart.

:class:`Receiver` is a webhook endpoint: a threaded HTTP server that records each delivery (headers
and raw body) and answers with the status a test sets (or a scripted status per delivery).
:class:`SourceServer` serves product images the way the internet might: whole, trickled slowly, or
as a redirect elsewhere; it counts every connection made to it (an SSRF test's proof that nothing
was fetched).

The Prefect helpers read what the service did on the Prefect server (flow runs of a deployment, a
job's flow run, task runs) through Prefect's client, as an operator's script would.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from placewright.processes import process_alive
from tests.live_prefect import descendants, free_port, tail

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 120.0
JOB_TIMEOUT_S = 180.0
# Prefer: wait=N asked for while polling a job (the service answers as soon as the job ends).
POLL_WAIT_S = 5
FINAL = ("succeeded", "failed", "canceled")
# A request that reads a job asks the Prefect server, whose client waits out a busy SQLite server (503)
# with growing delays, a minute in all: the service's answers may take that long.
CLIENT_TIMEOUT_S = 120.0


def prefect_api_url() -> str:
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    assert url, "the prefect_server fixture must be active"
    return url


@dataclass
class ServiceProcess:
    """``placewright serve`` in a subprocess; ``url`` is its base URL once :meth:`start` returns."""

    workdir: Path
    workers: int = 1
    env_extra: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    deployment: str = field(default_factory=lambda: f"svc-{uuid.uuid4().hex[:8]}")
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def state_dir(self) -> Path:
        return self.workdir / "service-state"

    @property
    def out(self) -> Path:
        return self.workdir / "service-out"

    @property
    def log_path(self) -> Path:
        return self.workdir / "service.log"

    @property
    def workers_log(self) -> Path:
        return self.state_dir / "workers.log"

    @property
    def pid(self) -> int:
        assert self.process is not None, "not started"
        return self.process.pid

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PLACEWRIGHT_")}
        env.update(
            {
                "PREFECT_API_URL": prefect_api_url(),
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                "PLACEWRIGHT_SERVICE__STATE_DIR": str(self.state_dir),
                "PLACEWRIGHT_SERVICE__OUT": str(self.out),
                "PLACEWRIGHT_SERVICE__DEPLOYMENT": self.deployment,
                # Quick, but not so quick that the polling of idle workers and the reconciler (about 4
                # requests per interval) swamps the Prefect test server on a small machine.
                "PLACEWRIGHT_SERVICE__POLL_INTERVAL_S": "0.25",
                "PLACEWRIGHT_SERVICE__SHUTDOWN_GRACE_S": "20",
                "PLACEWRIGHT_SERVICE__WEBHOOK_SCHEDULE_S": "[0, 0.5, 1, 2, 4]",
                "PLACEWRIGHT_SERVICE__WEBHOOK_JITTER": "0",
                "PLACEWRIGHT_LIMITS__ALLOWED_HOSTS": '["127.0.0.1"]',
                "PLACEWRIGHT_CACHE_DIR": str(self.workdir / "cache"),
                "PLACEWRIGHT_OUT_DIR": str(self.workdir / "out"),
                "PLACEWRIGHT_MODELS_DIR": str(self.workdir / "models"),
                # Small outputs keep the tests quick; the benchmark measures 1024x1024. (JSON: a complex field.)
                "PLACEWRIGHT_OUTPUT__SIZE": '"384x384"',
            }
        )
        env.update(self.env_extra)
        return env

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "placewright.cli", *args],
            env=self.environment(),
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    def create_key(self, name: str, *, cli: bool = True) -> dict[str, str]:
        """A new API key: ``{"name", "id", "token", "webhook_secret"}``.

        ``cli``: with ``placewright keys create`` (as an operator does, ~2 s); False: straight in the
        records file (what that command does, without starting Python again). Either works while the
        service runs (SQLite in WAL mode).
        """
        self.workdir.mkdir(parents=True, exist_ok=True)
        if cli:
            return json.loads(self.cli("keys", "create", name))
        from service.records import Records

        with Records(self.state_dir / "service.db") as records:
            key, token = records.create_key(name)
        return {"name": key.name, "id": key.id, "token": token, "webhook_secret": key.webhook_secret}

    def client(self, token: str | None = None, timeout_s: float = CLIENT_TIMEOUT_S) -> httpx.Client:
        """An httpx client for the service's API, with ``Authorization: Bearer <token>`` when given."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout_s)

    def start(self) -> ServiceProcess:
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child holds it
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "placewright.cli",
                "serve",
                "--port",
                str(self.port),
                "--workers",
                str(self.workers),
            ],
            env=self.environment(),
            cwd=self.workdir,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"placewright serve exited with {self.process.returncode}:\n{tail(self.log_path)}")
            try:
                if httpx.get(f"{self.url}/ready", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.kill()
        raise RuntimeError(f"placewright serve not ready in {START_TIMEOUT_S:.0f} s:\n{tail(self.log_path)}")

    def again(self) -> ServiceProcess:
        """The same service (folders, records, deployment, port, settings), not started: a restart."""
        return ServiceProcess(
            self.workdir,
            workers=self.workers,
            env_extra=dict(self.env_extra),
            port=self.port,
            deployment=self.deployment,
        )

    def stop(self, timeout_s: float = 60.0, *, sweep: bool = True) -> int | None:
        """SIGTERM (graceful shutdown), SIGKILL after ``timeout_s``; returns the exit code.

        ``sweep``: then SIGKILL whatever the service had started and left (False: a test checks that
        nothing was left, and cleans up with :func:`kill_all`).
        """
        if self.process is None:
            return None
        family = descendants(self.process.pid)
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        code = self.process.returncode
        if sweep:
            kill_all(family)
        self.process = None
        return code

    def kill(self) -> list[int]:
        """SIGKILL the service process only (a crash); returns the pids of its children at that moment."""
        assert self.process is not None
        family = descendants(self.process.pid)
        self.process.kill()
        self.process.wait()
        self.process = None
        return family

    def attempts(self, job_id: str) -> list[Any]:
        """The job's webhook delivery attempts, read straight from the service's records file."""
        from service.records import Records

        with Records(self.state_dir / "service.db") as records:
            return records.attempts(job_id)

    def worker_pids(self) -> list[int]:
        """The service's worker processes now (``python -m service.worker``, its children)."""
        assert self.process is not None, "not started"
        found = []
        for pid in descendants(self.process.pid):
            with contextlib.suppress(OSError):
                if b"service.worker" in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0"):
                    found.append(pid)
        return found

    def worker_statuses(self) -> list[dict[str, Any]]:
        """What each live worker last wrote about itself: ``{"pid", "tag", "jobs", "current", ...}``."""
        found = []
        for path in sorted((self.state_dir / "workers").glob("*.json")):
            with contextlib.suppress(OSError, ValueError):
                found.append(json.loads(path.read_text()))
        return found

    def logs(self) -> str:
        """The tails of the service's and its workers' logs, for assertion messages."""
        return f"--- service log ---\n{tail(self.log_path)}\n--- workers log ---\n{tail(self.workers_log)}"

    def __enter__(self) -> ServiceProcess:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


# --- processes ----------------------------------------------------------------------------------


alive = process_alive  # the one definition, in placewright.processes


def kill_all(pids: list[int]) -> None:
    """SIGKILL each of ``pids`` still running (a test's clean-up; never by name)."""
    for pid in pids:
        if alive(pid):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


def processes_of(service: ServiceProcess) -> list[int]:
    """Live processes started for ``service``: those whose environment names its deployment (Linux /proc)."""
    marker = f"PLACEWRIGHT_SERVICE__DEPLOYMENT={service.deployment}".encode()
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if marker in environ.split(b"\0") and alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def wait_until(check: Callable[[], Any], timeout_s: float, what: str, interval_s: float = 0.1) -> Any:
    """Call ``check`` until it returns something true (returned); AssertionError naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s:g} s: {what} (last: {value!r})")
        time.sleep(interval_s)


# --- webhooks -----------------------------------------------------------------------------------


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes
    at: float
    status: int = 200

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]


class Receiver:
    """A webhook receiver: records deliveries, answers ``status`` (200 unless a test sets it).

    ``answers``: statuses for the first deliveries, in order (then ``status``): ``[503, 503]`` fails
    the first two attempts.
    """

    def __init__(self, port: int | None = None, *, host: str = "127.0.0.1", answers: list[int] | None = None) -> None:
        self.host = host
        self.port = port or free_port()
        self.deliveries: list[Delivery] = []
        self.status = 200
        self.answers = list(answers or [])
        self._server: ThreadingHTTPServer | None = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/hook"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                with receiver._lock:
                    status = receiver.answers.pop(0) if receiver.answers else receiver.status
                    receiver.deliveries.append(
                        Delivery({k.lower(): v for k, v in self.headers.items()}, body, time.time(), status)
                    )
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return None

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def received(self) -> list[Delivery]:
        with self._lock:
            return list(self.deliveries)

    def wait_for(self, count: int, timeout_s: float = JOB_TIMEOUT_S) -> list[Delivery]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.deliveries) >= count:
                    return list(self.deliveries)
            time.sleep(0.1)
        raise AssertionError(f"{len(self.deliveries)} webhook deliveries after {timeout_s:.0f} s, expected {count}")

    def for_job(self, job_id: str, field_name: str = "data") -> list[Delivery]:
        """The deliveries about one job: v1 bodies (``data.id``) or the prototype's (``job_id``)."""
        found = []
        for delivery in self.received():
            body = delivery.json()
            if (body.get(field_name) or {}).get("id") == job_id or body.get("job_id") == job_id:
                found.append(delivery)
        return found

    def wait_for_job(self, job_id: str, *, status: int = 200, timeout_s: float = JOB_TIMEOUT_S) -> list[Delivery]:
        """The deliveries about ``job_id`` once one of them was answered ``status``."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = self.for_job(job_id)
            if any(d.status == status for d in found):
                return found
            time.sleep(0.1)
        raise AssertionError(f"no webhook for job {job_id} answered {status} in {timeout_s:.0f} s: {self.received()}")

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def verify_delivery(delivery: Delivery, secret: str) -> Any:
    """The delivery's body after checking its signature with the Standard Webhooks reference library."""
    from standardwebhooks import Webhook

    return Webhook(secret).verify(delivery.body, delivery.headers)


# --- where product images come from --------------------------------------------------------------


class SourceServer:
    """An HTTP server for product images on ``host`` (default 127.0.0.1; 127.0.0.2 or ::1 work on Linux).

    Paths: ``/product.jpg`` (``image`` whole), ``/slow.jpg`` (``image`` trickled: ``slow_chunk`` bytes
    every ``slow_every_s``), ``/redirect`` (302 to ``redirect_to``). Every accepted connection is
    counted in ``connections`` and every request path kept in ``paths``.
    """

    def __init__(
        self,
        image: bytes = b"",
        *,
        host: str = "127.0.0.1",
        redirect_to: str | None = None,
        slow_chunk: int = 512,
        slow_every_s: float = 0.25,
    ) -> None:
        self.image = image
        self.redirect_to = redirect_to
        self.slow_chunk = slow_chunk
        self.slow_every_s = slow_every_s
        self.connections = 0
        self.paths: list[str] = []
        self.slow_started = threading.Event()
        self._lock = threading.Lock()
        source = self

        class Server(ThreadingHTTPServer):
            address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
            daemon_threads = True

            def verify_request(self, request: Any, client_address: Any) -> bool:
                with source._lock:
                    source.connections += 1
                return True

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with source._lock:
                    source.paths.append(self.path)
                with contextlib.suppress(OSError):  # the client went away (a canceled job's worker)
                    source._answer(self)

            def log_message(self, *args: Any) -> None:
                return None

        self._server = Server((host, 0), Handler)
        self.host = host
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def url(self, path: str = "/product.jpg") -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{path}"

    def _answer(self, handler: BaseHTTPRequestHandler) -> None:
        path = handler.path.split("?", 1)[0]
        if path == "/redirect" and self.redirect_to:
            handler.send_response(302)
            handler.send_header("Location", self.redirect_to)
            handler.send_header("Content-Length", "0")
            handler.end_headers()
        elif path in ("/product.jpg", "/slow.jpg"):
            handler.send_response(200)
            handler.send_header("Content-Type", "image/jpeg")
            handler.send_header("Content-Length", str(len(self.image)))
            handler.end_headers()
            if path == "/product.jpg":
                handler.wfile.write(self.image)
                return
            self.slow_started.set()
            for start in range(0, len(self.image), self.slow_chunk):
                handler.wfile.write(self.image[start : start + self.slow_chunk])
                handler.wfile.flush()
                time.sleep(self.slow_every_s)
        else:
            handler.send_response(404)
            handler.send_header("Content-Length", "0")
            handler.end_headers()

    def __enter__(self) -> SourceServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


# --- jobs ---------------------------------------------------------------------------------------


def wait_for_job(client: httpx.Client, job_url: str, timeout_s: float = JOB_TIMEOUT_S) -> dict[str, Any]:
    """Poll a v1 job (``Prefer: wait``, so few requests) until it is final; returns its last view."""
    deadline = time.monotonic() + timeout_s
    job: dict[str, Any] = {}
    while time.monotonic() < deadline:
        wait = max(1, min(POLL_WAIT_S, int(deadline - time.monotonic())))
        try:
            answer = client.get(job_url, headers={"Prefer": f"wait={wait}"}, timeout=wait + CLIENT_TIMEOUT_S)
        except httpx.TimeoutException:  # the service waits on a Prefect server that is busy: ask again
            continue
        if answer.status_code == 429:  # the key's rate limit: wait as told
            time.sleep(float(answer.headers.get("retry-after", "1")))
            continue
        assert answer.status_code == 200, answer.text
        job = answer.json()
        if job["state"] in FINAL:
            return job
    raise AssertionError(f"job {job_url} not final after {timeout_s:.0f} s: {job}")


def wait_for_state(
    client: httpx.Client, job_url: str, states: tuple[str, ...], timeout_s: float = JOB_TIMEOUT_S
) -> dict[str, Any]:
    """Poll a v1 job quickly until its state is one of ``states``; returns that view."""
    seen: dict[str, Any] = {}

    def reached() -> dict[str, Any] | None:
        nonlocal seen
        seen = client.get(job_url).json()
        return seen if seen.get("state") in states else None

    try:
        return wait_until(reached, timeout_s, f"job {job_url} in {states}", interval_s=0.05)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; last seen: {seen}") from None


# --- the Prefect side ----------------------------------------------------------------------------


@contextlib.contextmanager
def prefect_client() -> Iterator[Any]:
    """Prefect's sync client on the session's test server."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        yield client


def deployment_flow_runs(deployment: str) -> list[Any]:
    """Every flow run of the service's deployment ``place-product/<deployment>``."""
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    runs: list[Any] = []
    with prefect_client() as client:
        deployment_id = client.read_deployment_by_name(f"place-product/{deployment}").id
        while True:
            page = client.read_flow_runs(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])),
                limit=200,
                offset=len(runs),
            )
            runs.extend(page)
            if len(page) < 200:
                return runs


def flow_run_of_job(job_id: str) -> Any:
    """The job's flow run (the service tags it ``job:<job id>``)."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags

    with prefect_client() as client:
        runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[f"job:{job_id}"])))
    assert len(runs) == 1, f"job {job_id}: {len(runs)} flow runs"
    return runs[0]


def task_runs(flow_run_id: Any) -> list[Any]:
    """Every task run of the flow run (of every attempt of it), oldest first."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.client.schemas.sorting import TaskRunSort

    with prefect_client() as client:
        return client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])),
            sort=TaskRunSort.EXPECTED_START_TIME_ASC,
        )
