"""Where runs are published and intermediates kept: a local folder or an object store, through fsspec.

A :class:`Location` is a filesystem plus a root path. ``placewright-out`` and ``file:///srv/out`` are
local folders; ``s3://bucket/prefix`` goes through s3fs, which finds credentials, region and endpoint the
way every AWS tool does (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``,
``AWS_ENDPOINT_URL``, ``~/.aws``); :class:`~placewright.settings.StorageSettings` can name an endpoint
and a profile instead. Any other fsspec protocol works when its package is installed.

Writes are atomic per object (a local file is written under a temporary name and renamed; an S3 PUT is
atomic) and idempotent: an object that already holds the same bytes is not written again.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fsspec

from placewright.errors import InvalidInput, first_line
from placewright.settings import StorageSettings

logger = logging.getLogger(__name__)

# Packages that provide the common fsspec protocols, for the error that names what to install.
PROTOCOL_PACKAGES = {"s3": "s3fs", "s3a": "s3fs", "gs": "gcsfs", "gcs": "gcsfs", "az": "adlfs", "abfs": "adlfs"}
# Object stores that sign GET URLs (fsspec's ``sign`` / s3fs's ``url``).
_SIGNING_PROTOCOLS = ("s3", "s3a", "gs", "gcs")
# botocore timeouts: an unreachable endpoint fails in seconds, not minutes. SigV4 for presigned URLs:
# botocore may otherwise sign them with SigV2, which newer AWS regions and many S3-compatible stores refuse.
_S3_CONFIG = {
    "connect_timeout": 5,
    "read_timeout": 60,
    "retries": {"max_attempts": 2, "mode": "standard"},
    "signature_version": "s3v4",
}


def protocol_of(url: str) -> str:
    """``s3`` for ``s3://b/p``, ``file`` for a plain path or ``file://`` URL."""
    if "://" not in url:
        return "file"
    return url.split("://", 1)[0].lower()


def is_local(url: str) -> bool:
    return protocol_of(url) in ("file", "local")


def storage_options(url: str, settings: StorageSettings) -> dict[str, Any]:
    """fsspec options for ``url``: the settings' endpoint, profile and extra options.

    Nothing set means s3fs/botocore resolve everything from the standard AWS environment.
    """
    protocol = protocol_of(url)
    options: dict[str, Any] = {}
    if protocol in ("s3", "s3a"):
        options["use_listings_cache"] = False  # exists() must see objects written a moment ago
        options["config_kwargs"] = dict(_S3_CONFIG)
        if settings.endpoint_url:
            options["endpoint_url"] = settings.endpoint_url
        if settings.profile:
            options["profile"] = settings.profile
    options.update(settings.options)
    return options


@dataclass(frozen=True)
class StoredObject:
    """One object to write: its path under the location, bytes and HTTP headers."""

    key: str
    data: bytes
    content_type: str
    cache_control: str | None = None


class Location:
    """A root folder on some filesystem; keys are ``/``-separated paths under it."""

    def __init__(self, url: str, settings: StorageSettings) -> None:
        self.url = url.rstrip("/") or url
        self.protocol = protocol_of(url)
        try:
            self.fs, root = fsspec.core.url_to_fs(url, **storage_options(url, settings))
        except ImportError:
            package = PROTOCOL_PACKAGES.get(self.protocol, f"the fsspec package for {self.protocol}://")
            raise InvalidInput(f"{url}: {self.protocol}:// storage needs {package} (pip install {package})") from None
        except ValueError as exc:
            raise InvalidInput(f"{url}: not a storage location fsspec knows ({exc})") from None
        self.root = root.rstrip("/") if root not in ("/", "") else root
        self.settings = settings

    @property
    def local(self) -> bool:
        return self.protocol in ("file", "local")

    def path(self, key: str) -> str:
        return f"{self.root}/{key}" if key else self.root

    def uri(self, key: str = "") -> str:
        """The fsspec URL of ``key`` (a plain absolute path for local folders)."""
        path = self.path(key)
        return str(Path(path).resolve()) if self.local else f"{self.protocol}://{path}"

    def check_reachable(self) -> None:
        """Fail fast, before any work, when the location cannot be used.

        Local: the folder (or its nearest existing parent) is a writable folder. Object stores: the
        credentials work and the bucket exists.

        Raises:
            InvalidInput: one line naming the location and the problem.
        """
        if self.local:
            return  # plan.check_output_folder checks local folders
        bucket = self.root.split("/", 1)[0]
        try:
            self.fs.info(bucket)  # exists() would hide a bad endpoint or bad credentials as "False"
        except FileNotFoundError:
            raise InvalidInput(
                f"{self.url}: bucket {bucket!r} does not exist (or these credentials cannot see it)"
            ) from None
        except PermissionError as exc:
            raise InvalidInput(f"{self.url}: access denied ({first_line(exc)}); check the credentials") from None
        except Exception as exc:  # botocore raises its own classes for missing credentials and endpoints
            raise InvalidInput(f"{self.url}: storage is not reachable ({_describe(exc)})") from None

    def read(self, key: str) -> bytes | None:
        """The object's bytes, or None when it does not exist."""
        try:
            return self.fs.cat_file(self.path(key))
        except FileNotFoundError:
            return None

    def holds(self, key: str, data: bytes) -> bool:
        """True when ``key`` already holds exactly ``data``."""
        try:
            info = self.fs.info(self.path(key))
        except FileNotFoundError:
            return False
        if info.get("type") == "directory" or int(info.get("size") or -1) != len(data):
            return False
        etag = str(info.get("ETag") or "").strip('"')
        if etag and "-" not in etag:  # a single-part upload's ETag is the MD5 of its bytes
            return etag == hashlib.md5(data, usedforsecurity=False).hexdigest()
        return self.read(key) == data

    def write(self, item: StoredObject) -> bool:
        """Write one object atomically; returns False (and writes nothing) if it already holds these bytes."""
        if self.holds(item.key, item.data):
            return False
        headers = {}
        if self.protocol in ("s3", "s3a"):
            headers = {"ContentType": item.content_type}
            if item.cache_control:
                headers["CacheControl"] = item.cache_control
        write_atomically(self.fs, self.path(item.key), item.data, local=self.local, **headers)
        return True

    def read_quietly(self, key: str) -> bytes | None:
        """Like :meth:`read`, but None also when the store cannot be reached."""
        try:
            return self.read(key)
        except Exception:
            return None

    def remove_empty_folders(self, key: str) -> None:
        """Remove ``key`` and the folders below it if they hold no files (local folders only)."""
        if not self.local:
            return  # object stores have no folders
        top = Path(self.path(key))
        if not top.is_dir():
            return
        for folder in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
            with contextlib.suppress(OSError):
                folder.rmdir()
        with contextlib.suppress(OSError):
            top.rmdir()

    def remove(self, key: str) -> None:
        """Delete one object; a missing object is not an error."""
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm(self.path(key))

    @property
    def url_mode(self) -> str:
        """The effective ``urls`` mode: ``auto`` resolved to public, presigned or plain."""
        mode = self.settings.urls
        if mode != "auto":
            return mode
        if self.settings.public_base_url:
            return "public"
        return "presigned" if self.protocol in _SIGNING_PROTOCOLS else "plain"

    def check_urls(self) -> None:
        """Raise InvalidInput when the ``urls`` mode cannot work for this location."""
        mode = self.url_mode
        if mode == "public" and not self.settings.public_base_url:
            raise InvalidInput("storage.urls is 'public' but storage.public_base_url is not set")
        if mode == "presigned" and self.protocol not in _SIGNING_PROTOCOLS:
            raise InvalidInput(f"{self.url}: presigned URLs need an object store (s3://...), not {self.protocol}://")

    def url_for(self, key: str) -> str:
        """The URL a browser (or an ad tool) fetches ``key`` from, per the settings' ``urls`` mode.

        ``public``: ``public_base_url`` + the key's path under the location root. ``presigned``: a signed
        GET URL valid for ``presign_expiry_s``. ``plain``: a ``file://`` URL for local folders, the
        storage URL (``s3://...``) otherwise. ``auto``: public when a base URL is set, else presigned on
        object stores, else plain.
        """
        self.check_urls()
        mode = self.url_mode
        if mode == "public":
            return f"{str(self.settings.public_base_url).rstrip('/')}/{self.public_key(key)}"
        if mode == "presigned":
            return self._sign(self.path(key))
        if self.local:
            return Path(self.path(key)).resolve().as_uri()
        return self.uri(key)

    def public_key(self, key: str) -> str:
        """``key``'s path under the folder ``public_base_url`` serves: ``storage.public_root``, else this location.

        Raises:
            InvalidInput: the key lies outside ``public_root`` (no public URL can reach it).
        """
        base = self.settings.public_root
        if not base:
            return key
        if self.local and is_local(base):
            root, target = Path(base.removeprefix("file://")).resolve(), Path(self.path(key)).resolve()
            if not target.is_relative_to(root):
                raise InvalidInput(f"{target} is not under storage.public_root {base}: it has no public URL")
            return target.relative_to(root).as_posix()
        prefix = f"{base.rstrip('/')}/"
        full = self.uri(key)
        if not full.startswith(prefix):
            raise InvalidInput(f"{full} is not under storage.public_root {base}: it has no public URL")
        return full[len(prefix) :]

    def _sign(self, path: str) -> str:
        expiry = self.settings.presign_expiry_s
        if self.protocol in ("s3", "s3a"):
            return self.fs.url(path, expires=expiry)
        return self.fs.sign(path, expiration=expiry)


def write_atomically(fs: fsspec.AbstractFileSystem, path: str, data: bytes, *, local: bool, **put_options: Any) -> None:
    """Write ``data`` to ``path`` so that readers see the whole file or nothing.

    Local files are written under a temporary name and renamed (removed on failure); an object
    store's PUT is atomic already. ``put_options`` go to the PUT (S3: ContentType, CacheControl).
    """
    if not local:
        fs.pipe_file(path, data, **put_options)
        return
    fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
    partial = f"{path}.{uuid.uuid4().hex[:8]}.partial"
    try:
        fs.pipe_file(partial, data)
        fs.mv(partial, path)
    finally:
        if fs.exists(partial):
            fs.rm(partial)


def open_location(url: str, settings: StorageSettings) -> Location:
    """A :class:`Location` for ``url`` (a path or fsspec URL)."""
    return Location(url, settings)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {first_line(exc)}"


# Under a remote --out, shared work files live here, beside the runs (hidden from run listings).
WORK_FOLDER = ".placewright"


def intermediates_url(out_dir: str, settings: StorageSettings, cache_dir: Path) -> str:
    """Where intermediate images go for a run published to ``out_dir`` (see ``StorageSettings.intermediates``)."""
    if settings.intermediates:
        return settings.intermediates
    if is_local(out_dir):
        return str(Path(cache_dir) / "blobs")
    return f"{out_dir.rstrip('/')}/{WORK_FOLDER}/blobs"


def results_url(out_dir: str, settings: StorageSettings) -> str | None:
    """Where Prefect keeps cached stage results (None: Prefect's own local storage)."""
    if settings.results:
        return settings.results
    if is_local(out_dir):
        return None
    return f"{out_dir.rstrip('/')}/{WORK_FOLDER}/results"
