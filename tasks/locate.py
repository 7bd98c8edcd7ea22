from __future__ import annotations

from prefect import task

from placewright.locate import LOCATORS, LocateResult, locate
from placewright.settings import LocateSettings
from tasks.common import (
    GPU_TAG,
    STAGE_TASK_OPTIONS,
    StageCache,
    blob_store,
    cache_only_if_healthy,
    inject_fault,
    is_last_attempt,
)
from tasks.refs import SceneOutput


@task(name="locate", cache_policy=StageCache(registry=LOCATORS), tags=[GPU_TAG], **STAGE_TASK_OPTIONS)
def locate_surface(scene: SceneOutput, phrase: str, options: LocateSettings, store_root: str) -> LocateResult:
    """Find where in the scene the product stands."""
    inject_fault("locate")
    image = blob_store(store_root).get(scene.image)
    result = locate(image, phrase=phrase, known=scene.surface, options=options, raise_transient=not is_last_attempt())
    cache_only_if_healthy(result.record)
    return result
