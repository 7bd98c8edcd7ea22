"""The composite stage's task."""

from __future__ import annotations

from placewright.analyze import AnalyzeResult
from placewright.composite import composite
from placewright.locate import LocateResult
from placewright.settings import CompositeSettings
from tasks.common import StageIO, stage_task
from tasks.refs import CompositeOutput, CutoutOutput, SceneOutput


@stage_task("composite")
def composite_variant(
    scene: SceneOutput,
    locate: LocateResult,
    cutout: CutoutOutput,
    analyze: AnalyzeResult,
    surface: str,
    seed: int,
    options: CompositeSettings,
    store_root: str,
) -> CompositeOutput:
    """Put the product on the surface with matched colour and shadows."""
    io = StageIO(store_root)
    result = composite(
        io.get(scene.image),
        io.get(cutout.image),
        surface=locate.surface,
        analysis=analyze.analysis,
        surface_phrase=surface,
        options=options,
        seed=seed,
    )
    return CompositeOutput(io.put(result.image), io.put(result.product_alpha), result.product_box, result.record)
