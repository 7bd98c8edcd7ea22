"""Scenes from an AUTOMATIC1111 server ("a1111"): POST /sdapi/v1/txt2img.

The prompt (through ``scene.prompt_template``, with the run's surface phrase, as for the
diffusers backend), seed and output size go with the server-side settings of ``scene.a1111``
(sampler, steps, CFG scale, negative prompt). The server may round the size (SD works in
multiples of 8): the answer is fitted exactly to the requested size by cover + centre crop,
as a provided background is (never distorted). The tabletop is unknown: ``surface`` is None
and the locate stage finds it. Errors: see :mod:`placewright.a1111`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from placewright.a1111 import A1111Backend, A1111Client, first_image
from placewright.scene import SceneGenerator, generative_prompt
from placewright.scene.provided import cover_crop
from placewright.types import Size, Surface

TXT2IMG = "/sdapi/v1/txt2img"


class A1111Scene(A1111Backend, SceneGenerator):
    """Text-to-image on the user's AUTOMATIC1111 server."""

    name = "a1111"
    version = "2"  # 2: the prompt goes through scene.prompt_template with the run's surface
    endpoint = TXT2IMG

    def payload(self, prompt: str, *, size: Size, seed: int, surface: str) -> dict[str, Any]:
        """The txt2img request body."""
        settings = self.options.a1111
        return {
            "prompt": generative_prompt(prompt, surface, self.options),
            "negative_prompt": settings.negative_prompt,
            "seed": int(seed),
            "steps": settings.steps,
            "cfg_scale": settings.cfg_scale,
            "sampler_name": settings.sampler,
            "width": size.width,
            "height": size.height,
            "batch_size": 1,
            "n_iter": 1,
            "send_images": True,
            "save_images": False,
        }

    def __call__(self, prompt: str, *, size: Size, seed: int, surface: str) -> tuple[np.ndarray, Surface | None]:
        """Generate a scene; returns an exactly (size.height, size.width, 3) uint8 RGB image and None."""
        client = A1111Client.from_settings(self.options.a1111, stage="scene")
        answer = client.post(TXT2IMG, self.payload(prompt, size=size, seed=seed, surface=surface))
        return cover_crop(first_image(answer, stage="scene"), size), None
