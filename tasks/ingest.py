from __future__ import annotations

from prefect import task

from placewright.errors import InvalidInput
from placewright.imageio import load_image
from placewright.settings import LimitsSettings
from placewright.store import ImageRef
from tasks.common import STAGE_TASK_OPTIONS, StageCache, blob_store, inject_fault


@task(name="ingest", cache_policy=StageCache(exclude=("source", "what")), **STAGE_TASK_OPTIONS)
def ingest_image(source: str, sha256: str, limits: LimitsSettings, store_root: str, what: str = "image") -> ImageRef:
    """Validate a user image and store its pixels; cached by the file's sha256, not its path."""
    inject_fault("ingest")
    loaded = load_image(source, limits=limits, what=what)
    if loaded.sha256 != sha256:
        raise InvalidInput(f"{what} {source} changed while the run was starting; run again")
    return blob_store(store_root).put(loaded.pixels)
