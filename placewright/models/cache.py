"""Models loaded once per process, shared by every task running in it (thread-safe)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Hashable
from typing import Any


class ModelCache:
    """A process-wide ``key -> loaded model`` map; each key is loaded at most once.

    Loads of different keys run in parallel; concurrent requests for the same key wait for
    the one load. ``loads`` counts real loads per key (tests and benchmarks read it).
    """

    def __init__(self) -> None:
        self._models: dict[Hashable, Any] = {}
        self._locks: dict[Hashable, threading.Lock] = {}
        self._guard = threading.Lock()
        self.loads: Counter[Hashable] = Counter()

    def get(self, key: Hashable, loader: Callable[[], Any]) -> Any:
        """The model for ``key``, calling ``loader()`` the first time only."""
        if key in self._models:
            return self._models[key]
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._models:
                self._models[key] = loader()
                self.loads[key] += 1
        return self._models[key]

    def clear(self) -> None:
        """Forget every loaded model (their memory is freed once nothing else holds them)."""
        with self._guard:
            self._models.clear()
            self._locks.clear()
            self.loads.clear()


MODELS = ModelCache()
