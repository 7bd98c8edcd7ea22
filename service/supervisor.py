"""The service's own warm workers: started with it, restarted when they exit, stopped with it.

Each worker is ``python -m service.worker`` (see :mod:`service.worker`) with the service's settings,
plus what its jobs need: the uploads folder as an input root, the jobs' folder as an output root and,
for a local store, public URLs under the service's ``/files``. A worker that exits (a canceled job
ends its worker) is replaced. On shutdown the workers get SIGTERM and ``service.shutdown_grace_s`` to
finish the job in hand; a job still running after that is picked up again on the next start.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from placewright.settings import Settings
from service.engine import worker_tag
from service.runtime import Places, job_overrides

log = logging.getLogger("placewright.service")


def worker_environment(settings: Settings, places: Places) -> dict[str, str]:
    """The environment of a worker process: this one's, plus :func:`service.runtime.job_overrides` as variables."""
    env = dict(os.environ)
    env["PLACEWRIGHT_WORKER_SUPERVISED"] = "1"
    for section, fields in job_overrides(settings, places).items():
        for name, value in fields.items():
            env[f"PLACEWRIGHT_{section.upper()}__{name.upper()}"] = (
                json.dumps(value) if not isinstance(value, str) else value
            )
    return env


class Supervisor:
    """``count`` worker processes kept running until :meth:`stop`."""

    def __init__(self, settings: Settings, places: Places, count: int) -> None:
        self.settings = settings
        self.places = places
        self.count = count
        self.status_dir = places.state_dir / "workers"
        self.processes: list[subprocess.Popen] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.on_change: list = []  # callables given the set of live worker tags

    def start(self) -> None:
        self.status_dir.mkdir(parents=True, exist_ok=True)
        for stale in self.status_dir.glob("*.json"):
            stale.unlink(missing_ok=True)
        with self._lock:
            for _ in range(self.count):
                self.processes.append(self._spawn())
        self._notify()
        self._thread = threading.Thread(target=self._watch, name="supervisor", daemon=True)
        self._thread.start()

    def _spawn(self) -> subprocess.Popen:
        log_file = open(self.places.state_dir / "workers.log", "ab")  # noqa: SIM115 - the child holds it
        process = subprocess.Popen(
            [sys.executable, "-m", "service.worker", str(self.status_dir)],
            env=worker_environment(self.settings, self.places),
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        log_file.close()
        log.info("worker %s started", process.pid)
        return process

    def tags(self) -> set[str]:
        with self._lock:
            return {worker_tag(p.pid) for p in self.processes if p.poll() is None}

    def alive_count(self) -> int:
        return len(self.tags())

    def _notify(self) -> None:
        tags = self.tags()
        for callback in self.on_change:
            callback(tags)

    def _watch(self) -> None:
        while not self._stop.wait(0.5):
            changed = False
            with self._lock:
                for i, process in enumerate(self.processes):
                    if process.poll() is not None and not self._stop.is_set():
                        log.info("worker %s exited with %s; starting another", process.pid, process.returncode)
                        (self.status_dir / f"{process.pid}.json").unlink(missing_ok=True)
                        self.processes[i] = self._spawn()
                        changed = True
            if changed:
                self._notify()

    def stop(self, grace_s: float) -> None:
        """SIGTERM every worker, wait up to ``grace_s`` for their jobs, then SIGKILL what is left."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            for process in self.processes:
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + grace_s
            for process in self.processes:
                try:
                    process.wait(timeout=max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            self.processes.clear()

    def statuses(self) -> list[dict]:
        """What each worker last wrote about itself (jobs run, model loads)."""
        found = []
        for path in sorted(Path(self.status_dir).glob("*.json")):
            try:
                found.append(json.loads(path.read_text()))
            except (OSError, ValueError):
                continue
        return found
