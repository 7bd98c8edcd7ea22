"""Backend registries and the fallback chain every stage runs through.

Each stage keeps a :class:`Registry` of backend classes. A backend class has a short
``name``, a ``version`` (part of every cache key: bump it when its output changes) and
a classmethod ``unavailable_reason(options)`` returning None when it can run here with
these settings (extra installed, weights or credentials present) or a sentence saying
why not. It must be cheap: no model is loaded to answer it.

``Registry.chain(choice)`` turns a setting (``"auto"`` or a backend name) into the
ordered list of backends to try; the stage's classical backend always ends the chain,
so every stage has a fallback. :func:`run_chain` tries them in order and returns the
first result with a :class:`StageRecord` saying which backend ran, how long it took,
which backends were skipped as unavailable (``auto`` mode: no weights, no key) and
which failed or were forced but unavailable (``fallback_from`` and ``error``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from placewright.errors import (
    BackendUnavailable,
    InvalidInput,
    PlacewrightError,
    StageFailed,
    TransientBackendError,
    UnknownBackend,
)

logger = logging.getLogger(__name__)


class Backend(Protocol):
    """What every backend class provides, whatever its stage."""

    name: ClassVar[str]
    version: ClassVar[str]

    @classmethod
    def unavailable_reason(cls, options: Any = None) -> str | None: ...


B = TypeVar("B", bound=Backend)
R = TypeVar("R")


@dataclass(frozen=True)
class StageRecord:
    """What happened in one stage: recorded in the manifest under ``stages``."""

    backend: str
    seconds: float
    fallback_from: str | None = None
    error: str | None = None
    skipped: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, object]:
        return {
            "backend": self.backend,
            "seconds": round(self.seconds, 4),
            "fallback_from": self.fallback_from,
            "error": self.error,
            "skipped": list(self.skipped),
        }


class Registry(Generic[B]):
    """Backends of one stage, by name, in order of preference (best first)."""

    def __init__(self, stage: str, classical: str) -> None:
        self.stage = stage
        self.classical = classical
        self._backends: dict[str, type[B]] = {}

    def register(self, cls: type[B]) -> type[B]:
        """Class decorator: add ``cls`` under ``cls.name``."""
        if cls.name in self._backends:
            raise ValueError(f"{self.stage} backend {cls.name!r} is registered twice")
        self._backends[cls.name] = cls
        return cls

    def names(self) -> list[str]:
        return list(self._backends)

    def get(self, name: str) -> type[B]:
        try:
            return self._backends[name]
        except KeyError:
            valid = ", ".join(["auto", *self._backends])
            raise UnknownBackend(
                f"unknown {self.stage} backend {name!r}; choose one of: {valid}", stage=self.stage
            ) from None

    def chain(self, choice: str = "auto") -> list[type[B]]:
        """The backends to try for ``choice``, ending with the classical one.

        ``"auto"``: every registered backend in preference (registration) order, the
        classical one last; :func:`run_chain` skips those unavailable here. A name: that
        backend, then the classical one.
        """
        classical = self.get(self.classical)
        if choice == "auto":
            picked = [b for b in self._backends.values() if b is not classical]
        else:
            picked = [self.get(choice)] if choice != self.classical else []
        return [*picked, classical]

    def signature(self, choice: str = "auto", options: Any = None) -> str:
        """``name@version`` of every backend in the chain that can run (others ``name@-``).

        Goes into cache keys, so a result computed while a backend was unavailable is not
        reused once its weights or credentials appear.
        """
        return ",".join(
            f"{b.name}@{b.version if b.unavailable_reason(options) is None else '-'}" for b in self.chain(choice)
        )


def run_chain(
    stage: str,
    chain: list[type[B]],
    call: Callable[[type[B]], R],
    *,
    options: Any = None,
    raise_transient: bool = False,
) -> tuple[R, StageRecord]:
    """Run ``call(backend)`` for each backend in ``chain`` until one succeeds.

    Args:
        stage: the stage name, for messages.
        chain: backends in the order to try (from :meth:`Registry.chain`).
        call: runs the stage with one backend class and returns its result.
        options: the stage's settings section, for ``unavailable_reason`` (and its
            ``backend`` names a forced backend: unavailable, it counts as a fallback).
        raise_transient: re-raise a :class:`TransientBackendError` instead of falling
            back, so that an orchestrator can retry the same backend first (Prefect
            tasks set this on every attempt but the last).

    Returns:
        The first result and a :class:`StageRecord` naming the backend that produced it,
        the first backend passed over (``fallback_from``) and why (``error``).

    Raises:
        InvalidInput: at once, from any backend: bad input does not improve with
            another backend.
        StageFailed: when every backend failed.
    """
    passed_over: list[tuple[str, str]] = []
    skipped: list[str] = []
    forced = getattr(options, "backend", "auto")
    for backend in chain:
        reason = backend.unavailable_reason(options)
        if reason is not None:
            if backend.name == forced:
                passed_over.append((backend.name, f"unavailable: {reason}"))
                logger.warning("%s: backend %s unavailable (%s); falling back", stage, backend.name, reason)
            else:
                skipped.append(f"{backend.name}: {reason}")
                logger.info("%s: skipping %s (%s)", stage, backend.name, reason)
            continue
        started = time.perf_counter()
        try:
            result = call(backend)
        except InvalidInput:
            raise
        except TransientBackendError as exc:
            if raise_transient:
                raise
            passed_over.append((backend.name, f"{type(exc).__name__}: {exc}"))
        except (PlacewrightError, Exception) as exc:  # any backend failure falls back
            passed_over.append((backend.name, f"{type(exc).__name__}: {exc}"))
            logger.warning("%s: backend %s failed (%s); falling back", stage, backend.name, exc)
            continue
        else:
            record = StageRecord(
                backend=backend.name,
                seconds=time.perf_counter() - started,
                fallback_from=passed_over[0][0] if passed_over else None,
                error="; ".join(f"{name}: {why}" for name, why in passed_over) or None,
                skipped=tuple(skipped),
            )
            return result, record
    details = "; ".join([*(f"{name}: {why}" for name, why in passed_over), *skipped])
    raise StageFailed(f"{stage} failed with every backend ({details})", stage=stage)


__all__ = ["Backend", "BackendUnavailable", "Registry", "StageRecord", "run_chain"]
