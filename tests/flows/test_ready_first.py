"""The flows' task runner gives a thread only to a task whose inputs are ready, most urgent first.

Prefect's thread-pool runner hands each submitted task a thread at once: a task waiting for an upstream
future holds its thread (and reads the upstream task run over HTTP). These tests show that with
:class:`~flows.ready_first.ReadyFirstTaskRunner` independent work runs while a dependent task waits, that the
queue goes by :func:`~flows.ready_first.stage_priority`, and that what Prefect does with states is unchanged.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from prefect import flow, task
from prefect.futures import PrefectConcurrentFuture
from prefect.task_runners import ThreadPoolTaskRunner

from flows.ready_first import ReadyFirstExecutor, ReadyFirstTaskRunner, stage_priority
from flows.runners import task_runner_from_settings
from placewright.settings import RunnerSettings

# --- the executor on its own ---


class Named:
    """Stands for a Prefect task: the executor reads only its name (through the priority function)."""

    def __init__(self, name: str) -> None:
        self.name = name


def _upstream() -> tuple[concurrent.futures.Future[Any], PrefectConcurrentFuture]:
    plain: concurrent.futures.Future[Any] = concurrent.futures.Future()
    return plain, PrefectConcurrentFuture(uuid.uuid4(), plain)


def _submit(pool: ReadyFirstExecutor, log: list[str], name: str, **parameters: Any) -> concurrent.futures.Future[Any]:
    return pool.submit(lambda **_: log.append(name), task=Named(name), parameters=parameters)


def test_a_waiting_submission_holds_no_thread() -> None:
    pool = ReadyFirstExecutor(1, stage_priority)
    log: list[str] = []
    gate, upstream = _upstream()
    waiting = _submit(pool, log, "composite", cutout=upstream)
    free = _submit(pool, log, "scene")
    free.result(timeout=5)
    assert log == ["scene"] and not waiting.done(), "the only thread ran the free task, not the waiting one"
    gate.set_result(None)
    waiting.result(timeout=5)
    assert log == ["scene", "composite"]
    pool.shutdown()


def test_the_queue_goes_by_priority_then_readiness() -> None:
    """Product stages and later variant steps first; among equals, first come first served."""
    pool = ReadyFirstExecutor(1, stage_priority)
    log: list[str] = []
    hold = threading.Event()
    blocker = pool.submit(lambda **_: hold.wait(5), task=Named("ingest"), parameters={})
    names = ["scene", "locate", "check", "harmonize", "enhance", "scene", "composite", "cutout"]
    futures = [_submit(pool, log, name) for name in names]
    hold.set()
    blocker.result(timeout=5)
    concurrent.futures.wait(futures, timeout=5)
    assert log == ["enhance", "cutout", "check", "harmonize", "composite", "locate", "scene", "scene"]
    pool.shutdown()


def test_priority_order_of_the_stage_table() -> None:
    order = ["ingest", "enhance", "publish", "check", "harmonize", "composite", "locate", "scene"]
    assert sorted(order, key=lambda name: stage_priority(Named(name))) == order


def test_shutdown_cancels_what_has_not_started() -> None:
    pool = ReadyFirstExecutor(1, stage_priority)
    log: list[str] = []
    hold = threading.Event()
    running = pool.submit(lambda **_: hold.wait(5), task=Named("scene"), parameters={})
    queued = _submit(pool, log, "scene")
    gate, upstream = _upstream()
    waiting = _submit(pool, log, "composite", scene=upstream)
    hold.set()
    pool.shutdown(cancel_futures=True)
    assert running.result(timeout=5) is True
    assert queued.cancelled() or log == ["scene"]
    gate.set_result(None)  # its input arrives after the shutdown: it never runs
    assert waiting.cancelled() and "composite" not in log
    with pytest.raises(RuntimeError):
        _submit(pool, log, "scene")


def test_an_error_reaches_the_future() -> None:
    pool = ReadyFirstExecutor(2, stage_priority)

    def fail(**_: Any) -> None:
        raise ValueError("broken stage")

    with pytest.raises(ValueError, match="broken stage"):
        pool.submit(fail, task=Named("scene"), parameters={}).result(timeout=5)
    pool.shutdown()


# --- inside Prefect flows ---


@pytest.fixture
def api_reads(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter[str]]:
    """GET requests this process sends to the Prefect API, by path kind (``task_runs`` ...)."""
    reads: Counter[str] = Counter()
    real = httpx.Client.send

    def send(self: httpx.Client, request: httpx.Request, *args: Any, **kwargs: Any) -> httpx.Response:
        if request.method == "GET" and "/api/" in request.url.path:
            reads[request.url.path.split("/api/")[1].split("/")[0]] += 1
        return real(self, request, *args, **kwargs)

    monkeypatch.setattr(httpx.Client, "send", send)
    yield reads


@task
def slow(seconds: float) -> float:
    time.sleep(seconds)
    return time.monotonic()


@task
def after(value: float) -> float:
    return time.monotonic()


@task
def quick(i: int) -> float:
    time.sleep(0.05)
    return time.monotonic()


@task
def broken(i: int) -> int:
    raise ValueError(f"broken {i}")


def _independent_work_while_waiting(runner: ThreadPoolTaskRunner) -> tuple[float, list[float]]:
    @flow(task_runner=runner)
    def graph() -> tuple[float, list[float]]:
        upstream = slow.submit(0.8)
        waiting = [after.submit(upstream) for _ in range(3)]
        free = [quick.submit(i) for i in range(3)]
        for future in waiting:
            future.wait()
        return upstream.result(), [future.result() for future in free]

    return graph()


@pytest.mark.usefixtures("prefect_server")
def test_independent_tasks_run_while_dependents_wait(api_reads: Counter[str]) -> None:
    """Two threads: one runs the slow task; the free tasks get the other, instead of waiting behind the
    dependents that Prefect's runner would have put on it (shown first, so the test can fail)."""
    slow_done, free_done = _independent_work_while_waiting(ThreadPoolTaskRunner(max_workers=2))
    assert max(free_done) > slow_done, "Prefect's runner: the free tasks waited behind the dependents"
    api_reads.clear()
    slow_done, free_done = _independent_work_while_waiting(ReadyFirstTaskRunner(max_workers=2))
    assert max(free_done) < slow_done, "the free tasks ran while the dependents waited for their input"
    assert api_reads["task_runs"] == 0, f"no task run was read over HTTP to start a task: {dict(api_reads)}"


@pytest.mark.usefixtures("prefect_server")
def test_a_failed_upstream_ends_its_dependents_as_prefect_does() -> None:
    def states(runner: ThreadPoolTaskRunner) -> list[tuple[str, str]]:
        @flow(task_runner=runner)
        def graph() -> list[tuple[str, str]]:
            failed = broken.submit(1)
            dependents = [after.submit(failed), after.submit(failed)]
            for future in [failed, *dependents]:
                future.wait()
            return [(f.state.type.value, f.state.name) for f in [failed, *dependents]]

        return graph()

    prefect_states = states(ThreadPoolTaskRunner(max_workers=2))
    assert states(ReadyFirstTaskRunner(max_workers=2)) == prefect_states
    assert prefect_states[0] == ("FAILED", "Failed") and prefect_states[1][1] == "NotReady"


@task
def made(i: int) -> dict[str, int]:
    return {"made": i}


@task
def identity_of(value: dict[str, int]) -> int:
    return id(value)


def _task_run_inputs(task_run_id: uuid.UUID, parameter: str) -> set[uuid.UUID]:
    """The upstream task runs the server recorded as ``parameter``'s input (recorded from events: polled)."""
    from prefect import get_client

    deadline = time.monotonic() + 20
    with get_client(sync_client=True) as client:
        while True:
            try:
                inputs = client.read_task_run(task_run_id).task_inputs.get(parameter, [])
            except Exception:  # not recorded yet
                inputs = []
            if inputs or time.monotonic() > deadline:
                return {item.id for item in inputs if getattr(item, "input_type", "") == "task_run"}
            time.sleep(0.1)


@pytest.mark.usefixtures("prefect_server")
def test_a_completed_upstream_is_passed_as_its_result_and_stays_the_input(monkeypatch: pytest.MonkeyPatch) -> None:
    """The result goes in as the object the upstream task returned, without Prefect's ``State.result`` (a trip
    through its event-loop thread per upstream), and the server still records the upstream as the input."""
    from prefect.client.schemas.objects import State

    resolved_in_workers: list[str] = []
    real_result = State.result

    def result(self: State, *args: Any, **kwargs: Any) -> Any:
        if threading.current_thread() is not threading.main_thread():
            resolved_in_workers.append(threading.current_thread().name)
        return real_result(self, *args, **kwargs)

    monkeypatch.setattr(State, "result", result)

    def run(runner: ThreadPoolTaskRunner) -> tuple[bool, uuid.UUID, uuid.UUID]:
        @flow(task_runner=runner)
        def graph() -> tuple[bool, uuid.UUID, uuid.UUID]:
            upstream = made.submit(7)
            downstream = identity_of.submit(upstream)
            return downstream.result() == id(upstream.result()), upstream.task_run_id, downstream.task_run_id

        return graph()

    same, upstream_id, downstream_id = run(ThreadPoolTaskRunner(max_workers=2))
    assert same and resolved_in_workers, "Prefect's runner: the task resolves its input through State.result"
    assert _task_run_inputs(downstream_id, "value") == {upstream_id}
    resolved_in_workers.clear()
    same, upstream_id, downstream_id = run(ReadyFirstTaskRunner(max_workers=2))
    assert same, "the downstream task got the very object its upstream returned"
    assert resolved_in_workers == [], f"resolved through State.result in {resolved_in_workers}"
    assert _task_run_inputs(downstream_id, "value") == {upstream_id}, "the dashboard's graph keeps the edge"


def test_the_thread_runner_of_the_settings_is_ready_first() -> None:
    runner = task_runner_from_settings(RunnerSettings(threads=3))
    assert isinstance(runner, ReadyFirstTaskRunner) and runner._max_workers == 3
    assert isinstance(runner.duplicate(), ReadyFirstTaskRunner)


@pytest.mark.usefixtures("prefect_server", "isolated_settings")
def test_large_variants_run_as_many_at_a_time_as_memory_holds(
    example_product: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """With memory for two variants of the run's size, no more than two tasks run at once (4 threads)."""
    import logging

    from flows import pipeline
    from flows.ready_first import ReadyFirstExecutor
    from placewright.memory import VARIANT_BYTES_PER_PIXEL
    from tests.flows.runs import place

    one = VARIANT_BYTES_PER_PIXEL * 384 * 384
    monkeypatch.setattr(pipeline, "available_bytes", lambda: int(2.5 * one))
    busiest = [0]
    real = ReadyFirstExecutor._start_what_fits

    def watched(self: ReadyFirstExecutor) -> None:
        real(self)
        busiest[0] = max(busiest[0], self._running)

    monkeypatch.setattr(ReadyFirstExecutor, "_start_what_fits", watched)
    caplog.set_level(logging.INFO)
    manifest = place(example_product, prompts=["a", "b", "c", "d"], size="384x384")
    assert len(manifest["variants"]) == 4
    assert busiest[0] == 2, f"at most two tasks at once, and two did run together ({busiest[0]})"
    assert any("384x384 variants need about" in r.getMessage() and "at most 2 task(s)" in r.getMessage()
               for r in caplog.records)  # fmt: skip
