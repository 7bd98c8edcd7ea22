"""Fixtures of the flow tests."""

from __future__ import annotations

import pytest

import tasks.analyze
import tasks.check
import tasks.composite
import tasks.cutout
import tasks.enhance
import tasks.harmonize
import tasks.locate
import tasks.scene

STAGE_FUNCTIONS = {
    "enhance": (tasks.enhance, "enhance"),
    "cutout": (tasks.cutout, "verified_cut_out"),
    "analyze": (tasks.analyze, "analyze"),
    "scene": (tasks.scene, "generate_scene"),
    "locate": (tasks.locate, "locate"),
    "composite": (tasks.composite, "composite"),
    "harmonize": (tasks.harmonize, "harmonize"),
    "check": (tasks.check, "check_variant"),
}


@pytest.fixture
def stage_calls(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Count how often each core stage function really runs."""
    calls = dict.fromkeys(STAGE_FUNCTIONS, 0)
    for stage, (module, name) in STAGE_FUNCTIONS.items():
        real = getattr(module, name)

        def counted(*args, _stage=stage, _real=real, **kwargs):
            calls[_stage] += 1
            return _real(*args, **kwargs)

        monkeypatch.setattr(module, name, counted)
    return calls
