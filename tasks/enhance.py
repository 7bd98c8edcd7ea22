from __future__ import annotations

from prefect import task

from placewright.enhance import ENHANCERS, enhance
from placewright.settings import EnhanceSettings
from placewright.store import ImageRef
from tasks.common import (
    GPU_TAG,
    STAGE_TASK_OPTIONS,
    StageCache,
    blob_store,
    cache_only_if_healthy,
    inject_fault,
    is_last_attempt,
)
from tasks.refs import StagedImage


@task(name="enhance", cache_policy=StageCache(registry=ENHANCERS), tags=[GPU_TAG], **STAGE_TASK_OPTIONS)
def enhance_product(image: ImageRef, options: EnhanceSettings, store_root: str) -> StagedImage:
    """Upscale and sharpen the product photo when it is small."""
    inject_fault("enhance")
    store = blob_store(store_root)
    result = enhance(store.get(image), options=options, raise_transient=not is_last_attempt())
    cache_only_if_healthy(result.record)
    return StagedImage(store.put(result.image), result.record)
