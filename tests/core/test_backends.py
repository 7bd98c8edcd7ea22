"""Registries and the fallback chain."""

from __future__ import annotations

from typing import ClassVar

import pytest

from placewright.backends import Registry, run_chain
from placewright.errors import InvalidInput, StageFailed, TransientBackendError, UnknownBackend


def _registry(fail: Exception | None = None, available: bool = True) -> Registry:
    registry: Registry = Registry("demo", classical="plain")

    @registry.register
    class Fancy:
        name: ClassVar[str] = "fancy"
        version: ClassVar[str] = "2"

        @classmethod
        def unavailable_reason(cls, options: object = None) -> str | None:
            return None if available else "weights not found"

        def __call__(self, x: int) -> str:
            if fail is not None:
                raise fail
            return f"fancy {x}"

    @registry.register
    class Plain:
        name: ClassVar[str] = "plain"
        version: ClassVar[str] = "1"

        @classmethod
        def unavailable_reason(cls, options: object = None) -> str | None:
            return None

        def __call__(self, x: int) -> str:
            return f"plain {x}"

    return registry


def test_auto_tries_backends_in_preference_order_and_ends_with_classical() -> None:
    assert [b.name for b in _registry().chain("auto")] == ["fancy", "plain"]
    assert _registry().signature() == "fancy@2,plain@1"
    assert _registry(available=False).signature() == "fancy@-,plain@1", "availability is part of cache keys"


def test_unavailable_backend_in_auto_mode_is_skipped_not_a_fallback() -> None:
    registry = _registry(available=False)
    result, record = run_chain("demo", registry.chain("auto"), lambda b: b()(1))
    assert result == "plain 1"
    assert record.backend == "plain" and record.fallback_from is None and record.error is None
    assert record.skipped == ("fancy: weights not found",)


def test_forced_backend_comes_first_even_if_unavailable() -> None:
    registry = _registry(available=False)
    options = type("Options", (), {"backend": "fancy"})()
    result, record = run_chain("demo", registry.chain("fancy"), lambda b: b()(1), options=options)
    assert result == "plain 1"
    assert record.backend == "plain" and record.fallback_from == "fancy"
    assert "weights not found" in (record.error or "")


def test_unknown_backend_lists_valid_names() -> None:
    with pytest.raises(UnknownBackend, match="auto, fancy, plain"):
        _registry().chain("nope")


def test_failure_falls_back_with_reason() -> None:
    result, record = run_chain("demo", _registry(RuntimeError("CUDA out of memory")).chain(), lambda b: b()(3))
    assert result == "plain 3"
    assert record.fallback_from == "fancy"
    assert "CUDA out of memory" in (record.error or "")


def test_success_records_backend_and_time() -> None:
    result, record = run_chain("demo", _registry().chain(), lambda b: b()(5))
    assert result == "fancy 5" and record.backend == "fancy"
    assert record.fallback_from is None and record.error is None and record.seconds >= 0


def test_transient_error_is_raised_for_a_retry_or_falls_back_on_the_last_attempt() -> None:
    registry = _registry(TransientBackendError("HTTP 503"))
    with pytest.raises(TransientBackendError):
        run_chain("demo", registry.chain(), lambda b: b()(1), raise_transient=True)
    result, record = run_chain("demo", registry.chain(), lambda b: b()(1), raise_transient=False)
    assert result == "plain 1" and "HTTP 503" in (record.error or "")


def test_invalid_input_is_not_retried_on_another_backend() -> None:
    with pytest.raises(InvalidInput):
        run_chain("demo", _registry(InvalidInput("bad")).chain(), lambda b: b()(1))


def test_every_backend_failing_is_stage_failed() -> None:
    def boom(backend: type) -> str:
        raise RuntimeError(f"{backend.name} broke")

    with pytest.raises(StageFailed, match=r"fancy broke.*plain broke"):
        run_chain("demo", _registry().chain(), boom)
