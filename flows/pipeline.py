"""One product's task graph, built from the stage table and shared by the place-product and campaign flows.

:func:`submit_product_run` submits every stage of :data:`placewright.stages.STAGES` for one planned
product without waiting, so a campaign's products run side by side on the flow's task runner:
product stages once, variant stages mapped over the variants. Each task receives its inputs by
parameter name (:func:`stage_arguments`): an earlier stage's name gets that stage's output,
``options`` the stage's settings section, the other names the run's values. Stages that need no
product stage (a generated scene) are submitted first, so they run while the product is cut out (with
Dask or Ray; the thread runner queues each task once its inputs are ready, product stages first:
:mod:`flows.ready_first`).

:func:`variant_failures` says which variants failed and where, :func:`raise_first_failure`
re-raises the earliest failure as it was raised (bad input stays bad input), and
:func:`publish_product_run` publishes what finished.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

from prefect import Task, get_client, get_run_logger, unmapped
from prefect.client.schemas.objects import TaskRun
from prefect.context import FlowRunContext
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
from prefect.filesystems import WritableFileSystem
from prefect.futures import PrefectFuture
from prefect.settings import PREFECT_API_URL, PREFECT_LOCAL_STORAGE_PATH
from prefect.states import State

from flows.heartbeats import install as install_heartbeats
from flows.ready_first import ReadyFirstTaskRunner
from placewright.errors import BlobUnusable, first_line
from placewright.manifest import DroppedVariant
from placewright.memory import VARIANT_BYTES_PER_PIXEL, available_bytes, variants_that_fit
from placewright.plan import RunPlan
from placewright.publish import PublishedRun, new_run_id, run_id_for
from placewright.quality import RESEEDABLE, QualityReport, ocr_signature
from placewright.request import Variant
from placewright.settings import Settings
from placewright.stages import CHECK, VARIANT_VALUES, Stage, stages
from placewright.storage import intermediates_url, is_local, results_url, storage_options
from placewright.store import BlobStore
from tasks.common import GPU_TAG
from tasks.ingest import ingest_image
from tasks.publish import publish_outputs
from tasks.results import SERIALIZER, LocalResults, RemoteResults

# Flow runs end without waiting up to 1 s for Prefect's heartbeat thread (see flows.heartbeats).
install_heartbeats()

# The quality gate: a step after the last stage, once per variant (its settings are run values).
CHECK_STEP = Stage(CHECK, "variant", None, "quality", "tasks.check:check_finished_variant")
# Seeds are 32-bit: a remade variant's next seed wraps around.
SEED_SPACE = 2**32
# For a local --out: the stages' results, in Prefect's local storage (nothing else writes there).
LOCAL_RESULTS_FOLDER = "placewright"


def variant_steps() -> tuple[Stage, ...]:
    """What runs once per variant: the variant stages, then the quality gate."""
    return (*stages("variant"), CHECK_STEP)


@dataclass
class ProductRun:
    """The submitted graph of one product: its futures, and where it will be published.

    ``outputs`` maps each stage's name (and ``check``'s) to its future (product stages) or to one
    future per variant, in the plan's variant order (variant steps). ``variants`` are the variants as
    now being made (a variant made again has its next seed) and ``attempts`` how often each was made.
    """

    plan: RunPlan
    run_id: str
    run_path: str
    created_at: str
    root: str
    outputs: dict[str, Any]
    values: dict[str, Any]
    settings: Settings
    refresh: bool
    storage: WritableFileSystem | Path | None
    variants: list[Variant]
    attempts: list[int]
    gpu_limited: bool = True

    @property
    def finals(self) -> list[PrefectFuture]:
        """One future per variant: its quality gate's, the last step."""
        return self.outputs[CHECK]


def run_identity() -> tuple[str, str]:
    """This run's id and start time, taken from the flow run so that a retried flow run keeps them."""
    context = FlowRunContext.get()
    flow_run = context.flow_run if context is not None else None
    if flow_run is None or flow_run.created is None:
        now = datetime.now(UTC)
        return new_run_id(now), now.isoformat(timespec="seconds")
    created = flow_run.created.astimezone(UTC)
    return run_id_for(created, flow_run.id.hex), created.isoformat(timespec="seconds")


def result_storage(out_dir: str, settings: Settings) -> WritableFileSystem:
    """Prefect result storage of the stages: beside the published runs when they go to a shared store.

    For a local ``out``, a ``placewright`` folder in Prefect's local storage (``PREFECT_LOCAL_STORAGE_PATH``),
    which holds nothing else. The storage reads only records written by the stages' own JSON serializer
    (:mod:`tasks.results`: anything else, a pickle, is refused). It is saved as a block, named after its
    location and options and saved (idempotently; once per process and API, later runs only check that it is
    still there), so that any worker can load it, and so that
    a result read back through the API (by block id) goes through the same check. It holds the endpoint
    and profile, never credentials: those come from each worker's AWS environment.
    """
    url = results_url(out_dir, settings.storage)
    block: LocalResults | RemoteResults
    if url is None or is_local(url):
        path = (
            PREFECT_LOCAL_STORAGE_PATH.value() / LOCAL_RESULTS_FOLDER
            if url is None
            else Path(url.removeprefix("file://"))
        )
        basepath = str(path.resolve())
        block, identity = LocalResults(basepath=basepath), [basepath]
    else:
        options = storage_options(url, settings.storage)
        block, identity = RemoteResults(basepath=url, settings=options), [url, options]
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()
    name = f"placewright-results-{digest[:12]}"
    key = (PREFECT_API_URL.value(), name)
    saved = _SAVED_STORAGE.get(key)
    if saved is not None and _still_saved(saved):
        return saved
    found = _saved_as(block, name)
    if found is None:
        try:
            block.save(name, overwrite=True)
        except ObjectAlreadyExists:  # two runs registering the block type (or the block) at once: the other won
            block.save(name, overwrite=True)
        found = block
    _SAVED_STORAGE[key] = found
    return found


# Result storage blocks this process saved or found, by API URL and name: later runs check that the block
# document is still there (one read) instead of saving it again (five requests and a write on the server, which
# at times waited ~2 s for a retry while the server was busy).
_SAVED_STORAGE: dict[tuple[str | None, str], LocalResults | RemoteResults] = {}


def _saved_as(block: LocalResults | RemoteResults, name: str) -> LocalResults | RemoteResults | None:
    """The block saved on the server under ``name`` when it holds what ``block`` does (one read, no write)."""
    try:
        found = type(block).load(name)
    except ValueError:  # no block of that name (or of that type yet)
        return None
    fields = type(block).model_fields
    same = {f: getattr(found, f) for f in fields} == {f: getattr(block, f) for f in fields}
    return found if same else None


def _still_saved(block: LocalResults | RemoteResults) -> bool:
    document = block._block_document_id
    if document is None:
        return False
    try:
        with get_client(sync_client=True) as client:
            client.read_block_document(document)
    except ObjectNotFound:
        return False
    return True


def configured(task: Task, settings: Settings, refresh: bool, storage: WritableFileSystem | Path | None) -> Task:
    """The task with this run's retry policy, cache refresh and result storage applied.

    Tasks that persist their results (the stage tasks) write them with :data:`tasks.results.SERIALIZER`
    to ``storage``, which must come from :func:`result_storage` (it refuses records that are not data);
    ``None`` is for the publish task, which persists nothing.

    Raises:
        TypeError: a persisting task with no storage, or with storage that does not check what it reads.
    """
    options: dict[str, Any] = dict(
        retries=settings.retry.retries,
        retry_delay_seconds=list(settings.retry.delay_seconds),
        refresh_cache=refresh or None,
    )
    if storage is not None or task.persist_result:
        if not isinstance(storage, LocalResults | RemoteResults):
            raise TypeError(f"task {task.name}: results go to the checked storage of result_storage(), not {storage!r}")
        options["result_storage"] = storage
        options["result_serializer"] = SERIALIZER
    return task.with_options(**options)


def gpu_limit_set() -> bool:
    """Whether the Prefect server limits the ``gpu`` tag (``prefect concurrency-limit create gpu N``).

    Asked once per product run. When no limit exists, a tagged task run would still ask the API for a slot
    before it starts (and that request, served by Prefect's lease service, at times waits seconds), so the
    run's tasks go without the tag. When the server cannot say, the tag stays.
    """
    try:
        with get_client(sync_client=True) as client:
            client.read_global_concurrency_limit_by_name(f"tag:{GPU_TAG}")
    except ObjectNotFound:
        return False
    except Exception:  # the server will answer the tasks' own requests, or fail them
        return True
    return True


def without_idle_gpu_tag(task: Task, stage: Stage, settings: Settings, gpu_limited: bool = True) -> Task:
    """The task without the ``gpu`` tag, unless a limit uses it and a backend of its stage here loads a model.

    A tagged task run costs an API round trip (acquiring a slot), and a classical backend needs no GPU slot.
    """
    if GPU_TAG not in task.tags:
        return task
    if gpu_limited and stage.registry is not None:
        options = getattr(settings, stage.section)
        if stage.registry.loads_models(getattr(options, "backend", "auto"), options):
            return task
    untagged = task.with_options()  # a copy; with_options(tags=set()) would keep the old tags
    untagged.tags = set(task.tags) - {GPU_TAG}
    return untagged


def stage_task_of(stage: Stage) -> Task:
    """The Prefect task the stage table names for ``stage`` (``"module:attribute"``)."""
    module, _, attribute = stage.task.partition(":")
    return getattr(importlib.import_module(module), attribute)


def stage_arguments(
    stage: Stage, task: Task, settings: Settings, run_values: dict[str, Any], outputs: dict[str, Any]
) -> dict[str, Any]:
    """The keyword arguments of ``stage``'s task, by parameter name (see the module docstring).

    ``run_values`` holds the run's values and, for variant stages, ``VARIANT_VALUES`` as one value
    per variant; ``outputs`` the futures of the stages submitted so far.

    Raises:
        TypeError: the task takes a parameter that nothing provides (a stage table mistake).
    """
    mapped = stage.scope == "variant"
    product_stages = {s.name for s in stages("product")}
    arguments: dict[str, Any] = {}
    for name in inspect.signature(task.fn).parameters:
        if name == "options":
            value, per_variant = getattr(settings, stage.section), False
        elif name in outputs:
            value, per_variant = outputs[name], name not in product_stages
        elif name in VARIANT_VALUES:
            value, per_variant = run_values[name], True
        elif name in run_values:
            value, per_variant = run_values[name], False
        else:
            raise TypeError(
                f"stage {stage.name}: its task takes {name!r}, which no earlier stage or run value provides"
            )
        if per_variant and not mapped:
            raise TypeError(f"stage {stage.name} runs once per product: it cannot take {name!r} (per variant)")
        arguments[name] = unmapped(value) if mapped and not per_variant else value
    return arguments


def submission_order() -> list[Stage]:
    """The stages, those that wait for no product stage first (their work overlaps the product's)."""
    task_inputs = {s.name: set(inspect.signature(stage_task_of(s).fn).parameters) for s in stages()}
    waits: dict[str, bool] = {}
    for stage in stages():  # in table order, so every input stage is decided before its consumers
        waits[stage.name] = stage.scope == "product" or any(waits.get(name, False) for name in task_inputs[stage.name])
    return sorted(stages(), key=lambda s: waits[s.name])


def bound_variants_in_flight(plan: RunPlan, settings: Settings) -> None:
    """Run fewer tasks at once in this flow run when fewer of the plan's variants fit in memory at once.

    With the thread runner, each thread works on one variant's step; at large sizes (~40 bytes per output
    pixel per variant: 2.7 GB at 8192x8192) the machine's available memory decides how many may be in flight.

    Raises:
        InvalidInput: not even one variant fits (the plan checked this already; memory may have gone since).
    """
    context = FlowRunContext.get()
    runner = context.task_runner if context is not None else None
    if not isinstance(runner, ReadyFirstTaskRunner):
        return
    available = available_bytes()
    fits = variants_that_fit(plan.size, settings.runner.threads, available)
    if fits < settings.runner.threads and available is not None:
        runner.limit(fits)
        get_run_logger().info(
            "%s variants need about %.1f GB each and %.1f GB is available: at most %d task(s) at a time",
            plan.size,
            VARIANT_BYTES_PER_PIXEL * plan.size.width * plan.size.height / 1e9,
            available / 1e9,
            fits,
        )


def submit_product_run(
    plan: RunPlan,
    settings: Settings,
    *,
    run_id: str,
    run_path: str,
    created_at: str,
    refresh: bool = False,
    storage: WritableFileSystem | Path | Literal["auto"] | None = "auto",
) -> ProductRun:
    """Submit every stage of one product's run; returns at once with the futures.

    ``storage`` is the result storage from :func:`result_storage` when the caller already has it (a
    campaign resolves it once for all its products).
    """
    bound_variants_in_flight(plan, settings)
    root = intermediates_url(plan.out, settings.storage, settings.cache_dir)
    if storage == "auto":
        storage = result_storage(plan.out, settings)
    ingest = configured(ingest_image, settings, refresh, storage)
    limits = settings.limits
    run_values: dict[str, Any] = {
        "product": ingest.submit(plan.product_file, plan.product.sha256, limits, root, "product image"),
        # The analyzer reads the product's name from its file name: a URL product's, not its download's.
        "filename": Path(urlparse(plan.product.source).path).name,
        "prompts": list(plan.request.prompts),
        "surface": plan.surface,
        "size": plan.size,
        "store_root": root,
        "quality_gate": settings.quality,
        "ocr": settings.enhance.ocr,
        "ocr_models": ocr_signature(settings.enhance.ocr),
        "prompt": [v.prompt for v in plan.variants],
        "seed": [v.seed for v in plan.variants],
        # Backgrounds are ingested here (quick, cached), so a variant's inputs are references, not futures.
        "background": [
            ingest(plan.background_file(v), v.background_sha256, limits, root, "background image")
            if v.background
            else None
            for v in plan.variants
        ],
    }
    outputs: dict[str, Any] = {}
    gpu_limited = gpu_limit_set()
    for stage in (*submission_order(), CHECK_STEP):
        task = without_idle_gpu_tag(
            configured(stage_task_of(stage), settings, refresh, storage), stage, settings, gpu_limited
        )
        arguments = stage_arguments(stage, task, settings, run_values, outputs)
        outputs[stage.name] = task.submit(**arguments) if stage.scope == "product" else list(task.map(**arguments))
    variants = list(plan.variants)
    return ProductRun(
        plan, run_id, run_path, created_at, root, outputs, run_values, settings, refresh, storage, variants,
        [1] * len(variants), gpu_limited,
    )  # fmt: skip


def next_seed(run: ProductRun, position: int) -> int:
    """The seed of the variant at ``position``'s next attempt: past every seed the run's variants use."""
    first = run.plan.variants[position].seed
    return (first + run.attempts[position] * len(run.plan.variants)) % SEED_SPACE


def remake_variants(run: ProductRun, positions: list[int]) -> None:
    """Submit every variant step again for the variants at ``positions``, each with its next seed.

    The product stages' results are reused; the new futures replace the old ones in ``run.outputs``.
    """
    for position in positions:
        seed = next_seed(run, position)
        run.variants[position] = run.variants[position].model_copy(update={"seed": seed})
        run.attempts[position] += 1
    values = {
        **run.values,
        "prompt": [run.variants[p].prompt for p in positions],
        "seed": [run.variants[p].seed for p in positions],
        "background": [run.values["background"][p] for p in positions],
    }
    outputs: dict[str, Any] = {s.name: run.outputs[s.name] for s in stages("product")}
    for step in (*(s for s in submission_order() if s.scope == "variant"), CHECK_STEP):
        task = without_idle_gpu_tag(
            configured(stage_task_of(step), run.settings, run.refresh, run.storage), step, run.settings, run.gpu_limited
        )
        outputs[step.name] = list(task.map(**stage_arguments(step, task, run.settings, values, outputs)))
    for step in variant_steps():
        for k, position in enumerate(positions):
            run.outputs[step.name][position] = outputs[step.name][k]


def quality_report(run: ProductRun, position: int) -> QualityReport | None:
    """The gate's report on the variant at ``position`` (waits for it); None when the variant failed."""
    future = run.finals[position]
    future.wait()
    return future.result() if future.state.is_completed() else None


def apply_quality_gate(*runs: ProductRun) -> None:
    """Make every variant that failed a check a new seed can fix again, up to ``quality.retries`` times.

    Only scene-dependent checks (:data:`~placewright.quality.RESEEDABLE`) are worth another seed: a
    label or cut-out failure comes from the product, and goes straight to the ``on_failure`` policy.
    Several runs (a campaign's products) go round by round together. Waits for every variant's gate.
    """
    for round_ in range(max((run.settings.quality.retries for run in runs), default=0)):
        remade = False
        for run in runs:
            if round_ >= run.settings.quality.retries:
                continue
            again = []
            for position in range(len(run.plan.variants)):
                report = quality_report(run, position)
                if report is not None and set(report.failed) & RESEEDABLE:
                    again.append(position)
            if again:
                remake_variants(run, again)
                remade = True
        if not remade:
            return


def _stage_futures(run: ProductRun, position: int) -> Iterator[tuple[str, PrefectFuture]]:
    """Every step's future for the variant at ``position``, in pipeline order."""
    for stage in (*stages(), CHECK_STEP):
        future = run.outputs[stage.name]
        yield stage.name, future if stage.scope == "product" else future[position]


def _first_failed(run: ProductRun, position: int) -> tuple[str, PrefectFuture] | None:
    """The earliest stage that failed for the variant at ``position`` (waits for each), or None."""
    for name, future in _stage_futures(run, position):
        future.wait()
        if future.state.is_failed() or future.state.is_crashed():
            return name, future
    return None


def variant_failures(run: ProductRun) -> dict[int, str]:
    """``variant index -> "stage: reason"`` for every variant that did not finish (waits for all)."""
    failures: dict[int, str] = {}
    for position, variant in enumerate(run.plan.variants):
        final = run.finals[position]
        final.wait()
        if final.state.is_completed():
            continue
        failed = _first_failed(run, position)
        if failed is None:
            failures[variant.index] = f"{CHECK}: ended {final.state.name}"
        else:
            name, future = failed
            failures[variant.index] = f"{name}: {first_line(future.state.result(raise_on_failure=False))}"
    return failures


def raise_first_failure(run: ProductRun) -> None:
    """Re-raise the earliest failure of the run as the stage raised it (product stages first).

    A product refused by a product stage (almost fully transparent, no product found) is then the
    ``InvalidInput`` it was, with its own message, not a downstream "unfinished run".
    """
    for position in range(len(run.plan.variants)):
        failed = _first_failed(run, position)
        if failed is not None:
            failed[1].result()  # raises the stage's own exception


def publish_product_run(run: ProductRun, settings: Settings, *, skip: frozenset[int] = frozenset()) -> PublishedRun:
    """Publish the run's variants (except those in ``skip``); returns what was published.

    A variant that failed the quality gate is published flagged ``needs_review``, or, with
    ``quality.on_failure = "drop"``, left out and listed in the manifest's ``dropped``.
    """
    product_outputs = {s.name: run.outputs[s.name].result() for s in stages("product")}
    variants: list[tuple[Variant, dict[str, Any], int]] = []
    dropped: list[DroppedVariant] = []
    for i, variant in enumerate(run.variants):
        if variant.index in skip:
            continue
        outputs = {s.name: run.outputs[s.name][i].result() for s in variant_steps()}
        report: QualityReport = outputs[CHECK]
        if not report.passed and settings.quality.on_failure == "drop":
            dropped.append(DroppedVariant(**dict(variant), quality=report, attempts=run.attempts[i]))
        else:
            variants.append((variant, outputs, run.attempts[i]))
    publish = configured(publish_outputs, settings, refresh=False, storage=None).with_options(
        retry_condition_fn=retry_unless_blob_unusable
    )
    plan = run.plan
    return publish(
        run.run_id,
        run.run_path,
        run.created_at,
        plan.out,
        plan.request.urls,
        plan.product,
        product_outputs,
        variants,
        dropped,
        settings.output.model_copy(update={"format": plan.format}),
        run.root,
    )


def retry_unless_blob_unusable(task: Task, task_run: TaskRun, state: State) -> bool:
    """Prefect ``retry_condition_fn`` of publishing: a missing or corrupt intermediate stays so; heal instead."""
    try:
        state.result()
    except BlobUnusable:
        return False
    except Exception:
        return True
    return False


def unusable_blob(run: ProductRun) -> BlobUnusable | None:
    """The missing or corrupt intermediate image that failed a step of ``run``, if one did (waits for all).

    The flows then make the product again once with ``refresh=True``: every stage recomputed, every
    blob written anew (:mod:`placewright.store`).
    """
    for position in range(len(run.plan.variants)):
        failed = _first_failed(run, position)
        if failed is not None and isinstance(error := failed[1].state.result(raise_on_failure=False), BlobUnusable):
            return error
    return None


def evict_intermediates(out: str, settings: Settings) -> None:
    """End of a run: bound the local intermediate-image store of ``out`` to ``cache_max_bytes``.

    Least recently used blobs go first, down to 80% of the bound; a remote store is left alone (a bucket
    lifecycle rule bounds it). Never fails the run: a problem is logged as a warning.
    """
    root = intermediates_url(out, settings.storage, settings.cache_dir)
    if settings.cache_max_bytes == 0 or not is_local(root):
        return
    logger = get_run_logger()
    try:
        evicted = BlobStore(root).evict(settings.cache_max_bytes)
    except OSError as exc:
        logger.warning("could not bound the intermediate-image cache %s: %s", root, first_line(exc))
        return
    if evicted.removed:
        logger.info(
            "intermediate-image cache %s: removed %d least recently used image(s), %.1f MB; %.1f MB left "
            "(bound %.1f MB)",
            root,
            evicted.removed,
            evicted.freed / 1e6,
            evicted.total / 1e6,
            settings.cache_max_bytes / 1e6,
        )
