"""The ``campaign`` flow: every product of a campaign in every scene, published under one run.

A campaign expands into one run request per product (:meth:`CampaignSpec.requests`: the same
contract as ``place-product``'s). Outputs go under ``<out>/<campaign name>/<run_id>/``: one folder
per product (its images, contact sheet, gallery and ``manifest.json``, as place-product writes them),
the campaign's contact sheet and ``index.html`` gallery, and ``campaign.json``, the
:class:`~placewright.manifest.CampaignSummary`, written last. All products' stages are submitted at
once and run side by side on the task runner; every variant passes the quality gate, and the
variants it sends back are made again round by round for all products together.

**Final state.** A broken product (an unreadable file, a URL that fails, a product the cut-out
refuses) or a failed variant does not stop the others: what finished is published and the summary
lists what failed and why. The flow run ends **Completed** only when every variant of every product
was published; otherwise it ends **Failed** (after publishing what it could), so the dashboard shows
it and a Retry re-runs only what had not finished: the stages that had are Cached, published
objects are not written again. A product whose cached stages point at a missing or corrupt
intermediate image (evicted from the cache, truncated) is made again once with every stage
recomputed; at the end, the local intermediate-image cache is bounded (``cache_max_bytes``).
"""

from __future__ import annotations

import io
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from prefect import get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.futures import as_completed

from flows.artifacts import VariantProgress, embedded_image, is_browsable
from flows.contract_flow import contract_flow
from flows.pipeline import (
    ProductRun,
    apply_quality_gate,
    evict_intermediates,
    publish_product_run,
    result_storage,
    run_identity,
    submit_product_run,
    unusable_blob,
    variant_failures,
)
from flows.place_product import run_access
from flows.runners import task_runner_from_settings
from placewright.access import Access
from placewright.campaign import CampaignProduct, CampaignSpec, load_campaign, parse_campaign
from placewright.contact_sheet import Tile, contact_sheet
from placewright.errors import BlobUnusable, InvalidInput, PlacewrightError, first_line
from placewright.gallery import GALLERY_NAME, campaign_gallery
from placewright.imageio import CONTENT_TYPES, downscale, encode_image
from placewright.manifest import CampaignSummary, Manifest, ProductOutcome, VariantOutcome, to_json
from placewright.plan import list_variants, output_location, plan_run, with_defaults
from placewright.publish import CONTACT_SHEET_STEM, SHEET_PREVIEW_QUALITY, SHEET_PREVIEW_SIDE, PublishedRun, sheet_lines
from placewright.republish import remember, republish, run_key
from placewright.request import RunRequest, Variant
from placewright.settings import Settings, get_settings
from placewright.storage import Location, StoredObject

SUMMARY_NAME = "campaign.json"
SUMMARY_KEY = "campaign-summary"
TABLE_KEY = "campaign-variants"


class CampaignIncomplete(PlacewrightError):
    """Some variants of a campaign were not published (the summary says which and why)."""


@dataclass
class ProductJob:
    """One product of the campaign on its way: its request, its submitted run, what became of it."""

    line: CampaignProduct
    request: RunRequest
    error: str | None = None  # the product itself failed (no variant was made)
    run: ProductRun | None = None
    failures: dict[int, str] = field(default_factory=dict)
    manifest: str | None = None
    manifest_url: str | None = None
    published: Manifest | None = None
    thumbnails: dict[int, bytes] = field(default_factory=dict)  # variant index -> small JPEG (contact sheet)
    unusable: BlobUnusable | None = None  # a missing or corrupt intermediate image: made again, once
    healed: bool = False
    run_key: str | None = None  # what decides what the product makes (placewright.republish.run_key)


# validate_parameters=False: the campaign is checked inside (field paths in one-line messages).
@contract_flow(name="campaign", task_runner=task_runner_from_settings(), validate_parameters=False)
def run_campaign(
    campaign: CampaignSpec | None = None,
    campaign_file: str | None = None,
    refresh: bool = False,
) -> CampaignSummary:
    """Run a campaign: every product in every scene; returns the summary (also written as campaign.json).

    Args:
        campaign: the campaign itself (the UI shows it as a form); relative paths are resolved
            against the working folder.
        campaign_file: or a campaign YAML file (relative paths inside it: against its folder).
        refresh: recompute every stage instead of reusing cached results.

    Raises:
        InvalidInput: neither or both of campaign/campaign_file, or an invalid campaign.
        CampaignIncomplete: after publishing, when any variant failed (see the module doc).
    """
    settings = get_settings()
    logger = get_run_logger()
    access = run_access(settings)  # a deployment's run: inputs and out under the access roots
    spec = _campaign(campaign, campaign_file, access)
    out = spec.out or settings.out_dir
    location = output_location(out, spec.options.urls, settings)  # campaign.json: the products' URL mode
    location.check_urls()
    location.check_reachable()
    run_id, created_at = run_identity()
    run_path = f"{spec.name}/{run_id}"
    logger.info(
        "campaign %s, run %s: %d product(s) x %d variant(s)",
        spec.name,
        run_id,
        len(spec.products),
        spec.variants_per_product,
    )
    jobs = [ProductJob(line, request) for line, request in spec.requests()]
    storage = result_storage(out, settings)  # once for every product (a block save for remote stores)
    with tempfile.TemporaryDirectory(prefix="placewright-campaign-") as downloads:
        for job in jobs:
            try:
                plan = plan_run(job.request, settings, downloads=Path(downloads) / str(job.line.name), access=access)
            except InvalidInput as exc:
                job.error = str(exc)
                logger.error("product %s: %s", job.line.name, exc)
                continue
            job.run_key = run_key(plan, settings)
            product_path = f"{run_path}/{job.line.name}"
            if (
                not refresh
                and settings.reuse_identical_runs
                and (
                    identical := republish(
                        plan.out,
                        job.run_key,
                        run_path=product_path,
                        run_id=run_id,
                        created_at=created_at,
                        settings=settings,
                    )
                )
            ):  # the same product, scenes, settings and code as an earlier run: its files, no stage runs
                logger.info("product %s: identical to run %s, published from its files", job.line.name,
                            identical.copied_from)  # fmt: skip
                _published(job, identical)
                continue
            job.run = submit_product_run(
                plan,
                settings,
                run_id=run_id,
                run_path=product_path,
                created_at=created_at,
                refresh=refresh,
                storage=storage,
            )
        progress = VariantProgress(run_id, total=spec.variant_count)
        for _ in range(sum(spec.variants_per_product for job in jobs if job.run is None)):
            progress.variant_finished()  # a broken product's variants are done: they failed
        for _ in as_completed([f for job in jobs if job.run is not None for f in job.run.finals]):
            progress.variant_finished()
        try:
            apply_quality_gate(*(job.run for job in jobs if job.run is not None))
            for job in jobs:
                _publish(job, settings)
            healing = [(job, job.run, job.unusable) for job in jobs if job.run is not None and job.unusable is not None]
            for job, run, unusable in healing:  # its cached stages' images were evicted or corrupt: every stage again
                logger.warning(
                    "product %s: %s: making it again with every stage recomputed", job.line.name, first_line(unusable)
                )
                job.run = submit_product_run(
                    run.plan,
                    settings,
                    run_id=run_id,
                    run_path=f"{run_path}/{job.line.name}",
                    created_at=created_at,
                    refresh=True,
                    storage=storage,
                )
                job.healed, job.unusable = True, None
            apply_quality_gate(*(job.run for job, _, _ in healing if job.run is not None))
            for job, _, _ in healing:
                _publish(job, settings)
        finally:
            evict_intermediates(out, settings)
    summary = _summary(spec, jobs, run_id, created_at, location.uri(run_path), settings)
    fmt = spec.options.format or settings.output.format
    summary, sheet_preview = _publish_pictures(summary, jobs, location, run_path, fmt, settings)
    location.write(
        StoredObject(
            f"{run_path}/{SUMMARY_NAME}",
            to_json(summary).encode(),
            "application/json",
            settings.storage.manifest_cache_control,
        )
    )
    _report(summary, location.url_for(f"{run_path}/{SUMMARY_NAME}"), sheet_preview)
    if summary.failed_variants:
        raise CampaignIncomplete(
            f"campaign {spec.name}: {summary.published_variants} of {summary.variants} variant(s) published; "
            f"failed: {_failure_line(summary)} (summary: {summary.location}/{SUMMARY_NAME})"
        )
    return summary


def _campaign(
    campaign: CampaignSpec | dict[str, Any] | None, campaign_file: str | None, access: Access
) -> CampaignSpec:
    if (campaign is None) == (campaign_file is None):
        raise InvalidInput("give either campaign or campaign_file (exactly one)")
    if campaign_file is not None:
        return load_campaign(campaign_file, access=access)
    if isinstance(campaign, CampaignSpec):
        if not access.restricted:
            return campaign
        campaign = campaign.model_dump()  # checked again, against the access roots
    return parse_campaign(campaign, base_dir=Path.cwd(), source="campaign", access=access)  # type: ignore[arg-type]


def _publish(job: ProductJob, settings: Settings) -> None:
    run = job.run
    if run is None:
        return
    job.failures = variant_failures(run)
    if job.failures and not job.healed and (unusable := unusable_blob(run)) is not None:
        job.unusable = unusable  # made again (see run_campaign), then published
        return
    if len(job.failures) == len(run.plan.variants):
        return  # nothing to publish
    try:
        published = publish_product_run(run, settings, skip=frozenset(job.failures))
    except Exception as exc:  # publishing itself failed (after its retries): every variant is lost
        if isinstance(exc, BlobUnusable) and not job.healed:
            job.unusable = exc  # made again (see run_campaign), then published
            return
        reason = first_line(exc)
        job.failures = {v.index: job.failures.get(v.index, f"publish: {reason}") for v in run.plan.variants}
        return
    _published(job, published)
    if job.run_key is not None:
        remember(run.plan.out, job.run_key, published, run.run_path, settings)


def _published(job: ProductJob, published: PublishedRun) -> None:
    job.manifest = f"{job.line.name}/manifest.json"
    job.manifest_url = published.manifest_url
    job.published = published.manifest
    job.thumbnails = published.thumbnails


def _summary(
    spec: CampaignSpec, jobs: list[ProductJob], run_id: str, created_at: str, location: str, settings: Settings
) -> CampaignSummary:
    products = []
    for job in jobs:
        variants = job.run.plan.variants if job.run else list_variants(with_defaults(job.request, settings), settings)
        entries = {v.index: v for v in job.published.variants} if job.published else {}
        dropped = {d.index: d for d in job.published.dropped} if job.published else {}
        outcomes = []
        for variant in variants:
            if (entry := entries.get(variant.index)) is not None:
                outcomes.append(
                    VariantOutcome(
                        **_variant_fields(entry),
                        status="published",
                        verdict=entry.verdict,
                        image=entry.image,
                        url=entry.url,
                        preview_url=entry.preview_url,
                    )
                )
            elif (left_out := dropped.get(variant.index)) is not None:
                error = f"quality gate: {left_out.quality.summary()}"
                outcomes.append(VariantOutcome(**_variant_fields(left_out), status="dropped", error=error))
            else:
                error = job.error or job.failures.get(variant.index, "not run")
                outcomes.append(VariantOutcome(**dict(variant), status="failed", error=error))
        products.append(
            ProductOutcome(
                name=str(job.line.name),
                source=job.line.source,
                status="failed" if job.error else ("published" if not job.failures else "incomplete"),
                error=job.error,
                manifest=job.manifest,
                manifest_url=job.manifest_url,
                variants=outcomes,
            )
        )
    total = sum(len(p.variants) for p in products)
    done = sum(v.status == "published" for p in products for v in p.variants)
    review = sum(v.verdict == "needs_review" for p in products for v in p.variants)
    dropped_count = sum(v.status == "dropped" for p in products for v in p.variants)
    return CampaignSummary(
        campaign=spec.name,
        run_id=run_id,
        created_at=created_at,
        location=location,
        status="completed" if done == total else "incomplete",
        variants=total,
        published_variants=done,
        failed_variants=total - done,
        needs_review=review,
        dropped_variants=dropped_count,
        products=products,
    )


def _variant_fields(variant: Variant) -> dict[str, Any]:
    """The run contract's fields of a variant (an entry's seed is the one it was made with)."""
    return {name: getattr(variant, name) for name in Variant.model_fields}


def _publish_pictures(
    summary: CampaignSummary, jobs: list[ProductJob], location: Location, run_path: str, fmt: str, settings: Settings
) -> tuple[CampaignSummary, bytes]:
    """Write the campaign's contact sheet and gallery beside campaign.json.

    Returns the summary naming them, and a small JPEG of the sheet for the Prefect run page.
    """
    manifests = {str(job.line.name): job.published for job in jobs if job.published is not None}
    thumbnails = {str(job.line.name): job.thumbnails for job in jobs}
    tiles = []
    for product in summary.products:
        manifest = manifests.get(product.name)
        entries = {v.index: v for v in manifest.variants} if manifest else {}
        for outcome in product.variants:
            data = thumbnails.get(product.name, {}).get(outcome.index)
            entry = entries.get(outcome.index)
            lines = (
                sheet_lines(entry.stages, entry.quality, entry.scene_label)
                if entry is not None
                else (outcome.scene_label, outcome.error or "")
            )
            tiles.append(
                Tile(
                    image=np.asarray(Image.open(io.BytesIO(data)).convert("RGB")) if data is not None else None,
                    title=f"{product.name} #{outcome.index} · seed {outcome.seed}",
                    verdict=outcome.verdict or outcome.status,
                    lines=lines,
                )
            )
    ext = "jpg" if fmt == "jpeg" else fmt
    sheet_name = f"{CONTACT_SHEET_STEM}.{ext}"
    sheet = contact_sheet(tiles, f"campaign {summary.campaign} · run {summary.run_id}")
    output = settings.output
    data = encode_image(sheet, fmt, quality=output.quality, srgb_profile=output.srgb_profile)  # type: ignore[arg-type]
    cache = location.settings.image_cache_control
    location.write(StoredObject(f"{run_path}/{sheet_name}", data, CONTENT_TYPES[fmt], cache))
    named = summary.model_copy(
        update={
            "contact_sheet": sheet_name,
            "contact_sheet_url": location.url_for(f"{run_path}/{sheet_name}"),
            "gallery": GALLERY_NAME,
            "gallery_url": location.url_for(f"{run_path}/{GALLERY_NAME}"),
        }
    )
    presigned = location.url_mode == "presigned"
    page = campaign_gallery(
        named,
        manifests,
        contact_sheet=named.contact_sheet_url if presigned else sheet_name,
        absolute=presigned,
    )
    gallery = StoredObject(
        f"{run_path}/{GALLERY_NAME}", page.encode(), "text/html; charset=utf-8", settings.storage.manifest_cache_control
    )
    location.write(gallery)
    preview = encode_image(downscale(sheet, SHEET_PREVIEW_SIDE), "jpeg", quality=SHEET_PREVIEW_QUALITY)
    return named, preview


def _failure_line(summary: CampaignSummary) -> str:
    parts = []
    for product in summary.products:
        if product.error:
            parts.append(f"{product.name} ({product.error})")
            continue
        failed = [v for v in product.variants if v.status != "published"]
        if failed:
            parts.append(f"{product.name} variant(s) {', '.join(str(v.index) for v in failed)} ({failed[0].error})")
    return "; ".join(parts)


def _report(summary: CampaignSummary, summary_url: str, sheet_preview: bytes) -> None:
    """A table of every variant (status, verdict, URL or reason) and a markdown summary with the contact sheet."""
    rows = [
        {
            "product": product.name,
            "variant": variant.index,
            "scene": variant.scene_label,
            "status": variant.status,
            "verdict": variant.verdict or "-",
            "url or error": variant.url or variant.error,
        }
        for product in summary.products
        for variant in product.variants
    ]
    create_table_artifact(table=rows, key=TABLE_KEY, description=f"campaign {summary.campaign} {summary.run_id}")
    lines = [
        f"# Campaign {summary.campaign}: {summary.status}",
        "",
        embedded_image(sheet_preview, "contact sheet"),
        "",
        f"Run `{summary.run_id}`: {summary.published_variants} of {summary.variants} variant(s) published "
        f"to `{summary.location}` ([campaign.json]({summary_url}), [gallery]({summary.gallery_url})); "
        f"{summary.needs_review} need review, {summary.dropped_variants} left out by the quality gate.",
        "",
        "| product | status | published | failed: why |",
        "|---|---|---|---|",
    ]
    for product in summary.products:
        published = [v for v in product.variants if v.status == "published"]
        failed = [v for v in product.variants if v.status != "published"]
        shown = ", ".join(f"[{v.index}]({v.url})" if is_browsable(v.url) else str(v.index) for v in published)
        why = "; ".join(sorted({str(v.error) for v in failed})) or "-"
        lines.append(f"| {product.name} | {product.status} | {shown or '-'} | {why} |")
    create_markdown_artifact(
        key=SUMMARY_KEY,
        markdown="\n".join(lines) + "\n",
        description=f"campaign {summary.campaign}: contact sheet, verdicts, links",
    )
