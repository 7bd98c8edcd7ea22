from __future__ import annotations

from prefect import task

from placewright.cutout import CUTTERS, cut_out
from placewright.settings import CutoutSettings
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
from tasks.refs import CutoutOutput, StagedImage


@task(name="cut-out", cache_policy=StageCache(registry=CUTTERS), tags=[GPU_TAG], **STAGE_TASK_OPTIONS)
def cut_out_product(image: StagedImage | ImageRef, options: CutoutSettings, store_root: str) -> CutoutOutput:
    """Separate the product from its backdrop; an RGBA cut-out cropped to content.

    ``image`` is the enhance stage's output (or a plain reference), so the flow can pass the
    enhance task's future straight in.
    """
    inject_fault("cutout")
    store = blob_store(store_root)
    ref = image.image if isinstance(image, StagedImage) else image
    result = cut_out(store.get(ref), options=options, raise_transient=not is_last_attempt())
    cache_only_if_healthy(result.record)
    return CutoutOutput(store.put(result.rgba), result.box, result.record)
