"""The scene stage's task."""

from __future__ import annotations

from placewright.scene import fit_background, generate_scene
from placewright.settings import SceneSettings
from placewright.store import ImageRef
from placewright.types import Size
from tasks.common import StageIO, stage_task
from tasks.refs import SceneOutput


@stage_task("scene", gpu=True)
def make_scene(
    prompt: str | None,
    seed: int,
    background: ImageRef | None,
    size: Size,
    surface: str,
    options: SceneSettings,
    store_root: str,
) -> SceneOutput:
    """The variant's background: its provided image fitted to size, or one generated from its prompt."""
    io = StageIO(store_root)
    if background is not None:
        result = fit_background(io.get(background), size=size)
    else:
        result = generate_scene(
            str(prompt), size=size, seed=seed, surface=surface, options=options, raise_transient=io.raise_transient
        )
    return SceneOutput(io.put(result.image), result.surface, result.record)
