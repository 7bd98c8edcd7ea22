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

import json

from prefect import flow, get_run_logger
from prefect.futures import as_completed

from flows.artifacts import VariantProgress, report_run
from flows.pipeline import publish_product_run, run_identity, submit_product_run
from flows.runners import task_runner_from_settings
from placewright.request import build_request
from placewright.settings import get_settings


@flow(name="place-product", task_runner=task_runner_from_settings())
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
    run_id, created_at = run_identity()
    logger.info("run %s: %d variant(s) of %s", run_id, len(request.variants), request.product.path)
    run = submit_product_run(request, settings, run_id=run_id, run_path=run_id, created_at=created_at, refresh=refresh)
    progress = VariantProgress(run_id, total=len(run.specs))
    for _ in as_completed(run.finals):
        progress.variant_finished()
    published = publish_product_run(run, settings)  # a failed variant raises here: this flow is all or nothing
    report_run(published["manifest"], published["manifest_url"])
    return published["manifest"]


if __name__ == "__main__":
    import sys

    print(json.dumps(place_product(sys.argv[1], prompts=sys.argv[2:]), indent=2))
