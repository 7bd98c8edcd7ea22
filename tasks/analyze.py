"""The analyze stage's task."""

from __future__ import annotations

from placewright.analyze import AnalyzeResult, analyze
from placewright.settings import AnalyzeSettings
from tasks.common import StageIO, stage_task
from tasks.refs import CutoutOutput


@stage_task("analyze")
def analyze_product(
    cutout: CutoutOutput, filename: str, prompts: list[str], options: AnalyzeSettings, store_root: str
) -> AnalyzeResult:
    """Name the product and recommend its size in the frame."""
    io = StageIO(store_root)
    return analyze(
        io.get(cutout.image), filename=filename, prompts=prompts, options=options, raise_transient=io.raise_transient
    )
