"""Harmonize stage: blend light around the product without touching product pixels.

Pixels with product alpha 255 come back bit-identical; partial-alpha pixels blend the
input with the relit surroundings (``alpha * input + (1 - alpha) * relit``); pixels
beyond ``ring_px`` from the product are unchanged.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from placewright.backends import Backend, Registry, StageRecord, run_chain
from placewright.errors import InvalidInput
from placewright.settings import HarmonizeSettings

HARMONIZERS: Registry[Harmonizer] = Registry("harmonize", preference=("diffusers-inpaint", "a1111", "classical"))


class Harmonizer(Backend[HarmonizeSettings]):
    """Base of the harmonize backends."""

    registry: ClassVar[Registry[Harmonizer]] = HARMONIZERS

    @abstractmethod
    def __call__(self, image: np.ndarray, product_alpha: np.ndarray, *, prompt: str | None, seed: int) -> np.ndarray:
        """Relight around the product.

        Args:
            image: (H, W, 3) uint8 RGB composite; not modified.
            product_alpha: (H, W) uint8 product alpha in the same coordinates (255 = product, kept).
            prompt: the variant's scene prompt (None for a provided background): generative
                backends describe the relit surroundings with it (:func:`relight_prompt`).
            seed: the variant's seed: the same seed and inputs give the same image.

        Returns:
            An (H, W, 3) uint8 image.
        """


def relight_prompt(prompt: str | None, options: HarmonizeSettings) -> str:
    """What a generative harmonizer is asked for: the scene prompt, then ``harmonize.prompt``."""
    return f"{prompt}, {options.prompt}" if prompt and prompt.strip() else options.prompt


@dataclass(frozen=True)
class HarmonizeResult:
    """The harmonised image ((H, W, 3) uint8) and which backend made it."""

    image: np.ndarray
    record: StageRecord


def _check(image: np.ndarray, product_alpha: np.ndarray) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise InvalidInput(
            f"harmonize expects an (H, W, 3) uint8 image, got {getattr(image, 'shape', None)}", stage="harmonize"
        )
    if (
        not isinstance(product_alpha, np.ndarray)
        or product_alpha.dtype != np.uint8
        or product_alpha.shape != image.shape[:2]
    ):
        raise InvalidInput(
            f"harmonize expects an (H, W) uint8 product alpha matching the image {image.shape[:2]}, "
            f"got {getattr(product_alpha, 'shape', None)}",
            stage="harmonize",
        )


def harmonize(
    image: np.ndarray,
    product_alpha: np.ndarray,
    *,
    seed: int,
    prompt: str | None,
    options: HarmonizeSettings,
    raise_transient: bool = False,
) -> HarmonizeResult:
    """Relight the product's surroundings.

    Args:
        image: (H, W, 3) uint8 composite; not modified.
        product_alpha: (H, W) uint8 product alpha in the same coordinates.
        seed: the variant's seed (generative backends' noise).
        prompt: the variant's scene prompt, or None (a provided background).
        options: the harmonize settings section.
        raise_transient: re-raise transient backend errors (for orchestrator retries).

    Returns:
        A :class:`HarmonizeResult`.

    Raises:
        InvalidInput: for wrongly typed or mismatched arrays.
    """
    _check(image, product_alpha)
    out, record = run_chain(
        "harmonize",
        HARMONIZERS.chain(options.backend),
        lambda backend: backend(options)(image, product_alpha, prompt=prompt, seed=seed),
        options=options,
        raise_transient=raise_transient,
    )
    # Whatever the backend, the product's solid pixels are the input's, bit for bit.
    solid = product_alpha == 255
    if not np.array_equal(out[solid], image[solid]):
        out = out.copy()
        out[solid] = image[solid]
    return HarmonizeResult(image=out, record=record)


# The backends register themselves when defined (their order here does not matter: see HARMONIZERS).
from placewright.harmonize import a1111, classical, diffusion  # noqa: E402,F401

__all__ = ["HARMONIZERS", "HarmonizeResult", "Harmonizer", "harmonize", "relight_prompt"]
