"""Scenes from an AUTOMATIC1111 server ("a1111"): POST /sdapi/v1/txt2img.

The prompt, seed and output size go with the server-side settings of ``scene.a1111``
(sampler, steps, CFG scale, negative prompt). The server may round the size (SD works in
multiples of 8): the answer is fitted exactly to the requested size by cover + centre crop,
as a provided background is (never distorted). The tabletop is unknown: ``surface`` is None
and the locate stage finds it. Errors: see :mod:`placewright.a1111`.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from placewright.a1111 import A1111Client, first_image
from placewright.models import missing_packages
from placewright.scene import SCENES
from placewright.scene.provided import cover_crop
from placewright.settings import SceneSettings
from placewright.types import Size, Surface

TXT2IMG = "/sdapi/v1/txt2img"


@SCENES.register
class A1111Scene:
    """Text-to-image on the user's AUTOMATIC1111 server."""

    name: ClassVar[str] = "a1111"
    version: ClassVar[str] = "1"

    @classmethod
    def unavailable_reason(cls, options: SceneSettings | None = None) -> str | None:
        settings = (options or SceneSettings()).a1111
        if not settings.base_url:
            return "no AUTOMATIC1111 server configured (scene.a1111.base_url)"
        return missing_packages("httpx")

    @classmethod
    def source(cls, options: SceneSettings | None = None) -> str:
        """The txt2img URL requests go to (never the credentials)."""
        base_url = (options or SceneSettings()).a1111.base_url
        return f"{base_url.rstrip('/')}{TXT2IMG}" if base_url else "scene.a1111.base_url (not set)"

    def __init__(self, options: SceneSettings) -> None:
        self.options = options

    def payload(self, prompt: str, *, size: Size, seed: int) -> dict[str, Any]:
        """The txt2img request body."""
        settings = self.options.a1111
        return {
            "prompt": prompt,
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

    def __call__(self, prompt: str, *, size: Size, seed: int) -> tuple[np.ndarray, Surface | None]:
        """Generate a scene; returns an exactly (size.height, size.width, 3) uint8 RGB image and None."""
        client = A1111Client.from_settings(self.options.a1111, stage="scene")
        answer = client.post(TXT2IMG, self.payload(prompt, size=size, seed=seed))
        return cover_crop(first_image(answer, stage="scene"), size), None
