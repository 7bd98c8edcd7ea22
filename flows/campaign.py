"""The ``campaign`` flow: every product of a campaign in every scene, published under one run.

Outputs go under ``<out>/<campaign name>/<run_id>/``: one folder per product (its images and
``manifest.json``, as place-product writes them) and ``campaign.json``, the summary, written
last. All products' stages are submitted at once and run side by side on the task runner.

**Final state.** A broken product (an unreadable file, a URL that fails) or a failed variant
does not stop the others: what finished is published and the summary lists what failed and why.
The flow run ends **Completed** only when every variant of every product was published; otherwise
it ends **Failed** (after publishing what it could), so the dashboard shows it and a Retry
re-runs only what had not finished: the stages that had are Cached, published objects are not
written again.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.futures import as_completed

from flows.artifacts import VariantProgress, is_browsable
from flows.pipeline import (
    ProductRun,
    publish_product_run,
    result_storage,
    run_identity,
    submit_product_run,
    variant_failures,
)
from flows.runners import task_runner_from_settings
from placewright.campaign import CampaignJob, CampaignSpec, campaign_jobs, fetch_product, load_campaign
from placewright.errors import InvalidInput, PlacewrightError
from placewright.request import build_request
from placewright.settings import Settings, get_settings
from placewright.storage import StoredObject, open_location

SUMMARY_NAME = "campaign.json"
SUMMARY_KEY = "campaign-summary"
TABLE_KEY = "campaign-variants"


class CampaignIncomplete(PlacewrightError):
    """Some variants of a campaign were not published (the summary says which and why)."""


@dataclass
class ProductOutcome:
    """What became of one product of the campaign."""

    job: CampaignJob
    error: str | None = None  # the product itself failed (no variant was made)
    run: ProductRun | None = None
    failures: dict[int, str] = field(default_factory=dict)
    manifest: dict | None = None
    manifest_url: str | None = None


@flow(name="campaign", task_runner=task_runner_from_settings())
def run_campaign(
    campaign: CampaignSpec | None = None,
    campaign_file: str | None = None,
    refresh: bool = False,
) -> dict:
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
    spec = _campaign(campaign, campaign_file)
    out = spec.out or settings.out_dir
    location = open_location(out, settings.storage)
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
    outcomes: list[ProductOutcome] = []
    storage = result_storage(out, settings)  # once for every product (a block save for remote stores)
    with tempfile.TemporaryDirectory(prefix="placewright-campaign-") as downloads:
        for job in campaign_jobs(spec):
            outcome = ProductOutcome(job)
            outcomes.append(outcome)
            try:
                path = _local_copy(job.product, Path(downloads), settings)
                request = build_request(
                    path,
                    prompts=job.prompts,
                    backgrounds=job.backgrounds,
                    surface=job.surface,
                    size=spec.options.size,
                    seed=job.seed,
                    format=spec.options.format,
                    out=out,
                    settings=settings,
                )
            except InvalidInput as exc:
                outcome.error = str(exc)
                logger.error("product %s: %s", job.product_name, exc)
                continue
            outcome.run = submit_product_run(
                request,
                settings,
                run_id=run_id,
                run_path=f"{run_path}/{job.product_name}",
                created_at=created_at,
                refresh=refresh,
                source=job.product,
                storage=storage,
            )
        progress = VariantProgress(run_id, total=spec.variant_count)
        for _ in range(sum(spec.variants_per_product for o in outcomes if o.run is None)):
            progress.variant_finished()  # a broken product's variants are done: they failed
        for _ in as_completed([f for o in outcomes if o.run is not None for f in o.run.finals]):
            progress.variant_finished()
        for outcome in outcomes:
            _publish(outcome, settings)
    summary = _summary(spec, run_id, created_at, location.uri(run_path), outcomes)
    location.write(
        StoredObject(
            f"{run_path}/{SUMMARY_NAME}",
            (json.dumps(summary, indent=2, ensure_ascii=False) + "\n").encode(),
            "application/json",
            settings.storage.manifest_cache_control,
        )
    )
    _report(summary, location.url_for(f"{run_path}/{SUMMARY_NAME}"))
    if summary["failed_variants"]:
        raise CampaignIncomplete(
            f"campaign {spec.name}: {summary['published_variants']} of {summary['variants']} variant(s) published; "
            f"failed: {_failure_line(summary)} (summary: {summary['location']}/{SUMMARY_NAME})"
        )
    return summary


def _campaign(campaign: CampaignSpec | None, campaign_file: str | None) -> CampaignSpec:
    if (campaign is None) == (campaign_file is None):
        raise InvalidInput("give either campaign or campaign_file (exactly one)")
    return campaign if campaign is not None else load_campaign(str(campaign_file))


def _local_copy(product: str, downloads: Path, settings: Settings) -> str:
    """A local path for the product: itself, or a downloaded copy of a URL (removed with ``downloads``)."""
    if not product.startswith(("http://", "https://")):
        return product
    fetched = fetch_product(
        product, downloads, max_bytes=settings.limits.max_file_bytes, timeout_s=settings.limits.download_timeout_s
    )
    return str(fetched)


def _publish(outcome: ProductOutcome, settings: Settings) -> None:
    run = outcome.run
    if run is None:
        return
    outcome.failures = variant_failures(run)
    if len(outcome.failures) == len(run.specs):
        return  # nothing to publish
    try:
        published = publish_product_run(run, settings, skip=set(outcome.failures))
    except Exception as exc:  # publishing itself failed (after its retries): every variant is lost
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        outcome.failures = {spec.index: outcome.failures.get(spec.index, f"publish: {reason}") for spec in run.specs}
        return
    outcome.manifest = published["manifest"]
    outcome.manifest_url = published["manifest_url"]


def _summary(spec: CampaignSpec, run_id: str, created_at: str, location: str, outcomes: list[ProductOutcome]) -> dict:
    products = []
    for outcome in outcomes:
        published = {v["index"]: v for v in (outcome.manifest or {}).get("variants", [])}
        variants = []
        for index, (prompt, background) in enumerate(_scenes_of(outcome.job)):
            entry = {"index": index, "prompt": prompt, "background": background}
            if index in published:
                entry |= {"status": "published", "image": published[index]["image"], "url": published[index]["url"]}
            else:
                reason = outcome.error if outcome.error else outcome.failures.get(index, "not run")
                entry |= {"status": "failed", "error": reason}
            variants.append(entry)
        products.append(
            {
                "name": outcome.job.product_name,
                "source": outcome.job.product,
                "status": "failed" if outcome.error else ("published" if not outcome.failures else "incomplete"),
                "error": outcome.error,
                "manifest": f"{outcome.job.product_name}/manifest.json" if outcome.manifest else None,
                "manifest_url": outcome.manifest_url,
                "variants": variants,
            }
        )
    total = sum(len(p["variants"]) for p in products)
    done = sum(v["status"] == "published" for p in products for v in p["variants"])
    return {
        "campaign": spec.name,
        "run_id": run_id,
        "created_at": created_at,
        "location": location,
        "status": "completed" if done == total else "incomplete",
        "variants": total,
        "published_variants": done,
        "failed_variants": total - done,
        "products": products,
    }


def _scenes_of(job: CampaignJob) -> list[tuple[str | None, str | None]]:
    """Variant index -> (prompt, background), in the order the pipeline numbers them."""
    return [(p, None) for p in job.prompts] + [(None, b) for b in job.backgrounds]


def _failure_line(summary: dict) -> str:
    parts = []
    for product in summary["products"]:
        if product["error"]:
            parts.append(f"{product['name']} ({product['error']})")
            continue
        failed = [v for v in product["variants"] if v["status"] == "failed"]
        if failed:
            parts.append(
                f"{product['name']} variant(s) {', '.join(str(v['index']) for v in failed)} ({failed[0]['error']})"
            )
    return "; ".join(parts)


def _report(summary: dict, summary_url: str) -> None:
    """A table of every variant (status, URL or reason) and a markdown summary of the campaign."""
    rows = [
        {
            "product": product["name"],
            "variant": variant["index"],
            "scene": variant["prompt"] if variant["prompt"] is not None else f"background {variant['background']}",
            "status": variant["status"],
            "url or error": variant.get("url") or variant.get("error"),
        }
        for product in summary["products"]
        for variant in product["variants"]
    ]
    create_table_artifact(table=rows, key=TABLE_KEY, description=f"campaign {summary['campaign']} {summary['run_id']}")
    lines = [
        f"# Campaign {summary['campaign']}: {summary['status']}",
        "",
        f"Run `{summary['run_id']}`: {summary['published_variants']} of {summary['variants']} variant(s) published "
        f"to `{summary['location']}` ([campaign.json]({summary_url})).",
        "",
        "| product | status | published | failed: why |",
        "|---|---|---|---|",
    ]
    for product in summary["products"]:
        published = [v for v in product["variants"] if v["status"] == "published"]
        failed = [v for v in product["variants"] if v["status"] == "failed"]
        shown = ", ".join(
            f"[{v['index']}]({v['url']})" if is_browsable(v["url"]) else str(v["index"]) for v in published
        )
        why = "; ".join(sorted({str(v["error"]) for v in failed})) or "-"
        lines.append(f"| {product['name']} | {product['status']} | {shown or '-'} | {why} |")
    create_markdown_artifact(
        key=SUMMARY_KEY, markdown="\n".join(lines) + "\n", description=f"campaign {summary['campaign']}"
    )
