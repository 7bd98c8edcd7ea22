"""One product's task graph, shared by the place-product and campaign flows.

:func:`submit_product_run` submits every stage of one product (enhance, cut out and analyze
once; scene, locate, composite and harmonize mapped over the variants) without waiting, so a
campaign's products run side by side on the flow's task runner. :func:`variant_failures` says
which variants failed and where; :func:`publish_product_run` publishes the ones that finished.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

from prefect import Task, unmapped
from prefect.context import FlowRunContext
from prefect.filesystems import RemoteFileSystem, WritableFileSystem
from prefect.futures import PrefectFuture

from placewright.publish import new_run_id
from placewright.request import RunRequest
from placewright.settings import Settings
from placewright.storage import intermediates_url, is_local, results_url, storage_options
from tasks.analyze import analyze_product
from tasks.composite import composite_variant
from tasks.cutout import cut_out_product
from tasks.enhance import enhance_product
from tasks.harmonize import harmonize_variant
from tasks.ingest import ingest_image
from tasks.locate import locate_surface
from tasks.publish import ProductParts, VariantParts, publish_outputs
from tasks.refs import VariantSpec
from tasks.scene import make_scene

VARIANT_STAGES = ("scene", "locate", "composite", "harmonize")


@dataclass
class ProductRun:
    """The submitted graph of one product: futures, and where it will be published."""

    request: RunRequest
    source: str  # the product as the user named it (a URL product is read from a downloaded copy)
    run_id: str
    run_path: str
    created_at: str
    root: str
    specs: list[VariantSpec]
    enhanced: PrefectFuture
    cutout: PrefectFuture
    analysis: PrefectFuture
    stages: dict[str, list[PrefectFuture]]  # VARIANT_STAGES -> one future per variant

    @property
    def finals(self) -> list[PrefectFuture]:
        return self.stages["harmonize"]


def run_identity() -> tuple[str, str]:
    """This run's id and start time, taken from the flow run so that a retried flow run keeps them."""
    context = FlowRunContext.get()
    flow_run = context.flow_run if context is not None else None
    if flow_run is None or flow_run.created is None:
        now = datetime.now(UTC)
        return new_run_id(now), now.isoformat(timespec="seconds")
    created = flow_run.created.astimezone(UTC)
    return f"{created:%Y%m%dT%H%M%SZ}-{flow_run.id.hex[:6]}", created.isoformat(timespec="seconds")


def result_storage(out_dir: str, settings: Settings) -> WritableFileSystem | Path | None:
    """Prefect result storage beside the published runs when they go to a shared store.

    Prefect wants remote result storage saved as a block, so that any worker can load it; the
    block is named after its URL and options and saved (idempotently) by each run. It holds the
    endpoint and profile, never credentials: those come from each worker's AWS environment.
    """
    url = results_url(out_dir, settings.storage)
    if url is None:
        return None
    if is_local(url):
        return Path(url.removeprefix("file://")).resolve()
    options = storage_options(url, settings.storage)
    block = RemoteFileSystem(basepath=url, settings=options)
    digest = hashlib.sha256(json.dumps([url, options], sort_keys=True, default=str).encode()).hexdigest()
    block.save(f"placewright-results-{digest[:12]}", overwrite=True)
    return block


def configured(task: Task, settings: Settings, refresh: bool, storage: WritableFileSystem | Path | None) -> Task:
    """The task with this run's retry policy, cache refresh and result storage applied."""
    options: dict = dict(
        retries=settings.retry.retries,
        retry_delay_seconds=list(settings.retry.delay_seconds),
        refresh_cache=refresh or None,
    )
    if storage is not None:
        options["result_storage"] = storage
    return task.with_options(**options)


def submit_product_run(
    request: RunRequest,
    settings: Settings,
    *,
    run_id: str,
    run_path: str,
    created_at: str,
    refresh: bool = False,
    source: str | None = None,
    storage: WritableFileSystem | Path | Literal["auto"] | None = "auto",
) -> ProductRun:
    """Submit every stage of one product's run; returns at once with the futures.

    ``source`` is how the manifest names the product (default: its path). ``storage`` is the
    result storage from :func:`result_storage` when the caller already has it (a campaign
    resolves it once for all its products).
    """
    root = intermediates_url(request.out_dir, settings.storage, settings.cache_dir)
    if storage == "auto":
        storage = result_storage(request.out_dir, settings)
    ingest, enhance, cut, analyze, scene, locate, place, relight = (
        configured(t, settings, refresh, storage)
        for t in (
            ingest_image,
            enhance_product,
            cut_out_product,
            analyze_product,
            make_scene,
            locate_surface,
            composite_variant,
            harmonize_variant,
        )
    )
    specs = [
        VariantSpec(
            index=v.index,
            seed=v.seed,
            prompt=v.prompt,
            # Backgrounds are ingested here (quick, cached): a spec holds references, not futures.
            background=ingest(v.background.path, v.background.sha256, settings.limits, root, "background image")
            if v.background
            else None,
            background_source=v.background.path if v.background else None,
        )
        for v in request.variants
    ]
    scenes = scene.map(specs, unmapped(str(request.size)), unmapped(settings.scene), unmapped(root))
    located = locate.map(scenes, unmapped(request.surface), unmapped(settings.locate), unmapped(root))

    product_ref = ingest.submit(request.product.path, request.product.sha256, settings.limits, root, "product image")
    enhanced = enhance.submit(product_ref, settings.enhance, root)
    cutout = cut.submit(enhanced, settings.cutout, root)
    # The analyzer reads the product's name from the file name: a URL product's, not its download's.
    filename = Path(urlparse(source).path).name if source else Path(request.product.path).name
    analysis = analyze.submit(cutout, filename, request.prompts, settings.analyze, root)

    composites = place.map(
        scenes,
        located,
        unmapped(cutout),
        unmapped(analysis),
        unmapped(settings.composite),
        [s.seed for s in specs],
        unmapped(root),
        unmapped(request.surface),
    )
    finals = relight.map(composites, unmapped(settings.harmonize), unmapped(root))
    return ProductRun(
        request=request,
        source=source or request.product.path,
        run_id=run_id,
        run_path=run_path,
        created_at=created_at,
        root=root,
        specs=specs,
        enhanced=enhanced,
        cutout=cutout,
        analysis=analysis,
        stages={"scene": list(scenes), "locate": list(located), "composite": list(composites), "harmonize": finals},
    )


def variant_failures(run: ProductRun) -> dict[int, str]:
    """``variant index -> "stage: reason"`` for every variant that did not finish (waits for all)."""
    failures: dict[int, str] = {}
    for position, spec in enumerate(run.specs):
        run.finals[position].wait()
        if run.finals[position].state.is_completed():
            continue
        failures[spec.index] = _first_failure(run, position)
    return failures


def _first_failure(run: ProductRun, position: int) -> str:
    """The earliest failed stage of one variant and its error (a product stage if that is what failed)."""
    chain: list[tuple[str, PrefectFuture]] = [
        ("enhance", run.enhanced),
        ("cutout", run.cutout),
        ("analyze", run.analysis),
    ]
    chain += [(stage, run.stages[stage][position]) for stage in VARIANT_STAGES]
    for stage, future in chain:
        future.wait()
        state = future.state
        if state.is_failed() or state.is_crashed():
            error = state.result(raise_on_failure=False)
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            return f"{stage}: {reason}"
    return f"harmonize: ended {run.finals[position].state.name}"


def publish_product_run(
    run: ProductRun,
    settings: Settings,
    *,
    skip: set[int] = frozenset(),  # type: ignore[assignment]
) -> dict:
    """Publish the run's variants (except those in ``skip``); returns the publish task's result."""
    parts = [
        VariantParts(
            spec,
            run.stages["scene"][i].result(),
            run.stages["locate"][i].result(),
            run.stages["composite"][i].result(),
            run.stages["harmonize"][i].result(),
        )
        for i, spec in enumerate(run.specs)
        if spec.index not in skip
    ]
    publish = publish_outputs.with_options(
        retries=settings.retry.retries, retry_delay_seconds=list(settings.retry.delay_seconds)
    )
    request = run.request
    return publish(
        run.run_id,
        run.run_path,
        run.created_at,
        request.out_dir,
        ProductParts(
            run.source,
            request.product.sha256,
            run.enhanced.result(),
            run.cutout.result(),
            run.analysis.result(),
        ),
        parts,
        settings.output.model_copy(update={"format": request.format}),
        run.root,
    )
