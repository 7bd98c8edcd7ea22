"""A Prefect server kept in the background for this user: ``placewright server start|stop|status``.

``placewright run`` and ``campaign`` use it when it is up and ``PREFECT_API_URL`` is unset, instead of
starting a private server for each run (see :mod:`flows.local_api`), which is most of a run's wall time.

Why not ``prefect server start --background``: in Prefect 3.8.8 it writes only a pid to
``$PREFECT_HOME/server.pid`` (not the port, so a client cannot find the server), pipes the server's output
to the command that exits at once, leaves the server in the terminal's session (a hang-up or Ctrl-C of the
shell's process group reaches it), does not wait until it answers, and ``prefect server stop`` sends
SIGTERM without waiting for it to end. So this module starts the same server the same way (uvicorn running
Prefect's ``create_app`` factory, with its services and UI) but in a session of its own, its output in a
log file, and records it in ``$PREFECT_HOME/placewright-server.json``: pid, host, port and API URL. The
record sits beside the server's database (``$PREFECT_HOME/prefect.db``): one background server per Prefect
home, found by every process with the same ``PREFECT_HOME``.

A record whose process is gone (or whose pid now belongs to another program) is stale: it is ignored and
removed. This module imports Prefect only inside the two automation functions at its end.
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
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from importlib.util import find_spec
from pathlib import Path

from flows.server_environment import server_environment
from placewright.processes import process_alive

RECORD_NAME = "placewright-server.json"
LOG_NAME = "placewright-server.log"
LOCK_NAME = "placewright-server.lock"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4200  # Prefect's own default: the UI and `prefect` commands' examples assume it
# How long a run waits for the background server's /api/health before starting a private server instead.
HEALTH_TIMEOUT_S = 0.3
# Prefect's server takes ~9 s to import and migrate a new database on a quiet machine, 25-50 s on a busy one.
START_TIMEOUT_S = 120.0
# SIGTERM, then SIGKILL after this long: the server stops on SIGTERM in a second or two.
STOP_TIMEOUT_S = 10.0
POLL_S = 0.1
# The automation that marks flow runs Crashed when their heartbeats stop (Prefect docs: "Detect zombie flows").
CRASH_AUTOMATION_NAME = "placewright: crash zombie flow runs"
# Prefect 3.8.8's flow runs send a heartbeat every 180 s (PREFECT_FLOWS_HEARTBEAT_FREQUENCY, at least 30):
# three missed heartbeats, as Prefect Cloud's managed "unresponsive run detection" does (9 minutes).
DEFAULT_CRASH_AFTER_S = 540
MIN_CRASH_AFTER_S = 10  # Prefect refuses a shorter window for a proactive trigger
SERVER_FACTORY = "prefect.server.api.server:create_app"


class ServerError(RuntimeError):
    """Something an operator must act on; its message is one line."""


def prefect_home() -> Path:
    """Prefect's home folder as Prefect resolves it (``PREFECT_HOME``, default ``~/.prefect``)."""
    return Path(os.environ.get("PREFECT_HOME") or "~/.prefect").expanduser()


def _connect_host(host: str) -> str:
    return {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


@dataclass(frozen=True)
class BackgroundServer:
    """What the record says about a background server."""

    pid: int
    host: str
    port: int
    log: str
    started_at: str
    # The zombie-run automation's window on this server (0: none). Runs send heartbeats only when it
    # watches them: Prefect's heartbeat thread adds up to 1 s to every flow run's exit.
    crash_after: int = 0

    @property
    def url(self) -> str:
        """Its API URL (what PREFECT_API_URL would be)."""
        return f"http://{_url_host(_connect_host(self.host))}:{self.port}/api"

    @property
    def ui_url(self) -> str:
        return self.url.removesuffix("/api")


def record_path(home: Path | None = None) -> Path:
    return (home or prefect_home()) / RECORD_NAME


def read_record(home: Path | None = None) -> BackgroundServer | None:
    """The record as written, alive or not (None when there is none or it is unreadable)."""
    try:
        data = json.loads(record_path(home).read_text())
        return BackgroundServer(
            pid=int(data["pid"]),
            host=str(data["host"]),
            port=int(data["port"]),
            log=str(data.get("log", "")),
            started_at=str(data.get("started_at", "")),
            crash_after=int(data.get("crash_after", 0)),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_record(server: BackgroundServer, home: Path) -> None:
    path = record_path(home)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_text(json.dumps({**asdict(server), "url": server.url}, indent=2) + "\n")
    temporary.replace(path)


def note_crash_after(crash_after: int, home: Path | None = None) -> None:
    """Record the zombie-run automation's window (0: none) for the running background server."""
    home = home or prefect_home()
    with _locked(home):
        server = find(home)
        if server is not None:
            _write_record(replace(server, crash_after=crash_after), home)


def _remove_record(home: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        record_path(home).unlink()


def _is_server_process(server: BackgroundServer) -> bool:
    """Whether the recorded pid is still that server (pids are reused). Linux checks its command line."""
    if not process_alive(server.pid):
        return False
    try:
        argv = Path(f"/proc/{server.pid}/cmdline").read_bytes().split(b"\0")
    except FileNotFoundError:
        return not sys.platform.startswith("linux")  # no /proc (macOS...): trust the pid
    except OSError:
        return True
    return SERVER_FACTORY.encode() in argv and str(server.port).encode() in argv


def healthy(url: str, timeout: float) -> bool:
    """Whether the Prefect API at ``url`` answers its health check within ``timeout`` seconds."""
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout) as response:
            return response.status == 200
    except (OSError, ValueError):
        return False


def find(home: Path | None = None) -> BackgroundServer | None:
    """The recorded server when its process is alive; a stale record is removed."""
    home = home or prefect_home()
    server = read_record(home)
    if server is None:
        if record_path(home).exists():
            _remove_record(home)  # unreadable: nothing can use it
        return None
    if not _is_server_process(server):
        _remove_record(home)
        return None
    return server


def running(home: Path | None = None, timeout: float = HEALTH_TIMEOUT_S) -> tuple[BackgroundServer | None, str]:
    """The background server if it answers within ``timeout``: ``(server, "")``; else ``(None, why)``.

    ``why`` is empty when there is no server (nothing to say) and a short note when one is recorded
    and alive but did not answer (it is left alone).
    """
    server = find(home)
    if server is None:
        return None, ""
    if healthy(server.url, timeout):
        return server, ""
    return None, f"the background Prefect server (pid {server.pid}, {server.url}) did not answer within {timeout} s"


@contextlib.contextmanager
def _locked(home: Path) -> Iterator[None]:
    """One ``server start``/``stop`` at a time per Prefect home."""
    home.mkdir(parents=True, exist_ok=True)
    with (home / LOCK_NAME).open("a") as handle:
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock
            yield
            return
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _check_port(host: str, port: int) -> None:
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
    except OSError as exc:
        raise ServerError(
            f"cannot start a Prefect server on {host}:{port}: {exc.strerror or exc} (choose another with --port)"
        ) from None


def _log_tail(path: Path, lines: int = 1) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(line.strip() for line in text[-lines:])


def _spawn(host: str, port: int, log: Path) -> subprocess.Popen:
    spec = find_spec("prefect")
    if spec is None or spec.origin is None:
        raise ServerError("prefect is not installed")
    server = BackgroundServer(pid=0, host=host, port=port, log=str(log), started_at="")
    # The UI asks the server where its API is; without this it assumes port 4200.
    env = server_environment(PREFECT__SERVER_FINAL="1", PREFECT_API_URL=server.url)
    env.setdefault("PREFECT_UI_API_URL", server.url)  # set it to an address other machines' browsers reach
    for key in ("PREFECT__SERVER_EPHEMERAL", "PREFECT__SERVER_WEBSERVER_ONLY"):
        env.pop(key, None)
    with log.open("w") as handle:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--app-dir",
                str(Path(spec.origin).parent.parent),
                "--factory",
                SERVER_FACTORY,
                "--host",
                host,
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            env=env,
            cwd=str(log.parent),
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # no terminal: a closed shell or a Ctrl-C there does not reach it
            close_fds=True,
        )


def _wait_healthy(process: subprocess.Popen, server: BackgroundServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = _log_tail(Path(server.log))
            raise ServerError(
                f"the Prefect server exited with code {process.returncode}" + (f": {tail}" if tail else "")
            )
        if healthy(server.url, timeout=1.0):
            return
        time.sleep(POLL_S)
    raise ServerError(f"the Prefect server did not answer within {timeout:.0f} s (its log: {server.log})")


def start(
    host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, *, timeout: float = START_TIMEOUT_S, home: Path | None = None
) -> tuple[BackgroundServer, bool]:
    """Start the background server and wait until it answers; ``(server, started)``.

    ``started`` is False when one was already running in this Prefect home (whatever its port).
    """
    home = home or prefect_home()
    with _locked(home):
        existing = find(home)
        if existing is not None:
            if not healthy(existing.url, timeout=5.0):
                raise ServerError(
                    f"the background Prefect server (pid {existing.pid}) does not answer at {existing.url}; "
                    "`placewright server stop` it first"
                )
            return existing, False
        _check_port(host, port)
        log = home / LOG_NAME
        process = _spawn(host, port, log)
        server = BackgroundServer(
            pid=process.pid,
            host=host,
            port=port,
            log=str(log),
            started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        _write_record(server, home)
        try:
            _wait_healthy(process, server, timeout)
        except BaseException:  # not ready, or Ctrl-C: leave nothing behind
            _terminate(process.pid, STOP_TIMEOUT_S)
            process.poll()
            _remove_record(home)
            raise
        return server, True


def _signal_group(pid: int, sig: signal.Signals) -> None:
    """``sig`` to the server's process group when it leads one (started in a session of its own), else to it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)


def _terminate(pid: int, timeout: float) -> bool:
    """SIGTERM, then SIGKILL after ``timeout`` s; True when SIGKILL was needed."""
    _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process_alive(pid):
            return False
        time.sleep(POLL_S)
    _signal_group(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5.0
    while process_alive(pid) and time.monotonic() < deadline:
        time.sleep(POLL_S)
    return True


def stop(*, timeout: float = STOP_TIMEOUT_S, home: Path | None = None) -> tuple[BackgroundServer | None, bool]:
    """Stop the background server: ``(server or None when none ran, whether SIGKILL was needed)``."""
    home = home or prefect_home()
    with _locked(home):
        server = find(home)
        if server is None:
            return None, False
        killed = _terminate(server.pid, timeout)
        _remove_record(home)
        return server, killed


def crash_automation(crash_after_s: float):  # -> prefect.events.schemas.automations.AutomationCore
    """Prefect's documented zombie-run automation ("Detect zombie flows"), with this window.

    After each ``prefect.flow-run.heartbeat`` of a flow run, expect another event of that flow run (a
    heartbeat or a state change) within ``crash_after_s`` seconds; when none comes, the run's process is
    gone: set the run Crashed.
    """
    from datetime import timedelta

    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture
    from prefect.events.schemas.events import ResourceSpecification

    return AutomationCore(
        name=CRASH_AUTOMATION_NAME,
        description=(
            f"Marks a flow run Crashed when no event of it (heartbeat or state change) follows its last "
            f"heartbeat within {crash_after_s:g} s: its process was killed or its machine died. "
            "Created by placewright server start / watch-crashes."
        ),
        trigger=EventTrigger(
            after={"prefect.flow-run.heartbeat"},
            expect={"prefect.flow-run.*"},
            match=ResourceSpecification({"prefect.resource.id": ["prefect.flow-run.*"]}),
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=crash_after_s),
        ),
        actions=[
            ChangeFlowRunState(
                state=StateType.CRASHED,
                message=f"Flow run marked as crashed: no heartbeat for {crash_after_s:g} s.",
            )
        ],
    )


def _shape(automation) -> dict:
    """What an automation does, without its ids (the trigger's id is new in every object)."""
    fields = {"name", "description", "enabled", "trigger", "actions", "actions_on_trigger", "actions_on_resolve"}
    shape = automation.model_dump(mode="json", include=fields)
    shape["trigger"].pop("id", None)
    return shape


def ensure_crash_automation(api_url: str, crash_after_s: float = DEFAULT_CRASH_AFTER_S) -> str:
    """Create or update the zombie-run automation on the server at ``api_url``; what was done.

    Idempotent: one automation of that name, with this window ("created", "updated" or "unchanged");
    ``crash_after_s=0`` deletes it ("removed", or "absent" when there was none).
    """
    if 0 < crash_after_s < MIN_CRASH_AFTER_S:
        raise ServerError(f"--crash-after must be at least {MIN_CRASH_AFTER_S} s (Prefect's shortest window)")
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: api_url}), get_client(sync_client=True) as client:
        found = client.read_automations_by_name(CRASH_AUTOMATION_NAME)
        if not crash_after_s:
            for automation in found:
                client.delete_automation(automation.id)
            return "removed" if found else "absent"
        wanted = crash_automation(crash_after_s)
        for extra in found[1:]:
            client.delete_automation(extra.id)
        if not found:
            client.create_automation(wanted)
            return "created"
        current = found[0]
        if _shape(current) == _shape(wanted):
            return "unchanged"
        client.update_automation(current.id, wanted)
        return "updated"
