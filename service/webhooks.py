"""Standard Webhooks (https://www.standardwebhooks.com), signed per API key, from a persistent outbox.

An event is queued in the service's records (:meth:`service.records.Records.finish_job`) in the same
transaction as the job's final state, with a deterministic id (``evt_`` + 24 hex of the job, the
event type and the completion time), so queueing it again after a restart changes nothing. The
:class:`Outbox` delivers due events: each attempt is a POST of the exact stored body with
``webhook-id`` (the same on every attempt), ``webhook-timestamp`` (this attempt's Unix time) and
``webhook-signature`` (``v1,<base64 HMAC-SHA256>`` by ``standardwebhooks.Webhook`` with the key's
``whsec_`` secret) headers. Receivers verify with any Standard Webhooks library::

    standardwebhooks.Webhook(secret).verify(body, headers)

Deliveries go through :func:`placewright.url_guard.guarded_request`: the receiver's host must resolve
to public addresses (``limits.allowed_hosts`` opens others), the request goes to the checked address,
redirects are not followed (a 3xx is a failed attempt), and the whole attempt has a time limit.
A 2xx is delivered; anything else is retried on the schedule (``service.webhook_schedule_s``, plus
up to ``service.webhook_jitter`` of each delay at random, and at least what a 429 or 503 asks for in
``Retry-After``) until the schedule runs out or the receiver answers 410 Gone; then the event is
failed. Every attempt is recorded.
"""

from __future__ import annotations

import concurrent.futures
import functools
import hashlib
import json
import logging
import math
import random
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from standardwebhooks import Webhook

from placewright.url_guard import Allowlist, FetchTimedOut, UrlRefused, guarded_request
from placewright.validation import one_line
from service.records import DeliveryAttempt, EventStatus, JobRecord, Records, WebhookEvent, now_iso

logger = logging.getLogger(__name__)

USER_AGENT = "Placewright-Webhooks/1"
# The most of a receiver's answer that is read (to show the start of an error body), and shown.
MAX_ANSWER_BYTES = 4096
SHOWN_ANSWER_CHARS = 200
# Statuses whose Retry-After is honoured, and the longest wait it may ask for.
RETRY_AFTER_STATUSES = frozenset({429, 503})
MAX_RETRY_AFTER_S = 24 * 3600.0
# 410 Gone: the receiver does not want this event, ever; not retried.
GONE = 410
# A claimed event is due again this long after its attempt's time limit, should its deliverer die.
LEASE_MARGIN_S = 30.0


def make_event(job: JobRecord, type: str, payload: dict[str, Any]) -> WebhookEvent:
    """The event ``type`` (``job.succeeded``...) of a job, to queue with :meth:`Records.finish_job`.

    Args:
        job: the job, with its ``webhook_url`` and ``completed_at`` set.
        type: the event type.
        payload: the body, sent as compact JSON with sorted keys.

    Raises:
        ValueError: the job has no webhook URL.
    """
    if not job.webhook_url:
        raise ValueError(f"job {job.id} has no webhook URL")
    digest = hashlib.sha256(f"{job.id}:{type}:{job.completed_at}".encode()).hexdigest()[:24]
    return WebhookEvent(
        id=f"evt_{digest}",
        job_id=job.id,
        key_id=job.key_id,
        type=type,
        url=job.webhook_url,
        payload=json.dumps(payload, separators=(",", ":"), sort_keys=True).encode(),
        created_at=now_iso(),
    )


def signed_headers(secret: str, event_id: str, timestamp: datetime, body: bytes) -> dict[str, str]:
    """The headers of one delivery attempt: Standard Webhooks' three, the content type and user agent.

    Args:
        secret: the key's ``whsec_`` secret.
        event_id: the event's id (``webhook-id``).
        timestamp: the attempt's time (naive: UTC).
        body: the exact bytes sent.
    """
    when = timestamp.astimezone(UTC) if timestamp.tzinfo is not None else timestamp.replace(tzinfo=UTC)
    return {
        "webhook-id": event_id,
        "webhook-timestamp": str(math.floor(when.timestamp())),
        "webhook-signature": Webhook(secret).sign(event_id, when, body.decode("utf-8")),
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }


def deliver(
    event: WebhookEvent, secret: str, *, timeout_s: float, allowlist: Allowlist | Iterable[str]
) -> tuple[DeliveryAttempt, float | None]:
    """One delivery attempt of ``event`` (number ``event.attempts + 1``); never raises for the receiver's faults.

    Success is a 2xx answer within ``timeout_s``. A redirect is not followed (a failure naming its
    target); a refused address fails without a connection being made (status None).

    Returns:
        The attempt (``error`` None on success; ``status_code`` 410 means "do not retry"), and the
        least delay before the next attempt that a 429 or 503 asked for with ``Retry-After``, else None.
    """
    import httpx

    number = event.attempts + 1
    at = now_iso()
    started = time.monotonic()
    status_code: int | None = None
    error: str | None = None
    retry_after: float | None = None
    try:
        headers = signed_headers(secret, event.id, datetime.now(UTC), event.payload)
        with guarded_request(
            "POST",
            event.url,
            allowlist=allowlist,
            deadline=started + timeout_s,
            headers=headers,
            content=event.payload,
            follow_redirects=False,
        ) as answer:
            response = answer.response
            status_code = response.status_code
            if 300 <= status_code < 400:
                location = response.headers.get("location")
                target = _cut(one_line(location)) if location else "(no Location)"
                error = f"redirect not followed: {status_code} to {target}"
            elif not 200 <= status_code < 300:
                error = f"HTTP {status_code} {response.reason_phrase}".rstrip()
                shown = _start_of(answer.iter_bytes())
                if shown:
                    error = f"{error}: {shown}"
                if status_code == GONE:
                    error = f"{error} (the receiver is gone: not retried)"
                if status_code in RETRY_AFTER_STATUSES:
                    retry_after = parse_retry_after(response.headers.get("retry-after"))
    except UrlRefused as exc:
        error = one_line(str(exc))
    except (FetchTimedOut, httpx.TimeoutException):
        error = f"timed out after {timeout_s:g} s"
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        error = f"cannot deliver: {one_line(str(exc)) or type(exc).__name__}"
    except Exception as exc:  # a bad secret or URL: recorded like the receiver's faults
        error = f"cannot deliver: {type(exc).__name__}: {one_line(str(exc))}"
    duration = round(time.monotonic() - started, 3)
    return DeliveryAttempt(event.id, number, at, status_code, error, duration), retry_after


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delay seconds or an HTTP date), at most a day.

    Returns None for a missing or unreadable header; a date in the past is 0.
    """
    if not value or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - (time.time() if now is None else now)
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


def _start_of(pieces: Iterable[bytes]) -> str:
    """The first characters of an answer's body (at most ``MAX_ANSWER_BYTES`` read), on one line."""
    data = b""
    try:
        for piece in pieces:
            data += piece
            if len(data) >= MAX_ANSWER_BYTES:
                break
    except Exception:  # a body cut short or too slow: what came is enough
        pass
    return _cut(one_line(data[:MAX_ANSWER_BYTES].decode("utf-8", "replace")))


def _cut(text: str) -> str:
    """``text``, cut to ``SHOWN_ANSWER_CHARS``."""
    return text if len(text) <= SHOWN_ANSWER_CHARS else text[: SHOWN_ANSWER_CHARS - 3] + "..."


class Outbox:
    """Delivers the records' due webhook events, each on its own schedule of retries.

    Deliveries of different events run at once on a few threads (a slow receiver holds up only its
    own events); an event is claimed in the records before its attempt (:meth:`Records.claim_event`),
    so it is never delivered twice at once, by this outbox or by another process's.

    Args:
        records: the service's records.
        schedule_s: the delay before each attempt (``service.webhook_schedule_s``): the first attempt
            is made as soon as the event is due, attempt ``n + 1`` comes ``schedule_s[n]`` after attempt
            ``n``; after ``len(schedule_s)`` attempts the event is failed.
        jitter: up to this share of each delay is added at random (``service.webhook_jitter``).
        timeout_s: time limit of one attempt (``service.webhook_timeout_s``).
        allowlist: ``limits.allowed_hosts``: receivers allowed although not public.
        secret_for: the webhook secret of a key id, None when the key is revoked
            (:meth:`Records.webhook_secret`); such a key's events are failed.
        max_workers: deliveries at once.
    """

    def __init__(
        self,
        records: Records,
        *,
        schedule_s: Sequence[float],
        jitter: float,
        timeout_s: float,
        allowlist: Allowlist | Iterable[str],
        secret_for: Callable[[str], str | None],
        max_workers: int = 8,
    ) -> None:
        if not schedule_s:
            raise ValueError("schedule_s: needs at least one delay")
        self.records = records
        self.schedule_s = [float(delay) for delay in schedule_s]
        self.jitter = jitter
        self.timeout_s = timeout_s
        self.allowlist = Allowlist.of(allowlist)
        self.secret_for = secret_for
        self.max_workers = max_workers
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="placewright-webhook")
        self._lock = threading.Lock()
        self._in_flight: dict[str, Future[DeliveryAttempt | None]] = {}
        self._random = random.Random()

    def deliver_due(self, now: float | None = None, *, wait: bool = True) -> int:
        """Make one delivery attempt of every event due at ``now`` (Unix time; None: now).

        Args:
            now: the time events are due by and retries are scheduled from.
            wait: return when the attempts are done; False: once they are started, or when all
                workers are busy (the rest wait for the next call).

        Returns:
            How many attempts were started.
        """
        now = time.time() if now is None else now
        seen: set[str] = set()
        started = 0
        while True:
            free = self.max_workers - self._busy()
            if free <= 0:
                if not wait:
                    break
                self._wait_for_one()
                continue
            due = self.records.due_events(now, limit=free + len(seen))
            batch = [event for event in due if event.id not in seen][:free]
            if not batch:
                break
            for event in batch:
                seen.add(event.id)
                started += self._start(event, now)
        if wait:
            self.drain()
        return started

    def run(self, stop: threading.Event, interval_s: float) -> None:
        """Deliver due events every ``interval_s`` until ``stop`` is set; then wait for attempts under way."""
        while not stop.is_set():
            try:
                self.deliver_due(wait=False)
            except Exception:  # the records busy or gone for a moment: try again next time
                logger.exception("webhook outbox: cannot deliver due events")
            stop.wait(interval_s)
        self.drain()

    def drain(self, timeout_s: float | None = None) -> None:
        """Wait for the attempts under way."""
        with self._lock:
            futures = list(self._in_flight.values())
        concurrent.futures.wait(futures, timeout=timeout_s)

    def close(self) -> None:
        """Wait for the attempts under way and stop the delivery threads."""
        self._pool.shutdown(wait=True)

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- one attempt ------------------------------------------------------------------------------
    def _busy(self) -> int:
        with self._lock:
            return sum(not future.done() for future in self._in_flight.values())

    def _wait_for_one(self) -> None:
        with self._lock:
            futures = list(self._in_flight.values())
        concurrent.futures.wait(futures, return_when=concurrent.futures.FIRST_COMPLETED)

    def _start(self, event: WebhookEvent, now: float) -> int:
        """Claim the event and start its attempt; 0 when it is under way here or claimed elsewhere."""
        with self._lock:
            if event.id in self._in_flight:
                return 0
            if not self.records.claim_event(event, now=now, until=now + self.timeout_s + LEASE_MARGIN_S):
                return 0
            future = self._pool.submit(self._attempt, event, now)
            self._in_flight[event.id] = future
        future.add_done_callback(functools.partial(self._finished, event.id))
        return 1

    def _finished(self, event_id: str, _: Future[DeliveryAttempt | None]) -> None:
        with self._lock:
            self._in_flight.pop(event_id, None)

    def _attempt(self, event: WebhookEvent, now: float) -> DeliveryAttempt | None:
        """Deliver once and record the attempt and what comes next (a failure here is logged, not raised)."""
        try:
            secret = self.secret_for(event.key_id)
            if secret is None:
                attempt = DeliveryAttempt(
                    event.id,
                    event.attempts + 1,
                    now_iso(),
                    None,
                    f"the API key {event.key_id} is revoked: its webhooks are not delivered",
                )
                self.records.record_attempt(attempt, status="failed", next_attempt_at=None)
                logger.warning("webhook %s of job %s: %s", event.id, event.job_id, attempt.error)
                return attempt
            attempt, retry_after = deliver(event, secret, timeout_s=self.timeout_s, allowlist=self.allowlist)
            status, next_at = self._next(attempt, retry_after, now)
            self.records.record_attempt(attempt, status=status, next_attempt_at=next_at)
        except Exception:  # the claim's lease runs out and the event is tried again
            logger.exception("webhook %s of job %s: the attempt could not be recorded", event.id, event.job_id)
            return None
        if status == "failed":
            logger.warning(
                "webhook %s of job %s failed after %d attempt(s): %s",
                event.id,
                event.job_id,
                attempt.number,
                attempt.error,
            )
        elif attempt.error is not None:
            logger.info("webhook %s attempt %d: %s", event.id, attempt.number, attempt.error)
        return attempt

    def _next(
        self, attempt: DeliveryAttempt, retry_after: float | None, now: float
    ) -> tuple[EventStatus, float | None]:
        """The event's status after ``attempt`` and, when pending, the time of its next attempt."""
        if attempt.error is None:
            return "delivered", None
        if attempt.status_code == GONE or attempt.number >= len(self.schedule_s):
            return "failed", None
        delay = self.schedule_s[attempt.number] * (1 + self._random.uniform(0, self.jitter))
        if retry_after is not None:
            delay = max(delay, retry_after)
        return "pending", now + attempt.duration_s + delay


__all__ = [
    "USER_AGENT",
    "Outbox",
    "deliver",
    "make_event",
    "parse_retry_after",
    "signed_headers",
]
