"""Fetching an image given as a URL (a product, a background) into a local folder, within size and time limits.

http(s) URLs go through the URL guard (:mod:`placewright.url_guard`: public addresses only, a deadline
that holds); object-store URLs (``s3://``, ``gs://``, ``az://``...) are read through fsspec with the
storage settings. :func:`fetch_source` picks the way; local paths are read where they are.
"""

from __future__ import annotations

import hashlib
import mimetypes
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlparse

from placewright.access import is_http, is_local, local_path, scheme_of
from placewright.errors import InvalidInput, first_line
from placewright.settings import LimitsSettings, StorageSettings
from placewright.storage import PROTOCOL_PACKAGES, storage_options
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
# Pieces an object is read in (and the store client's read-ahead): memory stays bounded whatever its size.
STORE_READ_BYTES = 1024 * 1024


def fetch_source(source: str, dest_dir: Path, *, what: str, limits: LimitsSettings, storage: StorageSettings) -> Path:
    """The local file to read an image source from: a path as it is, a URL downloaded into ``dest_dir``.

    ``file://`` URLs are local paths; http(s) URLs go through :func:`fetch_image` (the URL guard);
    every other URL (``s3://``, ``gs://``...) is read through fsspec with the storage settings
    (:func:`fetch_stored`). Both are held to ``limits.max_file_bytes`` and ``limits.download_timeout_s``.

    Args:
        source: a path or URL, as the run contract accepts it.
        dest_dir: folder the caller owns (and removes) for downloads.
        what: how messages name the image (``product``, ``background``).
        limits: the size and time limits, and ``allowed_hosts`` for http(s).
        storage: the storage settings (endpoint, profile, options) for fsspec URLs.

    Raises:
        InvalidInput: one line naming the URL (see :func:`fetch_image` and :func:`fetch_stored`).
    """
    if is_local(source):
        return Path(local_path(source))
    if is_http(source):
        return fetch_image(
            source,
            dest_dir,
            what=what,
            max_bytes=limits.max_file_bytes,
            timeout_s=limits.download_timeout_s,
            allowed_hosts=limits.allowed_hosts,
        )
    return fetch_stored(
        source,
        dest_dir,
        what=what,
        max_bytes=limits.max_file_bytes,
        timeout_s=limits.download_timeout_s,
        storage=storage,
    )


def fetch_image(
    url: str,
    dest_dir: Path,
    *,
    what: str = "product",
    max_bytes: int,
    timeout_s: float,
    allowed_hosts: Sequence[str] = (),
) -> Path:
    """Download an image given as an http(s) URL into ``dest_dir``, from public addresses only.

    The URL goes through :func:`placewright.url_guard.guarded_get`: its host and every redirect's
    (at most ``url_guard.MAX_REDIRECTS``) must resolve to globally reachable addresses unless
    ``allowed_hosts`` opens them, and the request goes to the address that was checked. The body is
    streamed to a temporary name in ``dest_dir`` and renamed to ``<sha256(url)[:16]><ext>`` once
    complete (``ext`` from the URL's path, else the content type).

    Args:
        url: an http or https URL.
        dest_dir: folder the caller owns (created if missing); on failure nothing is left in it.
        what: how messages name the image: ``"<what> URL <url>: <problem>"``.
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
    named = f"{what} URL {url}"
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
                raise InvalidInput(f"{named}: HTTP {response.status_code} {response.reason_phrase}".rstrip())
            content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
            extension = _extension(url, content_type, named)
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise InvalidInput(f"{named}: {declared} bytes is too large (limit {max_bytes})")
            fd, partial = tempfile.mkstemp(dir=dest_dir, prefix=".download-", suffix=".part")
            received = 0
            with os.fdopen(fd, "wb") as handle:
                for piece in fetched.iter_bytes():
                    received += len(piece)
                    if received > max_bytes:
                        raise InvalidInput(f"{named}: more than {max_bytes} bytes (the limit)")
                    handle.write(piece)
        target = dest_dir / _download_name(url, extension)
        os.replace(partial, target)
        partial = None
        return target
    except (FetchTimedOut, httpx.TimeoutException):
        raise InvalidInput(f"{named}: timed out after {timeout_s:g} s") from None
    except UrlRefused as exc:
        raise InvalidInput(f"{named}: {exc}") from None
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise InvalidInput(f"{named}: cannot download: {one_line(str(exc)) or type(exc).__name__}") from None
    finally:
        if partial is not None:
            Path(partial).unlink(missing_ok=True)


def fetch_product(
    url: str, dest_dir: Path, *, max_bytes: int, timeout_s: float, allowed_hosts: Sequence[str] = ()
) -> Path:
    """:func:`fetch_image` of a product image (messages say ``product URL ...``)."""
    return fetch_image(
        url, dest_dir, what="product", max_bytes=max_bytes, timeout_s=timeout_s, allowed_hosts=allowed_hosts
    )


def fetch_stored(
    url: str, dest_dir: Path, *, what: str = "product", max_bytes: int, timeout_s: float, storage: StorageSettings
) -> Path:
    """Copy an image from an object store (``s3://bucket/key``, any fsspec URL) into ``dest_dir``.

    The store is opened with :func:`placewright.storage.storage_options` (the settings' endpoint,
    profile and options; credentials from the standard environment). The object's size is checked
    before reading; it is then read piece by piece to a temporary name, counting, so an object that
    grows (or a store that reports no size) still stops at ``max_bytes``, and renamed to
    ``<sha256(url)[:16]><ext>``. ``timeout_s`` is checked after every piece (each read is bounded by
    the store client's own timeouts, 60 s for S3).

    Raises:
        InvalidInput: ``"<what> URL <url>: <problem>"``: an unknown protocol or one whose package is
            missing, no such object (or bucket), a folder, access denied or no credentials, an
            unreachable store, too large, timed out.
    """
    import fsspec

    named = f"{what} URL {url}"
    protocol = scheme_of(url) or "file"
    try:
        fs, path = fsspec.core.url_to_fs(url, **storage_options(url, storage))
    except ImportError:
        package = PROTOCOL_PACKAGES.get(protocol, f"the fsspec package for {protocol}://")
        raise InvalidInput(f"{named}: {protocol}:// storage needs {package} (pip install {package})") from None
    except ValueError:
        raise InvalidInput(f"{named}: unknown storage protocol {protocol}://") from None
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout_s
    partial: str | None = None
    try:
        info = fs.info(path)
        if info.get("type") == "directory":
            raise InvalidInput(f"{named}: is a folder, not an image file")
        size = info.get("size")
        if size is not None and int(size) > max_bytes:
            raise InvalidInput(f"{named}: {int(size)} bytes is too large (limit {max_bytes})")
        if size is not None and int(size) == 0:
            raise InvalidInput(f"{named}: the object is empty")
        fd, partial = tempfile.mkstemp(dir=dest_dir, prefix=".download-", suffix=".part")
        received = 0
        with os.fdopen(fd, "wb") as handle, fs.open(path, "rb", block_size=STORE_READ_BYTES) as source:
            while piece := source.read(STORE_READ_BYTES):
                received += len(piece)
                if received > max_bytes:
                    raise InvalidInput(f"{named}: more than {max_bytes} bytes (the limit)")
                if time.monotonic() > deadline:
                    raise InvalidInput(f"{named}: timed out after {timeout_s:g} s")
                handle.write(piece)
        suffix = PurePosixPath(path).suffix.lower()
        target = dest_dir / _download_name(url, suffix if suffix in IMAGE_EXTENSIONS else "")
        os.replace(partial, target)
        partial = None
        return target
    except InvalidInput:
        raise
    except FileNotFoundError:
        raise InvalidInput(f"{named}: not found (no such object, or no such bucket)") from None
    except IsADirectoryError:
        raise InvalidInput(f"{named}: is a folder, not an image file") from None
    except PermissionError as exc:
        raise InvalidInput(f"{named}: access denied ({first_line(exc)}); check the credentials") from None
    except Exception as exc:  # botocore and the other stores' clients raise their own classes
        if type(exc).__name__ in ("NoCredentialsError", "PartialCredentialsError", "DefaultCredentialsError"):
            raise InvalidInput(f"{named}: no credentials for {protocol}:// ({first_line(exc)})") from None
        raise InvalidInput(f"{named}: cannot read ({type(exc).__name__}: {first_line(exc)})") from None
    finally:
        if partial is not None:
            Path(partial).unlink(missing_ok=True)


def check_http_url(url: str, *, error: type[Exception]) -> None:
    parts = urlparse(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise error(f"must be an http(s) URL, got {shown(url)}")


def _download_name(url: str, extension: str) -> str:
    return f"{hashlib.sha256(url.encode()).hexdigest()[:SHA_NAME_CHARS]}{extension}"


def _extension(url: str, content_type: str, named: str) -> str:
    """The file extension for a download; raises InvalidInput when the content type is not an image."""
    suffix = PurePosixPath(unquote(urlparse(url).path)).suffix.lower()
    if content_type.startswith("image/"):
        if suffix in IMAGE_EXTENSIONS:
            return suffix
        return CONTENT_TYPE_EXTENSIONS.get(content_type) or mimetypes.guess_extension(content_type) or ""
    if content_type in GENERIC_CONTENT_TYPES and suffix in IMAGE_EXTENSIONS:
        return suffix
    raise InvalidInput(f"{named}: not an image (content type {content_type or 'missing'})")
