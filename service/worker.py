"""Warm workers: long-lived processes that claim the service's flow runs and run them in-process.

A Prefect process worker starts a new Python process for every flow run (2.5–3.5 s here) and so
loads every AI model again for every job. A warm worker is one process that runs job after job:
imports, settings and models (:data:`placewright.models.MODELS`) stay loaded between them.

Each worker polls the deployment's due runs (new jobs, and runs sent back by Retry in the Prefect
dashboard), claims one by proposing Pending (Prefect lets exactly one proposal through), writes
``<host>:<pid>`` on it (Prefect's ``infrastructure_pid``, so a dead worker's runs can be found and run
again) and runs it with Prefect's own flow engine (``run_flow``), so states, retries, task caching
and logs are what a deployment run has anywhere else. While a run goes on, a watcher thread looks for
Cancelling: then the worker marks the run Cancelled and exits at once (its supervisor starts a new
one), which is the only way to stop a run's threads.

Workers on other machines: ``placewright worker`` with the same ``PREFECT_API_URL``, the same
storage settings and a shared ``service.out``/``service.uploads`` (an object store).

A worker started by a supervisor dies with it (Linux: ``PR_SET_PDEATHSIG``; elsewhere a thread
watches the parent), so no worker outlives a killed service. SIGTERM stops taking new runs and lets
the current one finish.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

log = logging.getLogger("placewright.service.worker")

EXIT_CANCELLED = 3


def die_with_parent() -> None:
    """Make this process die when the process that started it dies (even by SIGKILL)."""
    from placewright.processes import signal_on_parent_death

    parent = os.getppid()
    signal_on_parent_death(signal.SIGKILL, parent)

    def watch() -> None:
        while True:
            if os.getppid() != parent:
                os._exit(1)
            time.sleep(1.0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


class Worker:
    """One warm worker: claims due runs of the deployment and runs them here, one at a time."""

    def __init__(self, status_dir: Path | None = None) -> None:
        from placewright.settings import get_settings
        from service.engine import Engine, worker_tag

        settings = get_settings()
        self.poll_s = settings.service.poll_interval_s
        self.engine = Engine(settings.service.deployment)
        self.tag = worker_tag()
        self.stop = threading.Event()
        self.jobs = 0
        self.current: str | None = None
        self.status_file = status_dir / f"{os.getpid()}.json" if status_dir is not None else None

    def run(self) -> None:
        """Take and run jobs until :attr:`stop` is set (SIGTERM sets it)."""
        from flows.place_product import place_product  # imported once: the flow and every stage module

        self.flow = place_product
        deployment_id = self._deployment_id()
        log.info("worker %s ready", self.tag)
        self._write_status()
        while not self.stop.is_set():
            ran = False
            try:
                for flow_run in self.engine.due_runs(deployment_id):
                    if self.stop.is_set():
                        break
                    if self.engine.claim(flow_run, self.tag):
                        self._execute(flow_run.id)
                        ran = True
                        break
            except Exception as exc:  # the API restarting, a network blip: try again shortly
                log.warning("worker %s: %s: %s", self.tag, type(exc).__name__, exc)
            if not ran:
                self.stop.wait(self.poll_s)

    def _deployment_id(self) -> UUID:
        while True:
            try:
                return self.engine.deployment_id()
            except Exception as exc:
                if self.stop.is_set():
                    raise SystemExit(0) from None
                log.info("worker %s waiting for the deployment: %s", self.tag, exc)
                self.stop.wait(max(self.poll_s, 1.0))

    def _execute(self, flow_run_id: UUID) -> None:
        self.current = str(flow_run_id)
        self._write_status()
        done = threading.Event()
        watcher = threading.Thread(target=self._watch_cancel, args=(flow_run_id, done), daemon=True)
        watcher.start()
        try:
            flow_run = self.engine.read_run(str(flow_run_id))
            if flow_run is not None:
                self._run_flow(flow_run)
        except BaseException as exc:  # the engine records the failure in the run's state
            log.warning("worker %s: run %s ended with %s", self.tag, flow_run_id, type(exc).__name__)
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise
        finally:
            done.set()
            self.jobs += 1
            self.current = None
            self._write_status()

    def _run_flow(self, flow_run: Any) -> None:
        """Run the flow run to its end with Prefect's flow engine, in a thread of its own.

        In the main thread Prefect's engine installs its own SIGTERM handler for the run
        (``prefect.utilities.engine.capture_sigterm``), which crashes the run on SIGTERM; in another
        thread it cannot, so SIGTERM keeps meaning "take no new run" and the run in hand finishes.
        """
        from prefect.flow_engine import run_flow

        raised: list[BaseException] = []

        def target() -> None:
            try:
                run_flow(self.flow, flow_run=flow_run, return_type="state")
            except BaseException as exc:
                raised.append(exc)

        runner = threading.Thread(target=target, name=f"flow-run-{flow_run.id}", daemon=True)
        runner.start()
        runner.join()  # signal handlers still run in the main thread meanwhile
        if raised:
            raise raised[0]

    def _watch_cancel(self, flow_run_id: UUID, done: threading.Event) -> None:
        while not done.wait(self.poll_s):
            try:
                if self.engine.is_cancelling(flow_run_id):
                    self.engine.mark_cancelled(flow_run_id)
                    log.info("worker %s: run %s canceled; worker exits", self.tag, flow_run_id)
                    os._exit(EXIT_CANCELLED)
            except Exception:  # the API is unreachable for a moment: look again
                continue

    def _write_status(self) -> None:
        """``<status_dir>/<pid>.json``: jobs run, the current run, and model loads (benchmarks read it)."""
        if self.status_file is None:
            return
        from placewright.models import MODELS

        status: dict[str, Any] = {
            "pid": os.getpid(),
            "tag": self.tag,
            "jobs": self.jobs,
            "current": self.current,
            "model_loads": {repr(key): count for key, count in MODELS.loads.items()},
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        self.status_file.parent.mkdir(parents=True, exist_ok=True)
        partial = self.status_file.with_suffix(".partial")
        partial.write_text(json.dumps(status))
        os.replace(partial, self.status_file)


def main(argv: list[str] | None = None) -> int:
    """``python -m service.worker [STATUS_DIR]``: one worker process (started by a supervisor)."""
    args = sys.argv[1:] if argv is None else argv
    from placewright.memory import return_large_blocks

    return_large_blocks()
    if os.environ.get("PLACEWRIGHT_WORKER_SUPERVISED") == "1":
        die_with_parent()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    worker = Worker(Path(args[0]) if args else None)
    signal.signal(signal.SIGTERM, lambda *_: worker.stop.set())
    signal.signal(signal.SIGINT, lambda *_: worker.stop.set())
    worker.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
