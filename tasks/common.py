"""What every stage task shares, in one place: :func:`stage_task` makes a stage's Prefect task.

A task module says only what is its stage's own: how to load its inputs and call the core
function. :func:`stage_task` adds the rest to every stage:

- **cache keys** are content hashes: image inputs count by their sha256 (never their pixels or
  where they are stored), settings sections by their values, plus the task body's source and the
  ``name@version`` of every backend in the stage's chain (:class:`StageCache`);
- **fault drills**: ``faults.fail_stage`` fails the stage on purpose (:func:`inject_fault`);
- **transient errors** (timeouts, HTTP 5xx) are raised for Prefect to retry with backoff on every
  attempt but the last, where the stage falls back instead (:attr:`StageIO.raise_transient`);
- **degraded results** (a backend failed and the stage fell back) are not cached, so the next run
  tries the preferred backend again (:func:`cache_only_if_healthy`);
- **intermediate images** go through the run's blob store (:class:`StageIO`);
- **results are data**: written as JSON by :data:`~tasks.results.SERIALIZER` (the body's return type
  joins its allowlist), and a cached record some other serializer wrote (a pickle) fails the task
  instead of being loaded or quietly replaced (:mod:`tasks.results`).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import inspect
import json
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import numpy as np
from prefect import Task, task
from prefect.cache_policies import CachePolicy
from prefect.client.schemas.objects import TaskRun
from prefect.context import TaskRunContext
from prefect.states import State
from prefect.transactions import get_transaction
from pydantic import BaseModel

from placewright.backends import StageRecord
from placewright.errors import StageFailed, TransientBackendError
from placewright.settings import get_settings
from placewright.stages import stages
from placewright.storage import storage_options
from placewright.store import MEMORY, BlobStore, ImageRef
from tasks.results import RESULT_FORMAT, SERIALIZER, allow, refuse_unsafe_cached_result

P = ParamSpec("P")
R = TypeVar("R")


def canonical(value: Any) -> Any:
    """A JSON-ready form of a task input that depends only on its content."""
    if isinstance(value, ImageRef):
        return {"image_sha256": value.sha256}
    if isinstance(value, StageRecord):
        return None  # timings and fallback notes are not content
    if isinstance(value, BaseModel):
        return canonical(value.model_dump(mode="json"))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: canonical(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [canonical(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"cannot build a cache key from a {type(value).__name__}; pass references, not data")


@functools.cache
def source_sha256(function: Callable[..., Any]) -> str:
    """sha256 of a function's source, read once per process (reading and tokenizing it cost ~1 ms a task run)."""
    try:
        source = inspect.getsource(function)
    except (OSError, TypeError):
        source = function.__qualname__
    return hashlib.sha256(source.encode()).hexdigest()


@dataclasses.dataclass
class StageCache(CachePolicy):
    """Cache key = task source + content of the inputs + versions of the stage's backends + result format.

    ``stage`` names the task's step; when it is in the stage table its backends count, and its
    task's ``options`` input is the stage's settings section. Inputs in ``exclude`` are left out.
    """

    stage: str | None = None
    exclude: tuple[str, ...] = ()

    def compute_key(
        self,
        task_ctx: TaskRunContext,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any],
        **kwargs: Any,
    ) -> str | None:
        backends = None
        table = {s.name: s for s in stages()}
        registry = table[self.stage].registry if self.stage in table else None
        if registry is not None:
            options = inputs.get("options")
            backends = registry.signature(getattr(options, "backend", "auto"), options)
        payload = {
            "task": task_ctx.task.fn.__qualname__,
            "source": source_sha256(inspect.unwrap(task_ctx.task.fn)),  # the stage's function, not its wrapper
            "backends": backends,
            "inputs": canonical({k: v for k, v in inputs.items() if k not in self.exclude}),
            "results": RESULT_FORMAT,  # records of another format (older versions' pickles) are never looked up
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def retry_transient_only(task: Task, task_run: TaskRun, state: State) -> bool:
    """Prefect ``retry_condition_fn``: retry transient backend failures, nothing else."""
    try:
        state.result()
    except TransientBackendError:
        return True
    except Exception:
        return False
    return False


def is_last_attempt() -> bool:
    """True on the task run's final attempt (then transient errors fall back rather than retry)."""
    context = TaskRunContext.get()
    if context is None:
        return True
    return context.task_run.run_count > context.task.retries


# Tasks that may load a model carry this tag: a Prefect concurrency limit on it
# (``prefect concurrency-limit create gpu 1``) keeps them from sharing one GPU at once.
GPU_TAG = "gpu"


def cache_only_if_healthy(record: StageRecord) -> None:
    """Keep a result out of the cache when a backend failed and the stage fell back.

    A fallback caused by a failure (a timeout, a 5xx, a broken model file) must not be
    reused by the next run: the preferred backend may work by then. Skipped backends (no
    weights here) are part of the cache key instead, so those results are cached.
    """
    if record.fallback_from is not None and (transaction := get_transaction()) is not None:
        transaction.write_on_commit = False


def stage_task(
    name: str, *, gpu: bool = False, not_in_key: tuple[str, ...] = ()
) -> Callable[[Callable[P, R]], Task[P, R]]:
    """Decorator: the Prefect task of stage ``name`` from its body (see the module docstring).

    Args:
        name: the stage's name in the stage table (``ingest``: a step with no backends).
        gpu: the stage may load a model: the task carries :data:`GPU_TAG`.
        not_in_key: inputs left out of the cache key (a file's path, when its sha256 is an input).

    The body's parameters are the task's (the flow passes them by name, see
    :mod:`placewright.stages`); its result, when it has a ``record``, decides whether it is cached.
    Retries and result storage are set per run by the flow (``retry`` and ``storage`` settings); the
    result is written by :data:`~tasks.results.SERIALIZER`, so the body's return type must be a class
    it knows: its annotation adds it (and the classes its fields hold) to the allowlist.
    """

    def decorate(body: Callable[P, R]) -> Task[P, R]:
        try:
            allow(typing.get_type_hints(body).get("return"))
        except NameError as exc:
            raise TypeError(f"stage {name}: its task's annotations must name imported classes ({exc})") from exc

        @functools.wraps(body)
        def run(*args: P.args, **kwargs: P.kwargs) -> R:
            refuse_unsafe_cached_result()
            inject_fault(name)
            result = body(*args, **kwargs)
            record = getattr(result, "record", None)
            if isinstance(record, StageRecord):
                cache_only_if_healthy(record)
            return result

        return task(
            name=name,
            cache_policy=StageCache(stage=name, exclude=not_in_key),
            tags=[GPU_TAG] if gpu else None,
            persist_result=True,
            result_serializer=SERIALIZER,
            retry_condition_fn=retry_transient_only,
        )(run)

    return decorate


class StageIO:
    """A stage body's access to the run's intermediate images, and its retry bookkeeping.

    Args:
        store_root: where the run keeps intermediate images (the ``store_root`` task input).
    """

    def __init__(self, store_root: str) -> None:
        self.store = blob_store(store_root)
        self.raise_transient = not is_last_attempt()

    def get(self, ref: ImageRef) -> np.ndarray:
        return self.store.get(ref)

    def put(self, pixels: np.ndarray) -> ImageRef:
        return self.store.put(pixels)


def blob_store(root: str) -> BlobStore:
    """The intermediate-image store at ``root``, opened with this process's storage settings.

    Endpoint, profile and credentials are not task inputs (they would show in the UI and in
    cache keys): every worker reads them from its own environment, and the compression level
    (``cache_compression``) and the in-memory share (``cache_memory_bytes``, :data:`~placewright.store.MEMORY`)
    too: they change how blobs are stored, never what they hold.
    """
    settings = get_settings()
    if MEMORY.max_bytes != settings.cache_memory_bytes:
        MEMORY.resize(settings.cache_memory_bytes)
    return BlobStore(root, storage_options(root, settings.storage), level=settings.cache_compression, memory=MEMORY)


class InjectedFault(StageFailed):
    """A failure made on purpose by the ``faults`` settings (tests and drills of retries)."""


def inject_fault(stage: str) -> None:
    """Fail ``stage`` when the ``faults`` settings say so (never in normal operation).

    ``faults.fail_stage`` names the stage; with ``faults.while_file_exists`` set, only while that file
    exists, so a drill can fail a run, remove the file and retry it from the dashboard.
    """
    faults = get_settings().faults
    if faults.fail_stage != stage:
        return
    if faults.while_file_exists is not None and not Path(faults.while_file_exists).exists():
        return
    raise InjectedFault(f"injected fault in stage {stage} (settings: faults.fail_stage)", stage=stage)
