"""``placewright server start|status|stop``: a Prefect server in the background, and runs that use it.

Each test has a Prefect home of its own (where the server's record and database live) and a free port,
so it never meets a developer's own server.
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
from pathlib import Path

import httpx
import pytest

from flows import background_server as bg
from placewright.processes import process_alive

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "olive-oil-bottle.jpg"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "prefect-home"


def _env(home: Path, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "PLACEWRIGHT_", "OPENAI_"))}
    env.update(
        PYTHONPATH=str(ROOT),
        PREFECT_HOME=str(home),
        PLACEWRIGHT_CACHE_DIR=str(tmp_path / "cache"),
        PLACEWRIGHT_MODELS_DIR=str(tmp_path / "models"),
    )
    return env


def _cli(args: list[str], home: Path, tmp_path: Path, timeout: float = 300, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "placewright.cli", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=_env(home, tmp_path) | env,
        timeout=timeout,
    )


@contextlib.contextmanager
def _stopped_at_the_end(home: Path) -> Iterator[None]:
    """Whatever happens in the test, no background server outlives it."""
    try:
        yield
    finally:
        server = bg.read_record(home)
        if server is not None and process_alive(server.pid):
            bg._terminate(server.pid, timeout=5)


def _automations(url: str) -> list[dict]:
    response = httpx.post(f"{url}/automations/filter", json={}, timeout=10)
    response.raise_for_status()
    return [a for a in response.json() if a["name"] == bg.CRASH_AUTOMATION_NAME]


def _flow_runs(url: str) -> list[dict]:
    response = httpx.post(f"{url}/flow_runs/filter", json={}, timeout=10)
    response.raise_for_status()
    return response.json()


def _task_run_states(url: str, expected: int, timeout_s: float = 20) -> list[str]:
    """The state types of the server's task runs once ``expected`` are recorded and final, or at the deadline.

    The recorder writes what arrived at least once a second: a task run can be recorded Running first.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        response = httpx.post(f"{url}/task_runs/filter", json={}, timeout=10)
        response.raise_for_status()
        states = [r["state_type"] for r in response.json()]
        final = len(states) >= expected and all(s in ("COMPLETED", "FAILED", "CRASHED") for s in states)
        if final or time.monotonic() > deadline:
            return states
        time.sleep(0.2)


def _environment_of(pid: int) -> dict[str, str]:
    pairs = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(p.decode().split("=", 1) for p in pairs if b"=" in p)


def test_start_status_run_stop(home: Path, tmp_path: Path) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}/api"
    with _stopped_at_the_end(home):
        started = _cli(["server", "start", "--port", str(port), "--crash-after", "30"], home, tmp_path)
        assert started.returncode == 0, started.stderr
        assert started.stdout.splitlines()[0].startswith(f"Prefect server running at {url} (pid ")
        assert "created" in started.stdout
        record = json.loads((home / bg.RECORD_NAME).read_text())
        assert record["url"] == url and record["port"] == port
        pid = record["pid"]

        # The UI is served, and told where its API is (it is not on Prefect's default port).
        assert httpx.get(f"http://127.0.0.1:{port}/ui-settings", timeout=10).json()["api_url"] == url
        (automation,) = _automations(url)
        assert automation["trigger"]["posture"] == "Proactive" and automation["trigger"]["within"] == 30
        assert automation["actions"][0]["state"] == "CRASHED"

        status = _cli(["server", "status"], home, tmp_path)
        assert status.returncode == 0 and status.stdout.startswith(f"running: {url} (pid {pid};")

        again = _cli(["server", "start", "--port", str(port), "--crash-after", "30"], home, tmp_path)
        assert again.returncode == 0, again.stderr
        assert again.stdout.splitlines()[0] == f"Prefect server already running at {url} (pid {pid})"
        assert "unchanged" in again.stdout
        changed = _cli(["server", "watch-crashes", "--crash-after", "45"], home, tmp_path)
        assert changed.returncode == 0 and "updated" in changed.stdout
        assert [a["trigger"]["within"] for a in _automations(url)] == [45]  # one automation, updated
        assert bg.read_record(home).crash_after == 45  # so runs there send heartbeats

        # A run finds the server through the record and runs its flow there: no private server.
        run_args = ["run", str(EXAMPLE), "--prompt", "x", "--size", "256x256", "--out", "out"]
        run = _cli(run_args, home, tmp_path, PLACEWRIGHT_CLI_TIMINGS="1")
        assert run.returncode == 0, run.stderr
        assert (tmp_path / run.stdout.strip() / "manifest.json").exists()
        assert [r["state_type"] for r in _flow_runs(url)] == ["COMPLETED"]
        # Its 10 task runs (ingest, 3 product stages, 4 variant stages, the check, publish) are all recorded,
        # in batches (flows/server_environment.py), which the server was started with.
        assert _task_run_states(url, expected=10) == ["COMPLETED"] * 10
        assert _environment_of(pid)["PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE"] == "200"
        timings = json.loads(run.stderr.strip().splitlines()[-1])["cli_timings"]
        assert timings["server_ready"] - timings["prefect_imported"] < 0.05  # nothing to wait for

        # SIGTERM (what `timeout` sends) mid-run: the run is reported Crashed, not left Running; the server stays.
        cli = subprocess.Popen(
            [sys.executable, "-m", "placewright.cli", *run_args[:-2], "--prompt", "y", "--out", "out", "--refresh"],
            cwd=tmp_path,
            env=_env(home, tmp_path),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 120
            while not [r for r in _flow_runs(url) if r["state_type"] == "RUNNING"]:
                assert cli.poll() is None and time.monotonic() < deadline, "the run never started"
                time.sleep(0.05)
            cli.send_signal(signal.SIGTERM)
            assert cli.wait(timeout=60) == 128 + signal.SIGTERM
        finally:
            cli.kill()
            cli.communicate()
        assert sorted(r["state_type"] for r in _flow_runs(url)) == ["COMPLETED", "CRASHED"]
        assert bg.healthy(url, timeout=5)

        unwatched = _cli(["server", "start", "--port", str(port), "--crash-after", "0"], home, tmp_path)
        assert unwatched.returncode == 0 and "removed" in unwatched.stdout
        assert _automations(url) == [] and bg.read_record(home).crash_after == 0  # runs skip heartbeats

        stopped = _cli(["server", "stop"], home, tmp_path)
        assert stopped.returncode == 0 and stopped.stdout.startswith(f"stopped the Prefect server at {url} (pid {pid}")
        assert not process_alive(pid) and not (home / bg.RECORD_NAME).exists()
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", port)) != 0

        gone = _cli(["server", "status"], home, tmp_path)
        assert (gone.returncode, gone.stdout) == (1, "not running\n")
        assert _cli(["server", "stop"], home, tmp_path).stdout == "not running\n"


def test_a_taken_port_is_one_line(home: Path, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = _cli(["server", "start", "--port", str(port)], home, tmp_path, timeout=60)
    assert done.returncode == 1
    assert done.stderr == (
        f"placewright: error: cannot start a Prefect server on 127.0.0.1:{port}: Address already in use "
        "(choose another with --port)\n"
    )
    assert done.stdout == "" and not (home / bg.RECORD_NAME).exists()


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


@pytest.mark.parametrize("pid", ["dead", "someone else"])
def test_a_stale_record_is_ignored_and_removed(home: Path, tmp_path: Path, pid: str) -> None:
    home.mkdir(parents=True)
    record = home / bg.RECORD_NAME
    stale = {"pid": _dead_pid() if pid == "dead" else os.getpid(), "host": "127.0.0.1", "port": _free_port()}
    record.write_text(json.dumps(stale))

    assert bg.running(home) == (None, "")  # what a run asks: start a private server
    assert not record.exists()

    record.write_text(json.dumps(stale))
    status = _cli(["server", "status"], home, tmp_path)
    assert (status.returncode, status.stdout) == (1, "not running\n")
    assert not record.exists()

    record.write_text("{not json")
    assert bg.running(home) == (None, "") and not record.exists()


def test_a_server_that_does_not_answer_is_left_alone(home: Path, tmp_path: Path) -> None:
    """A live server process that is slow to answer keeps its record; the run goes elsewhere, with a note."""
    home.mkdir(parents=True)
    port = _free_port()
    # Stands in for a busy server: a process whose command line is the server's, listening, never answering.
    code = f"import socket, time\ns = socket.socket(); s.bind(('127.0.0.1', {port})); s.listen(); time.sleep(60)\n"
    quiet = subprocess.Popen([sys.executable, "-c", code, bg.SERVER_FACTORY, "--port", str(port)])
    try:
        (home / bg.RECORD_NAME).write_text(json.dumps({"pid": quiet.pid, "host": "127.0.0.1", "port": port}))
        server, note = bg.running(home)
        assert server is None and f"pid {quiet.pid}" in note and "did not answer within 0.3 s" in note
        assert (home / bg.RECORD_NAME).exists()
        status = _cli(["server", "status"], home, tmp_path)
        assert status.returncode == 1 and status.stdout.startswith("not answering:")
        stopped = _cli(["server", "stop", "--timeout", "5"], home, tmp_path)
        assert stopped.returncode == 0 and stopped.stdout.startswith("stopped")
        assert quiet.wait(timeout=10) == -signal.SIGTERM
        assert not (home / bg.RECORD_NAME).exists()
    finally:
        quiet.kill()
        quiet.wait()


def test_watch_crashes_needs_a_server(home: Path, tmp_path: Path) -> None:
    done = _cli(["server", "watch-crashes"], home, tmp_path, timeout=60)
    assert done.returncode == 2
    assert done.stderr == "placewright: error: set PREFECT_API_URL to the server, or `placewright server start`\n"
    short = _cli(["server", "start", "--crash-after", "5"], home, tmp_path, timeout=60)
    assert short.returncode == 2 and short.stderr.startswith("placewright: error: --crash-after must be 0 or")
