from __future__ import annotations

from prefect import task

from placewright.analyze import AnalyzeResult
from placewright.composite import COMPOSITORS, composite
from placewright.locate import LocateResult
from placewright.settings import CompositeSettings
from tasks.common import STAGE_TASK_OPTIONS, StageCache, blob_store, cache_only_if_healthy, inject_fault
from tasks.refs import CompositeOutput, CutoutOutput, SceneOutput


@task(name="composite", cache_policy=StageCache(registry=COMPOSITORS), **STAGE_TASK_OPTIONS)
def composite_variant(
    scene: SceneOutput,
    located: LocateResult,
    cutout: CutoutOutput,
    analysis: AnalyzeResult,
    options: CompositeSettings,
    seed: int,
    store_root: str,
    surface_phrase: str = "table",
) -> CompositeOutput:
    """Put the product on the surface with matched colour and shadows."""
    inject_fault("composite")
    store = blob_store(store_root)
    result = composite(
        store.get(scene.image),
        store.get(cutout.image),
        surface=located.surface,
        analysis=analysis.analysis,
        options=options,
        seed=seed,
        surface_phrase=surface_phrase,
    )
    cache_only_if_healthy(result.record)
    return CompositeOutput(store.put(result.image), store.put(result.product_alpha), result.product_box, result.record)
