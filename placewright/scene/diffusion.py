"""Scenes from a local diffusers text-to-image model ("diffusers"): Flux, SDXL, SD 1.5/2.x.

One backend for every family. The folder's ``model_index.json`` names the family
(:func:`placewright.models.diffusion.pipeline_family`), which picks the pipeline class and the
defaults of :data:`FAMILIES` (Flux schnell and dev are told apart by the transformer's
``guidance_embeds``); ``scene.steps``, ``scene.guidance`` and ``scene.scheduler`` override them.

Sizes: the model runs at :func:`generation_size`, the requested aspect at about the family's
native pixel count (``native_side`` squared: 1024 for Flux/SDXL, the UNet's sample size for SD,
or ``scene.native_side``), each side a multiple of the family's factor; the result is then
fitted exactly to the requested size by cover + centre crop (never distorted).

The prompt goes through ``scene.prompt_template`` (``{prompt}`` and ``{surface}``, the run's
surface phrase, the one locate searches for) so the model leaves that surface empty in the foreground; where it is
is unknown here: ``surface`` is None and the locate stage finds it. Same seed -> same image
(a CPU ``torch.Generator`` seeded per variant). CUDA out of memory is transient. Variants are
generated one call each (no batching).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from placewright.errors import TransientBackendError
from placewright.models.diffusion import load_pipeline, pipeline_family
from placewright.models.weights import find_pretrained
from placewright.scene import SceneGenerator, generative_prompt
from placewright.scene.provided import cover_crop
from placewright.settings import ModelSpec, SceneSettings
from placewright.types import Size, Surface


@dataclass(frozen=True)
class FamilyDefaults:
    """What a family runs with unless the settings say otherwise.

    Attributes:
        pipeline: the diffusers pipeline class loaded for it.
        steps: denoising steps.
        guidance: guidance scale (classifier-free for SD; distilled guidance for Flux dev; 0 for schnell).
        native_side: side of the square whose pixel count the model was trained at.
        factor: every generated side is a multiple of this (VAE factor, x2 for Flux's 2x2 patches).
        max_sequence_length: T5 tokens (Flux only; capped at the tokenizer's own limit).
    """

    pipeline: str
    steps: int
    guidance: float
    native_side: int
    factor: int
    max_sequence_length: int | None = None


FAMILIES: dict[str, FamilyDefaults] = {
    "flux-schnell": FamilyDefaults("FluxPipeline", 4, 0.0, 1024, 16, 256),
    "flux-dev": FamilyDefaults("FluxPipeline", 28, 3.5, 1024, 16, 512),
    "sdxl": FamilyDefaults("StableDiffusionXLPipeline", 30, 6.5, 1024, 8),
    "sd": FamilyDefaults("StableDiffusionPipeline", 30, 7.5, 512, 8),  # SD 2.x 768: read from the UNet
    "other": FamilyDefaults("AutoPipelineForText2Image", 30, 7.0, 512, 8),
}
# Generated aspect ratios are kept within these (wider requests are cropped from the widest).
ASPECT_LIMITS = (0.25, 4.0)
_LOCK = threading.Lock()  # one generation at a time per process: the scheduler is swapped per call


def family_of(folder: Path) -> str:
    """A key of :data:`FAMILIES` for a pipeline folder."""
    family = pipeline_family(folder)
    if family == "flux":
        config = folder / "transformer" / "config.json"
        return "flux-dev" if config.is_file() and '"guidance_embeds": true' in config.read_text() else "flux-schnell"
    return family if family in FAMILIES else "other"


def generation_size(size: Size, native_side: int, factor: int) -> Size:
    """The size the model runs at: ``size``'s aspect, about ``native_side**2`` pixels, sides multiples of ``factor``."""
    aspect = min(max(size.width / size.height, ASPECT_LIMITS[0]), ASPECT_LIMITS[1])
    width = math.sqrt(native_side * native_side * aspect)
    return Size(
        width=max(factor, round(width / factor) * factor), height=max(factor, round(width / aspect / factor) * factor)
    )


class DiffusersScene(SceneGenerator):
    """Text-to-image with a local diffusers pipeline (Flux, SDXL, SD)."""

    name = "diffusers"
    version = "2"  # 2: {surface} in the prompt is the run's surface phrase
    requires = ("torch", "diffusers")

    @classmethod
    def weights(cls, options: SceneSettings) -> ModelSpec:
        return options.diffusion

    def pipeline(self) -> tuple[Any, str, FamilyDefaults]:
        """``(pipeline, device, family defaults)``; the pipeline is loaded once per process."""
        spec = self.options.diffusion
        defaults = FAMILIES[family_of(find_pretrained(spec))]
        pipe, device = load_pipeline(defaults.pipeline, spec, self.options.memory)
        return pipe, device, defaults

    def call_arguments(
        self, pipe: Any, prompt: str, defaults: FamilyDefaults, size: Size, surface: str
    ) -> dict[str, Any]:
        """Keyword arguments for ``pipe(...)`` (no generator): settings over the family's defaults."""
        opts = self.options
        kwargs: dict[str, Any] = {
            "prompt": generative_prompt(prompt, surface, opts),
            "num_inference_steps": opts.steps or defaults.steps,
            "guidance_scale": defaults.guidance if opts.guidance is None else opts.guidance,
            "width": size.width,
            "height": size.height,
            "output_type": "np",
        }
        if defaults.max_sequence_length is not None:
            limit = getattr(getattr(pipe, "tokenizer_2", None), "model_max_length", None) or 512
            kwargs["max_sequence_length"] = min(defaults.max_sequence_length, limit)
        elif opts.negative_prompt:  # SD/SDXL: with classifier-free guidance; Flux: not used
            kwargs["negative_prompt"] = opts.negative_prompt
        return kwargs

    def native_side(self, pipe: Any, defaults: FamilyDefaults) -> int:
        """``scene.native_side``, else the model's default sample size times its VAE factor, else the family's."""
        if self.options.native_side:
            return self.options.native_side
        sample = getattr(pipe, "default_sample_size", None)
        if sample is None and getattr(pipe, "unet", None) is not None:
            sample = pipe.unet.config.sample_size
        scale = getattr(pipe, "vae_scale_factor", None)
        return sample * scale if isinstance(sample, int) and isinstance(scale, int) else defaults.native_side

    def __call__(self, prompt: str, *, size: Size, seed: int, surface: str) -> tuple[np.ndarray, Surface | None]:
        """Generate the scene.

        Returns:
            ``(image, None)``: image (size.height, size.width, 3) uint8 RGB.

        Raises:
            TransientBackendError: out of GPU memory.
        """
        import torch

        pipe, _, defaults = self.pipeline()
        work = generation_size(size, self.native_side(pipe, defaults), defaults.factor)
        kwargs = self.call_arguments(pipe, prompt, defaults, work, surface)
        generator = torch.Generator(device="cpu").manual_seed(seed % 2**63)
        try:
            with _LOCK:
                original = pipe.scheduler
                if self.options.scheduler:
                    import diffusers

                    pipe.scheduler = getattr(diffusers, self.options.scheduler).from_config(original.config)
                try:
                    images = pipe(generator=generator, **kwargs).images
                finally:
                    pipe.scheduler = original
        except torch.cuda.OutOfMemoryError as exc:
            raise TransientBackendError(f"out of GPU memory at {work.width}x{work.height}: {exc}") from exc
        image = np.clip(np.asarray(images[0], dtype=np.float32) * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return cover_crop(image, size), None
