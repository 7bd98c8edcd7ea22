"""The backend base class, registries with a declared preference order, and the fallback chain."""

from __future__ import annotations

from abc import abstractmethod
from pathlib import Path
from typing import ClassVar

import pytest

from placewright.backends import Backend, Registry, run_chain
from placewright.errors import InvalidInput, StageFailed, TransientBackendError, UnknownBackend
from placewright.settings import ModelSpec


class Options:
    """A stand-in settings section."""

    def __init__(self, backend: str = "auto", weights: str | None = None) -> None:
        self.backend = backend
        self.weights = weights


def _stage(fail: Exception | None = None, available: bool = True) -> tuple[Registry, type[Backend]]:
    """A demo stage (registry, base class): fancy (preferred) and plain (classical), defined in the opposite order."""
    demo_registry: Registry = Registry("demo", preference=("fancy", "plain"))

    class Demo(Backend[Options]):
        registry: ClassVar[Registry] = demo_registry

        @abstractmethod
        def __call__(self, x: int) -> str: ...

    class Plain(Demo):
        name = "plain"

        def __call__(self, x: int) -> str:
            return f"plain {x}"

    class Fancy(Demo):
        name = "fancy"
        version = "2"

        @classmethod
        def setup_problem(cls, options: Options) -> str | None:
            return None if available else "weights not found"

        def __call__(self, x: int) -> str:
            if fail is not None:
                raise fail
            return f"fancy {x}"

    return demo_registry, Demo


def _registry(fail: Exception | None = None, available: bool = True) -> Registry:
    return _stage(fail, available)[0]


def test_auto_follows_the_declared_preference_not_the_registration_order() -> None:
    assert [b.name for b in _registry().chain("auto")] == ["fancy", "plain"]
    assert _registry().signature("auto", Options()) == "fancy@2,plain@1"
    assert _registry(available=False).signature("auto", Options()) == "fancy@-,plain@1", "availability in cache keys"


def test_defining_a_backend_registers_it_and_gives_it_the_base_plumbing() -> None:
    registry, base = _stage()
    plain = registry.get("plain")
    backend = plain(Options())
    assert backend.options.backend == "auto" and backend(3) == "plain 3"
    assert plain.unavailable_reason(Options()) is None and plain.source(Options()) == "built in"
    with pytest.raises(TypeError):
        base(Options())  # type: ignore[abstract]  # the stage's base class is abstract


def test_a_backend_outside_the_preference_runs_only_when_named() -> None:
    registry, base = _stage()

    class Extra(base):  # type: ignore[misc, valid-type]
        name = "extra"

        def __call__(self, x: int) -> str:
            return f"extra {x}"

    assert registry.names() == ["fancy", "plain", "extra"]
    assert [b.name for b in registry.chain("auto")] == ["fancy", "plain"]
    assert [b.name for b in registry.chain("extra")] == ["extra", "plain"]
    result, record = run_chain("demo", registry.chain("extra"), lambda b: b(Options("extra"))(1), options=Options())
    assert (result, record.backend) == ("extra 1", "extra")


def test_requires_and_weights_make_a_backend_unavailable_with_the_reason(tmp_path: Path) -> None:
    demo_registry: Registry = Registry("demo", preference=("heavy", "plain"))

    class Demo(Backend[Options]):
        registry: ClassVar[Registry] = demo_registry

    class Heavy(Demo):
        name = "heavy"
        requires = ("surely_not_an_installed_module",)

    class Weighted(Demo):
        name = "weighted"

        @classmethod
        def weights(cls, options: Options) -> ModelSpec | None:
            return ModelSpec(model=str(options.weights), models_dir=tmp_path)

    assert "needs surely_not_an_installed_module" in str(Heavy.unavailable_reason(Options()))
    assert "pip install" in str(Heavy.unavailable_reason(Options()))
    missing = Weighted.unavailable_reason(Options(weights=str(tmp_path / "nope")))
    assert missing is not None and "not found" in missing and str(tmp_path / "nope") in missing
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")
    assert Weighted.unavailable_reason(Options(weights="model")) is None, "found in models_dir"
    assert Weighted.source(Options(weights=str(tmp_path / "model"))) == str(tmp_path / "model")
    assert "Hugging Face repo id" in Weighted.source(Options(weights="org/model"))


def test_registering_a_name_twice_is_refused() -> None:
    _, base = _stage()
    with pytest.raises(ValueError, match="registered twice"):

        class Again(base):  # type: ignore[misc, valid-type]
            name = "plain"


def test_unavailable_backend_in_auto_mode_is_skipped_not_a_fallback() -> None:
    registry = _registry(available=False)
    result, record = run_chain("demo", registry.chain("auto"), lambda b: b(Options())(1), options=Options())
    assert result == "plain 1"
    assert record.backend == "plain" and record.fallback_from is None and record.error is None
    assert record.skipped == ("fancy: weights not found",)


def test_forced_backend_comes_first_even_if_unavailable() -> None:
    registry = _registry(available=False)
    options = Options("fancy")
    result, record = run_chain("demo", registry.chain("fancy"), lambda b: b(options)(1), options=options)
    assert result == "plain 1"
    assert record.backend == "plain" and record.fallback_from == "fancy"
    assert "weights not found" in (record.error or "")


def test_unknown_backend_lists_valid_names() -> None:
    with pytest.raises(UnknownBackend, match="auto, fancy, plain"):
        _registry().chain("nope")


def test_failure_falls_back_with_reason() -> None:
    registry = _registry(RuntimeError("CUDA out of memory"))
    result, record = run_chain("demo", registry.chain(), lambda b: b(Options())(3), options=Options())
    assert result == "plain 3"
    assert record.fallback_from == "fancy"
    assert "CUDA out of memory" in (record.error or "")


def test_success_records_backend_and_time() -> None:
    result, record = run_chain("demo", _registry().chain(), lambda b: b(Options())(5), options=Options())
    assert result == "fancy 5" and record.backend == "fancy"
    assert record.fallback_from is None and record.error is None and record.seconds >= 0


def test_transient_error_is_raised_for_a_retry_or_falls_back_on_the_last_attempt() -> None:
    registry = _registry(TransientBackendError("HTTP 503"))
    call = lambda b: b(Options())(1)  # noqa: E731
    with pytest.raises(TransientBackendError):
        run_chain("demo", registry.chain(), call, options=Options(), raise_transient=True)
    result, record = run_chain("demo", registry.chain(), call, options=Options(), raise_transient=False)
    assert result == "plain 1" and "HTTP 503" in (record.error or "")


def test_invalid_input_is_not_retried_on_another_backend() -> None:
    with pytest.raises(InvalidInput):
        run_chain("demo", _registry(InvalidInput("bad")).chain(), lambda b: b(Options())(1), options=Options())


def test_every_backend_failing_is_stage_failed() -> None:
    def boom(backend: type) -> str:
        raise RuntimeError(f"{backend.name} broke")

    with pytest.raises(StageFailed, match=r"fancy broke.*plain broke"):
        run_chain("demo", _registry().chain(), boom, options=Options())


def test_every_stage_declares_its_preference_ending_with_a_classical_backend_that_always_runs() -> None:
    from placewright.settings import Settings
    from placewright.stages import stages

    settings = Settings()
    for stage in stages():
        registry = stage.registry
        assert registry.preference, stage.name
        assert set(registry.preference) <= set(registry.names()), f"{stage.name}: every preferred backend exists"
        classical = registry.get(registry.classical)
        assert classical.unavailable_reason(getattr(settings, stage.section)) is None, stage.name
        assert classical.source(getattr(settings, stage.section)) == "built in"
