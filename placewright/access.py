"""Where a run may read its inputs and publish its outputs: the one description of the rule.

The CLI reads and writes wherever its user says (:data:`UNRESTRICTED`). A run that arrives from
outside (a flow run of a deployment: the Prefect UI, ``run_deployment``, a schedule, the HTTP
service) is someone else's request, held to the ``access`` settings (:meth:`Access.remote`):

- what it reads (a product, a background, a campaign file, a campaign product's ``path:``) must lie
  under one of ``access.input_roots``, unless it is an http(s) URL: those go through the URL guard
  (public addresses only, :mod:`placewright.url_guard`) instead;
- where it publishes (``out``, a campaign's ``out:``) must lie under one of ``access.output_roots`` or
  the settings' ``out_dir`` (an empty list: ``out_dir`` only).

A local path or ``file://`` URL is under a local root when its real path (relative paths against the
working directory, ``..`` and symlinks resolved, as the file system would) is the root's real path or
below it. A storage URL (``s3://bucket/prefix``...) is under a URL root when it has the root's scheme,
bucket and path segments as a prefix, segment by segment (``s3://bucket-evil`` is not under
``s3://bucket``); a URL with a ``..`` segment or a chained fsspec URL (``a::b``) is under no root.

The module is Prefect-free: the flows decide whether a run arrived from outside and pass the
:class:`Access` to :func:`placewright.plan.plan_run` and :func:`placewright.campaign.load_campaign`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from placewright.errors import InvalidInput

if TYPE_CHECKING:
    from placewright.settings import Settings

HTTP_SCHEMES = ("http", "https")
# Object stores images may be read from, through fsspec and the storage settings. Their "host" is a
# bucket or container, not a machine: no scheme here reaches a host the URL guard has not checked
# (ftp://, sftp://, smb://, webhdfs://... would, so they are not accepted).
STORAGE_SCHEMES = ("s3", "s3a", "gs", "gcs", "az", "abfs", "abfss")
# Names of one store: a URL and a root match across them.
_SAME_STORE = {"s3a": "s3", "gcs": "gs", "abfss": "abfs"}
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*$")


def scheme_of(location: str) -> str | None:
    """``s3`` for ``s3://b/k``, ``""`` for a plain path, None for ``x://`` whose ``x`` is not a scheme."""
    if "://" not in location:
        return ""
    scheme = location.split("://", 1)[0]
    return scheme.lower() if _SCHEME.match(scheme) else None


def is_http(location: str) -> bool:
    return scheme_of(location) in HTTP_SCHEMES


def is_local(location: str) -> bool:
    """A plain path or a ``file://`` URL."""
    return scheme_of(location) in ("", "file")


def local_path(location: str) -> str:
    """The file system path of a plain path or ``file://`` URL (``file:///srv/a.png`` -> ``/srv/a.png``)."""
    return location[len("file://") :] if scheme_of(location) == "file" else location


def real_path(location: str) -> str:
    """The absolute path a local location names: against the working directory, ``..`` and symlinks resolved."""
    return os.path.realpath(local_path(location))


def url_segments(url: str) -> tuple[str, ...] | None:
    """``("s3", "bucket", "a", "b")`` for ``s3://bucket/a//b/``; None for a URL that names no one place.

    Empty and ``.`` segments are dropped; a ``..`` segment, a chained fsspec URL (``a::b``) or a
    string that is not a URL give None.
    """
    scheme = scheme_of(url)
    if not scheme or "::" in url:
        return None
    segments = [s for s in url.split("://", 1)[1].split("/") if s not in ("", ".")]
    if ".." in segments or not segments:
        return None
    return (_SAME_STORE.get(scheme, scheme), *segments)


def is_under(location: str, roots: tuple[str, ...] | list[str]) -> bool:
    """Whether ``location`` lies under (or is) one of ``roots``; see the module doc for the rule."""
    if is_local(location):
        target = real_path(location)
        for root in roots:
            if is_local(root):
                base = os.path.realpath(os.path.expanduser(local_path(root)))
                if target == base or target.startswith(base.rstrip(os.sep) + os.sep):
                    return True
        return False
    parts = url_segments(location)
    if parts is None:
        return False
    for root in roots:
        prefix = None if is_local(root) else url_segments(root)
        if prefix is not None and parts[: len(prefix)] == prefix:
            return True
    return False


@dataclass(frozen=True)
class Access:
    """What a run may read and where it may publish.

    Attributes:
        input_roots: folders and storage URL prefixes inputs must lie under; None: anywhere.
        output_roots: where outputs may go besides ``out_dir``; None: anywhere.
        out_dir: the settings' ``out_dir``, always a place to publish.
    """

    input_roots: tuple[str, ...] | None = None
    output_roots: tuple[str, ...] | None = None
    out_dir: str = ""

    @classmethod
    def remote(cls, settings: Settings) -> Access:
        """The limits of a run that arrived from outside: the ``access`` settings."""
        return cls(tuple(settings.access.input_roots), tuple(settings.access.output_roots), settings.out_dir)

    @property
    def restricted(self) -> bool:
        return self.input_roots is not None or self.output_roots is not None

    def input_problem(self, location: str) -> str | None:
        """Why ``location`` may not be read (``"is outside access.input_roots (['.'])"``), or None."""
        if self.input_roots is None or is_http(location) or is_under(location, self.input_roots):
            return None
        return f"is outside access.input_roots ({list(self.input_roots)!r})"

    def output_problem(self, location: str) -> str | None:
        """Why nothing may be published to ``location``, or None."""
        if self.output_roots is None or is_under(location, (*self.output_roots, self.out_dir)):
            return None
        return f"is outside access.output_roots ({list(self.output_roots)!r}) and out_dir ({self.out_dir!r})"

    def check_input(self, location: str, *, what: str) -> None:
        """Raise InvalidInput (``"<what> <location> is outside access.input_roots (...)"``) unless readable."""
        if (problem := self.input_problem(location)) is not None:
            raise InvalidInput(f"{what} {location} {problem}")

    def check_output(self, location: str, *, what: str = "out") -> None:
        """Raise InvalidInput (``"<what> <location> is outside access.output_roots (...)"``) unless writable."""
        if (problem := self.output_problem(location)) is not None:
            raise InvalidInput(f"{what} {location} {problem}")


UNRESTRICTED = Access()

__all__ = [
    "HTTP_SCHEMES",
    "STORAGE_SCHEMES",
    "UNRESTRICTED",
    "Access",
    "is_http",
    "is_local",
    "is_under",
    "local_path",
    "real_path",
    "scheme_of",
    "url_segments",
]
