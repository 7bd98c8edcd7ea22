"""``placewright serve`` as a real process on 127.0.0.1 for the service tests, and a webhook receiver.

:class:`ServiceProcess` runs the service command in a session of its own, with its own state folder,
output folder and deployment name (so services of different tests never take each other's runs),
against the session's Prefect test server; it creates API keys with ``placewright keys create`` as
an operator would, and stops the service by its process id (SIGTERM, or SIGKILL to test a crash).

:class:`Receiver` is a webhook endpoint: a threaded HTTP server on 127.0.0.1 that records each
delivery (headers and raw body) and answers with the status a test sets.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from tests.live_prefect import descendants, free_port, tail

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 120.0
JOB_TIMEOUT_S = 180.0


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

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PLACEWRIGHT_")}
        env.update(
            {
                "PREFECT_API_URL": prefect_api_url(),
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                "PLACEWRIGHT_SERVICE__STATE_DIR": str(self.state_dir),
                "PLACEWRIGHT_SERVICE__OUT": str(self.out),
                "PLACEWRIGHT_SERVICE__DEPLOYMENT": self.deployment,
                "PLACEWRIGHT_SERVICE__POLL_INTERVAL_S": "0.1",
                "PLACEWRIGHT_SERVICE__SHUTDOWN_GRACE_S": "20",
                "PLACEWRIGHT_SERVICE__WEBHOOK_SCHEDULE_S": "[0, 0.5, 1, 2, 4]",
                "PLACEWRIGHT_SERVICE__WEBHOOK_JITTER": "0",
                "PLACEWRIGHT_LIMITS__ALLOWED_HOSTS": '["127.0.0.1"]',
                "PLACEWRIGHT_CACHE_DIR": str(self.workdir / "cache"),
                "PLACEWRIGHT_OUT_DIR": str(self.workdir / "out"),
                "PLACEWRIGHT_MODELS_DIR": str(self.workdir / "models"),
                # Small outputs keep the tests quick; the benchmark measures 1024x1024.
                "PLACEWRIGHT_OUTPUT__SIZE": "384x384",
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

    def create_key(self, name: str) -> dict[str, str]:
        """A new API key: ``{"name", "id", "token", "webhook_secret"}``."""
        return json.loads(self.cli("keys", "create", name))

    def start(self) -> ServiceProcess:
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child holds it
        self.process = subprocess.Popen(
            [sys.executable, "-m", "placewright.cli", "serve", "--port", str(self.port), "--workers", str(self.workers)],
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

    def stop(self, timeout_s: float = 60.0) -> int | None:
        """SIGTERM (graceful shutdown), then SIGKILL of whatever is left; returns the exit code."""
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
        for pid in family:
            with _suppress():
                os.kill(pid, signal.SIGKILL)
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

    def __enter__(self) -> ServiceProcess:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class _suppress:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc_info: object) -> bool:
        return True


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """A webhook receiver on 127.0.0.1: records deliveries, answers ``status`` (200 unless a test sets it)."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.deliveries: list[Delivery] = []
        self.status = 200
        self._server: ThreadingHTTPServer | None = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                with receiver._lock:
                    receiver.deliveries.append(
                        Delivery({k.lower(): v for k, v in self.headers.items()}, body, time.time())
                    )
                self.send_response(receiver.status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def wait_for(self, count: int, timeout_s: float = JOB_TIMEOUT_S) -> list[Delivery]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.deliveries) >= count:
                    return list(self.deliveries)
            time.sleep(0.1)
        raise AssertionError(f"{len(self.deliveries)} webhook deliveries after {timeout_s:.0f} s, expected {count}")

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def wait_for_job(client: httpx.Client, job_url: str, timeout_s: float = JOB_TIMEOUT_S) -> dict[str, Any]:
    """Poll a v1 job until it is final; returns its last view."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = client.get(job_url).json()
        if job["state"] in ("succeeded", "failed", "canceled"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_url} not final after {timeout_s:.0f} s: {job}")
