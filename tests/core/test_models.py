"""Shared model plumbing: settings propagation, weight lookup, load-once cache."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from placewright.errors import BackendUnavailable
from placewright.models import MODELS, ModelCache, find_pretrained, find_weights_file, missing_packages, weights_reason
from placewright.settings import ModelSpec, Settings


def test_settings_give_every_model_spec_the_models_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLACEWRIGHT_MODELS_DIR", str(tmp_path))
    settings = Settings()
    specs = [
        getattr(section, name)
        for section in (getattr(settings, f) for f in type(settings).model_fields)
        if hasattr(type(section), "model_fields")
        for name in type(section).model_fields
        if isinstance(getattr(section, name), ModelSpec)
    ]
    assert all(spec.models_dir == tmp_path for spec in specs)


def test_find_weights_file(tmp_path: Path) -> None:
    (tmp_path / "x4.pth").write_bytes(b"weights")
    spec = ModelSpec(model="x4.pth", models_dir=tmp_path)
    assert find_weights_file(spec) == tmp_path / "x4.pth"
    assert find_weights_file(ModelSpec(model=str(tmp_path / "x4.pth"))) == tmp_path / "x4.pth"
    with pytest.raises(BackendUnavailable, match="looked in"):
        find_weights_file(ModelSpec(model="missing.pth", models_dir=tmp_path))
    assert "missing.pth" in (weights_reason(find_weights_file, ModelSpec(model="missing.pth")) or "")
    assert weights_reason(find_weights_file, spec) is None


def test_find_pretrained_local_folder_and_missing_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "tiny").mkdir()
    (tmp_path / "tiny" / "config.json").write_text("{}")
    assert find_pretrained(ModelSpec(model="tiny", models_dir=tmp_path)) == tmp_path / "tiny"
    (tmp_path / "pipe").mkdir()
    (tmp_path / "pipe" / "model_index.json").write_text("{}")  # a diffusers pipeline folder
    assert find_pretrained(ModelSpec(model="pipe", models_dir=tmp_path)) == tmp_path / "pipe"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    started = time.perf_counter()
    with pytest.raises(BackendUnavailable, match="not found"):
        find_pretrained(ModelSpec(model="some-org/some-model", models_dir=tmp_path))
    assert time.perf_counter() - started < 10, "a missing model fails fast, never waits on the network"


def test_model_cache_loads_each_key_once_across_threads() -> None:
    cache = ModelCache()
    calls: list[str] = []

    def loader() -> object:
        calls.append("load")
        time.sleep(0.05)
        return object()

    results: list[object] = []
    threads = [threading.Thread(target=lambda: results.append(cache.get("k", loader))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == ["load"] and len({id(r) for r in results}) == 1
    assert cache.loads["k"] == 1
    cache.get("other", loader)
    assert cache.loads == {"k": 1, "other": 1}
    cache.clear()
    assert not cache.loads


def test_missing_packages() -> None:
    assert missing_packages("json", "os") is None
    reason = missing_packages("json", "surely_not_installed_pkg")
    assert reason is not None and "surely_not_installed_pkg" in reason and "placewright[ai]" in reason
    assert isinstance(MODELS, ModelCache)


def test_find_pretrained_finds_a_repo_in_the_hugging_face_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A repo id resolves to its snapshot in the HF cache (the layout huggingface_hub writes), offline."""
    import huggingface_hub.constants

    cache = tmp_path / "hub"
    snapshot = cache / "models--some-org--tiny-model" / "snapshots" / "0123abcd"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    (cache / "models--some-org--tiny-model" / "refs").mkdir()
    (cache / "models--some-org--tiny-model" / "refs" / "main").write_text("0123abcd")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert find_pretrained(ModelSpec(model="some-org/tiny-model", models_dir=tmp_path)).resolve() == snapshot.resolve()
    with pytest.raises(BackendUnavailable, match=f"Hugging Face cache {cache}"):
        find_pretrained(ModelSpec(model="some-org/other-model", models_dir=tmp_path))
