"""The cut-out stage's task."""

from __future__ import annotations

from placewright.cutout.verify import verified_cut_out
from placewright.settings import CutoutSettings, QualitySettings
from tasks.common import StageIO, stage_task
from tasks.refs import CutoutOutput, StagedImage


@stage_task("cutout", gpu=True)
def cut_out_product(
    enhance: StagedImage, options: CutoutSettings, quality_gate: QualitySettings, store_root: str
) -> CutoutOutput:
    """Separate the (enhanced) product from its backdrop, checked against a second opinion; cropped to content."""
    io = StageIO(store_root)
    verified = verified_cut_out(
        io.get(enhance.image), options=options, quality=quality_gate, raise_transient=io.raise_transient
    )
    result = verified.result
    return CutoutOutput(io.put(result.rgba), result.box, result.record, verified.check)
