from __future__ import annotations

from prefect import task

from placewright.scene import SCENES, fit_background, generate_scene
from placewright.settings import SceneSettings
from placewright.types import Size
from tasks.common import (
    GPU_TAG,
    STAGE_TASK_OPTIONS,
    StageCache,
    blob_store,
    cache_only_if_healthy,
    inject_fault,
    is_last_attempt,
)
from tasks.refs import SceneOutput, VariantSpec


@task(name="scene", cache_policy=StageCache(registry=SCENES), tags=[GPU_TAG], **STAGE_TASK_OPTIONS)
def make_scene(spec: VariantSpec, size: str, options: SceneSettings, store_root: str) -> SceneOutput:
    """The variant's background: the provided image fitted to size, or one generated from the prompt."""
    inject_fault("scene")
    store = blob_store(store_root)
    if spec.background is not None:
        result = fit_background(store.get(spec.background), size=Size.parse(size))
    else:
        prompt = spec.prompt or options.default_prompt
        result = generate_scene(
            prompt, size=Size.parse(size), seed=spec.seed, options=options, raise_transient=not is_last_attempt()
        )
    cache_only_if_healthy(result.record)
    return SceneOutput(store.put(result.image), result.surface, result.record)
