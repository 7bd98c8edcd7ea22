"""Checking a run request before any work starts.

Both the CLI and the flow call :func:`build_request`, so bad input is refused the same
way everywhere: one :class:`~placewright.errors.InvalidInput` with a one-line reason,
before anything is written.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from placewright.errors import InvalidInput
from placewright.imageio import load_image
from placewright.settings import OutputFormat, Settings
from placewright.storage import open_location
from placewright.types import Size

MAX_PROMPT_CHARS = 2000
MAX_VARIANTS = 64
FORMATS: tuple[str, ...] = ("webp", "jpeg", "png")


@dataclass(frozen=True)
class ImageInput:
    path: str
    sha256: str


@dataclass(frozen=True)
class Variant:
    """One variant to make: from a prompt, or from a provided background."""

    index: int
    seed: int
    prompt: str | None = None
    background: ImageInput | None = None


@dataclass(frozen=True)
class RunRequest:
    product: ImageInput
    prompts: list[str]
    variants: list[Variant]
    surface: str
    size: Size
    format: OutputFormat
    out_dir: str


def build_request(
    product: str,
    *,
    prompts: list[str] | None,
    backgrounds: list[str] | None,
    surface: str | None,
    size: str | None,
    seed: int | None,
    format: str | None,
    out: str | None,
    settings: Settings,
) -> RunRequest:
    """Validate every argument of a run, fully decoding the product and background images.

    One variant per prompt and per background (prompts first); with neither, one variant
    from ``settings.scene.default_prompt``. Variant ``i`` gets seed ``seed + i``.

    Raises:
        InvalidInput: naming the first bad argument.
    """
    prompts = list(prompts or [])
    backgrounds = list(backgrounds or [])
    for prompt in prompts:
        if not prompt.strip():
            raise InvalidInput("a --prompt is empty")
        if len(prompt) > MAX_PROMPT_CHARS:
            raise InvalidInput(f"a --prompt is too long ({len(prompt)} characters, limit {MAX_PROMPT_CHARS})")
    if len(prompts) + len(backgrounds) > MAX_VARIANTS:
        raise InvalidInput(f"too many variants: {len(prompts) + len(backgrounds)} (limit {MAX_VARIANTS})")
    try:
        out_size = Size.parse(size or settings.output.size)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    fmt = (format or settings.output.format).lower()
    if fmt == "jpg":
        fmt = "jpeg"
    if fmt not in FORMATS:
        raise InvalidInput(f"unknown format {format!r}; choose one of: {', '.join(FORMATS)}")
    base_seed = settings.seed if seed is None else seed
    if base_seed < 0:
        raise InvalidInput(f"seed must be >= 0, got {base_seed}")
    surface_phrase = (surface if surface is not None else settings.locate.surface).strip()
    if not surface_phrase:
        raise InvalidInput("--surface is empty")

    out_dir = out or settings.out_dir
    _check_out_dir(out_dir)
    location = open_location(out_dir, settings.storage)
    location.check_urls()
    product_image = load_image(product, limits=settings.limits, what="product image")
    background_inputs = [
        ImageInput(str(Path(b)), load_image(b, limits=settings.limits, what="background image").sha256)
        for b in backgrounds
    ]
    variants = [Variant(i, base_seed + i, prompt=p) for i, p in enumerate(prompts)]
    variants += [
        Variant(len(prompts) + j, base_seed + len(prompts) + j, background=b) for j, b in enumerate(background_inputs)
    ]
    if not variants:
        variants = [Variant(0, base_seed, prompt=settings.scene.default_prompt)]
    location.check_reachable()  # last: it may take a network round trip
    return RunRequest(
        product=ImageInput(str(Path(product)), product_image.sha256),
        prompts=prompts,
        variants=variants,
        surface=surface_phrase,
        size=out_size,
        format=cast(OutputFormat, fmt),
        out_dir=out_dir,
    )


def _check_out_dir(out_dir: str) -> None:
    """A local output folder must be a folder (or creatable) and writable; URLs are checked on publish."""
    if "://" in out_dir and not out_dir.startswith("file://"):
        return
    path = Path(out_dir.removeprefix("file://"))
    existing = next((p for p in (path, *path.parents) if p.exists()), None)
    if existing is None:
        return
    if not existing.is_dir():
        raise InvalidInput(f"output folder {out_dir} is not a folder ({existing} is a file)")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InvalidInput(f"output folder {out_dir} is not writable")
