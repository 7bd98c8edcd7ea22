"""The service's moving parts in one object: records, engine, limits, and the loops that keep jobs true.

- **Submitting** (:meth:`Runtime.submit`): the job is recorded first (with its HTTP idempotency key),
  then its flow run is created with the job's namespaced Prefect idempotency key and the flow run's
  id recorded. Flow runs are created one at a time, as queued, by one creator thread: Prefect's default
  SQLite database takes one writer at a time, and 50 jobs posted at once, each creating its own run,
  waited up to 116 s in the client's retries of 'database is locked'. The answer waits at most
  ``service.create_wait_s`` for its run; a job whose run is not created by then answers ``queued`` and
  its run follows. A restart between the two steps is healed by the reconciler, which has the flow run
  created again and gets the same one: no job is lost and none is run twice.
- **Reconciling** (:meth:`Runtime.reconcile_once`, every ``service.poll_interval_s``): the records of
  unfinished jobs are compared with their flow runs' states; a final state records the result (read
  from the published manifest) and queues the webhook event in the same transaction. Completion never
  depends on Prefect's client-side hooks, which do not run after a SIGKILL.
- **Recovering**: active runs claimed on this host by a worker that is gone are sent back to the
  queue (their finished stages are cached), canceled if they were being canceled, or failed after
  :data:`service.engine.MAX_RUN_STARTS` starts.
- **Webhooks**: :class:`service.webhooks.Outbox` delivers queued events in its own thread.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

from limits import RateLimitItemPerMinute, storage, strategies

from placewright.errors import first_line
from placewright.manifest import Manifest
from placewright.settings import Settings
from placewright.storage import is_local, open_location, write_atomically
from service.engine import Engine, flow_run_error, job_state, run_folder
from service.records import FINAL_STATES, ApiKey, JobRecord, Records, now_iso
from service.views import EVENT_TYPES, result_of, webhook_payload
from service.webhooks import Outbox, make_event

log = logging.getLogger("placewright.service")
# Failed jobs are followed this long after they end: a Retry from the Prefect dashboard revives them
# (the record moves on with its flow run, and a new webhook event says how it ended this time).
RETRY_WATCH_S = 24 * 3600
# ...looked at on every this many reconciler cycles (unfinished jobs: on every one).
FAILED_EVERY = 20


@dataclass(frozen=True)
class Places:
    """Where the service keeps things, resolved from the settings once."""

    base_url: str  # how clients reach the service
    state_dir: Path
    out_root: str  # jobs publish under <out_root>/<key id>
    uploads: str  # uploaded images, under <uploads>/<key id>/

    @classmethod
    def of(cls, settings: Settings, port: int | None = None) -> Places:
        service = settings.service
        base = service.public_url or f"http://{service.host}:{port if port is not None else service.port}"
        state_dir = service.state_dir.resolve()
        out_root = service.out or settings.out_dir
        if is_local(out_root):
            out_root = str(Path(out_root.removeprefix("file://")).resolve())
        uploads = service.uploads or str(state_dir / "uploads")
        if is_local(uploads):
            uploads = str(Path(uploads.removeprefix("file://")).resolve())
        return cls(base.rstrip("/"), state_dir, out_root.rstrip("/"), uploads.rstrip("/"))

    def out_for(self, key: ApiKey) -> str:
        return f"{self.out_root}/{key.id}"

    @property
    def serves_files(self) -> bool:
        """A local store is served read-only at ``/files`` (object stores have their own URLs)."""
        return is_local(self.out_root)


def job_overrides(settings: Settings, places: Places) -> dict[str, dict[str, Any]]:
    """The settings jobs run with, beyond the service's own: per section, the fields that change.

    Jobs may read uploads and publish under ``places.out_root`` (added to the access roots), and a local
    store's files get public URLs under the service's ``/files`` (unless the operator set a public base).
    Workers get these as environment variables; the service reads manifests with the same storage settings.
    """
    inputs = [*settings.access.input_roots, places.uploads]
    outputs = [*(settings.access.output_roots or [settings.out_dir]), places.out_root]
    overrides: dict[str, dict[str, Any]] = {
        "access": {"input_roots": list(dict.fromkeys(inputs)), "output_roots": list(dict.fromkeys(outputs))}
    }
    if places.serves_files and not settings.storage.public_base_url:
        overrides["storage"] = {"public_base_url": f"{places.base_url}/files", "public_root": places.out_root}
    return overrides


def with_overrides(settings: Settings, overrides: dict[str, dict[str, Any]]) -> Settings:
    sections = {name: getattr(settings, name).model_copy(update=fields) for name, fields in overrides.items()}
    return settings.model_copy(update=sections)


class TooMany(Exception):
    """A per-key limit was reached: answer 429 with ``Retry-After: retry_after`` seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Runtime:
    """Records, the engine and the background loops of one service process."""

    def __init__(self, settings: Settings, places: Places) -> None:
        self.settings = with_overrides(settings, job_overrides(settings, places))
        settings = self.settings
        self.places = places
        places.state_dir.mkdir(parents=True, exist_ok=True)
        self.records = Records(places.state_dir / "service.db")
        self.engine = Engine(settings.service.deployment)
        self.deployment_id: UUID | None = None
        self._limiter = strategies.MovingWindowRateLimiter(storage.MemoryStorage())
        self._rate = RateLimitItemPerMinute(settings.service.rate_per_minute)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._alive_workers: set[str] = set()
        self._reconcile_lock = threading.Lock()
        self._submit_lock = threading.Lock()
        # The one creator of flow runs (see the module docstring) and what it has queued, by job id.
        self._creator = ThreadPoolExecutor(max_workers=1, thread_name_prefix="creator")
        self._creations: dict[str, Future[None]] = {}
        self._creations_lock = threading.Lock()
        # Recording a job's new run and canceling a job that has none, one at a time: a job canceled while its
        # run was being created has that run canceled, never run.
        self._run_id_lock = threading.Lock()
        self._cycles = 0
        self.outbox = Outbox(
            self.records,
            schedule_s=list(settings.service.webhook_schedule_s),
            jitter=settings.service.webhook_jitter,
            timeout_s=settings.service.webhook_timeout_s,
            allowlist=settings.limits.allowed_hosts,
            secret_for=self._secret_for,
        )

    # --- life -----------------------------------------------------------------------------------
    def start(self) -> None:
        """Register the deployment and start the reconciler and the webhook outbox."""
        self.deployment_id = self.engine.ensure_deployment()
        self.reconcile_once()
        poll = self.settings.service.poll_interval_s
        self._threads = [
            threading.Thread(target=self._loop, args=(self.reconcile_once, poll), name="reconciler", daemon=True),
            threading.Thread(
                target=self._loop, args=(self.recover_orphans, max(poll, 2.0)), name="recovery", daemon=True
            ),
            threading.Thread(target=self.outbox.run, args=(self._stop, poll), name="webhooks", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._creator.shutdown(wait=True, cancel_futures=True)  # queued jobs get their runs after a restart
        for thread in self._threads:
            thread.join(timeout=10)
        self.records.close()

    def set_alive_workers(self, tags: set[str]) -> None:
        self._alive_workers = set(tags)

    def _loop(self, step: Any, interval_s: float) -> None:
        while not self._stop.wait(interval_s):
            try:
                step()
            except Exception as exc:  # the API restarting: log one line and go on
                log.warning("%s: %s: %s", threading.current_thread().name, type(exc).__name__, first_line(exc))

    def _secret_for(self, key_id: str) -> str | None:
        key = self.records.key(key_id)
        return None if key is None or key.revoked else key.webhook_secret

    # --- limits ---------------------------------------------------------------------------------
    def check_rate(self, key: ApiKey) -> None:
        """Count one request of ``key``; raises :class:`TooMany` above ``service.rate_per_minute``."""
        if self._limiter.hit(self._rate, key.id):
            return
        stats = self._limiter.get_window_stats(self._rate, key.id)
        retry = max(1, math.ceil(stats.reset_time - time.time()))
        raise TooMany(f"more than {self.settings.service.rate_per_minute} requests a minute for this key", retry)

    def check_active(self, key: ApiKey) -> None:
        limit = self.settings.service.max_active_jobs
        if self.records.active_count(key.id) >= limit:
            raise TooMany(f"this key has {limit} queued or running jobs (the limit); wait for some to finish", 5)

    # --- jobs -----------------------------------------------------------------------------------
    def store_upload(self, key: ApiKey, data: bytes, extension: str) -> str:
        """Keep an uploaded image (content-addressed, written atomically); returns its location."""
        digest = hashlib.sha256(data).hexdigest()
        location = open_location(self.places.uploads, self.settings.storage)
        name = f"{key.id}/{digest}{extension}"
        if not location.fs.exists(location.path(name)):
            write_atomically(location.fs, location.path(name), data, local=location.local)
        return location.uri(name)

    def submit(
        self,
        key: ApiKey,
        request: dict[str, Any],
        *,
        webhook_url: str | None,
        api: str,
        idempotency_key: str | None,
        body_sha256: str,
    ) -> tuple[JobRecord, bool]:
        """Record a job and create its flow run; returns the job and whether it is new.

        With an ``idempotency_key`` used before with the same body, the earlier job is returned.

        Raises:
            IdempotencyMismatch: the key was used with another body.
            TooMany: the key's active-job cap.
        """
        if idempotency_key is not None:
            earlier = self.records.idempotent_job(key.id, idempotency_key, body_sha256)
            if earlier is not None and (job := self.records.job(earlier)) is not None:
                return job, False
        with self._submit_lock:  # the active-job count and the new record, together
            self.check_active(key)
            job_id = str(uuid.uuid4())
            if idempotency_key is not None:
                recorded = self.records.remember_idempotency(key.id, idempotency_key, body_sha256, job_id)
                if recorded != job_id and (job := self.records.job(recorded)) is not None:
                    return job, False
                job_id = recorded
            job = JobRecord(
                id=job_id,
                key_id=key.id,
                api=api,  # type: ignore[arg-type]
                request=request,
                created_at=now_iso("milliseconds"),
                webhook_url=webhook_url,
            )
            if self.records.job(job_id) is None:
                self.records.add_job(job)
        wait_for([self._queue_creation(job.id)], timeout=self.settings.service.create_wait_s)
        return self.records.job(job_id) or job, True

    def _queue_creation(self, job_id: str) -> Future[None]:
        """Have the creator create the job's flow run (once: a job already queued keeps its place)."""
        with self._creations_lock:
            queued = self._creations.get(job_id)
            if queued is None:
                queued = self._creations[job_id] = self._creator.submit(self._create_run, job_id)
            return queued

    def _create_run(self, job_id: str) -> None:
        """The creator's step: the recorded job's flow run, unless it has one or has ended (canceled)."""
        try:
            assert self.deployment_id is not None, "start() first"
            job = self.records.job(job_id)
            if job is None or job.flow_run_id is not None or job.state in FINAL_STATES:
                return
            flow_run = self.engine.create_run(self.deployment_id, job.id, job.key_id, job.request)
            with self._run_id_lock:
                current = self.records.job(job_id)
                canceled = current is None or current.state in FINAL_STATES
                if not canceled:
                    self.records.update_job(job_id, flow_run_id=str(flow_run.id))
        except Exception as exc:  # the job is recorded: the reconciler queues it again (the same run) later
            log.warning("job %s: its flow run is not created yet (%s: %s)", job_id, type(exc).__name__, first_line(exc))
            return
        finally:
            with self._creations_lock:
                self._creations.pop(job_id, None)
        if canceled:  # while its run was being created
            try:
                self.engine.cancel(str(flow_run.id))
            except Exception as exc:
                log.warning(
                    "job %s was canceled, but its flow run %s could not be (%s: %s)",
                    job_id,
                    flow_run.id,
                    type(exc).__name__,
                    first_line(exc),
                )

    def refresh(self, job: JobRecord) -> JobRecord:
        """The job with its state read from its flow run now (a dashboard retry shows at once)."""
        if job.flow_run_id is None:  # its run may have been created since
            job = self.records.job(job.id) or job
            if job.flow_run_id is None:
                return job
        flow_run = self.engine.read_run(job.flow_run_id)
        self._apply(job, flow_run)
        return self.records.job(job.id) or job

    def cancel(self, job: JobRecord) -> JobRecord:
        if job.state in FINAL_STATES:
            return job
        if job.flow_run_id is None:  # recorded, its run not created yet: it never will be
            with self._run_id_lock:
                current = self.records.job(job.id) or job
                if current.flow_run_id is None:
                    self._finish(current, "canceled", now_iso("milliseconds"))
                    return self.records.job(job.id) or current
                job = current
        assert job.flow_run_id is not None
        self.engine.cancel(job.flow_run_id)
        return self.refresh(job)

    def wait(self, job: JobRecord, seconds: float) -> JobRecord:
        """Wait up to ``seconds`` for the job to reach a final state (``Prefer: wait=N``)."""
        deadline = time.monotonic() + seconds
        poll = min(self.settings.service.poll_interval_s, 0.25)
        while job.state not in FINAL_STATES and time.monotonic() < deadline:
            time.sleep(min(poll, max(0.0, deadline - time.monotonic())))
            job = self.refresh(job)
        return job

    # --- keeping records true -------------------------------------------------------------------
    def reconcile_once(self) -> None:
        """Bring every unfinished job's record up to date with its flow run (see the module docstring)."""
        with self._reconcile_lock:
            jobs = self.records.unfinished_jobs()
            self._cycles += 1
            if self._cycles % FAILED_EVERY == 0:  # failed jobs change only through a dashboard Retry: less often
                revivable = datetime.now(UTC) - timedelta(seconds=RETRY_WATCH_S)
                jobs += self.records.failed_since(revivable.isoformat(timespec="milliseconds"))
            for job in [j for j in jobs if j.flow_run_id is None]:
                self._queue_creation(job.id)  # recorded before a restart (or a failed try): the same run
            ids = [j.flow_run_id for j in jobs if j.flow_run_id is not None]
            runs = self.engine.read_runs(ids) if ids else {}
            for job in jobs:
                if job.flow_run_id is not None:
                    self._apply(job, runs.get(job.flow_run_id))

    def recover_orphans(self) -> None:
        if self.deployment_id is None:
            return
        for flow_run in self.engine.orphans(self.deployment_id, self._alive_workers):
            outcome = self.engine.recover(flow_run)
            log.warning("flow run %s lost its worker: %s", flow_run.id, outcome)

    def _apply(self, job: JobRecord, flow_run: Any) -> None:
        if flow_run is None:
            self._finish(
                job, "failed", now_iso("milliseconds"), error="its flow run no longer exists on the Prefect server"
            )
            return
        state = job_state(flow_run)
        if state in FINAL_STATES:
            ended = flow_run.state.timestamp if flow_run.state is not None else None
            completed_at = (ended or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="milliseconds")
            if job.state == state and job.completed_at == completed_at:
                return
            if state == "succeeded":
                self._finish_succeeded(job, flow_run, completed_at)
            else:
                error = flow_run_error(flow_run) if state == "failed" else None
                self._finish(job, state, completed_at, error=error)
        elif state != job.state:
            self.records.update_job(job.id, state=state)

    def _finish_succeeded(self, job: JobRecord, flow_run: Any, completed_at: str) -> None:
        out = job.request.get("out") or self.places.out_root
        try:
            location = open_location(out, self.settings.storage)
            key = f"{run_folder(flow_run)}/manifest.json"
            manifest = Manifest.model_validate_json(location.fs.cat_file(location.path(key)))
            manifest_url = location.url_for(key)
        except Exception as exc:
            self._finish(job, "failed", completed_at, error=f"its manifest cannot be read: {first_line(exc)}")
            return
        self._finish(
            job, "succeeded", completed_at, manifest_url=manifest_url, result=result_of(manifest, manifest_url)
        )

    def _finish(
        self,
        job: JobRecord,
        state: str,
        completed_at: str,
        *,
        error: str | None = None,
        manifest_url: str | None = None,
        result: dict[str, Any] | None = None,
    ) -> None:
        finished = JobRecord(**{**job.__dict__})
        finished.state = state  # type: ignore[assignment]
        finished.completed_at = completed_at
        finished.error = error
        finished.manifest_url = manifest_url
        finished.result = result
        event = None
        if job.webhook_url:
            payload = webhook_payload(finished, self.places.base_url)
            event = make_event(finished, EVENT_TYPES[state], payload)
        self.records.finish_job(
            job.id,
            state=state,  # type: ignore[arg-type]
            completed_at=completed_at,
            manifest_url=manifest_url,
            result=result,
            error=error,
            event=event,
        )


def body_digest(payload: Any) -> str:
    """sha256 of a request body's canonical JSON (Idempotency-Key compares bodies by it)."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
