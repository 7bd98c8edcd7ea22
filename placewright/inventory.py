"""What backends this installation has, where each looks for weights, and whether it can run."""

from __future__ import annotations

from typing import Any

from placewright.settings import Settings
from placewright.stages import stages


def backend_inventory(settings: Settings) -> list[dict[str, Any]]:
    """One row per backend: stage, name, how it gets selected, where it looks, and its status.

    Stages and backends come from the stage table (:mod:`placewright.stages`), in pipeline and
    preference order; backends outside the preference order (run only when a setting names them)
    come after a stage's classical one. ``source`` is where a backend looks for its weights or
    server (``Backend.source``); classical backends are built in.
    """
    rows = []
    for stage in stages():
        registry = stage.registry
        options = getattr(settings, stage.section)
        choice = getattr(options, "backend", "auto")
        for name in registry.names():
            backend = registry.get(name)
            reason = backend.unavailable_reason(options)
            if name == registry.classical:
                selected_by = "fallback (always)" if choice != name else "forced"
            elif name not in registry.preference:
                selected_by = "forced" if choice == name else "only when named"
            else:
                selected_by = "forced" if choice == name else ("auto" if choice == "auto" else "off")
            rows.append(
                {
                    "stage": stage.name,
                    "backend": name,
                    "version": backend.version,
                    "selected_by": selected_by,
                    "source": backend.source(options),
                    "available": reason is None,
                    "reason": reason,
                }
            )
    return rows
