from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from placewright.settings import Settings


def test_defaults() -> None:
    settings = Settings()
    assert settings.output.format == "webp" and settings.composite.shadow_opacity == pytest.approx(0.30)


def test_environment_overrides_nested(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLACEWRIGHT_COMPOSITE__SHADOW_OPACITY", "0.2")
    monkeypatch.setenv("PLACEWRIGHT_OUTPUT__FORMAT", "png")
    settings = Settings()
    assert settings.composite.shadow_opacity == pytest.approx(0.2)
    assert settings.output.format == "png"


def test_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "pw.toml"
    config.write_text('seed = 42\n[output]\nsize = "800x600"\n')
    monkeypatch.setenv("PLACEWRIGHT_CONFIG_FILE", str(config))
    settings = Settings()
    assert settings.seed == 42 and str(settings.output.size) == "800x600"


def test_missing_config_file_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLACEWRIGHT_CONFIG_FILE", "/nonexistent.toml")
    with pytest.raises(ValueError, match=r"nonexistent\.toml"):
        Settings()


def test_bad_values_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLACEWRIGHT_COMPOSITE__SHADOW_OPACITY", "3")
    with pytest.raises(ValidationError):
        Settings()


def test_one_field_of_a_model_spec_can_be_set_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLACEWRIGHT_ENHANCE__UPSCALER__DEVICE", "cpu")
    settings = Settings()
    assert settings.enhance.upscaler.device == "cpu"
    assert settings.enhance.upscaler.model == Settings.model_fields["enhance"].default.upscaler.model
