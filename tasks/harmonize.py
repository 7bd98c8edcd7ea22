from __future__ import annotations

from prefect import task

from placewright.harmonize import HARMONIZERS, harmonize
from placewright.settings import HarmonizeSettings
from tasks.common import (
    GPU_TAG,
    STAGE_TASK_OPTIONS,
    StageCache,
    blob_store,
    cache_only_if_healthy,
    inject_fault,
    is_last_attempt,
)
from tasks.refs import CompositeOutput, StagedImage


@task(name="harmonize", cache_policy=StageCache(registry=HARMONIZERS), tags=[GPU_TAG], **STAGE_TASK_OPTIONS)
def harmonize_variant(composited: CompositeOutput, options: HarmonizeSettings, store_root: str) -> StagedImage:
    """Relight around the product; product pixels stay exactly as composited."""
    inject_fault("harmonize")
    store = blob_store(store_root)
    result = harmonize(
        store.get(composited.image),
        store.get(composited.product_alpha),
        options=options,
        raise_transient=not is_last_attempt(),
    )
    cache_only_if_healthy(result.record)
    return StagedImage(store.put(result.image), result.record)
