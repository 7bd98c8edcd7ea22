"""The publish step's task: the finished variants' images and the manifest, written to the run's location."""

from __future__ import annotations

import functools
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from placewright.manifest import DroppedVariant
from placewright.plan import output_location
from placewright.publish import FinishedVariant, PublishedRun, publish_run
from placewright.request import Product, Variant
from placewright.settings import OutputSettings, get_settings
from placewright.stages import CHECK, PUBLISH, stages
from placewright.types import UrlMode
from tasks.common import blob_store, inject_fault, is_last_attempt


@task(name=PUBLISH, cache_policy=NO_CACHE)
def publish_outputs(
    run_id: str,
    run_path: str,
    created_at: str,
    out: str,
    urls: UrlMode,
    product: Product,
    product_outputs: dict[str, Any],
    variants: list[tuple[Variant, dict[str, Any], int]],
    dropped: list[DroppedVariant],
    output: OutputSettings,
    store_root: str,
) -> PublishedRun:
    """Publish the run (images first, manifest last; idempotent).

    Args:
        run_id, run_path, created_at: the run's identity and folder under ``out``.
        out: the output location; ``urls``: how its URLs are made.
        product: the product as named, and its sha256.
        product_outputs: each product stage's output, by stage name.
        variants: each finished variant with its variant steps' outputs, by name (``check``: its quality
            report), and how often it was made.
        dropped: the variants the quality gate left out.
        output: formats, qualities, previews.
        store_root: where the intermediate images are.

    Retries come from the run's ``retry`` settings; on the last attempt a failure removes what
    this run had written (a run without a manifest is not a run).
    """
    inject_fault(PUBLISH)
    logger = get_run_logger()
    store = blob_store(store_root)
    location = output_location(out, urls, get_settings())
    finished = []
    for variant, outputs, attempts in variants:
        every = {**product_outputs, **outputs}
        finished.append(
            FinishedVariant(
                variant=variant,
                # Loaders: publishing holds only the variants it is encoding (memory stays flat).
                image=functools.partial(store.get, outputs["harmonize"].image),
                product_box=outputs["composite"].product_box,
                surface=outputs["locate"].surface,
                stages={s.name: every[s.name].record for s in stages()},
                composite=functools.partial(store.get, outputs["composite"].image),
                product_alpha=functools.partial(store.get, outputs["composite"].product_alpha),
                quality=outputs.get(CHECK),
                attempts=attempts,
            )
        )
    published = publish_run(
        location=location,
        run_path=run_path,
        run_id=run_id,
        created_at=created_at,
        product=product,
        cutout=store.get(product_outputs["cutout"].image),
        analysis=product_outputs["analyze"].analysis,
        variants=finished,
        output=output,
        dropped=dropped,
        clean_on_failure=is_last_attempt(),
    )
    logger.info(
        "published %s: %d object(s) written, %d already there",
        published.run_uri,
        len(published.written),
        len(published.unchanged),
    )
    return published
