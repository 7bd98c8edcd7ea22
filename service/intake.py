"""Checking what a client sends before anything is stored or run: locations, webhook URLs, uploads.

Every check answers one line (422, or 413 for what is too large). URLs are checked by resolving
their host through the one URL guard (:mod:`placewright.url_guard`): an address that is not public
is refused here, before a job exists, and no connection is made. Workers check again when they
fetch (and on every redirect), so a DNS answer that changes later is caught there.
"""

from __future__ import annotations

import io
from urllib.parse import urlparse

from PIL import Image, UnidentifiedImageError

from placewright.errors import InvalidInput, first_line
from placewright.request import RunRequest
from placewright.settings import Settings
from placewright.url_guard import UrlRefused, resolve_checked
from service.problems import ApiProblem
from service.records import ApiKey
from service.runtime import Places

# Uploaded image formats accepted (by what the bytes are, not the file name) and the extension kept.
UPLOAD_FORMATS = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp", "TIFF": ".tif", "BMP": ".bmp", "GIF": ".gif"}
# DNS lookups of a submitted URL's host wait at most this long.
RESOLVE_TIMEOUT_S = 5.0


def check_public_url(url: str, what: str, settings: Settings) -> None:
    """Refuse (422) an http(s) URL whose host is not a public address (unless allowlisted)."""
    parts = urlparse(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ApiProblem(422, f"{what} must be an http(s) URL, got {url[:200]!r}")
    try:
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    except ValueError:
        raise ApiProblem(422, f"{what} {url[:200]}: not a valid port") from None
    try:
        resolve_checked(parts.hostname, port, settings.limits.allowed_hosts, timeout_s=RESOLVE_TIMEOUT_S)
    except (UrlRefused, InvalidInput) as exc:
        raise ApiProblem(422, f"{what} {url[:200]}: {first_line(exc)}") from None


def check_source(location: str, what: str, settings: Settings, uploads: str) -> None:
    """A product or background given by a client: an upload of this service, a public URL, or a store URL
    under ``access.input_roots``. Paths on the service's machine are refused."""
    scheme = urlparse(location).scheme.lower() if "://" in location else ""
    if scheme in ("http", "https"):
        check_public_url(location, what, settings)
        return
    if location.startswith(f"{uploads}/"):
        return
    if scheme in ("", "file"):
        raise ApiProblem(422, f"{what} {location[:200]!r}: give an http(s) or storage URL, or upload the file")
    from placewright.access import Access

    try:
        Access.remote(settings).check_input(location, what=what)
    except InvalidInput as exc:
        raise ApiProblem(422, first_line(exc)) from None


def job_request(request: RunRequest, key: ApiKey, settings: Settings, places: Places) -> RunRequest:
    """The request as the job will run it (``out``: the key's folder), after the service's own limits."""
    if request.out is not None:
        raise ApiProblem(422, "request.out: the service decides where jobs publish; leave it out")
    count = len(request.prompts) + len(request.backgrounds)
    if count > settings.service.max_variants:
        raise ApiProblem(
            422,
            f"too many variants: {count} prompts and backgrounds "
            f"(this service's limit is {settings.service.max_variants})",
        )
    check_source(request.product, "product", settings, places.uploads)
    for background in request.backgrounds:
        check_source(background, "background", settings, places.uploads)
    return request.model_copy(update={"out": places.out_for(key)})


def image_upload(data: bytes, what: str, settings: Settings) -> str:
    """Check an uploaded image by its bytes (format, pixel count); returns the extension to keep it under.

    Raises:
        ApiProblem: 422 when it is not an image of a known format, 413 when it has too many pixels.
    """
    if not data:
        raise ApiProblem(422, f"{what}: the file is empty")
    try:
        with Image.open(io.BytesIO(data)) as image:
            kind, (width, height) = image.format, image.size
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        raise ApiProblem(422, f"{what}: not an image (PNG, JPEG, WebP, TIFF, BMP or GIF)") from None
    if kind not in UPLOAD_FORMATS:
        raise ApiProblem(422, f"{what}: {kind} images are not accepted (PNG, JPEG, WebP, TIFF, BMP or GIF)")
    limit = min(settings.service.max_pixels, settings.limits.max_pixels)
    if width * height > limit:
        raise ApiProblem(413, f"{what}: {width}x{height} is {width * height} pixels (the limit is {limit})")
    return UPLOAD_FORMATS[kind]
