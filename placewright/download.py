"""Fetching a product image given as an http(s) URL into a local folder, within size and time limits."""

from __future__ import annotations

import hashlib
import mimetypes
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlparse

from placewright.errors import InvalidInput
from placewright.url_guard import FetchTimedOut, UrlRefused, guarded_get
from placewright.validation import one_line, shown

# File extensions trusted from a URL's path, and the extension written for each image content type.
IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff"})
CONTENT_TYPE_EXTENSIONS = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/jpg": ".jpg",
    "image/pjpeg": ".jpg",
    "image/webp": ".webp",
    "image/gif": ".gif",
    "image/bmp": ".bmp",
    "image/x-ms-bmp": ".bmp",
    "image/tiff": ".tif",
}
# Object stores often serve images uploaded without a type as these; accepted only for URLs ending in an
# image extension (the bytes are decoded and checked later by imageio.load_image anyway).
GENERIC_CONTENT_TYPES = frozenset({"application/octet-stream", "binary/octet-stream"})
SHA_NAME_CHARS = 16


def fetch_product(
    url: str, dest_dir: Path, *, max_bytes: int, timeout_s: float, allowed_hosts: Sequence[str] = ()
) -> Path:
    """Download a product image into ``dest_dir``, from public addresses only.

    The URL goes through :func:`placewright.url_guard.guarded_get`: its host and every redirect's
    (at most ``url_guard.MAX_REDIRECTS``) must resolve to globally reachable addresses unless
    ``allowed_hosts`` opens them, and the request goes to the address that was checked. The body is
    streamed to a temporary name in ``dest_dir`` and renamed to ``<sha256(url)[:16]><ext>`` once
    complete (``ext`` from the URL's path, else the content type).

    Args:
        url: an http or https URL.
        dest_dir: folder the caller owns (created if missing); on failure nothing is left in it.
        max_bytes: refuse bodies larger than this.
        timeout_s: limit for the whole download (resolving, connecting, every read, the body).
        allowed_hosts: ``limits.allowed_hosts``: host names, IP addresses or CIDR networks that may
            be fetched from although they are not public.

    Returns:
        The downloaded file's path.

    Raises:
        InvalidInput: one line naming the URL: not http(s), a refused address or redirect, connection
            failure or timeout, HTTP error status, a content type that is not an image, or a body over
            ``max_bytes``.
    """
    import httpx

    check_http_url(url, error=InvalidInput)
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout_s
    partial: str | None = None
    try:
        # identity: the size limit then counts the bytes sent (no decompression bombs).
        with guarded_get(
            url, allowlist=allowed_hosts, deadline=deadline, headers={"Accept-Encoding": "identity"}
        ) as fetched:
            response = fetched.response
            if response.status_code >= 400:
                raise InvalidInput(f"product URL {url}: HTTP {response.status_code} {response.reason_phrase}".rstrip())
            content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
            extension = _extension(url, content_type)
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise InvalidInput(f"product URL {url}: {declared} bytes is too large (limit {max_bytes})")
            fd, partial = tempfile.mkstemp(dir=dest_dir, prefix=".download-", suffix=".part")
            received = 0
            with os.fdopen(fd, "wb") as handle:
                for piece in fetched.iter_bytes():
                    received += len(piece)
                    if received > max_bytes:
                        raise InvalidInput(f"product URL {url}: more than {max_bytes} bytes (the limit)")
                    handle.write(piece)
        target = dest_dir / f"{hashlib.sha256(url.encode()).hexdigest()[:SHA_NAME_CHARS]}{extension}"
        os.replace(partial, target)
        partial = None
        return target
    except (FetchTimedOut, httpx.TimeoutException):
        raise InvalidInput(f"product URL {url}: timed out after {timeout_s:g} s") from None
    except UrlRefused as exc:
        raise InvalidInput(f"product URL {url}: {exc}") from None
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise InvalidInput(f"product URL {url}: cannot download: {one_line(str(exc)) or type(exc).__name__}") from None
    finally:
        if partial is not None:
            Path(partial).unlink(missing_ok=True)


def check_http_url(url: str, *, error: type[Exception]) -> None:
    parts = urlparse(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise error(f"must be an http(s) URL, got {shown(url)}")


def _extension(url: str, content_type: str) -> str:
    """The file extension for a download; raises InvalidInput when the content type is not an image."""
    suffix = PurePosixPath(unquote(urlparse(url).path)).suffix.lower()
    if content_type.startswith("image/"):
        if suffix in IMAGE_EXTENSIONS:
            return suffix
        return CONTENT_TYPE_EXTENSIONS.get(content_type) or mimetypes.guess_extension(content_type) or ""
    if content_type in GENERIC_CONTENT_TYPES and suffix in IMAGE_EXTENSIONS:
        return suffix
    raise InvalidInput(f"product URL {url}: not an image (content type {content_type or 'missing'})")
