"""A flow run killed with SIGKILL is marked Crashed by the server, not left Running forever.

Against a real server started by ``placewright server start`` (which creates Prefect's zombie-run
automation, docs "Detect zombie flows", here with a 10 s window), two flow runs run in processes of their
own and send a heartbeat every second. One is killed with SIGKILL: no Prefect code runs in it after that,
so only the missing heartbeats can tell; it must end Crashed within about 30 s. The other outlives the
window and must end Completed, never Crashed: heartbeats keep a living run alive.

Prefect 3.8.8 will not send heartbeats more often than every 30 s (``PREFECT_FLOWS_HEARTBEAT_FREQUENCY``
>= 30), which would make this test minutes long; the flow script lowers that floor to 1 s in its own
process. Everything else, events, the automation and the server's triggers, is Prefect's as shipped.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
WINDOW_S = 10  # the automation's window: the shortest Prefect accepts
HEARTBEAT_S = 1
# A killed run must be Crashed within this long: the window, the trigger's evaluation period (5 s),
# and the action's round trip.
CRASHED_WITHIN_S = 30.0
# The living run lasts this long: well past the window and an evaluation of the trigger.
LIVING_RUN_S = WINDOW_S + 12
POLL_S = 0.5

FLOW_SCRIPT = """
import sys, time

import prefect.flow_engine as engine
from prefect import flow
from prefect.runtime import flow_run

# Heartbeats every {heartbeat} s instead of Prefect's floor of 30 s (test speed only).
engine.MINIMUM_HEARTBEAT_INTERVAL = {heartbeat}
engine.BaseFlowRunEngine.heartbeat_seconds = property(lambda self: {heartbeat})


@flow(name="zombie-drill", persist_result=False)
def drill(seconds: float) -> None:
    print(flow_run.id, flush=True)
    time.sleep(seconds)


drill(float(sys.argv[1]))
"""

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _environment(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "PLACEWRIGHT_", "OPENAI_"))}
    return env | {"PYTHONPATH": str(ROOT), "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """``placewright server start`` with the zombie-run automation's window at 10 s; its API URL."""
    home = tmp_path / "prefect-home"
    env = _environment(home)
    port = _free_port()
    try:
        command = ["server", "start", "--port", str(port), "--crash-after", str(WINDOW_S)]
        started = subprocess.run(
            [sys.executable, "-m", "placewright.cli", *command],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=300,
        )
        assert started.returncode == 0, started.stderr
        assert f"no heartbeat for {WINDOW_S} s is Crashed" in started.stdout, started.stdout
        yield f"http://127.0.0.1:{port}/api"
    finally:
        stop = [sys.executable, "-m", "placewright.cli", "server", "stop"]
        subprocess.run(stop, env=env, cwd=tmp_path, capture_output=True, timeout=60)


@contextlib.contextmanager
def _flow_run(url: str, home: Path, script: Path, seconds: float) -> Iterator[tuple[subprocess.Popen, str]]:
    """A flow run in a process of its own; yields the process and the flow run's id once it runs."""
    env = _environment(home) | {"PREFECT_API_URL": url, "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "WARNING"}
    process = subprocess.Popen(
        [sys.executable, str(script), str(seconds)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        line = process.stdout.readline().strip() if process.stdout else ""
        assert line, f"the flow run did not start: {process.communicate()[1][-3000:]}"
        yield process, line
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()


def _state(url: str, flow_run_id: str) -> dict:
    response = httpx.get(f"{url}/flow_runs/{flow_run_id}", timeout=10)
    response.raise_for_status()
    return response.json()["state"]


def _history(url: str, flow_run_id: str) -> list[str]:
    response = httpx.get(f"{url}/flow_run_states/", params={"flow_run_id": flow_run_id}, timeout=10)
    response.raise_for_status()
    return [s["type"] for s in sorted(response.json(), key=lambda s: s["timestamp"])]


def test_a_killed_flow_run_is_marked_crashed(server: str, tmp_path: Path) -> None:
    home = tmp_path / "prefect-home"
    script = tmp_path / "drill.py"
    script.write_text(FLOW_SCRIPT.format(heartbeat=HEARTBEAT_S))

    with (
        _flow_run(server, home, script, seconds=600) as (doomed, doomed_id),
        _flow_run(server, home, script, seconds=LIVING_RUN_S) as (living, living_id),
    ):
        assert _state(server, doomed_id)["type"] == "RUNNING"
        time.sleep(3 * HEARTBEAT_S)  # a few heartbeats reach the server
        doomed.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        doomed.wait(timeout=10)

        while (state := _state(server, doomed_id))["type"] != "CRASHED":
            assert state["type"] == "RUNNING", state
            assert time.monotonic() - killed_at < CRASHED_WITHIN_S, (
                f"flow run {doomed_id} still {state['type']} {CRASHED_WITHIN_S:.0f} s after SIGKILL"
            )
            time.sleep(POLL_S)
        took = time.monotonic() - killed_at
        assert "heartbeat" in (state["message"] or ""), state

        assert living.wait(timeout=LIVING_RUN_S + 60) == 0, living.stderr.read() if living.stderr else ""
        assert _state(server, living_id)["type"] == "COMPLETED"
        assert "CRASHED" not in _history(server, living_id)
    print(f"killed flow run marked Crashed {took:.1f} s after SIGKILL (window {WINDOW_S} s)")
