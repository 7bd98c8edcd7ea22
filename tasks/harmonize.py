"""The harmonize stage's task."""

from __future__ import annotations

from placewright.harmonize import harmonize
from placewright.settings import HarmonizeSettings
from tasks.common import StageIO, stage_task
from tasks.refs import CompositeOutput, StagedImage


@stage_task("harmonize", gpu=True)
def harmonize_variant(
    composite: CompositeOutput, prompt: str | None, seed: int, options: HarmonizeSettings, store_root: str
) -> StagedImage:
    """Relight around the product with the variant's seed and prompt; product pixels stay as composited."""
    io = StageIO(store_root)
    result = harmonize(
        io.get(composite.image),
        io.get(composite.product_alpha),
        seed=seed,
        prompt=prompt,
        options=options,
        raise_transient=io.raise_transient,
    )
    return StagedImage(io.put(result.image), result.record)
