from __future__ import annotations

from prefect import task

from placewright.analyze import ANALYZERS, AnalyzeResult, analyze
from placewright.settings import AnalyzeSettings
from tasks.common import (
    STAGE_TASK_OPTIONS,
    StageCache,
    blob_store,
    cache_only_if_healthy,
    inject_fault,
    is_last_attempt,
)
from tasks.refs import CutoutOutput


@task(name="analyze", cache_policy=StageCache(registry=ANALYZERS), **STAGE_TASK_OPTIONS)
def analyze_product(
    cutout: CutoutOutput, filename: str, prompts: list[str], options: AnalyzeSettings, store_root: str
) -> AnalyzeResult:
    """Name the product and recommend its size in the frame."""
    inject_fault("analyze")
    rgba = blob_store(store_root).get(cutout.image)
    result = analyze(rgba, filename=filename, prompts=prompts, options=options, raise_transient=not is_last_attempt())
    cache_only_if_healthy(result.record)
    return result
