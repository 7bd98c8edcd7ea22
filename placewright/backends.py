"""Backends of a stage: one base class, a registry per stage, and the fallback chain.

Every backend subclasses its stage's base class (``Enhancer``, ``Cutter``, ``SceneGenerator``,
``Analyzer``, ``Locator``, ``Compositor``, ``Harmonizer``), which fixes the typed ``__call__``
signature of that stage and the registry it joins. A backend declares only what is its own::

    class SpandrelEnhancer(Enhancer):
        name = "spandrel"                     # registry key, and what the manifest records
        version = "1"                         # part of every cache key: bump it when the output changes
        requires = ("torch", "spandrel")      # import names it needs (the ai extra)

        @classmethod
        def weights(cls, options): return options.upscaler   # the ModelSpec it loads, if any

        def __call__(self, image): ...

Defining the subclass registers it (``__init_subclass__``). The base class provides the
constructor (``self.options``), ``unavailable_reason(options)`` (missing packages, then missing
weights, then :meth:`Backend.setup_problem` for servers and keys: cheap, no model is loaded) and
``source(options)`` (where it looks, for ``placewright models``).

A :class:`Registry` holds a stage's backends and its **preference order**, declared by name where
the stage is defined; the last name is the classical backend, which ends every chain. A registered
backend that is not in the preference order runs only when a setting names it. :func:`run_chain`
tries a chain in order and returns the first result with a :class:`StageRecord` saying which
backend ran, how long it took, which were skipped as unavailable (``auto`` mode: no weights, no
key) and which failed or were forced but unavailable (``fallback_from`` and ``error``).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from abc import ABC
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

from placewright.errors import (
    BackendUnavailable,
    InvalidInput,
    PlacewrightError,
    StageFailed,
    TransientBackendError,
    UnknownBackend,
)
from placewright.models.runtime import missing_packages
from placewright.models.weights import find_pretrained, weights_reason
from placewright.settings import ModelSpec

logger = logging.getLogger(__name__)

Options = TypeVar("Options")  # a stage's settings section (its backends' options)
R = TypeVar("R")


class Backend(ABC, Generic[Options]):
    """Base of every backend; see the module docstring.

    Class attributes a backend sets:
        name: short registry key ("rembg", "diffusers-inpaint").
        version: part of cache keys; bump it when the backend's output changes.
        requires: import names of the packages it needs; missing ones make it unavailable.
    """

    name: ClassVar[str]
    version: ClassVar[str] = "1"
    requires: ClassVar[tuple[str, ...]] = ()
    registry: ClassVar[Registry[Any]]

    def __init__(self, options: Options) -> None:
        self.options = options

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:  # a concrete backend, not a stage's base class
            cls.registry.register(cls)

    @classmethod
    def weights(cls, options: Options) -> ModelSpec | None:
        """The model this backend loads (None: it needs no weights)."""
        return None

    @classmethod
    def find_weights(cls, spec: ModelSpec) -> Path:
        """Where ``spec``'s weights are here (default: a model folder, or a repo id in the local HF cache).

        Raises:
            BackendUnavailable: naming every place looked in.
        """
        return find_pretrained(spec)

    @classmethod
    def setup_problem(cls, options: Options) -> str | None:
        """Why the backend cannot run beyond packages and weights (no server, no key); None when fine."""
        return None

    @classmethod
    def unavailable_reason(cls, options: Options) -> str | None:
        """None when the backend can run here with ``options``, else a sentence saying why not."""
        reason = missing_packages(*cls.requires)
        if reason is None and (spec := cls.weights(options)) is not None:
            reason = weights_reason(cls.find_weights, spec)
        return reason or cls.setup_problem(options)

    @classmethod
    def source(cls, options: Options) -> str:
        """Where the backend looks for its weights or server, for ``placewright models``."""
        spec = cls.weights(options)
        if spec is None:
            return "built in"
        if Path(spec.model).is_absolute():
            return spec.model
        where = f"as given, or in {spec.models_dir}"
        if cls.find_weights.__func__ is Backend.find_weights.__func__:  # type: ignore[attr-defined]
            where += ", or a Hugging Face repo id in the local cache"
        return f"{spec.model} ({where})"


B = TypeVar("B", bound=Backend[Any])


@dataclass(frozen=True)
class StageRecord:
    """What happened in one stage: recorded in the manifest under ``stages``."""

    backend: str
    seconds: float
    fallback_from: str | None = None
    error: str | None = None
    skipped: tuple[str, ...] = ()
    note: str | None = None  # what the stage did beyond its backend (e.g. the enhance stage's label guard)

    def __post_init__(self) -> None:
        object.__setattr__(self, "seconds", round(float(self.seconds), 4))  # timings to 0.1 ms


class Registry(Generic[B]):
    """The backends of one stage, and the order ``auto`` tries them in.

    Args:
        stage: the stage's name, for messages.
        preference: backend names, best first; the last is the classical backend, which can
            always run and ends every chain.
    """

    def __init__(self, stage: str, preference: tuple[str, ...]) -> None:
        if not preference:
            raise ValueError(f"stage {stage!r} needs at least its classical backend")
        self.stage = stage
        self.preference = preference
        self._backends: dict[str, type[B]] = {}

    @property
    def classical(self) -> str:
        return self.preference[-1]

    def register(self, cls: type[B]) -> type[B]:
        """Add ``cls`` under ``cls.name`` (backend classes call this when they are defined)."""
        if cls.name in self._backends:
            raise ValueError(f"{self.stage} backend {cls.name!r} is registered twice")
        self._backends[cls.name] = cls
        return cls

    def names(self) -> list[str]:
        """Every registered name: the preference order first, then backends that run only when named."""
        return [*self.preference, *(name for name in self._backends if name not in self.preference)]

    def get(self, name: str) -> type[B]:
        try:
            return self._backends[name]
        except KeyError:
            valid = ", ".join(["auto", *self.names()])
            raise UnknownBackend(
                f"unknown {self.stage} backend {name!r}; choose one of: {valid}", stage=self.stage
            ) from None

    def chain(self, choice: str = "auto") -> list[type[B]]:
        """The backends to try for ``choice``, ending with the classical one.

        ``"auto"``: the preference order; :func:`run_chain` skips those unavailable here.
        A name: that backend, then the classical one.
        """
        if choice == "auto":
            return [self.get(name) for name in self.preference]
        picked = self.get(choice)
        return [picked, self.get(self.classical)] if choice != self.classical else [picked]

    def loads_models(self, choice: str = "auto", options: Any = None) -> bool:
        """Whether a backend of the chain that can run here loads model weights (and so may use a GPU)."""
        return any(b.unavailable_reason(options) is None and b.weights(options) is not None for b in self.chain(choice))

    def signature(self, choice: str = "auto", options: Any = None) -> str:
        """``name@version`` of every backend in the chain that can run (others ``name@-``).

        Goes into cache keys, so a result computed while a backend was unavailable is not
        reused once its weights or credentials appear. A backend that loads weights adds
        ``:`` and their :func:`weights_identity`, so replacing the file or folder behind the
        same path (a new checkpoint, a fixed download) is not answered from the cache.
        """
        return ",".join(_signature(b, options) for b in self.chain(choice))


_IDENTITIES: dict[tuple[Any, ...], str] = {}
_IDENTITIES_LOCK = threading.Lock()


def weights_identity(path: Path) -> str:
    """A short identity of a weights file or folder, for cache keys.

    A file: the sha256 of its content (12 hex digits), memoised per process by path, size,
    mtime, ctime and inode, so each file version is read once. A folder (Hugging Face model,
    diffusers pipeline): a hash of its files' relative names, sizes and mtimes (its files are
    large and many; any rewrite changes a size or an mtime).
    """
    path = Path(path)
    if path.is_dir():
        digest = hashlib.sha256()
        for item in sorted(p for p in path.rglob("*") if p.is_file()):
            st = item.stat()
            digest.update(f"{item.relative_to(path).as_posix()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        return digest.hexdigest()[:12]
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
    if (known := _IDENTITIES.get(key)) is not None:
        return known
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    with _IDENTITIES_LOCK:
        _IDENTITIES[key] = digest.hexdigest()[:12]
    return _IDENTITIES[key]


def _signature(backend: type[Backend[Any]], options: Any) -> str:
    """``name@version[:weights identity]``, or ``name@-`` when the backend cannot run here."""
    if backend.unavailable_reason(options) is not None:
        return f"{backend.name}@-"
    spec = backend.weights(options) if options is not None else None
    if spec is None:
        return f"{backend.name}@{backend.version}"
    try:
        identity = weights_identity(backend.find_weights(spec))
    except (BackendUnavailable, OSError):  # vanished since unavailable_reason looked
        return f"{backend.name}@-"
    return f"{backend.name}@{backend.version}:{identity}"


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


__all__ = ["Backend", "BackendUnavailable", "Registry", "StageRecord", "run_chain", "weights_identity"]
