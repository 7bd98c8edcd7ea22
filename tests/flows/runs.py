"""Running the place-product flow from tests: a request built from keyword fields, the manifest as JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect.states import State

from flows.place_product import place_product
from placewright.request import RunRequest


def place(product: str | Path, *, refresh: bool = False, **fields: Any) -> dict[str, Any]:
    """Run place-product on ``RunRequest(product=product, **fields)``; the manifest as ``manifest.json`` holds it."""
    manifest = place_product(RunRequest(product=str(product), **fields), refresh=refresh)
    return manifest.model_dump(mode="json")


def place_state(product: str | Path, **fields: Any) -> State:
    """Run place-product and return its final state (for runs that are meant to fail)."""
    return place_product(RunRequest(product=str(product), **fields), return_state=True)
