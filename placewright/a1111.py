"""A small typed client for the AUTOMATIC1111 (stable-diffusion-webui) HTTP API.

The server must be started with ``--api`` (and, for basic auth, ``--api-auth user:password``).
Requests are JSON, images travel as base64 PNG. Only what the scene and harmonize backends
need is here: :class:`A1111Client` posts one payload and maps every failure onto the
pipeline's errors, :func:`encode_png` / :func:`decode_png` convert arrays, and
:func:`first_image` takes ``images[0]`` out of an answer.

Errors: timeouts, connection failures, HTTP 408/429 and 5xx raise
:class:`TransientBackendError` (the orchestrator retries, then falls back); other HTTP
errors and malformed answers (no JSON, no images, undecodable base64 or PNG) raise
:class:`StageFailed` (the stage falls back at once). httpx is imported when a request is
made, so this module imports without it.
"""

from __future__ import annotations

import base64
import binascii
import io
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from placewright.errors import StageFailed, TransientBackendError
from placewright.settings import A1111Settings

TRANSIENT_STATUS = frozenset({408, 429})
# How much of an error body goes into a message.
DETAIL_CHARS = 200


def encode_png(image: np.ndarray) -> str:
    """(H, W) L, (H, W, 3) RGB or (H, W, 4) RGBA uint8 -> base64 PNG (no data-URL prefix)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buffer, format="PNG", compress_level=1)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def decode_png(data: str, *, stage: str) -> np.ndarray:
    """Base64 image (a ``data:...;base64,`` prefix allowed) -> (H, W, 3) uint8 RGB.

    Raises:
        StageFailed: when it is not base64 or not an image.
    """
    from PIL import Image, UnidentifiedImageError

    if not isinstance(data, str) or not data:
        raise StageFailed("the answer's image is not a base64 string", stage=stage)
    if data.startswith("data:"):
        data = data.partition(",")[2]
    try:
        raw = base64.b64decode(data, validate=True)
        with Image.open(io.BytesIO(raw)) as image:
            image.load()
            if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
                rgba = image.convert("RGBA")
                flat = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                flat.alpha_composite(rgba)
                return np.asarray(flat.convert("RGB")).copy()
            return np.asarray(image.convert("RGB")).copy()
    except (binascii.Error, ValueError, UnidentifiedImageError, OSError) as exc:
        raise StageFailed(f"the answer's image cannot be decoded ({exc})", stage=stage) from exc


def first_image(answer: Any, *, stage: str) -> np.ndarray:
    """``answer["images"][0]`` decoded to (H, W, 3) uint8 RGB; :class:`StageFailed` when absent."""
    images = answer.get("images") if isinstance(answer, dict) else None
    if not isinstance(images, list) or not images:
        raise StageFailed("the answer holds no images", stage=stage)
    return decode_png(images[0], stage=stage)


@dataclass(frozen=True)
class A1111Client:
    """One AUTOMATIC1111 server.

    Attributes:
        base_url: the server root, e.g. ``http://127.0.0.1:7860`` (paths ``/sdapi/v1/...`` are appended).
        stage: the stage using it, for error messages.
        username: basic-auth user, or None for no auth.
        password: basic-auth password.
        timeout_seconds: limit per request (connect, generation, read).
    """

    base_url: str
    stage: str
    username: str | None = None
    password: str | None = None
    timeout_seconds: float = 180.0

    @classmethod
    def from_settings(cls, settings: A1111Settings, *, stage: str) -> A1111Client:
        if not settings.base_url:
            raise StageFailed(f"no AUTOMATIC1111 server configured ({stage}.a1111.base_url)", stage=stage)
        password = settings.password.get_secret_value() if settings.password is not None else None
        return cls(
            base_url=settings.base_url.rstrip("/"),
            stage=stage,
            username=settings.username,
            password=password,
            timeout_seconds=settings.timeout_seconds,
        )

    def post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        """POST ``payload`` as JSON to ``base_url + path``; returns the JSON object answered.

        Raises:
            TransientBackendError: timeout, connection failure, HTTP 408/429/5xx.
            StageFailed: any other HTTP error, or an answer that is not a JSON object.
        """
        import httpx

        url = self.base_url + path
        auth = (self.username, self.password or "") if self.username else None
        try:
            response = httpx.post(url, json=payload, auth=auth, timeout=self.timeout_seconds)
        except httpx.TimeoutException as exc:
            raise TransientBackendError(f"{url} timed out after {self.timeout_seconds:g} s", stage=self.stage) from exc
        except httpx.TransportError as exc:
            raise TransientBackendError(f"cannot reach {url}: {exc}", stage=self.stage) from exc
        except httpx.HTTPError as exc:
            raise StageFailed(f"request to {url} failed: {exc}", stage=self.stage) from exc
        status = response.status_code
        if status >= 400:
            detail = " ".join(response.text.split())[:DETAIL_CHARS]
            message = f"HTTP {status} from {url}: {detail}"
            if status in TRANSIENT_STATUS or status >= 500:
                raise TransientBackendError(message, stage=self.stage)
            raise StageFailed(message, stage=self.stage)
        try:
            answer = response.json()
        except ValueError as exc:
            raise StageFailed(f"{url} answered something that is not JSON", stage=self.stage) from exc
        if not isinstance(answer, dict):
            raise StageFailed(f"{url} answered JSON that is not an object", stage=self.stage)
        return answer


class A1111Backend:
    """What the AUTOMATIC1111 backends of every stage share: they need httpx and ``<stage>.a1111.base_url``.

    Mixed in before the stage's base class (``class A1111Scene(A1111Backend, SceneGenerator)``);
    ``endpoint`` is the API path the backend posts to.
    """

    requires: ClassVar[tuple[str, ...]] = ("httpx",)
    endpoint: ClassVar[str]
    registry: ClassVar[Any]

    @classmethod
    def setup_problem(cls, options: Any) -> str | None:
        if not options.a1111.base_url:
            return f"no AUTOMATIC1111 server configured ({cls.registry.stage}.a1111.base_url)"
        return None

    @classmethod
    def source(cls, options: Any) -> str:
        """The URL requests go to (never the credentials)."""
        base_url = options.a1111.base_url
        return f"{base_url.rstrip('/')}{cls.endpoint}" if base_url else f"{cls.registry.stage}.a1111.base_url (not set)"


__all__ = ["A1111Backend", "A1111Client", "decode_png", "encode_png", "first_image"]
