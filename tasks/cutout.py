"""The cut-out stage's task."""

from __future__ import annotations

from placewright.cutout import cut_out
from placewright.settings import CutoutSettings
from tasks.common import StageIO, stage_task
from tasks.refs import CutoutOutput, StagedImage


@stage_task("cutout", gpu=True)
def cut_out_product(enhance: StagedImage, options: CutoutSettings, store_root: str) -> CutoutOutput:
    """Separate the (enhanced) product from its backdrop; an RGBA cut-out cropped to content."""
    io = StageIO(store_root)
    result = cut_out(io.get(enhance.image), options=options, raise_transient=io.raise_transient)
    return CutoutOutput(io.put(result.rgba), result.box, result.record)
