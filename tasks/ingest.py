"""The ingest step: a user's image checked and stored as an intermediate (cached by content, not path)."""

from __future__ import annotations

from placewright.errors import InvalidInput
from placewright.imageio import load_image
from placewright.settings import LimitsSettings
from placewright.stages import INGEST
from placewright.store import ImageRef
from tasks.common import StageIO, stage_task


@stage_task(INGEST, not_in_key=("source", "what"))
def ingest_image(source: str, sha256: str, limits: LimitsSettings, store_root: str, what: str = "image") -> ImageRef:
    """Validate a user image and store its pixels; cached by the file's sha256, not its path."""
    loaded = load_image(source, limits=limits, what=what)
    if loaded.sha256 != sha256:
        raise InvalidInput(f"{what} {source} changed while the run was starting; run again")
    return StageIO(store_root).put(loaded.pixels)
