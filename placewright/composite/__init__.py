"""Composite stage: stand the product on the scene's surface, with shadows.

Modules: :mod:`~placewright.composite.place` (size and position),
:mod:`~placewright.composite.color` (bounded colour matching),
:mod:`~placewright.composite.shadows` (drop and contact shadows) and
:mod:`~placewright.composite.classical` (the backend that combines them). Later
compositors (e.g. generative ones) register in :data:`COMPOSITORS`.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from placewright.analyze import Analysis
from placewright.backends import Backend, Registry, StageRecord, run_chain
from placewright.errors import InvalidInput
from placewright.settings import CompositeSettings
from placewright.types import Box, Surface, check_image

COMPOSITORS: Registry[Compositor] = Registry("composite", preference=("classical",))


class Compositor(Backend[CompositeSettings]):
    """Base of the composite backends."""

    registry: ClassVar[Registry[Compositor]] = COMPOSITORS

    @abstractmethod
    def __call__(
        self,
        scene: np.ndarray,
        cutout: np.ndarray,
        surface: Surface,
        analysis: Analysis,
        seed: int,
        surface_phrase: str,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Composite; returns the (H, W, 3) uint8 image and the (H, W) uint8 product alpha."""


@dataclass(frozen=True)
class CompositeResult:
    """The composite.

    Attributes:
        image: (H, W, 3) uint8 final composite.
        product_alpha: (H, W) uint8 product alpha in output coordinates (0 outside it).
        product_box: tight box of ``product_alpha > 0``, in output pixels.
        record: which backend ran.
    """

    image: np.ndarray
    product_alpha: np.ndarray
    product_box: Box
    record: StageRecord


def _check(scene: np.ndarray, cutout: np.ndarray) -> None:
    check_image(scene, stage="composite", what="scene", channels=(3,))
    check_image(cutout, stage="composite", what="cut-out")
    if cutout.shape[2] == 4 and not cutout[..., 3].any():
        raise InvalidInput("the cut-out is fully transparent", stage="composite")


def composite(
    scene: np.ndarray,
    cutout: np.ndarray,
    *,
    surface: Surface,
    analysis: Analysis,
    surface_phrase: str,
    options: CompositeSettings,
    seed: int = 0,
) -> CompositeResult:
    """Place the cut-out product in the scene, standing on ``surface``.

    Args:
        scene: (H, W, 3) uint8 RGB scene; not modified.
        cutout: (h, w, 4) uint8 RGBA product cut-out (RGB counts as opaque); not modified.
        surface: where the base goes (``line_y``) and the centre column (``center_x``).
        analysis: supplies ``size_fraction`` (product height / H) and, when known, the
            product's real height, which with the surface box sets the size (see place.py).
        options: the composite settings section.
        surface_phrase: what the product stands on ("table", "countertop"): its typical
            width gives the scene's scale when the product's real size is known.
        options: the composite settings section.
        seed: for generative backends; the classical one is deterministic.

    Returns:
        A :class:`CompositeResult`.

    Raises:
        InvalidInput: for wrongly typed/shaped arrays or a fully transparent cut-out.
    """
    _check(scene, cutout)
    (image, product_alpha), record = run_chain(
        "composite",
        COMPOSITORS.chain(options.backend),
        lambda backend: backend(options)(scene, cutout, surface, analysis, seed, surface_phrase),
        options=options,
    )
    box = Box.from_mask(product_alpha)
    if box is None:  # cannot happen for a non-empty cut-out; kept as a clear failure
        raise InvalidInput("the product ended up outside the frame", stage="composite")
    return CompositeResult(image=image, product_alpha=product_alpha, product_box=box, record=record)


# The backends register themselves when defined (see COMPOSITORS for the preference order).
from placewright.composite import classical  # noqa: E402,F401

__all__ = ["COMPOSITORS", "CompositeResult", "Compositor", "composite"]
