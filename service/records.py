"""The service's own durable records, in one SQLite file: keys, jobs, idempotency keys, webhook outbox.

Prefect holds what runs (a job *is* a flow run, named by ``flow_run_id``). This file holds what
Prefect does not: which API key owns a job, what it asked for, the HTTP idempotency keys, the state
last seen (reconciled from the flow run), and webhook events with every delivery attempt. It is
opened by each process that needs it (the API process and its background loops); SQLite in WAL mode
with a busy timeout serialises writers. Every change that must happen together (a job reaching a
final state and its webhook event being queued) is one transaction.

API keys are ``pw_<key id>_<secret>`` tokens; only the sha256 of the whole token is stored (tokens
are 32 random bytes, so a fast hash is enough) and compared in constant time. Each key has its own
``whsec_`` webhook secret, which has to be stored as it is, since the service signs with it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, get_args

from placewright.validation import shown

JobState = Literal["queued", "running", "succeeded", "failed", "canceled"]
FINAL_STATES: frozenset[str] = frozenset({"succeeded", "failed", "canceled"})
JobApi = Literal["v1", "legacy"]
EventStatus = Literal["pending", "delivered", "failed"]
JOB_STATES: tuple[str, ...] = get_args(JobState)
EVENT_STATUSES: tuple[str, ...] = get_args(EventStatus)

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
# How long a write waits for another connection's (another process's) transaction.
BUSY_TIMEOUT_MS = 10_000
TOKEN_PREFIX = "pw_"
WEBHOOK_SECRET_PREFIX = "whsec_"
KEY_ID_HEX_CHARS = 16
MAX_KEY_NAME_CHARS = 64
MAX_TOKEN_CHARS = 256
CURSOR_VERSION = 1
MAX_CURSOR_CHARS = 256
_KEY_ID = re.compile(r"[0-9a-f]{16}")


@dataclass(frozen=True)
class ApiKey:
    """An API key as stored: never the token itself."""

    id: str  # 16 random hex characters: the token's public part, the key's folder under service.out
    name: str  # the operator's label, unique
    webhook_secret: str  # whsec_<base64 of 32 random bytes>
    created_at: str  # ISO 8601, UTC
    revoked: bool = False


@dataclass
class JobRecord:
    """One job: its owner, its request, and its state as last reconciled with the flow run."""

    id: str  # a UUID string (the flow run's own id is flow_run_id)
    key_id: str
    api: JobApi
    request: dict[str, Any]  # the RunRequest, as JSON
    created_at: str  # ISO 8601, UTC
    state: JobState = "queued"
    updated_at: str | None = None
    completed_at: str | None = None
    webhook_url: str | None = None
    manifest_url: str | None = None
    result: dict[str, Any] | None = None  # images, verdicts, dropped: what GET .../result answers
    error: str | None = None  # one line, for failed jobs
    flow_run_id: str | None = None  # the job's flow run, once created (None before: recorded first, run made next)


@dataclass(frozen=True)
class WebhookEvent:
    """One event to deliver: the same ``id`` (the ``webhook-id`` header) on every attempt."""

    id: str  # "evt_" + 24 hex; deterministic per (job, type), so re-queueing after a restart is a no-op
    job_id: str
    key_id: str
    type: str  # job.succeeded, job.failed, job.canceled
    url: str
    payload: bytes  # the exact body that is signed and sent
    created_at: str
    status: EventStatus = "pending"
    attempts: int = 0
    next_attempt_at: float = 0.0  # Unix time
    last_error: str | None = None


@dataclass(frozen=True)
class DeliveryAttempt:
    """One try at delivering an event, as recorded on the job."""

    event_id: str
    number: int  # 1, 2, ...
    at: str  # ISO 8601, UTC
    status_code: int | None  # None: no answer (refused, timed out, connection failed)
    error: str | None  # one line; None for a 2xx
    duration_s: float = 0.0


@dataclass
class Page:
    """One page of a key's jobs, newest first; ``next_cursor`` is None on the last page."""

    jobs: list[JobRecord] = field(default_factory=list)
    next_cursor: str | None = None


class IdempotencyMismatch(Exception):
    """The Idempotency-Key was used before with a different request body."""


class Records:
    """The service's SQLite file (created with its tables on first open).

    One connection per instance, shared by the threads that use it (API request threads, the
    reconciler, the webhook outbox) behind a lock; every write is a ``BEGIN IMMEDIATE`` transaction,
    so writers in other processes wait (``busy_timeout``) instead of failing.

    Args:
        path: the database file (its folder is created); ``<service.state_dir>/service.db``.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with suppress(FileExistsError):  # owner-only: the file holds webhook secrets
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        self._lock = threading.RLock()
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False)
        try:
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                logger.warning("%s: SQLite journal mode is %s, not WAL", self.path, mode)
            conn.execute("PRAGMA synchronous = FULL")
            self._conn: sqlite3.Connection | None = conn
            with self._write() as db:
                for statement in _SCHEMA:
                    db.execute(statement)
                _add_missing_columns(db)
                if db.execute("PRAGMA user_version").fetchone()[0] == 0:
                    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except BaseException:
            conn.close()
            raise

    def close(self) -> None:
        """Close the connection (again: nothing); the records cannot be used after this."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> Records:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- API keys -------------------------------------------------------------------------------
    def create_key(self, name: str) -> tuple[ApiKey, str]:
        """A new key named ``name``; returns it and its token (shown once, never stored).

        Raises:
            ValueError: a key with that name exists, or the name is empty or longer than 64 characters.
        """
        if not isinstance(name, str) or not name.strip():
            raise ValueError("key name: must not be empty")
        if len(name) > MAX_KEY_NAME_CHARS:
            raise ValueError(f"key name: is too long (limit {MAX_KEY_NAME_CHARS} characters)")
        if not name.isprintable():
            raise ValueError(f"key name: must be one line of printable characters, got {shown(name)}")
        key_id = secrets.token_hex(KEY_ID_HEX_CHARS // 2)
        token = f"{TOKEN_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
        key = ApiKey(id=key_id, name=name, webhook_secret=new_webhook_secret(), created_at=now_iso())
        try:
            with self._write() as db:
                db.execute(
                    "INSERT INTO keys (id, name, token_sha256, webhook_secret, created_at, revoked) "
                    "VALUES (?, ?, ?, ?, ?, 0)",
                    (key.id, key.name, _sha256(token), key.webhook_secret, key.created_at),
                )
        except sqlite3.IntegrityError:
            if self.key_named(name) is not None:
                raise ValueError(f"key name: a key named {shown(name)} exists") from None
            raise
        return key, token

    def authenticate(self, token: str) -> ApiKey | None:
        """The live (not revoked) key whose token this is, else None (constant-time comparison)."""
        if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS or not token.isascii():
            return None
        prefix, _, rest = token.partition("_")
        key_id, _, secret = rest.partition("_")
        if f"{prefix}_" != TOKEN_PREFIX or not secret or not _KEY_ID.fullmatch(key_id):
            return None
        row = self._one("SELECT * FROM keys WHERE id = ?", (key_id,))
        if row is None or not hmac.compare_digest(_sha256(token), row["token_sha256"]) or row["revoked"]:
            return None
        return _key(row)

    def key_named(self, name: str) -> ApiKey | None:
        row = self._one("SELECT * FROM keys WHERE name = ?", (name,))
        return None if row is None else _key(row)

    def key(self, key_id: str) -> ApiKey | None:
        row = self._one("SELECT * FROM keys WHERE id = ?", (key_id,))
        return None if row is None else _key(row)

    def keys(self) -> list[ApiKey]:
        """Every key, revoked ones included, oldest first."""
        return [_key(row) for row in self._all("SELECT * FROM keys ORDER BY created_at, rowid")]

    def webhook_secret(self, key_id: str) -> str | None:
        """The webhook secret of a live key; None when the key is revoked or unknown (``Outbox(secret_for=...)``)."""
        row = self._one("SELECT webhook_secret FROM keys WHERE id = ? AND revoked = 0", (key_id,))
        return None if row is None else str(row["webhook_secret"])

    def revoke_key(self, name: str) -> bool:
        """Revoke by name; False when there is no such key."""
        with self._write() as db:
            return db.execute("UPDATE keys SET revoked = 1 WHERE name = ?", (name,)).rowcount > 0

    def rotate_webhook_secret(self, name: str) -> ApiKey:
        """A new ``whsec_`` secret for the key (KeyError when there is no such key)."""
        with self._write() as db:
            changed = db.execute("UPDATE keys SET webhook_secret = ? WHERE name = ?", (new_webhook_secret(), name))
            if changed.rowcount == 0:
                raise KeyError(name)
            return _key(db.execute("SELECT * FROM keys WHERE name = ?", (name,)).fetchone())

    # --- jobs ---------------------------------------------------------------------------------
    def add_job(self, job: JobRecord) -> None:
        """Insert a job (its id is new; an existing id is an IntegrityError)."""
        values = _job_values(job)
        columns = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        with self._write() as db:
            db.execute(f"INSERT INTO jobs ({columns}) VALUES ({marks})", tuple(values.values()))

    def job(self, job_id: str, key_id: str | None = None) -> JobRecord | None:
        """The job, or None; with ``key_id``, only when that key owns it."""
        if key_id is None:
            row = self._one("SELECT * FROM jobs WHERE id = ?", (job_id,))
        else:
            row = self._one("SELECT * FROM jobs WHERE id = ? AND key_id = ?", (job_id, key_id))
        return None if row is None else _job(row)

    def jobs_page(self, key_id: str, *, limit: int, cursor: str | None = None, state: str | None = None) -> Page:
        """A key's jobs, newest first, ``limit`` at a time; ``cursor`` from the previous page.

        Jobs are ordered by ``created_at`` and, within the same instant, by the order they were added.

        Raises:
            ValueError: a cursor this method did not make, a ``limit`` under 1, or an unknown ``state``.
        """
        if limit < 1:
            raise ValueError(f"limit: must be >= 1 (got {limit})")
        if state is not None and state not in JOB_STATES:
            raise ValueError(f"state: must be one of: {', '.join(JOB_STATES)} (got {shown(state)})")
        where: list[str] = ["key_id = ?"]
        params: list[Any] = [key_id]
        if state is not None:
            where.append("state = ?")
            params.append(state)
        if cursor is not None:
            created_at, seq = _parse_cursor(cursor)
            where.append("(created_at < ? OR (created_at = ? AND seq < ?))")
            params.extend([created_at, created_at, seq])
        rows = self._all(
            f"SELECT * FROM jobs WHERE {' AND '.join(where)} ORDER BY created_at DESC, seq DESC LIMIT ?",
            (*params, limit + 1),
        )
        more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = _make_cursor(rows[-1]["created_at"], rows[-1]["seq"]) if more else None
        return Page([_job(row) for row in rows], next_cursor)

    def active_count(self, key_id: str) -> int:
        """How many of the key's jobs are queued or running."""
        row = self._one("SELECT COUNT(*) AS n FROM jobs WHERE key_id = ? AND state IN ('queued', 'running')", (key_id,))
        return int(row["n"]) if row is not None else 0

    def unfinished_jobs(self) -> list[JobRecord]:
        """Every job not in a final state (what the reconciler follows), oldest first."""
        rows = self._all("SELECT * FROM jobs WHERE state IN ('queued', 'running') ORDER BY seq")
        return [_job(row) for row in rows]

    def failed_since(self, completed_after: str) -> list[JobRecord]:
        """Failed jobs that ended after ``completed_after`` (ISO 8601): a dashboard Retry may revive them."""
        rows = self._all(
            "SELECT * FROM jobs WHERE state = 'failed' AND completed_at > ? ORDER BY seq", (completed_after,)
        )
        return [_job(row) for row in rows]

    def update_job(self, job_id: str, **changes: Any) -> bool:
        """Set fields of a job (names as in :class:`JobRecord`); ``updated_at`` is set to now.

        Returns:
            Whether the job exists (False: nothing was changed).

        Raises:
            TypeError: a name that is not a field of :class:`JobRecord`, or ``id``.
        """
        unknown = sorted(name for name in changes if name not in _JOB_FIELDS or name == "id")
        if unknown:
            raise TypeError(f"update_job: unknown job field(s): {', '.join(unknown)}")
        changes.setdefault("updated_at", now_iso())
        values = {name: _column(name, value) for name, value in changes.items()}
        assignments = ", ".join(f"{name} = ?" for name in values)
        with self._write() as db:
            cursor = db.execute(f"UPDATE jobs SET {assignments} WHERE id = ?", (*values.values(), job_id))
            return cursor.rowcount > 0

    def finish_job(
        self,
        job_id: str,
        *,
        state: JobState,
        completed_at: str,
        manifest_url: str | None,
        result: dict[str, Any] | None,
        error: str | None,
        event: WebhookEvent | None,
    ) -> bool:
        """Move a job to a final state and queue its webhook event, in one transaction.

        Returns False (and changes nothing) when the job is already in that state. A job that failed
        and later succeeded (retried from the Prefect dashboard) may be finished again: a new event.
        The event is inserted only if its id is new.

        Raises:
            KeyError: there is no such job.
            ValueError: ``state`` is not a final state, or the event is another job's.
        """
        if state not in FINAL_STATES:
            raise ValueError(f"state: must be one of: {', '.join(sorted(FINAL_STATES))} (got {shown(state)})")
        if event is not None and event.job_id != job_id:
            raise ValueError(f"event {event.id} is job {event.job_id}'s, not {job_id}'s")
        with self._write() as db:
            row = db.execute("SELECT state FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                raise KeyError(job_id)
            if row["state"] == state:
                return False
            db.execute(
                "UPDATE jobs SET state = ?, completed_at = ?, manifest_url = ?, result = ?, error = ?, "
                "updated_at = ? WHERE id = ?",
                (state, completed_at, manifest_url, _json(result), error, now_iso(), job_id),
            )
            if event is not None:
                _insert_event(db, event)
            return True

    # --- idempotency ----------------------------------------------------------------------------
    def idempotent_job(self, key_id: str, idempotency_key: str, body_sha256: str) -> str | None:
        """The job made earlier with this key and body, or None when the key is unused.

        Raises:
            IdempotencyMismatch: the key was used with another body.
        """
        row = self._one(
            "SELECT body_sha256, job_id FROM idempotency WHERE key_id = ? AND idempotency_key = ?",
            (key_id, idempotency_key),
        )
        if row is None:
            return None
        if not hmac.compare_digest(str(row["body_sha256"]), body_sha256):
            raise IdempotencyMismatch(idempotency_key)
        return str(row["job_id"])

    def remember_idempotency(self, key_id: str, idempotency_key: str, body_sha256: str, job_id: str) -> str:
        """Record the key for the job; returns the job id now recorded (an earlier racer's, if any).

        Raises:
            IdempotencyMismatch: an earlier racer recorded the key with another body.
        """
        with self._write() as db:
            db.execute(
                "INSERT INTO idempotency (key_id, idempotency_key, body_sha256, job_id, created_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (key_id, idempotency_key) DO NOTHING",
                (key_id, idempotency_key, body_sha256, job_id, now_iso()),
            )
            row = db.execute(
                "SELECT body_sha256, job_id FROM idempotency WHERE key_id = ? AND idempotency_key = ?",
                (key_id, idempotency_key),
            ).fetchone()
        if row["body_sha256"] != body_sha256:
            raise IdempotencyMismatch(idempotency_key)
        return str(row["job_id"])

    # --- webhook outbox -----------------------------------------------------------------------
    def add_event(self, event: WebhookEvent) -> bool:
        """Queue an event outside :meth:`finish_job`; False when its id is known already (nothing changes)."""
        with self._write() as db:
            return _insert_event(db, event)

    def event(self, event_id: str) -> WebhookEvent | None:
        row = self._one("SELECT * FROM events WHERE id = ?", (event_id,))
        return None if row is None else _event(row)

    def due_events(self, now: float, limit: int = 32) -> list[WebhookEvent]:
        """Pending events whose next attempt is due, oldest first."""
        rows = self._all(
            "SELECT * FROM events WHERE status = 'pending' AND next_attempt_at <= ? "
            "ORDER BY next_attempt_at, seq LIMIT ?",
            (now, limit),
        )
        return [_event(row) for row in rows]

    def claim_event(self, event: WebhookEvent, *, now: float, until: float) -> bool:
        """Take a due event for one delivery attempt: its next attempt moves to ``until`` (a lease).

        Only one of several outboxes (threads or processes) gets the event: the claim succeeds when
        the event is still pending, due at ``now``, and has had no attempt since ``event`` was read.
        Should the deliverer die, the event is due again at ``until``.
        """
        with self._write() as db:
            cursor = db.execute(
                "UPDATE events SET next_attempt_at = ? "
                "WHERE id = ? AND status = 'pending' AND next_attempt_at <= ? AND attempts = ?",
                (until, event.id, now, event.attempts),
            )
            return cursor.rowcount > 0

    def record_attempt(self, attempt: DeliveryAttempt, *, status: EventStatus, next_attempt_at: float | None) -> None:
        """Store an attempt and the event's new status (pending with its next time, delivered or failed).

        The event's ``attempts`` becomes the attempt's number and its ``last_error`` the attempt's error.

        Raises:
            KeyError: there is no such event.
            ValueError: an unknown status.
        """
        if status not in EVENT_STATUSES:
            raise ValueError(f"status: must be one of: {', '.join(EVENT_STATUSES)} (got {shown(status)})")
        with self._write() as db:
            changed = db.execute(
                "UPDATE events SET status = ?, attempts = MAX(attempts, ?), "
                "next_attempt_at = COALESCE(?, next_attempt_at), last_error = ? WHERE id = ?",
                (status, attempt.number, next_attempt_at, attempt.error, attempt.event_id),
            )
            if changed.rowcount == 0:
                raise KeyError(attempt.event_id)
            db.execute(
                "INSERT INTO attempts (event_id, number, at, status_code, error, duration_s) VALUES (?, ?, ?, ?, ?, ?)",
                (attempt.event_id, attempt.number, attempt.at, attempt.status_code, attempt.error, attempt.duration_s),
            )

    def events(self, job_id: str) -> list[WebhookEvent]:
        """The job's events, oldest first."""
        return [_event(row) for row in self._all("SELECT * FROM events WHERE job_id = ? ORDER BY seq", (job_id,))]

    def attempts(self, job_id: str) -> list[DeliveryAttempt]:
        """Every delivery attempt of the job's events, in order."""
        rows = self._all(
            "SELECT a.* FROM attempts a JOIN events e ON e.id = a.event_id WHERE e.job_id = ? ORDER BY a.seq",
            (job_id,),
        )
        return [_attempt(row) for row in rows]

    def event_attempts(self, event_id: str) -> list[DeliveryAttempt]:
        """Every delivery attempt of one event, in order."""
        rows = self._all("SELECT * FROM attempts WHERE event_id = ? ORDER BY seq", (event_id,))
        return [_attempt(row) for row in rows]

    # --- plumbing -----------------------------------------------------------------------------
    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise sqlite3.ProgrammingError(f"{self.path}: the records are closed")
        return self._conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE``: other writers wait here, not at commit)."""
        with self._lock:
            db = self._connection()
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def _all(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._connection().execute(sql, params).fetchall()

    def _one(self, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Row | None:
        with self._lock:
            row: sqlite3.Row | None = self._connection().execute(sql, params).fetchone()
            return row


def now_iso(timespec: str = "seconds") -> str:
    """Now, as ISO 8601 UTC with seconds (``2025-01-02T03:04:05+00:00``), or ``timespec`` ("milliseconds")."""
    return datetime.now(UTC).isoformat(timespec=timespec)


def new_webhook_secret() -> str:
    """``whsec_`` + base64 of 32 random bytes: the form ``standardwebhooks.Webhook`` takes."""
    return WEBHOOK_SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


# --- rows ---------------------------------------------------------------------------------------

_JOB_FIELDS = frozenset(f.name for f in fields(JobRecord))
_JSON_FIELDS = frozenset({"request", "result"})


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"))


def _column(name: str, value: Any) -> Any:
    return _json(value) if name in _JSON_FIELDS else value


def _job_values(job: JobRecord) -> dict[str, Any]:
    return {f.name: _column(f.name, getattr(job, f.name)) for f in fields(JobRecord)}


def _key(row: sqlite3.Row) -> ApiKey:
    return ApiKey(
        id=row["id"],
        name=row["name"],
        webhook_secret=row["webhook_secret"],
        created_at=row["created_at"],
        revoked=bool(row["revoked"]),
    )


def _job(row: sqlite3.Row) -> JobRecord:
    values = {name: row[name] for name in _JOB_FIELDS}
    for name in _JSON_FIELDS:
        if values[name] is not None:
            values[name] = json.loads(values[name])
    return JobRecord(**values)


def _event(row: sqlite3.Row) -> WebhookEvent:
    return WebhookEvent(
        id=row["id"],
        job_id=row["job_id"],
        key_id=row["key_id"],
        type=row["type"],
        url=row["url"],
        payload=bytes(row["payload"]),
        created_at=row["created_at"],
        status=row["status"],
        attempts=int(row["attempts"]),
        next_attempt_at=float(row["next_attempt_at"]),
        last_error=row["last_error"],
    )


def _attempt(row: sqlite3.Row) -> DeliveryAttempt:
    return DeliveryAttempt(
        event_id=row["event_id"],
        number=int(row["number"]),
        at=row["at"],
        status_code=row["status_code"],
        error=row["error"],
        duration_s=float(row["duration_s"]),
    )


def _insert_event(db: sqlite3.Connection, event: WebhookEvent) -> bool:
    """Insert the event unless its id is known (an upsert: unlike INSERT OR IGNORE, a NULL still fails)."""
    cursor = db.execute(
        "INSERT INTO events (id, job_id, key_id, type, url, payload, created_at, status, attempts, "
        "next_attempt_at, last_error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
        (
            event.id,
            event.job_id,
            event.key_id,
            event.type,
            event.url,
            bytes(event.payload),
            event.created_at,
            event.status,
            event.attempts,
            event.next_attempt_at,
            event.last_error,
        ),
    )
    return cursor.rowcount > 0


def _add_missing_columns(db: sqlite3.Connection) -> None:
    """Columns added after a file was made (``CREATE TABLE IF NOT EXISTS`` leaves an older table as it is)."""
    for table, column, kind in _ADDED_COLUMNS:
        present = {row["name"] for row in db.execute(f"PRAGMA table_info({table})")}
        if column not in present:
            db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")


def _make_cursor(created_at: str, seq: int) -> str:
    raw = json.dumps([CURSOR_VERSION, created_at, seq], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _parse_cursor(cursor: str) -> tuple[str, int]:
    """The sort key in a cursor from :func:`_make_cursor`; ValueError for anything else."""
    try:
        if not isinstance(cursor, str) or not cursor or len(cursor) > MAX_CURSOR_CHARS:
            raise ValueError
        version, created_at, seq = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if version != CURSOR_VERSION or not isinstance(created_at, str) or type(seq) is not int:
            raise ValueError
    except (ValueError, TypeError):  # binascii.Error, JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ValueError(f"cursor: not a cursor of this list: {shown(cursor)}") from None
    return created_at, seq


# (table, column, type) added to the schema after its first version, for files made before.
_ADDED_COLUMNS = (("jobs", "flow_run_id", "TEXT"),)
_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS keys (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        token_sha256 TEXT NOT NULL,
        webhook_secret TEXT NOT NULL,
        created_at TEXT NOT NULL,
        revoked INTEGER NOT NULL DEFAULT 0
    )""",
    """CREATE TABLE IF NOT EXISTS jobs (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        key_id TEXT NOT NULL,
        api TEXT NOT NULL,
        request TEXT NOT NULL,
        created_at TEXT NOT NULL,
        state TEXT NOT NULL,
        updated_at TEXT,
        completed_at TEXT,
        webhook_url TEXT,
        manifest_url TEXT,
        result TEXT,
        error TEXT,
        flow_run_id TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS jobs_by_key ON jobs (key_id, created_at, seq)",
    "CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs (state, key_id)",
    """CREATE TABLE IF NOT EXISTS idempotency (
        key_id TEXT NOT NULL,
        idempotency_key TEXT NOT NULL,
        body_sha256 TEXT NOT NULL,
        job_id TEXT NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (key_id, idempotency_key)
    )""",
    """CREATE TABLE IF NOT EXISTS events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        job_id TEXT NOT NULL,
        key_id TEXT NOT NULL,
        type TEXT NOT NULL,
        url TEXT NOT NULL,
        payload BLOB NOT NULL,
        created_at TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending',
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL NOT NULL DEFAULT 0,
        last_error TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS events_due ON events (status, next_attempt_at, seq)",
    "CREATE INDEX IF NOT EXISTS events_by_job ON events (job_id, seq)",
    """CREATE TABLE IF NOT EXISTS attempts (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        event_id TEXT NOT NULL,
        number INTEGER NOT NULL,
        at TEXT NOT NULL,
        status_code INTEGER,
        error TEXT,
        duration_s REAL NOT NULL DEFAULT 0
    )""",
    "CREATE INDEX IF NOT EXISTS attempts_by_event ON attempts (event_id, seq)",
)
