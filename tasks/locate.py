"""The locate stage's task."""

from __future__ import annotations

from placewright.locate import LocateResult, locate
from placewright.settings import LocateSettings
from tasks.common import StageIO, stage_task
from tasks.refs import SceneOutput


@stage_task("locate", gpu=True)
def locate_surface(scene: SceneOutput, surface: str, options: LocateSettings, store_root: str) -> LocateResult:
    """Find where in the scene the product stands: the ``surface`` the run names."""
    io = StageIO(store_root)
    return locate(
        io.get(scene.image), phrase=surface, known=scene.surface, options=options, raise_transient=io.raise_transient
    )
