"""The ``place-product`` flow: one product photo, one finished image per scene.

Product stages (enhance, cut out, analyze) run once; scene stages (scene, locate,
composite, harmonize) are mapped over the variants and run in parallel, starting while the
product is still being cut out. Every stage is a cached, retried Prefect task that falls
back to its classical backend; publishing writes images first and the manifest last.

For a remote ``out`` (``s3://bucket/prefix``) the intermediate images and Prefect's cached
results live in the same store, under ``<out>/.placewright/``, so a retry on any machine that
can reach the bucket reuses the stages that had finished. The run id comes from the flow run,
so a retried flow run publishes to the same run folder and rewrites nothing that is there.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

from prefect import flow, get_run_logger, unmapped
from prefect.context import FlowRunContext
from prefect.filesystems import RemoteFileSystem, WritableFileSystem
from prefect.futures import as_completed
from prefect.task_runners import ThreadPoolTaskRunner

from flows.artifacts import VariantProgress, report_run
from placewright.publish import new_run_id
from placewright.request import build_request
from placewright.settings import Settings, get_settings
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

# Threads suffice: OpenCV and NumPy release the GIL in the heavy loops.
MAX_PARALLEL_TASKS = 4


@flow(name="place-product", task_runner=ThreadPoolTaskRunner(max_workers=MAX_PARALLEL_TASKS))
def place_product(
    product: str,
    prompts: list[str] | None = None,
    backgrounds: list[str] | None = None,
    surface: str | None = None,
    size: str | None = None,
    seed: int | None = None,
    format: str | None = None,
    out: str | None = None,
    refresh: bool = False,
) -> dict:
    """Place ``product`` in one scene per prompt and per background; returns the run manifest.

    Args:
        product: path of the product photo.
        prompts: scene prompts, one variant each.
        backgrounds: paths of background images to use as they are, one variant each.
        surface: what the product stands on ("table", "countertop"); default from settings.
        size: output size WIDTHxHEIGHT; default from settings.
        seed: base seed; variant i uses seed + i.
        format: webp, jpeg or png.
        out: folder (or fsspec URL) the run folder is written under.
        refresh: recompute every stage instead of reusing cached results.
    """
    settings = get_settings()
    logger = get_run_logger()
    request = build_request(
        product,
        prompts=prompts,
        backgrounds=backgrounds,
        surface=surface,
        size=size,
        seed=seed,
        format=format,
        out=out,
        settings=settings,
    )
    run_id, created_at = _run_identity()
    root = intermediates_url(request.out_dir, settings.storage, settings.cache_dir)
    result_storage = _result_storage(request.out_dir, settings)
    ingest, enhance, cut, analyze, scene, locate, place, relight = (
        _configured(t, settings, refresh, result_storage)
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
    logger.info("run %s: %d variant(s) of %s", run_id, len(request.variants), request.product.path)

    specs = [
        VariantSpec(
            index=v.index,
            seed=v.seed,
            prompt=v.prompt,
            background=ingest(v.background.path, v.background.sha256, settings.limits, root, "background image")
            if v.background
            else None,
            background_source=v.background.path if v.background else None,
        )
        for v in request.variants
    ]
    size_text = str(request.size)
    scenes = scene.map(specs, unmapped(size_text), unmapped(settings.scene), unmapped(root))
    located = locate.map(scenes, unmapped(request.surface), unmapped(settings.locate), unmapped(root))

    product_ref = ingest(request.product.path, request.product.sha256, settings.limits, root, "product image")
    enhanced = enhance(product_ref, settings.enhance, root)
    cutout = cut(enhanced.image, settings.cutout, root)
    analysis = analyze(cutout, Path(request.product.path).name, request.prompts, settings.analyze, root)

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

    progress = VariantProgress(run_id, total=len(specs))
    for _ in as_completed(finals):
        progress.variant_finished()
    parts = [
        VariantParts(spec, s.result(), loc.result(), c.result(), f.result())
        for spec, s, loc, c, f in zip(specs, scenes, located, composites, finals, strict=True)
    ]
    publish = publish_outputs.with_options(
        retries=settings.retry.retries, retry_delay_seconds=list(settings.retry.delay_seconds)
    )
    published = publish(
        run_id,
        run_id,
        created_at,
        request.out_dir,
        ProductParts(request.product.path, request.product.sha256, enhanced, cutout, analysis),
        parts,
        settings.output.model_copy(update={"format": request.format}),
        root,
    )
    report_run(published["manifest"], published["manifest_url"])
    return published["manifest"]


def _run_identity() -> tuple[str, str]:
    """This run's id and start time, taken from the flow run so that a retried flow run keeps them."""
    context = FlowRunContext.get()
    flow_run = context.flow_run if context is not None else None
    if flow_run is None or flow_run.created is None:
        now = datetime.now(UTC)
        return new_run_id(now), now.isoformat(timespec="seconds")
    created = flow_run.created.astimezone(UTC)
    return f"{created:%Y%m%dT%H%M%SZ}-{flow_run.id.hex[:6]}", created.isoformat(timespec="seconds")


def _result_storage(out_dir: str, settings: Settings) -> WritableFileSystem | Path | None:
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


def _configured(task, settings: Settings, refresh: bool, result_storage: WritableFileSystem | Path | None):
    """The task with this run's retry policy, cache refresh and result storage applied."""
    options: dict = dict(
        retries=settings.retry.retries,
        retry_delay_seconds=list(settings.retry.delay_seconds),
        refresh_cache=refresh or None,
    )
    if result_storage is not None:
        options["result_storage"] = result_storage
    return task.with_options(**options)


if __name__ == "__main__":
    import sys

    print(json.dumps(place_product(sys.argv[1], prompts=sys.argv[2:]), indent=2))
