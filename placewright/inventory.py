"""What backends this installation has, where each looks for weights, and whether it can run."""

from __future__ import annotations

from typing import Any

from placewright.settings import Settings

# (stage, settings section) for every stage with a backend registry, in pipeline order.
STAGE_SECTIONS = (
    ("enhance", "enhance"),
    ("cutout", "cutout"),
    ("scene", "scene"),
    ("analyze", "analyze"),
    ("locate", "locate"),
    ("composite", "composite"),
    ("harmonize", "harmonize"),
)


def _registries() -> dict[str, Any]:
    from placewright.analyze import ANALYZERS
    from placewright.composite import COMPOSITORS
    from placewright.cutout import CUTTERS
    from placewright.enhance import ENHANCERS
    from placewright.harmonize import HARMONIZERS
    from placewright.locate import LOCATORS
    from placewright.scene import SCENES

    return {
        "enhance": ENHANCERS,
        "cutout": CUTTERS,
        "scene": SCENES,
        "analyze": ANALYZERS,
        "locate": LOCATORS,
        "composite": COMPOSITORS,
        "harmonize": HARMONIZERS,
    }


def backend_inventory(settings: Settings) -> list[dict[str, Any]]:
    """One row per backend: stage, name, how it gets selected, where it looks, and its status.

    ``source`` comes from the backend's optional ``source(options)`` classmethod (where its
    weights or credentials are looked for); classical backends are built in.
    """
    registries = _registries()
    rows = []
    for stage, section in STAGE_SECTIONS:
        registry = registries[stage]
        options = getattr(settings, section)
        choice = getattr(options, "backend", "auto")
        for backend in registry.chain("auto"):
            reason = backend.unavailable_reason(options)
            source = getattr(backend, "source", None)
            if backend.name == registry.classical:
                selected_by = "fallback (always)" if choice != backend.name else "forced"
                where = "built in"
            else:
                selected_by = "forced" if choice == backend.name else ("auto" if choice == "auto" else "off")
                where = source(options) if callable(source) else "-"
            rows.append(
                {
                    "stage": stage,
                    "backend": backend.name,
                    "version": backend.version,
                    "selected_by": selected_by,
                    "source": where,
                    "available": reason is None,
                    "reason": reason,
                }
            )
    return rows
