"""Scene stage: the background the product is placed in.

Two ways in: :func:`generate_scene` draws a scene from a prompt with the first available
backend of :data:`SCENES` (the classical "procedural" studio scene always ends the chain),
and :func:`fit_background` takes the user's own background photo and fits it to the output
size. Procedural scenes know where their tabletop is and return it as ``surface``; other
backends (and user backgrounds) return None and leave it to the locate stage.
"""

from __future__ import annotations

import time
from abc import abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from placewright.backends import Backend, Registry, StageRecord, run_chain
from placewright.errors import InvalidInput
from placewright.settings import SceneSettings
from placewright.types import Size, Surface

SCENES: Registry[SceneGenerator] = Registry("scene", preference=("diffusers", "a1111", "procedural"))


class SceneGenerator(Backend[SceneSettings]):
    """Base of the scene backends."""

    registry: ClassVar[Registry[SceneGenerator]] = SCENES

    @abstractmethod
    def __call__(self, prompt: str, *, size: Size, seed: int, surface: str) -> tuple[np.ndarray, Surface | None]:
        """Draw the scene for ``prompt``, leaving room on ``surface`` (the run's surface phrase).

        Returns:
            ``(image, surface)``: (size.height, size.width, 3) uint8 RGB, and where the product
            stands when the backend knows it (None: the locate stage finds it).
        """


def generative_prompt(prompt: str, surface: str, options: SceneSettings) -> str:
    """The text a generative backend is sent: ``scene.prompt_template`` with the scene prompt and surface phrase."""
    return options.prompt_template.replace("{prompt}", prompt).replace("{surface}", surface)


# Smallest output side accepted (the run contract already asks for 64).
MIN_SIDE = 16


@dataclass(frozen=True)
class SceneResult:
    """A background scene.

    Attributes:
        image: (size.height, size.width, 3) uint8 RGB.
        surface: the placement surface when the backend knows it (procedural scenes know
            their tabletop), in output pixels; None when it is unknown.
        record: which backend ran.
    """

    image: np.ndarray
    surface: Surface | None
    record: StageRecord


def _check_size(size: Size) -> None:
    if size.width < MIN_SIDE or size.height < MIN_SIDE:
        raise InvalidInput(f"scene size {size} is too small (each side >= {MIN_SIDE})", stage="scene")


def generate_scene(
    prompt: str,
    *,
    size: Size,
    seed: int,
    surface: str,
    options: SceneSettings,
    raise_transient: bool = False,
) -> SceneResult:
    """Generate a background scene for a prompt.

    Args:
        prompt: what the scene should look like; blank means ``options.default_prompt``.
        size: the output size; the image is exactly ``size.height x size.width``.
        seed: the variation; the same prompt, seed and settings give the same image.
        options: the scene settings section.
        surface: what the product will stand on ("table", "shelf"): generative backends ask
            for it empty in the foreground (``scene.prompt_template``).
        raise_transient: re-raise transient backend errors (for orchestrator retries).

    Returns:
        A :class:`SceneResult` with an (H, W, 3) uint8 RGB image.

    Raises:
        InvalidInput: for a size below ``MIN_SIDE`` pixels.
    """
    _check_size(size)
    text = prompt if prompt and prompt.strip() else options.default_prompt
    (image, found), record = run_chain(
        "scene",
        SCENES.chain(options.backend),
        lambda backend: backend(options)(text, size=size, seed=seed, surface=surface),
        options=options,
        raise_transient=raise_transient,
    )
    if image.shape != (size.height, size.width, 3) or image.dtype != np.uint8:
        # A backend that returns another size is fitted rather than trusted blindly.
        fitted = fit_background(image, size=size)
        image, found = fitted.image, None
    return SceneResult(image=image, surface=found, record=record)


def fit_background(image: np.ndarray, *, size: Size) -> SceneResult:
    """Fit the user's own background to the output size: cover, then centre crop.

    The image is scaled (aspect ratio kept: never distorted) by the smallest factor that
    covers the whole output, then the excess is cropped equally from both sides. Shrinking
    uses area averaging (no aliasing), enlarging uses Lanczos. RGBA is flattened over white.

    Args:
        image: (h, w, 3) RGB or (h, w, 4) RGBA uint8; not modified.
        size: the output size.

    Returns:
        A :class:`SceneResult` with an exactly (size.height, size.width, 3) uint8 image,
        ``surface`` None and ``record.backend == "provided"``.

    Raises:
        InvalidInput: for a non-uint8 array, a wrong shape or a size below ``MIN_SIDE``.
    """
    started = time.perf_counter()
    _check_size(size)
    out = _provided.cover_crop(image, size)
    record = StageRecord(backend="provided", seconds=time.perf_counter() - started)
    return SceneResult(image=out, surface=None, record=record)


# The backends register themselves when defined (their order here does not matter: see SCENES).
from placewright.scene import a1111, diffusion, procedural  # noqa: E402,F401
from placewright.scene import provided as _provided  # noqa: E402

__all__ = ["SCENES", "SceneGenerator", "SceneResult", "fit_background", "generate_scene", "generative_prompt"]
