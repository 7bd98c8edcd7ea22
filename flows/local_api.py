"""A private Prefect API for one local CLI run, started in the background.

Prefect's own ephemeral mode imports its server code in the calling process first (~5 s
here) and only then starts the server process (~7 s more). Started this way, the server
process boots while the CLI imports Prefect and checks its inputs, so most of its start-up
is hidden. It is the same server Prefect's ephemeral mode runs (its ``create_app``
factory under uvicorn, UI off), on a free loopback port, stopped when the CLI exits.
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from flows.server_environment import server_environment
from placewright.processes import signal_on_parent_death

STARTUP_TIMEOUT_SECONDS = 60.0
POLL_SECONDS = 0.1


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent(parent: int) -> Callable[[], None]:
    """``preexec_fn``: in the server's process before it runs, SIGTERM it when the process that started it dies.

    Even a SIGKILL of the CLI or the service then stops its private server, which would otherwise keep
    its port, ~210 MB and a lock on Prefect's SQLite database (a second server on it then hangs).
    Linux only (prctl); elsewhere :meth:`LocalApi.stop` at exit is all there is. The kernel sends the
    signal when the *thread* that forked the server ends, so start it from the main thread (the CLI
    and ``placewright serve`` do).
    """

    def arm() -> None:
        signal_on_parent_death(signal.SIGTERM, parent)

    return arm


@dataclass
class LocalApi:
    """A Prefect API server process on 127.0.0.1 owned by this process."""

    port: int = field(default_factory=_free_port)
    process: subprocess.Popen | None = None
    # The server's stderr: an unlinked temporary file, not a pipe that nobody reads (once 64 KB of
    # warnings filled it, a long-lived server, e.g. the service's, would block on its next log line).
    errors: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def start(self) -> LocalApi:
        spec = find_spec("prefect")
        if spec is None or spec.origin is None:
            raise RuntimeError("prefect is not installed")
        app_dir = Path(spec.origin).parent.parent
        env = server_environment(PREFECT_UI_ENABLED="0", PREFECT__SERVER_EPHEMERAL="1", PREFECT__SERVER_FINAL="1")
        env.pop("PREFECT_API_URL", None)
        self.errors = tempfile.TemporaryFile()  # noqa: SIM115 - open while the server runs, closed by stop()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--app-dir",
                str(app_dir),
                "--factory",
                "prefect.server.api.server:create_app",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--log-level",
                "error",
                "--lifespan",
                "on",
            ],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self.errors,
            preexec_fn=_die_with_parent(os.getpid()),
        )
        # Registered before Prefect is imported, so it runs after Prefect's own exit
        # handlers have flushed logs and events to this server.
        atexit.register(self.stop)
        return self

    def wait_ready(self, timeout: float = STARTUP_TIMEOUT_SECONDS) -> None:
        assert self.process is not None, "start() first"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"the local Prefect server exited with code {self.process.returncode}: {self._error_tail()}"
                )
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(POLL_SECONDS)
        self.stop()
        raise RuntimeError(f"the local Prefect server did not start within {timeout:.0f} s")

    def _error_tail(self, size: int = 500) -> str:
        if self.errors is None:
            return ""
        self.errors.seek(0, os.SEEK_END)
        self.errors.seek(max(0, self.errors.tell() - size))
        return self.errors.read().decode(errors="replace")

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None
        if self.errors is not None:
            self.errors.close()
            self.errors = None
