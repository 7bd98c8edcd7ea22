"""Locate stage: where in the scene the product's base should rest.

A scene that knows its own geometry (the procedural studio scene) passes its surface in
as ``known`` and gets it back unchanged (method "scene-geometry"). Otherwise the first
available backend of :data:`LOCATORS` looks for the surface; the classical one ends every
chain: it finds the dominant horizontal edge of a tabletop or counter ("horizontal-edge")
or, when no edge is convincing, falls back to the fixed band ``LocateSettings.band``
("band"). The result is always a defined surface with ``0 <= line_y < H``.
"""

from __future__ import annotations

import dataclasses
import time
from abc import abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from placewright.backends import Backend, Registry, StageRecord, run_chain
from placewright.errors import InvalidInput
from placewright.settings import LocateSettings
from placewright.types import Surface, check_image

LOCATORS: Registry[Locator] = Registry("locate", preference=("grounding-dino", "classical"))


class Locator(Backend[LocateSettings]):
    """Base of the locate backends."""

    registry: ClassVar[Registry[Locator]] = LOCATORS

    @abstractmethod
    def __call__(self, scene: np.ndarray, *, phrase: str) -> Surface:
        """The surface of ``scene`` ((H, W, 3|4) uint8, not modified) that ``phrase`` names."""


# Method name of a surface that came with the scene.
KNOWN_METHOD = "scene-geometry"


@dataclass(frozen=True)
class LocateResult:
    """The placement surface.

    Attributes:
        surface: where the product stands, in scene pixels (``0 <= line_y < H``).
        record: how it was found; ``record.backend`` is the method actually used:
            "scene-geometry", "horizontal-edge" or "band" for the classical locator,
            otherwise the name of the backend that ran.
    """

    surface: Surface
    record: StageRecord


def _check(scene: np.ndarray) -> None:
    check_image(scene, stage="locate", what="scene", min_side=2)


def _clamp(surface: Surface, height: int, width: int) -> Surface:
    """The same surface with its line and centre forced into the frame."""
    line_y = min(max(int(surface.line_y), 0), height - 1)
    center_x = min(max(int(surface.center_x), 0), width - 1)
    if (line_y, center_x) == (surface.line_y, surface.center_x):
        return surface
    return dataclasses.replace(surface, line_y=line_y, center_x=center_x)


def locate(
    scene: np.ndarray,
    *,
    phrase: str,
    known: Surface | None,
    options: LocateSettings,
    raise_transient: bool = False,
) -> LocateResult:
    """Find the surface the product stands on.

    Args:
        scene: (H, W, 3) RGB or (H, W, 4) RGBA uint8 scene; not modified.
        phrase: what the surface is called ("table", "countertop"): the run's surface
            phrase. The classical locator does not need it; grounding backends do.
        known: the scene's own surface when it has one (procedural scenes); returned as is.
        options: the locate settings section.
        raise_transient: re-raise transient backend errors (for orchestrator retries).

    Returns:
        A :class:`LocateResult` whose surface has ``0 <= line_y < H``.

    Raises:
        InvalidInput: for a non-uint8 or wrongly shaped array, or a blank phrase.
    """
    _check(scene)
    if not phrase.strip():
        raise InvalidInput("locate needs a surface phrase (e.g. 'table')", stage="locate")
    height, width = scene.shape[:2]
    if known is not None:
        started = time.perf_counter()
        surface = _clamp(known, height, width)
        return LocateResult(surface, StageRecord(backend=KNOWN_METHOD, seconds=time.perf_counter() - started))
    surface, record = run_chain(
        "locate",
        LOCATORS.chain(options.backend),
        lambda backend: backend(options)(scene, phrase=phrase),
        options=options,
        raise_transient=raise_transient,
    )
    if record.backend == LOCATORS.classical:
        # The classical locator reports which of its methods answered.
        record = dataclasses.replace(record, backend=surface.backend)
    return LocateResult(_clamp(surface, height, width), record)


# The backends register themselves when defined (their order here does not matter: see LOCATORS).
from placewright.locate import classical, grounding_dino  # noqa: E402,F401

__all__ = ["LOCATORS", "LocateResult", "Locator", "locate"]
