"""The service's records: keys (hashed tokens), jobs and their pages, idempotency keys, the webhook outbox."""

from __future__ import annotations

import base64
import hashlib
import json
import sqlite3
import stat
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks import Webhook

from service.records import (
    DeliveryAttempt,
    IdempotencyMismatch,
    JobRecord,
    Records,
    WebhookEvent,
)

STAMP = "2025-01-02T03:04:{:02d}+00:00"


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "service.db"


@pytest.fixture
def records(db_path: Path) -> Iterator[Records]:
    with Records(db_path) as opened:
        yield opened


def _job(key_id: str, n: int = 0, *, created_at: str | None = None, **fields: Any) -> JobRecord:
    return JobRecord(
        id=str(uuid.uuid4()),
        key_id=key_id,
        api="v1",
        request={"prompt": f"prompt {n}", "variants": [n, n + 1]},
        created_at=created_at or STAMP.format(n % 60),
        **fields,
    )


def _event(job_id: str, key_id: str, suffix: str = "a", **fields: Any) -> WebhookEvent:
    values: dict[str, Any] = {
        "id": f"evt_{suffix:0>24}",
        "job_id": job_id,
        "key_id": key_id,
        "type": "job.succeeded",
        "url": "https://hooks.example/x",
        "payload": b'{"ok":true}',
        "created_at": STAMP.format(0),
    }
    return WebhookEvent(**(values | fields))


def _stored_bytes(path: Path) -> bytes:
    """The database file and its WAL and shared-memory files, as on disk."""
    return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists())


# --- API keys ---------------------------------------------------------------------------------------------------


def test_a_key_and_its_token(records: Records) -> None:
    key, token = records.create_key("acme")
    assert len(key.id) == 16 and int(key.id, 16) >= 0
    assert token.startswith(f"pw_{key.id}_") and len(token) > len(f"pw_{key.id}_") + 40
    assert key.name == "acme" and not key.revoked and key.created_at.endswith("+00:00")
    assert key.webhook_secret.startswith("whsec_")
    assert len(base64.b64decode(key.webhook_secret.removeprefix("whsec_"))) == 32
    Webhook(key.webhook_secret)  # the form the Standard Webhooks libraries take
    assert records.authenticate(token) == key
    assert records.key(key.id) == key and records.key_named("acme") == key and records.keys() == [key]
    assert records.webhook_secret(key.id) == key.webhook_secret


def test_wrong_tokens_are_refused(records: Records) -> None:
    key, token = records.create_key("acme")
    other, other_token = records.create_key("other")
    secret = token.removeprefix(f"pw_{key.id}_")
    wrong = [
        "",
        "pw_",
        "garbage",
        token + "x",
        token[:-1],
        token.upper(),
        f"pw_{key.id}_",
        f"pw_{key.id}_{secret[::-1]}",
        f"pw_{other.id}_{secret}",  # a real secret under another key's id
        f"pw_{'0' * 16}_{secret}",  # an unknown key id
        f"xx_{key.id}_{secret}",
        token + "é",
        token + "x" * 1000,
    ]
    for candidate in wrong:
        assert records.authenticate(candidate) is None, candidate
    assert records.authenticate(other_token) == other


def test_a_revoked_key_no_longer_authenticates(records: Records) -> None:
    key, token = records.create_key("acme")
    assert records.revoke_key("acme") is True
    assert records.authenticate(token) is None
    assert records.key(key.id) is not None and records.key(key.id).revoked  # type: ignore[union-attr]
    assert records.webhook_secret(key.id) is None
    assert records.revoke_key("nobody") is False


def test_key_names_are_unique_and_checked(records: Records) -> None:
    records.create_key("acme")
    with pytest.raises(ValueError, match="a key named 'acme' exists"):
        records.create_key("acme")
    records.revoke_key("acme")
    with pytest.raises(ValueError, match="exists"):
        records.create_key("acme")  # a revoked key keeps its name
    for bad in ["", "   ", "x" * 65, "two\nlines"]:
        with pytest.raises(ValueError, match="key name"):
            records.create_key(bad)
    assert records.create_key("x" * 64)[0].name == "x" * 64
    assert [listed.name for listed in records.keys()]  # noqa: SIM118 == ["acme", "x" * 64]


def test_only_the_hash_of_a_token_is_stored(records: Records, db_path: Path) -> None:
    key, token = records.create_key("acme")
    secret = token.removeprefix(f"pw_{key.id}_")
    on_disk = _stored_bytes(db_path)
    assert hashlib.sha256(token.encode()).hexdigest().encode() in on_disk
    assert token.encode() not in on_disk and secret.encode() not in on_disk
    records.close()  # checkpoints the WAL into the main file
    assert secret.encode() not in _stored_bytes(db_path)
    assert stat.S_IMODE(db_path.stat().st_mode) == 0o600, "the file holds webhook secrets: owner only"


def test_a_webhook_secret_is_rotated(records: Records) -> None:
    key, token = records.create_key("acme")
    rotated = records.rotate_webhook_secret("acme")
    assert rotated.webhook_secret != key.webhook_secret and rotated.webhook_secret.startswith("whsec_")
    assert records.authenticate(token) == rotated
    with pytest.raises(KeyError):
        records.rotate_webhook_secret("nobody")


# --- jobs -------------------------------------------------------------------------------------------------------


def test_a_job_is_added_and_read_back_by_its_owner_only(records: Records) -> None:
    owner, _ = records.create_key("owner")
    other, _ = records.create_key("other")
    job = _job(owner.id, 1, webhook_url="https://hooks.example/x")
    records.add_job(job)
    assert records.job(job.id) == job
    assert records.job(job.id, owner.id) == job
    assert records.job(job.id, other.id) is None
    assert records.job("no-such-job") is None
    with pytest.raises(sqlite3.IntegrityError):
        records.add_job(job)


def test_pages_of_25_jobs_newest_first(records: Records) -> None:
    key, _ = records.create_key("acme")
    other, _ = records.create_key("other")
    # Three jobs share each second: within one, the one added last is the newest.
    jobs = [_job(key.id, n, created_at=STAMP.format(n // 3)) for n in range(25)]
    for job in jobs:
        records.add_job(job)
    records.add_job(_job(other.id, 99))
    pages, cursor = [], None
    while True:
        page = records.jobs_page(key.id, limit=10, cursor=cursor)
        pages.append(page.jobs)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert [len(page) for page in pages] == [10, 10, 5]
    seen = [job.id for page in pages for job in page]
    assert len(set(seen)) == 25
    assert seen == [job.id for job in reversed(jobs)], "newest first"
    assert records.jobs_page(key.id, limit=25).next_cursor is None
    assert records.jobs_page(other.id, limit=10).jobs[0].request["prompt"] == "prompt 99"
    assert records.jobs_page("nobody", limit=10).jobs == []


def test_pages_filtered_by_state(records: Records) -> None:
    key, _ = records.create_key("acme")
    jobs = [_job(key.id, n, state="succeeded" if n % 2 else "queued") for n in range(7)]
    for job in jobs:
        records.add_job(job)
    first = records.jobs_page(key.id, limit=2, state="succeeded")
    second = records.jobs_page(key.id, limit=2, state="succeeded", cursor=first.next_cursor)
    assert [job.id for job in first.jobs + second.jobs] == [jobs[5].id, jobs[3].id, jobs[1].id]
    assert second.next_cursor is None
    with pytest.raises(ValueError, match="state"):
        records.jobs_page(key.id, limit=2, state="bogus")


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "garbage!",
        "not-base64-%%%",
        base64.urlsafe_b64encode(b"not json").decode(),
        base64.urlsafe_b64encode(b'["2025-01-01", 5]').decode(),  # no version
        base64.urlsafe_b64encode(b'[1, 12, "x"]').decode(),
        base64.urlsafe_b64encode(b"{}").decode(),
        "x" * 1000,
    ],
)
def test_a_bad_cursor_is_a_value_error(records: Records, cursor: str) -> None:
    with pytest.raises(ValueError, match="cursor"):
        records.jobs_page("key", limit=10, cursor=cursor)


def test_active_count_and_unfinished_jobs(records: Records) -> None:
    key, _ = records.create_key("acme")
    other, _ = records.create_key("other")
    states = ["queued", "running", "succeeded", "failed", "canceled", "queued"]
    jobs = [_job(key.id, n, state=state) for n, state in enumerate(states)]
    for job in [*jobs, _job(other.id, 9, state="running")]:
        records.add_job(job)
    assert records.active_count(key.id) == 3
    assert records.active_count(other.id) == 1
    assert records.active_count("nobody") == 0
    assert [job.id for job in records.unfinished_jobs()][:3] == [jobs[0].id, jobs[1].id, jobs[5].id]
    with pytest.raises(ValueError, match="limit"):
        records.jobs_page(key.id, limit=0)


def test_update_job(records: Records) -> None:
    key, _ = records.create_key("acme")
    job = _job(key.id)
    records.add_job(job)
    assert records.update_job(job.id, state="running", result={"images": ["a.png"]}) is True
    updated = records.job(job.id)
    assert updated is not None and updated.state == "running" and updated.result == {"images": ["a.png"]}
    assert updated.updated_at is not None and updated.request == job.request
    assert records.update_job(job.id, flow_run_id="run-1") is True
    assert records.job(job.id).flow_run_id == "run-1"  # type: ignore[union-attr]
    assert records.update_job("no-such-job", state="running") is False
    with pytest.raises(TypeError, match="unknown job field"):
        records.update_job(job.id, colour="red")
    with pytest.raises(TypeError, match="id"):
        records.update_job(job.id, id="another")


# --- idempotency --------------------------------------------------------------------------------------------------


def test_an_idempotency_key_returns_the_same_job_for_the_same_body(records: Records) -> None:
    assert records.idempotent_job("key1", "idem-1", "body-a") is None
    assert records.remember_idempotency("key1", "idem-1", "body-a", "job-1") == "job-1"
    assert records.idempotent_job("key1", "idem-1", "body-a") == "job-1"
    with pytest.raises(IdempotencyMismatch):
        records.idempotent_job("key1", "idem-1", "body-b")
    with pytest.raises(IdempotencyMismatch):
        records.remember_idempotency("key1", "idem-1", "body-b", "job-2")
    assert records.remember_idempotency("key1", "idem-1", "body-a", "job-3") == "job-1", "the first one stays"
    assert records.idempotent_job("key2", "idem-1", "body-b") is None, "keys are per API key"


def test_racing_requests_with_one_idempotency_key_get_the_first_job(records: Records, db_path: Path) -> None:
    with Records(db_path) as second:  # another process's connection
        barrier = threading.Barrier(8)
        answers: list[str] = []

        def race(n: int) -> None:
            barrier.wait()
            mine = records if n % 2 else second
            answers.append(mine.remember_idempotency("key1", "idem", "body", f"job-{n}"))

        threads = [threading.Thread(target=race, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len(answers) == 8 and len(set(answers)) == 1
    assert records.idempotent_job("key1", "idem", "body") == answers[0]


# --- finishing a job and its webhook event --------------------------------------------------------------------------


def test_finish_job_queues_one_event_per_job_type_and_completion(records: Records) -> None:
    key, _ = records.create_key("acme")
    job = _job(key.id, state="running")
    records.add_job(job)
    failed = _event(job.id, key.id, "f1")
    assert records.finish_job(
        job.id, state="failed", completed_at=STAMP.format(5), manifest_url=None, result=None, error="boom", event=failed
    )
    finished = records.job(job.id)
    assert finished is not None and (finished.state, finished.error, finished.completed_at) == (
        "failed",
        "boom",
        STAMP.format(5),
    )
    assert records.events(job.id) == [failed]
    # The reconciler sees the same final state again (after a restart): nothing changes.
    assert not records.finish_job(
        job.id, state="failed", completed_at=STAMP.format(5), manifest_url=None, result=None, error="boom", event=failed
    )
    assert records.add_event(failed) is False
    assert records.events(job.id) == [failed]
    # Retried from the dashboard and succeeded: a new event.
    succeeded = _event(job.id, key.id, "s1")
    assert records.finish_job(
        job.id,
        state="succeeded",
        completed_at=STAMP.format(9),
        manifest_url="https://files.example/m.json",
        result={"images": ["x.png"]},
        error=None,
        event=succeeded,
    )
    assert records.events(job.id) == [failed, succeeded]
    done = records.job(job.id)
    assert done is not None and done.result == {"images": ["x.png"]} and done.manifest_url.endswith("m.json")  # type: ignore[union-attr]
    assert records.active_count(key.id) == 0
    with pytest.raises(KeyError):
        records.finish_job(
            "nope", state="failed", completed_at="", manifest_url=None, result=None, error=None, event=None
        )
    with pytest.raises(ValueError, match="state"):
        records.finish_job(
            job.id, state="running", completed_at="", manifest_url=None, result=None, error=None, event=None
        )


def test_finish_job_is_one_transaction(records: Records) -> None:
    """When the event cannot be stored, the job does not change either."""
    key, _ = records.create_key("acme")
    job = _job(key.id, state="running")
    records.add_job(job)
    broken = _event(job.id, key.id, url=None)  # violates NOT NULL
    with pytest.raises(sqlite3.IntegrityError):
        records.finish_job(
            job.id,
            state="succeeded",
            completed_at=STAMP.format(1),
            manifest_url=None,
            result={},
            error=None,
            event=broken,
        )
    assert records.job(job.id) == job and records.events(job.id) == []
    with pytest.raises(ValueError, match="not"):
        records.finish_job(
            job.id,
            state="succeeded",
            completed_at=STAMP.format(1),
            manifest_url=None,
            result={},
            error=None,
            event=_event("another-job", key.id),
        )
    assert records.job(job.id) == job


# --- the outbox ---------------------------------------------------------------------------------------------------


def test_due_events_claims_and_attempts(records: Records) -> None:
    key, _ = records.create_key("acme")
    job = _job(key.id)
    records.add_job(job)
    first, second = _event(job.id, key.id, "1"), _event(job.id, key.id, "2", next_attempt_at=50.0)
    assert records.add_event(first) and records.add_event(second)
    assert records.due_events(now=10) == [first]
    assert records.due_events(now=60) == [first, second]
    assert records.claim_event(first, now=60, until=100) is True
    assert records.claim_event(first, now=60, until=100) is False, "claimed once"
    assert records.due_events(now=60) == [second]
    attempt = DeliveryAttempt(first.id, 1, STAMP.format(1), 500, "HTTP 500", 0.25)
    records.record_attempt(attempt, status="pending", next_attempt_at=70.0)
    retried = records.event(first.id)
    assert retried is not None and (retried.attempts, retried.next_attempt_at, retried.last_error) == (
        1,
        70.0,
        "HTTP 500",
    )
    assert records.claim_event(first, now=80, until=100) is False, "a stale copy (attempts 0) cannot claim"
    records.record_attempt(
        DeliveryAttempt(first.id, 2, STAMP.format(2), 200, None, 0.1), status="delivered", next_attempt_at=None
    )
    assert records.due_events(now=1e12) == [second]
    assert [(a.number, a.status_code) for a in records.attempts(job.id)] == [(1, 500), (2, 200)]
    assert records.event_attempts(first.id)[0] == attempt
    assert records.event(first.id).status == "delivered"  # type: ignore[union-attr]
    with pytest.raises(KeyError):
        records.record_attempt(
            DeliveryAttempt("evt_none", 1, STAMP.format(1), None, "x"), status="failed", next_attempt_at=None
        )


# --- durability and concurrency -------------------------------------------------------------------------------------


def test_everything_survives_reopening_the_file(db_path: Path) -> None:
    with Records(db_path) as records:
        key, token = records.create_key("acme")
        job = _job(key.id, state="running", webhook_url="https://hooks.example/x")
        records.add_job(job)
        records.remember_idempotency(key.id, "idem", "body", job.id)
        event = _event(job.id, key.id)
        records.finish_job(
            job.id,
            state="succeeded",
            completed_at=STAMP.format(3),
            manifest_url=None,
            result={"n": 1},
            error=None,
            event=event,
        )
        records.record_attempt(
            DeliveryAttempt(event.id, 1, STAMP.format(4), None, "connection refused"),
            status="pending",
            next_attempt_at=5.0,
        )
    with Records(db_path) as reopened:
        assert reopened.authenticate(token) == key
        again = reopened.job(job.id, key.id)
        assert again is not None and again.state == "succeeded" and again.result == {"n": 1}
        assert reopened.idempotent_job(key.id, "idem", "body") == job.id
        assert [e.id for e in reopened.due_events(now=10)] == [event.id]
        assert [a.error for a in reopened.attempts(job.id)] == ["connection refused"]
        assert reopened.active_count(key.id) == 0
    with pytest.raises(sqlite3.ProgrammingError):
        reopened.job(job.id)


def test_a_file_made_before_flow_run_id_gains_the_column(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    with sqlite3.connect(db_path) as old:
        old.execute(
            "CREATE TABLE jobs (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, key_id TEXT NOT NULL, "
            "api TEXT NOT NULL, request TEXT NOT NULL, created_at TEXT NOT NULL, state TEXT NOT NULL, updated_at TEXT, "
            "completed_at TEXT, webhook_url TEXT, manifest_url TEXT, result TEXT, error TEXT)"
        )
        old.execute(
            "INSERT INTO jobs (id, key_id, api, request, created_at, state) "
            "VALUES ('j1', 'k', 'v1', '{}', 't', 'queued')"
        )
    old.close()
    with Records(db_path) as records:
        assert records.job("j1") == JobRecord(id="j1", key_id="k", api="v1", request={}, created_at="t")
        records.update_job("j1", flow_run_id="run-1")
        assert records.job("j1").flow_run_id == "run-1"  # type: ignore[union-attr]


def test_concurrent_writers_from_threads_and_two_connections(records: Records, db_path: Path) -> None:
    key, _ = records.create_key("acme")
    errors: list[BaseException] = []
    with Records(db_path) as second:

        def write(n: int) -> None:
            mine = records if n % 2 else second
            try:
                for i in range(25):
                    job = _job(key.id, i)
                    mine.add_job(job)
                    mine.update_job(job.id, state="running")
                    mine.remember_idempotency(key.id, f"{n}-{i}", "body", job.id)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []
    assert records.active_count(key.id) == 200
    assert len(records.unfinished_jobs()) == 200


def test_a_second_process_writes_at_the_same_time(records: Records, db_path: Path) -> None:
    key, _ = records.create_key("acme")
    script = (
        "import sys, uuid\n"
        "from service.records import JobRecord, Records\n"
        "records = Records(sys.argv[1])\n"
        "for n in range(60):\n"
        "    records.add_job(JobRecord(id=str(uuid.uuid4()), key_id=sys.argv[2], api='legacy', request={'n': n},\n"
        "                              created_at='2025-01-01T00:00:00+00:00'))\n"
        "records.close()\n"
    )
    root = Path(__file__).resolve().parents[2]
    child = subprocess.Popen([sys.executable, "-c", script, str(db_path), key.id], cwd=root)
    for n in range(60):
        records.add_job(_job(key.id, n))
    assert child.wait(timeout=60) == 0
    assert records.active_count(key.id) == 120
    assert sum(job.api == "legacy" for job in records.unfinished_jobs()) == 60
    assert json.loads(json.dumps(records.unfinished_jobs()[0].request))  # JSON columns read back as JSON
