"""The error hierarchy: every failure the pipeline reports on purpose is one of these."""

from __future__ import annotations


class PlacewrightError(Exception):
    """Base class. ``stage`` and ``backend`` say where it happened, when known."""

    def __init__(self, message: str, *, stage: str | None = None, backend: str | None = None) -> None:
        super().__init__(message)
        self.stage = stage
        self.backend = backend


class InvalidInput(PlacewrightError):
    """The user's input cannot be used (bad file, bad size, fully transparent product...)."""


class UnknownBackend(PlacewrightError):
    """A backend name that no stage registry knows."""


class BackendUnavailable(PlacewrightError):
    """A backend whose extra, weights or credentials are missing."""


class TransientBackendError(PlacewrightError):
    """A failure worth retrying (timeouts, HTTP 429/5xx, out of memory)."""


class StageFailed(PlacewrightError):
    """A stage could not produce a result with any of its backends."""


class BlobUnusable(StageFailed):
    """An intermediate image is missing from the cache (evicted, deleted) or corrupt (then it was removed).

    The flows make the product again once with every stage recomputed, which writes it anew.
    ``sha256`` names the blob.
    """

    def __init__(self, message: str, *, sha256: str | None = None, stage: str | None = None) -> None:
        super().__init__(message, stage=stage)
        self.sha256 = sha256


class QualityGateFailed(PlacewrightError):
    """Every variant failed the quality gate and the policy left them all out: nothing was published."""


class UnsafeResult(PlacewrightError):
    """A cached stage result that is not plain placewright data (e.g. a pickle): refused, never loaded."""


def first_line(error: BaseException) -> str:
    """The first non-blank line of ``error``'s message, or its type's name when it has none."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__
