"""What every stage task shares: its cache policy, retry rule and attempt bookkeeping.

Cache keys are content hashes: image inputs count by their sha256 (never their pixels or
where they are stored), settings sections by their values, plus the task's source and the
``name@version`` of every backend in the stage's chain. Transient backend errors are
retried by Prefect with backoff; on the last attempt the stage falls back instead.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
from pathlib import Path
from typing import Any

from prefect import Task
from prefect.cache_policies import CachePolicy
from prefect.client.schemas.objects import TaskRun
from prefect.context import TaskRunContext
from prefect.states import State
from prefect.transactions import get_transaction
from pydantic import BaseModel

from placewright.backends import Registry, StageRecord
from placewright.errors import StageFailed, TransientBackendError
from placewright.settings import get_settings
from placewright.storage import storage_options
from placewright.store import BlobStore, ImageRef


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


@dataclasses.dataclass
class StageCache(CachePolicy):
    """Cache key = task source + content of the inputs + versions of the stage's backends."""

    registry: Registry | None = None
    backend_option: str = "options"
    exclude: tuple[str, ...] = ()

    def compute_key(
        self,
        task_ctx: TaskRunContext,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any],
        **kwargs: Any,
    ) -> str | None:
        try:
            source = inspect.getsource(task_ctx.task.fn)
        except (OSError, TypeError):
            source = task_ctx.task.fn.__qualname__
        backends = None
        if self.registry is not None:
            options = inputs.get(self.backend_option)
            backends = self.registry.signature(getattr(options, "backend", "auto"), options)
        payload = {
            "task": task_ctx.task.fn.__qualname__,
            "source": hashlib.sha256(source.encode()).hexdigest(),
            "backends": backends,
            "inputs": canonical({k: v for k, v in inputs.items() if k not in self.exclude}),
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


STAGE_TASK_OPTIONS: dict[str, Any] = {
    "persist_result": True,
    "retry_condition_fn": retry_transient_only,
}


def blob_store(root: str) -> BlobStore:
    """The intermediate-image store at ``root``, opened with this process's storage settings.

    Endpoint, profile and credentials are not task inputs (they would show in the UI and in
    cache keys): every worker reads them from its own environment.
    """
    return BlobStore(root, storage_options(root, get_settings().storage))


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
