"""Killing the CLI or the service leaves no private Prefect server behind.

``placewright run`` (and ``placewright serve``) with no ``PREFECT_API_URL`` and no background server
start a private Prefect server as a child process (flows/local_api.py). These tests start the real
command, find that child through ``/proc`` (its command line runs ``prefect.server.api.server:create_app``),
kill the command as ``timeout`` (SIGTERM) or the OOM killer (SIGKILL) would, and check that the server
process is gone and its port closed within a few seconds. SIGTERM ends the CLI through its exit handlers
(which stop the server); SIGKILL runs no handler at all, so the kernel's parent-death signal (PDEATHSIG,
set in the server's process) is what stops it.
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

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "olive-oil-bottle.jpg"
SERVER_MARK = b"prefect.server.api.server:create_app"
# Prefect's server takes ~7 s to boot on a quiet 2-core machine, much longer on a busy one.
SERVER_UP_TIMEOUT_S = 120.0
# How long a killed command's server may take to go: uvicorn's shutdown plus, for SIGTERM, the CLI's.
GONE_TIMEOUT_S = 15.0
POLL_S = 0.05

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds processes through /proc")


def _environment(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "PLACEWRIGHT_", "OPENAI_"))}
    env.update(
        PYTHONPATH=str(ROOT),
        PREFECT_HOME=str(tmp_path / "prefect-home"),  # no background server there: a private one starts
        PLACEWRIGHT_CACHE_DIR=str(tmp_path / "cache"),
        PLACEWRIGHT_MODELS_DIR=str(tmp_path / "models"),
    )
    return env


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError):
            stat = (entry / "stat").read_text()
            if int(stat[stat.rfind(")") + 2 :].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _cmdline(pid: int) -> list[bytes]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return []


def _gone(pid: int) -> bool:
    """Exited (a zombie waiting for its new parent to reap it has exited too)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rfind(")") + 2] == "Z"


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _answers(port: int) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


def _server_child(command: subprocess.Popen, *, answering: bool) -> tuple[int, int]:
    """The command's Prefect server child, once it runs (and answers, with ``answering``): pid and port."""
    deadline = time.monotonic() + SERVER_UP_TIMEOUT_S
    while time.monotonic() < deadline:
        if command.poll() is not None:
            _out, err = command.communicate()
            raise AssertionError(f"the command ended ({command.returncode}) before its server was up: {err[-2000:]}")
        for pid in _children(command.pid):
            argv = _cmdline(pid)
            if SERVER_MARK in argv:
                port = int(argv[argv.index(b"--port") + 1])
                if not answering or _answers(port):
                    return pid, port
        time.sleep(POLL_S)
    raise AssertionError(f"no Prefect server child of pid {command.pid} within {SERVER_UP_TIMEOUT_S:.0f} s")


def _assert_gone(pid: int, port: int) -> float:
    """Wait until the server process is gone and its port closed; how long that took."""
    began = time.monotonic()
    while time.monotonic() - began < GONE_TIMEOUT_S:
        if _gone(pid) and not _port_open(port):
            return time.monotonic() - began
        time.sleep(POLL_S)
    raise AssertionError(
        f"the Prefect server (pid {pid}, port {port}) is still there {GONE_TIMEOUT_S:.0f} s after its parent was "
        f"killed: {b' '.join(_cmdline(pid)).decode(errors='replace')}"
    )


class Command:
    """The command under test, and the servers found under it (killed at the end, whatever the test found)."""

    def __init__(self, args: list[str], tmp_path: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "placewright.cli", *args],
            cwd=tmp_path,
            env=_environment(tmp_path),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.servers: list[int] = []

    def server(self, *, answering: bool) -> tuple[int, int]:
        pid, port = _server_child(self.process, answering=answering)
        self.servers.append(pid)
        return pid, port

    def cleanup(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.communicate()
        for pid in self.servers:
            if not _gone(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def _started(args: list[str], tmp_path: Path) -> Iterator[Command]:
    command = Command(args, tmp_path)
    try:
        yield command
    finally:
        command.cleanup()


def _run_args(tmp_path: Path) -> list[str]:
    return ["run", str(EXAMPLE), "--prompt", "x", "--out", str(tmp_path / "out")]


@pytest.mark.parametrize("moment", ["booting", "answering"])
def test_sigterm_of_the_cli_stops_its_private_server(tmp_path: Path, moment: str) -> None:
    with _started(_run_args(tmp_path), tmp_path) as command:
        server, port = command.server(answering=moment == "answering")
        if moment == "booting":
            time.sleep(0.5)  # past the CLI's signal set-up, well before the server answers
        command.process.send_signal(signal.SIGTERM)
        took = _assert_gone(server, port)
        # The CLI ended through its exit handlers (exit code 128 + SIGTERM), not killed by the signal.
        assert command.process.wait(timeout=GONE_TIMEOUT_S) == 128 + signal.SIGTERM
    print(f"SIGTERM while the server was {moment}: server gone after {took:.2f} s")


def test_sigkill_of_the_cli_stops_its_private_server(tmp_path: Path) -> None:
    with _started(_run_args(tmp_path), tmp_path) as command:
        server, port = command.server(answering=True)
        command.process.kill()
        took = _assert_gone(server, port)
        assert command.process.wait(timeout=5) == -signal.SIGKILL
    print(f"SIGKILL: server gone after {took:.2f} s")


def test_sigkill_of_the_service_stops_its_private_server(tmp_path: Path) -> None:
    with _started(["serve", "--port", "0", "--workers", "0"], tmp_path) as command:
        server, port = command.server(answering=True)
        command.process.kill()
        took = _assert_gone(server, port)
        assert command.process.wait(timeout=5) == -signal.SIGKILL
    print(f"SIGKILL of placewright serve: server gone after {took:.2f} s")
