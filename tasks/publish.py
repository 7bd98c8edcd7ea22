from __future__ import annotations

from dataclasses import dataclass

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from placewright.analyze import AnalyzeResult
from placewright.backends import StageRecord
from placewright.locate import LocateResult
from placewright.publish import ProductOutput, VariantOutput, publish_run
from placewright.settings import OutputSettings, get_settings
from placewright.storage import open_location
from tasks.common import blob_store, inject_fault, is_last_attempt
from tasks.refs import CompositeOutput, CutoutOutput, SceneOutput, StagedImage, VariantSpec


@dataclass(frozen=True)
class VariantParts:
    """Everything one finished variant is made of, as references."""

    spec: VariantSpec
    scene: SceneOutput
    located: LocateResult
    composited: CompositeOutput
    final: StagedImage


@dataclass(frozen=True)
class ProductParts:
    source: str
    sha256: str
    enhanced: StagedImage
    cutout: CutoutOutput
    analysis: AnalyzeResult


@task(name="publish", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[1, 4])
def publish_outputs(
    run_id: str,
    run_path: str,
    created_at: str,
    out_dir: str,
    product: ProductParts,
    variants: list[VariantParts],
    output: OutputSettings,
    store_root: str,
) -> dict:
    """Publish the run (images first, manifest last; idempotent); returns what was published.

    Returns:
        ``{"manifest": <manifest dict>, "manifest_url": str, "written": [keys], "unchanged": [keys]}``.
    """
    inject_fault("publish")
    logger = get_run_logger()
    store = blob_store(store_root)
    location = open_location(out_dir, get_settings().storage)
    product_stages: dict[str, StageRecord] = {
        "enhance": product.enhanced.record,
        "cutout": product.cutout.record,
        "analyze": product.analysis.record,
    }
    analysis = {**product.analysis.analysis.as_dict(), "backend": product.analysis.record.backend}
    published = publish_run(
        location=location,
        run_path=run_path,
        run_id=run_id,
        created_at=created_at,
        product=ProductOutput(
            source=product.source,
            sha256=product.sha256,
            cutout=store.get(product.cutout.image),
            analysis=analysis,
            stages=product_stages,
        ),
        variants=[
            VariantOutput(
                index=v.spec.index,
                seed=v.spec.seed,
                prompt=v.spec.prompt if v.spec.background is None else None,
                background=v.spec.background_source,
                image=store.get(v.final.image),
                composite=store.get(v.composited.image),
                product_alpha=store.get(v.composited.product_alpha),
                product_box=v.composited.product_box,
                surface_box=v.located.surface.box,
                surface_line_y=v.located.surface.line_y,
                stages={
                    "scene": v.scene.record,
                    "locate": v.located.record,
                    "composite": v.composited.record,
                    "harmonize": v.final.record,
                },
            )
            for v in variants
        ],
        output=output,
        clean_on_failure=is_last_attempt(),
    )
    logger.info(
        "published %s: %d object(s) written, %d already there",
        published.run_uri,
        len(published.written),
        len(published.unchanged),
    )
    return {
        "manifest": published.manifest.model_dump(mode="json"),
        "manifest_url": published.manifest_url,
        "written": published.written,
        "unchanged": published.unchanged,
    }
