"""The ``place-product`` flow: one product photo, one finished image per scene.

Its one parameter is the run contract (:class:`~placewright.request.RunRequest`), so the Prefect
UI shows it as a form and the CLI, campaigns and the HTTP service pass the same model. The flow
plans the request (the files are read and checked, the output store is checked), submits the
stage graph (:mod:`flows.pipeline`: product stages once, variant stages mapped over the variants
in parallel, starting while the product is still being cut out) and publishes: images first,
the manifest last. Every stage is a cached, retried Prefect task that falls back to its classical
backend. The flow returns the :class:`~placewright.manifest.Manifest`.

A flow run of a deployment (the Prefect UI, ``run_deployment``, a schedule, the HTTP service) is
someone else's request: it may read only under ``access.input_roots`` and publish only under
``access.output_roots`` or ``out_dir`` (:mod:`placewright.access`); http(s) images go through the URL
guard. Run from the CLI or a script, the flow reads and writes where it is told.

All or nothing: when any stage fails the run fails with that stage's own error (a product that a
product stage refuses is bad input, as when the request itself is). For a remote ``out``
(``s3://bucket/prefix``) the intermediate images and Prefect's cached results live in the same
store, under ``<out>/.placewright/``, so a retry on any machine that can reach the bucket reuses the
stages that had finished. The run id comes from the flow run, so a retried flow run publishes to
the same run folder and rewrites nothing that is there.

A missing or corrupt intermediate image (a cached stage's output that the cache evicted, or a
truncated file) fails a step with :class:`~placewright.errors.BlobUnusable`: the product is then made
again once with every stage recomputed (one warning names the image). At the end of every run the
local intermediate-image cache is bounded (``cache_max_bytes``, :func:`~flows.pipeline.evict_intermediates`).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from prefect import get_run_logger
from prefect.context import FlowRunContext
from prefect.futures import as_completed

from flows.artifacts import VariantProgress, report_run
from flows.contract_flow import contract_flow
from flows.pipeline import (
    apply_quality_gate,
    evict_intermediates,
    publish_product_run,
    raise_first_failure,
    run_identity,
    submit_product_run,
)
from flows.runners import task_runner_from_settings
from placewright.access import UNRESTRICTED, Access
from placewright.errors import BlobUnusable, QualityGateFailed, first_line
from placewright.manifest import Manifest, to_json
from placewright.plan import RunPlan, plan_run
from placewright.publish import PublishedRun
from placewright.republish import remember, republish, run_key
from placewright.request import RunRequest
from placewright.settings import Settings, get_settings
from placewright.validation import validate


def arrived_from_outside() -> bool:
    """Whether this flow run came from outside: a deployment's flow run, or a flow called by one.

    A deployment's flow runs are what the Prefect UI, ``run_deployment``, schedules and the HTTP
    service start: someone else's request, not the local user's.
    """
    context = FlowRunContext.get()
    flow_run = context.flow_run if context is not None else None
    if flow_run is None:
        return False
    if flow_run.deployment_id is not None:
        return True
    if flow_run.parent_task_run_id is None:
        return False  # a top-level run that no deployment started: the CLI, a script, a test
    from prefect.runtime import deployment

    return deployment.id is not None  # a subflow: the deployment of the run that called it


def run_access(settings: Settings) -> Access:
    """Where this flow run may read and publish: the ``access`` roots when it arrived from outside."""
    return Access.remote(settings) if arrived_from_outside() else UNRESTRICTED


# validate_parameters=False: the request is checked inside, by the contract's own rules, so a bad value
# is refused with the same one-line message as on the CLI and in a campaign file (not Prefect's).
@contract_flow(name="place-product", task_runner=task_runner_from_settings(), validate_parameters=False)
def place_product(request: RunRequest, refresh: bool = False) -> Manifest:
    """Place a product in one scene per prompt and per background; returns the run's manifest.

    Args:
        request: the product, its scenes (prompts and/or backgrounds) and the run's options.
        refresh: recompute every stage instead of reusing cached results.

    Raises:
        InvalidInput: a bad request or product (one line naming the problem).
    """
    settings = get_settings()
    logger = get_run_logger()
    request = validate(RunRequest, request)  # a dict from the UI or a deployment; a model passes as it is
    with tempfile.TemporaryDirectory(prefix="placewright-download-") as downloads:
        plan = plan_run(request, settings, downloads=Path(downloads), access=run_access(settings))
        run_id, created_at = run_identity()
        logger.info("run %s: %d variant(s) of %s", run_id, len(plan.variants), plan.product.source)
        key = run_key(plan, settings)
        identical = (
            None
            if refresh or not settings.reuse_identical_runs
            else republish(plan.out, key, run_path=run_id, run_id=run_id, created_at=created_at, settings=settings)
        )
        if identical is not None:  # the same product, scenes, settings and code as an earlier run: its files
            logger.info("run %s: identical to run %s, published from its files", run_id, identical.copied_from)
            published = identical
        else:
            progress = VariantProgress(run_id, total=len(plan.variants))
            try:
                try:
                    published = _make(plan, settings, run_id, created_at, refresh, progress)
                except BlobUnusable as exc:  # a cached stage's image was evicted or corrupt: recompute, once
                    logger.warning("%s: making the product again with every stage recomputed", first_line(exc))
                    published = _make(plan, settings, run_id, created_at, True, None)
            finally:
                evict_intermediates(plan.out, settings)
            remember(plan.out, key, published, run_id, settings)
    manifest = published.manifest
    report_run(manifest, published.manifest_url, published.sheet_preview)
    for variant in manifest.variants:
        if variant.verdict == "needs_review" and variant.quality is not None:
            logger.warning("variant %d needs review: %s", variant.index, variant.quality.summary())
    if manifest.dropped and not manifest.variants:
        reasons = "; ".join(f"variant {d.index}: {d.quality.summary()}" for d in manifest.dropped)
        raise QualityGateFailed(f"every variant failed the quality gate and was left out ({reasons})")
    return manifest


def _make(
    plan: RunPlan, settings: Settings, run_id: str, created_at: str, refresh: bool, progress: VariantProgress | None
) -> PublishedRun:
    """Submit the product's stages, wait, apply the quality gate and publish; raises the earliest failure."""
    run = submit_product_run(plan, settings, run_id=run_id, run_path=run_id, created_at=created_at, refresh=refresh)
    for _ in as_completed(run.finals):
        if progress is not None:
            progress.variant_finished()
    apply_quality_gate(run)  # variants that failed a scene-dependent check: made again, next seed
    raise_first_failure(run)  # all or nothing: the earliest failure, as its stage raised it
    return publish_product_run(run, settings)


if __name__ == "__main__":
    print(to_json(place_product(RunRequest(product=sys.argv[1], prompts=sys.argv[2:]))), end="")
