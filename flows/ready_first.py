"""The flows' thread-pool task runner: a thread only for a task whose inputs are ready, most urgent first.

Prefect's :class:`~prefect.task_runners.ThreadPoolTaskRunner` hands every submitted task to its pool at once, in
submission order. A task that takes another task's future then holds a thread while it waits for it, and its
engine asks the API for the state of each upstream task run that has not been waited on. With a few threads
and a product's graph of ~45 tasks, the product's stages (which every variant waits on) queued behind the
scenes, composites sat on threads waiting for the cut-out, and each task start cost HTTP reads.

:class:`ReadyFirstTaskRunner` changes only when and in what order a task gets a thread:

- a task enters the queue once every future among its parameters (and ``wait_for``) is done, so no thread
  waits on another task (:class:`ReadyFirstExecutor`);
- the queue is ordered by :func:`stage_priority`: the product's stages and the steps around them first, then
  a variant's later steps before another variant's earlier ones, so variants are finished one after another
  (fewer images in memory at once) while the product is still being made;
- futures answer ``state`` from their own result once their task is done (:class:`LocalStateFuture`), so
  starting a task reads nothing over HTTP;
- a task starts with each completed upstream future among its parameters replaced by the result it holds in
  memory (:func:`_results_in_place`), which is what Prefect's engine would resolve it to, without a trip
  through Prefect's event-loop thread per upstream (~0.3 s of threads' time per 8-variant run, measured).
  Prefect still records the upstream task run as that parameter's input: the dashboard's graph is unchanged.

What a task does, its retries, caching, results and states are Prefect's, unchanged; a task whose upstream
failed is still run and ends NotReady, as with Prefect's runner.
"""

from __future__ import annotations

import concurrent.futures
import heapq
import itertools
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from prefect.futures import PrefectConcurrentFuture, PrefectFuture
from prefect.results import ResultRecord, ResultRecordMetadata
from prefect.states import State
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.utilities.collections import visit_collection

from placewright.stages import CHECK, stages

Priority = tuple[int, int]


def stage_priority(task: Any) -> Priority:
    """The queue order of ``task`` (a Prefect task; lower first): what the most work waits on goes first.

    Product stages and the steps around the stages (ingest, publish) come first; variant steps follow, the
    quality gate before harmonize before composite and so on back to the scene, so that a variant in progress
    is finished before a new one is started.
    """
    variant_steps = [s.name for s in stages("variant")] + [CHECK]
    name = getattr(task, "name", "")
    if name in variant_steps:
        return (1, -variant_steps.index(name))
    return (0, 0)


class LocalStateFuture(PrefectConcurrentFuture[Any]):
    """A thread-pool future whose ``state``, once its task is done, is its own final state, not an API read."""

    @property
    def state(self) -> State:
        done = self.wrapped_future
        if (
            self._final_state is None
            and done.done()
            and not done.cancelled()
            and done.exception() is None
            and isinstance(result := done.result(), State)
        ):
            self._final_state = result
        return super().state


def _unfinished_upstream(kwargs: dict[str, Any]) -> list[concurrent.futures.Future[Any]]:
    """The thread-pool futures, not yet done, among a task submission's parameters and ``wait_for``."""
    found: list[concurrent.futures.Future[Any]] = []

    def collect(value: Any) -> Any:
        if isinstance(value, PrefectConcurrentFuture) and not value.wrapped_future.done():
            found.append(value.wrapped_future)
        return value

    visit_collection(kwargs.get("parameters") or {}, visit_fn=collect, return_data=False)
    visit_collection(list(kwargs.get("wait_for") or []), visit_fn=collect, return_data=False)
    return found


def _result_in_memory(future: PrefectConcurrentFuture[Any]) -> tuple[bool, Any]:
    """``(True, result)`` when ``future``'s task completed and its result is in memory, else ``(False, None)``.

    What Prefect's engine would resolve the future to (``state.result()``), without the trip through its
    event-loop thread that costs a few milliseconds per upstream future on a busy machine.
    """
    done = future.wrapped_future
    if not done.done() or done.cancelled() or done.exception() is not None:
        return False, None
    state = done.result()
    if not isinstance(state, State) or not state.is_completed():
        return False, None
    if isinstance(state.data, ResultRecord):
        return True, state.data.result
    if state.data is None or isinstance(state.data, ResultRecordMetadata):  # missing, or only in storage
        return False, None
    return True, state.data


def _results_in_place(kwargs: dict[str, Any]) -> dict[str, Any]:
    """A task submission with each parameter that is a completed future replaced by its result.

    Prefect still records the upstream task run as the parameter's input (it knows its results by identity),
    so the dashboard's graph is unchanged; a future that did not complete is left to Prefect (NotReady).
    """
    parameters = kwargs.get("parameters")
    if not parameters:
        return kwargs
    resolved = dict(parameters)
    for name, value in parameters.items():
        if isinstance(value, PrefectConcurrentFuture):
            found, result = _result_in_memory(value)
            if found:
                resolved[name] = result
    return {**kwargs, "parameters": resolved}


@dataclass(order=True)
class _Queued:
    """A submission waiting for a thread: ordered by priority, then by when it became ready."""

    priority: Priority
    sequence: int
    call: tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]] = field(compare=False)
    outer: concurrent.futures.Future[Any] = field(compare=False)


class ReadyFirstExecutor(concurrent.futures.ThreadPoolExecutor):
    """A thread pool that starts a submission once its upstream futures are done, by ``priority``.

    :meth:`submit` returns at once with a future of its own; the call goes to a thread when every unfinished
    thread-pool future in its ``parameters``/``wait_for`` keyword arguments (how Prefect's runner submits a task
    run) is done and a thread is free, the lowest ``priority(kwargs["task"])`` first. Shutting down with
    ``cancel_futures`` cancels what has not started, waiting or queued.
    """

    def __init__(
        self,
        max_workers: int,
        priority: Callable[[Any], Priority],
        initializer: Callable[[], object] | None = None,
    ) -> None:
        super().__init__(max_workers=max_workers, initializer=initializer)
        self._slots = max_workers
        self._priority = priority
        self._lock = threading.Lock()
        self._queue: list[_Queued] = []
        self._sequence = itertools.count()
        self._running = 0
        self._closed = False
        self._cancel_on_close = True

    def limit(self, slots: int) -> None:
        """Run at most ``slots`` submissions at once from now on (never more than before, never fewer than 1)."""
        with self._lock:
            self._slots = max(1, min(slots, self._slots))

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[Any]:
        outer: concurrent.futures.Future[Any] = concurrent.futures.Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot schedule new futures after shutdown")
        call = (fn, args, kwargs)
        upstream = _unfinished_upstream(kwargs)
        if not upstream:
            self._ready(call, outer)
            return outer
        remaining = [len(upstream)]
        count_lock = threading.Lock()

        def one_done(_: concurrent.futures.Future[Any]) -> None:
            with count_lock:
                remaining[0] -= 1
                last = remaining[0] == 0
            if last:
                self._ready(call, outer)

        for future in upstream:
            future.add_done_callback(one_done)
        return outer

    def _ready(self, call: tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]], outer: Any) -> None:
        with self._lock:
            closed = self._closed
            if not closed:
                priority = self._priority(call[2].get("task"))
                heapq.heappush(self._queue, _Queued(priority, next(self._sequence), call, outer))
        if closed:  # its upstream finished after shutdown: cancelled, or run if the shutdown keeps queued work
            if self._cancel_on_close:
                outer.cancel()
            else:
                self._run_now(_Queued((0, 0), 0, call, outer))
            return
        self._start_what_fits()

    def _start_what_fits(self) -> None:
        starting: list[_Queued] = []
        with self._lock:
            while self._queue and self._running < self._slots and not self._closed:
                starting.append(heapq.heappop(self._queue))
                self._running += 1
        for queued in starting:
            self._launch(queued)

    def _launch(self, queued: _Queued) -> None:
        """Hand ``queued`` to a thread; its slot is counted already and released when it ends or cannot start."""
        if not queued.outer.set_running_or_notify_cancel():  # cancelled while it waited
            self._release()
            return
        fn, args, kwargs = queued.call
        try:
            inner = super().submit(fn, *args, **_results_in_place(kwargs))
        except RuntimeError as exc:  # the pool has shut down
            queued.outer.set_exception(exc)
            self._release()
            return
        inner.add_done_callback(lambda done, outer=queued.outer: self._finished(done, outer))

    def _finished(self, inner: concurrent.futures.Future[Any], outer: concurrent.futures.Future[Any]) -> None:
        if inner.cancelled():
            outer.set_exception(concurrent.futures.CancelledError())
        elif (error := inner.exception()) is not None:
            outer.set_exception(error)
        else:
            outer.set_result(inner.result())
        self._release()

    def _release(self) -> None:
        with self._lock:
            self._running -= 1
        self._start_what_fits()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._closed = True
            self._cancel_on_close = cancel_futures
            waiting, self._queue = self._queue, []
        for queued in waiting:
            if cancel_futures:
                queued.outer.cancel()
            else:  # started anyway, as a plain pool runs what it has queued
                self._run_now(queued)
        super().shutdown(wait=wait, cancel_futures=cancel_futures)

    def _run_now(self, queued: _Queued) -> None:
        """Start ``queued`` whatever the slots say (a shutdown that keeps queued work)."""
        with self._lock:
            self._running += 1
        self._launch(queued)


class ReadyFirstTaskRunner(ThreadPoolTaskRunner):
    """Prefect's thread-pool runner on a :class:`ReadyFirstExecutor`, with :class:`LocalStateFuture` futures."""

    def __init__(self, max_workers: int | None = None, priority: Callable[[Any], Priority] = stage_priority) -> None:
        super().__init__(max_workers=max_workers)
        self._priority = priority

    def duplicate(self) -> ReadyFirstTaskRunner:
        return type(self)(max_workers=self._max_workers, priority=self._priority)

    def __enter__(self) -> ReadyFirstTaskRunner:
        super().__enter__()
        plain, self._executor = (
            self._executor,
            ReadyFirstExecutor(self._max_workers, self._priority, initializer=self._register_worker_thread),
        )
        if plain is not None:
            plain.shutdown(wait=False)
        return self

    def limit(self, slots: int) -> None:
        """Run at most ``slots`` tasks at once in this flow run (a run of large images: see the flows)."""
        if isinstance(self._executor, ReadyFirstExecutor):
            self._executor.limit(slots)

    def submit(  # type: ignore[override]
        self,
        task: Any,
        parameters: dict[str, Any],
        wait_for: Iterable[PrefectFuture[Any]] | None = None,
        dependencies: dict[str, Any] | None = None,
    ) -> LocalStateFuture:
        future = super().submit(task, parameters, wait_for=wait_for, dependencies=dependencies)
        return LocalStateFuture(task_run_id=future.task_run_id, wrapped_future=future.wrapped_future)
