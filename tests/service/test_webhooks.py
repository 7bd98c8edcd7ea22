"""Webhooks: Standard Webhooks signatures, the outbox's retries, and the URL guard on every delivery.

Receivers are real HTTP servers on 127.0.0.1 (allowlisted per test) that verify every delivery's
signature with the Standard Webhooks reference library.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from service.records import ApiKey, JobRecord, Records, WebhookEvent, now_iso
from service.webhooks import (
    USER_AGENT,
    Outbox,
    deliver,
    make_event,
    parse_retry_after,
    signed_headers,
)

LOCAL = ["127.0.0.1"]
FAST = [0, 0.1, 0.2, 0.4]
# One scripted answer: (status, headers, seconds to wait before answering).
Answer = tuple[int, dict[str, str], float]


class Receiver:
    """A webhook receiver on 127.0.0.1 that verifies each delivery with ``Webhook(secret).verify``.

    It answers from ``answers`` in turn (the last one repeats); every delivery is kept in
    ``deliveries`` and every accepted connection counted in ``connections``.
    """

    def __init__(self, secret: str, answers: list[Answer] | None = None, *, port: int = 0) -> None:
        self.secret = secret
        self.answers = answers or [(200, {}, 0.0)]
        self.deliveries: list[dict[str, Any]] = []
        self.connections = 0
        self.body = b"ok"
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                headers = {name.lower(): value for name, value in self.headers.items()}
                try:
                    Webhook(receiver.secret).verify(body, headers)
                    verified = True
                except WebhookVerificationError:
                    verified = False
                number = len(receiver.deliveries)
                receiver.deliveries.append({"path": self.path, "headers": headers, "body": body, "verified": verified})
                status, extra, delay = receiver.answers[min(number, len(receiver.answers) - 1)]
                time.sleep(delay)
                try:
                    self.send_response(status)
                    for name, value in extra.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(receiver.body)))
                    self.end_headers()
                    self.wfile.write(receiver.body)
                except OSError:  # the deliverer gave up (timeout tests)
                    pass

            def log_message(self, *args: object) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def get_request(self) -> tuple[socket.socket, Any]:
                receiver.connections += 1
                return super().get_request()

        self.server = Server(("127.0.0.1", port), Handler)
        self.port = self.server.server_port
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    @property
    def ids(self) -> list[str]:
        return [delivery["headers"]["webhook-id"] for delivery in self.deliveries]


@pytest.fixture
def records(tmp_path: Path) -> Iterator[Records]:
    with Records(tmp_path / "service.db") as opened:
        yield opened


@pytest.fixture
def key(records: Records) -> ApiKey:
    return records.create_key("acme")[0]


@pytest.fixture
def receivers(key: ApiKey) -> Iterator[Callable[..., Receiver]]:
    """Start receivers for the key's secret; all are closed after the test."""
    started: list[Receiver] = []

    def start(answers: list[Answer] | None = None, *, port: int = 0) -> Receiver:
        started.append(Receiver(key.webhook_secret, answers, port=port))
        return started[-1]

    yield start
    for receiver in started:
        receiver.close()


@pytest.fixture
def outboxes(records: Records) -> Iterator[Callable[..., Outbox]]:
    made: list[Outbox] = []

    def make(**options: Any) -> Outbox:
        defaults: dict[str, Any] = {
            "schedule_s": FAST,
            "jitter": 0.0,
            "timeout_s": 2.0,
            "allowlist": LOCAL,
            "secret_for": records.webhook_secret,
        }
        made.append(Outbox(records, **(defaults | options)))
        return made[-1]

    yield make
    for outbox in made:
        outbox.close()


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Every TCP connection httpcore opens; any to another address than 127.0.0.1 fails the test."""
    opened: list[tuple[str, int]] = []
    real = socket.create_connection

    def create_connection(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        opened.append((address[0], address[1]))
        if address[0] != "127.0.0.1":
            raise AssertionError(f"a connection to {address[0]} was let through")
        return real(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", create_connection)
    return opened


def _queue(records: Records, key: ApiKey, url: str, *, state: str = "succeeded") -> WebhookEvent:
    """A job of ``key`` finished in ``state``, its event queued the way the reconciler does it."""
    job = JobRecord(
        id=str(uuid.uuid4()),
        key_id=key.id,
        api="v1",
        request={"prompt": "a bottle on a table"},
        created_at=now_iso(),
        state="running",
        webhook_url=url,
    )
    records.add_job(job)
    job.completed_at = now_iso()
    event = make_event(job, f"job.{state}", {"type": f"job.{state}", "data": {"id": job.id, "state": state}})
    assert records.finish_job(
        job.id,
        state=state,  # type: ignore[arg-type]
        completed_at=job.completed_at,
        manifest_url=None,
        result=None,
        error=None,
        event=event,
    )
    return event


def _stored(records: Records, event: WebhookEvent) -> WebhookEvent:
    stored = records.event(event.id)
    assert stored is not None
    return stored


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- events and signatures ------------------------------------------------------------------------------------------


def test_an_event_id_is_deterministic_and_its_body_compact_json() -> None:
    job = JobRecord(
        id="run-1", key_id="k" * 16, api="v1", request={}, created_at="t0", completed_at="t1", webhook_url="https://x/h"
    )
    event = make_event(job, "job.succeeded", {"data": {"b": 2, "a": 1}, "type": "job.succeeded"})
    assert event.id == "evt_" + hashlib.sha256(b"run-1:job.succeeded:t1").hexdigest()[:24]
    assert make_event(job, "job.succeeded", {}).id == event.id, "queueing again is a no-op"
    assert make_event(job, "job.failed", {}).id != event.id
    job.completed_at = "t2"
    assert make_event(job, "job.succeeded", {}).id != event.id, "a job finished again gets a new event"
    assert event.payload == b'{"data":{"a":1,"b":2},"type":"job.succeeded"}'
    assert (event.url, event.key_id, event.job_id, event.status, event.attempts) == (
        "https://x/h",
        "k" * 16,
        "run-1",
        "pending",
        0,
    )
    job.webhook_url = None
    with pytest.raises(ValueError, match="no webhook URL"):
        make_event(job, "job.succeeded", {})


def test_signed_headers_verify_with_the_reference_library(key: ApiKey) -> None:
    body = b'{"type":"job.succeeded"}'
    now = datetime.now(UTC)
    headers = signed_headers(key.webhook_secret, "evt_1", now, body)
    assert headers["webhook-id"] == "evt_1"
    assert headers["webhook-timestamp"] == str(int(now.timestamp()))
    assert headers["webhook-signature"].startswith("v1,")
    assert headers["content-type"] == "application/json" and headers["user-agent"] == USER_AGENT
    assert Webhook(key.webhook_secret).verify(body, headers) == {"type": "job.succeeded"}
    with pytest.raises(WebhookVerificationError):
        Webhook(key.webhook_secret).verify(body + b" ", headers)
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "A" * 43 + "=").verify(body, headers)
    elsewhere = now.astimezone(timezone(timedelta(hours=5)))
    assert signed_headers(key.webhook_secret, "evt_1", elsewhere, body) == headers, "any time zone signs the instant"


def test_an_event_is_delivered_signed(
    records: Records, key: ApiKey, receivers: Callable[..., Receiver], outboxes: Callable[..., Outbox]
) -> None:
    receiver = receivers()
    event = _queue(records, key, receiver.url)
    outbox = outboxes()
    assert outbox.deliver_due() == 1
    [delivery] = receiver.deliveries
    assert delivery["verified"] and delivery["body"] == event.payload and delivery["path"] == "/hook"
    assert delivery["headers"]["webhook-id"] == event.id
    assert delivery["headers"]["content-type"] == "application/json"
    assert delivery["headers"]["user-agent"] == USER_AGENT
    assert abs(int(delivery["headers"]["webhook-timestamp"]) - time.time()) < 5
    stored = _stored(records, event)
    assert (stored.status, stored.attempts, stored.last_error) == ("delivered", 1, None)
    [attempt] = records.attempts(event.job_id)
    assert (attempt.number, attempt.status_code, attempt.error) == (1, 200, None) and attempt.duration_s < 2
    assert outbox.deliver_due(now=time.time() + 1e6) == 0, "delivered once"


def test_the_secret_of_the_attempt_signs_it(
    records: Records, key: ApiKey, receivers: Callable[..., Receiver], outboxes: Callable[..., Outbox]
) -> None:
    """A secret rotated while an event waits: the next attempt is signed with the new one."""
    receiver = receivers([(500, {}, 0.0), (200, {}, 0.0)])
    event = _queue(records, key, receiver.url)
    outbox = outboxes()
    outbox.deliver_due()
    receiver.secret = records.rotate_webhook_secret("acme").webhook_secret
    outbox.deliver_due(now=time.time() + 10)
    assert [delivery["verified"] for delivery in receiver.deliveries] == [True, True]
    second = receiver.deliveries[1]
    with pytest.raises(WebhookVerificationError):
        Webhook(key.webhook_secret).verify(second["body"], second["headers"])
    assert _stored(records, event).status == "delivered"


# --- retries ------------------------------------------------------------------------------------------------------


def test_a_receiver_that_is_down_gets_retries_with_backoff_then_the_event(
    records: Records, key: ApiKey, receivers: Callable[..., Receiver], outboxes: Callable[..., Outbox]
) -> None:
    """Nothing listens for two attempts, then the receiver answers 500 once and 200: four attempts, one id."""
    port = _free_port()
    event = _queue(records, key, f"http://127.0.0.1:{port}/hook")
    outbox = outboxes(schedule_s=FAST)
    receiver: Receiver | None = None
    attempted_at: list[float] = []
    started = time.monotonic()
    while _stored(records, event).status == "pending":
        assert time.monotonic() - started < 5, "not delivered in time"
        if outbox.deliver_due():
            attempted_at.append(time.monotonic())
        if len(attempted_at) == 2 and receiver is None:
            receiver = receivers([(500, {}, 0.0), (200, {}, 0.0)], port=port)
        time.sleep(0.01)
    assert receiver is not None
    attempts = records.attempts(event.job_id)
    assert [(a.number, a.status_code) for a in attempts] == [(1, None), (2, None), (3, 500), (4, 200)]
    assert all(a.error and a.error.startswith("cannot deliver: ") for a in attempts[:2]), attempts
    assert attempts[2].error == "HTTP 500 Internal Server Error: ok"
    assert attempts[3].error is None
    gaps = [later - earlier for earlier, later in itertools.pairwise(attempted_at)]
    assert all(gap >= delay * 0.9 for gap, delay in zip(gaps, FAST[1:], strict=True)), gaps
    assert receiver.ids == [event.id, event.id], "the same webhook-id on every attempt"
    assert all(delivery["verified"] for delivery in receiver.deliveries)
    assert _stored(records, event).attempts == 4


def test_an_event_fails_after_the_last_scheduled_attempt(
    records: Records, key: ApiKey, receivers: Callable[..., Receiver], outboxes: Callable[..., Outbox]
) -> None:
    receiver = receivers([(500, {}, 0.0)])
    event = _queue(records, key, receiver.url)
    outbox = outboxes(schedule_s=[0, 5, 10])
    now = time.time()
    assert outbox.deliver_due(now=now) == 1
    assert _stored(records, event).next_attempt_at == pytest.approx(now + 5, abs=1)
    assert outbox.deliver_due(now=now + 1) == 0, "not due yet"
    assert outbox.deliver_due(now=now + 6) == 1
    assert _stored(records, event).next_attempt_at == pytest.approx(now + 16, abs=1)
    assert outbox.deliver_due(now=now + 17) == 1
    stored = _stored(records, event)
    assert (stored.status, stored.attempts, stored.last_error) == ("failed", 3, "HTTP 500 Internal Server Error: ok")
    assert outbox.deliver_due(now=now + 1e6) == 0
    assert len(receiver.deliveries) == 3 and set(receiver.ids) == {event.id}


def test_jitter_adds_up_to_its_share_of_the_delay(
    records: Records, key: ApiKey, outboxes: Callable[..., Outbox]
) -> None:
    outbox = outboxes(schedule_s=[0, 10], jitter=0.5, allowlist=[])
    now = time.time()
    events = [_queue(records, key, "http://10.0.0.1/hook") for _ in range(8)]
    assert outbox.deliver_due(now=now) == 8
    delays = [_stored(records, event).next_attempt_at - now for event in events]
    assert all(10 <= delay <= 15.5 for delay in delays), delays
    assert len({round(delay, 3) for delay in delays}) > 1, "at random"


def test_a_redirect_is_not_followed(
    records: Records, key: ApiKey, receivers: Callable[..., Receiver], outboxes: Callable[..., Outbox]
) -> None:
    receiver = receivers()
    elsewhere = f"http://127.0.0.1:{receiver.port}/elsewhere"
    receiver.answers = [(302, {"Location": elsewhere}, 0.0)]
    event = _queue(records, key, receiver.url)
    outboxes().deliver_due()
    [attempt] = records.attempts(event.job_id)
    assert (attempt.status_code, attempt.error) == (302, f"redirect not followed: 302 to {elsewhere}")
    assert [delivery["path"] for delivery in receiver.deliveries] == ["/hook"]
    stored = _stored(records, event)
    assert stored.status == "pending" and stored.next_attempt_at > time.time(), "retried later like other failures"


def test_410_gone_stops_the_retries(
    records: Records, key: ApiKey, receivers: Callable[..., Receiver], outboxes: Callable[..., Outbox]
) -> None:
    receiver = receivers([(410, {}, 0.0)])
    event = _queue(records, key, receiver.url)
    outbox = outboxes()
    outbox.deliver_due()
    stored = _stored(records, event)
    assert (stored.status, stored.attempts) == ("failed", 1)
    assert stored.last_error is not None and stored.last_error.startswith("HTTP 410 Gone")
    assert "not retried" in stored.last_error
    assert outbox.deliver_due(now=time.time() + 1e6) == 0
    assert len(receiver.deliveries) == 1


@pytest.mark.parametrize(
    ("status", "retry_after", "expected"),
    [
        (429, "120", 120),
        (503, "http-date", 3600),
        (429, "0", FAST[1]),  # the schedule's delay when it is longer
        (500, "120", FAST[1]),  # only 429 and 503 ask for a delay
    ],
)
def test_retry_after_is_the_least_delay(
    records: Records,
    key: ApiKey,
    receivers: Callable[..., Receiver],
    outboxes: Callable[..., Outbox],
    status: int,
    retry_after: str,
    expected: float,
) -> None:
    if retry_after == "http-date":
        retry_after = format_datetime(datetime.now(UTC) + timedelta(seconds=3600), usegmt=True)
    receiver = receivers([(status, {"Retry-After": retry_after}, 0.0)])
    event = _queue(records, key, receiver.url)
    now = time.time()
    outboxes().deliver_due(now=now)
    stored = _stored(records, event)
    assert stored.status == "pending"
    assert stored.next_attempt_at - now == pytest.approx(expected, abs=1.5)


def test_parse_retry_after() -> None:
    now = 1_700_000_000.0
    assert parse_retry_after("5") == 5
    assert parse_retry_after(" 2.5 ") == 2.5
    assert parse_retry_after("-3") == 0
    assert parse_retry_after("999999999") == 24 * 3600, "at most a day"
    assert parse_retry_after(None) is None and parse_retry_after("") is None
    assert parse_retry_after("soon") is None and parse_retry_after("nan") is None
    date = format_datetime(datetime.fromtimestamp(now + 90, UTC), usegmt=True)
    assert parse_retry_after(date, now=now) == pytest.approx(90)
    assert parse_retry_after(date, now=now + 1000) == 0, "a date in the past"


def test_a_slow_receiver_times_out(
    records: Records, key: ApiKey, receivers: Callable[..., Receiver], outboxes: Callable[..., Outbox]
) -> None:
    receiver = receivers([(200, {}, 2.0)])
    event = _queue(records, key, receiver.url)
    started = time.monotonic()
    outboxes(timeout_s=0.3).deliver_due()
    assert time.monotonic() - started < 1.5
    [attempt] = records.attempts(event.job_id)
    assert (attempt.status_code, attempt.error) == (None, "timed out after 0.3 s")
    assert 0.2 < attempt.duration_s < 1.5
    assert _stored(records, event).status == "pending"


def test_deliver_reads_little_of_a_large_answer(key: ApiKey, receivers: Callable[..., Receiver]) -> None:
    receiver = receivers([(500, {}, 0.0)])
    receiver.body = b"<html>\n" + b"x" * 5_000_000
    event = WebhookEvent("evt_x", "job", key.id, "job.failed", receiver.url, b"{}", now_iso(), attempts=2)
    attempt, retry_after = deliver(event, key.webhook_secret, timeout_s=2, allowlist=LOCAL)
    assert (attempt.event_id, attempt.number, attempt.status_code, retry_after) == ("evt_x", 3, 500, None)
    assert attempt.error is not None and attempt.error.startswith("HTTP 500 Internal Server Error: <html> xxx")
    assert len(attempt.error) < 250 and attempt.error.endswith("...")
    assert receiver.deliveries[0]["verified"]


# --- what may be connected to -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:{port}/hook", "127.0.0.1 is a loopback address"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is the link-local cloud metadata address"),
        ("http://10.0.0.1/hook", "10.0.0.1 is a private address"),
        ("http://[::1]:{port}/hook", "::1 is a loopback address"),
        ("http://hooks.internal.example:{port}/hook", "hooks.internal.example resolves to 192.168.7.7, a private"),
        ("ftp://127.0.0.1/hook", "is not an http(s) URL"),
    ],
)
def test_refused_webhook_urls_are_recorded_failures_without_a_connection(
    records: Records,
    key: ApiKey,
    receivers: Callable[..., Receiver],
    outboxes: Callable[..., Outbox],
    connections: list[tuple[str, int]],
    monkeypatch: pytest.MonkeyPatch,
    url: str,
    reason: str,
) -> None:
    receiver = receivers()
    real = socket.getaddrinfo

    def getaddrinfo(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        if host == "hooks.internal.example":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("192.168.7.7", port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    event = _queue(records, key, url.format(port=receiver.port))
    outboxes(allowlist=[]).deliver_due()
    [attempt] = records.attempts(event.job_id)
    assert attempt.status_code is None and attempt.error is not None
    assert attempt.error.startswith("refused: ") and reason in attempt.error, attempt.error
    assert _stored(records, event).status == "pending", "retried: the operator may allow the host"
    assert connections == [] and receiver.connections == 0 and receiver.deliveries == []


def test_a_revoked_keys_event_fails(
    records: Records, key: ApiKey, receivers: Callable[..., Receiver], outboxes: Callable[..., Outbox]
) -> None:
    receiver = receivers()
    event = _queue(records, key, receiver.url)
    records.revoke_key("acme")
    outbox = outboxes()
    outbox.deliver_due()
    stored = _stored(records, event)
    assert (stored.status, stored.attempts) == ("failed", 1)
    assert stored.last_error == f"the API key {key.id} is revoked: its webhooks are not delivered"
    assert receiver.connections == 0
    assert outbox.deliver_due(now=time.time() + 1e6) == 0


# --- concurrency --------------------------------------------------------------------------------------------------


def test_a_slow_receiver_does_not_hold_up_others_and_is_never_sent_twice_at_once(
    records: Records, key: ApiKey, receivers: Callable[..., Receiver], outboxes: Callable[..., Outbox]
) -> None:
    slow, fast = receivers([(200, {}, 1.0)]), receivers()
    slow_event, fast_event = _queue(records, key, slow.url), _queue(records, key, fast.url)
    outbox = outboxes()
    other_process = outboxes()
    assert outbox.deliver_due(wait=False) == 2
    started = time.monotonic()
    while _stored(records, fast_event).status != "delivered":
        assert time.monotonic() - started < 0.8, "the fast receiver waited for the slow one"
        time.sleep(0.01)
    assert _stored(records, slow_event).status == "pending"
    # While the slow delivery is under way, the event is not delivered again, by this outbox or another.
    far = time.time() + 1e6  # due by then, whatever its lease
    assert outbox.deliver_due(wait=False) == 0
    assert other_process.deliver_due(wait=False) == 0, "claimed in the records"
    assert outbox.deliver_due(now=far, wait=False) == 0, "under way here, even when its lease looks expired"
    outbox.drain()
    assert _stored(records, slow_event).status == "delivered"
    assert outbox.deliver_due(now=far) == 0 and other_process.deliver_due(now=far) == 0
    assert len(slow.deliveries) == 1 and len(fast.deliveries) == 1


def test_run_delivers_until_stopped(
    records: Records, key: ApiKey, receivers: Callable[..., Receiver], outboxes: Callable[..., Outbox]
) -> None:
    receiver = receivers()
    outbox = outboxes()
    stop = threading.Event()
    runner = threading.Thread(target=outbox.run, args=(stop, 0.02), daemon=True)
    runner.start()
    try:
        events = [_queue(records, key, receiver.url) for _ in range(3)]
        started = time.monotonic()
        while any(_stored(records, event).status != "delivered" for event in events):
            assert time.monotonic() - started < 3, "not delivered"
            time.sleep(0.01)
    finally:
        stop.set()
        runner.join(timeout=5)
    assert not runner.is_alive()
    assert sorted(receiver.ids) == sorted(event.id for event in events)
    assert all(json.loads(delivery["body"])["type"] == "job.succeeded" for delivery in receiver.deliveries)
