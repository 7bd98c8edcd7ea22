"""Shared fixtures: isolated settings and caches per test, one Prefect test server per session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

# Before anything imports Prefect: no telemetry, and Prefect's state kept out of the user's home.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Each test gets its own cache and output folders and a fresh settings object."""
    from placewright.settings import get_settings

    for key in list(os.environ):
        if key.startswith(("PLACEWRIGHT_", "OPENAI_")):  # a developer's OpenAI key must not reach tests
            monkeypatch.delenv(key)
    cache = tmp_path / "cache"
    monkeypatch.setenv("PLACEWRIGHT_CACHE_DIR", str(cache))
    monkeypatch.setenv("PLACEWRIGHT_OUT_DIR", str(tmp_path / "out"))
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    yield cache
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """One throwaway Prefect server for every flow test (starting one costs ~9 s)."""
    home = tmp_path_factory.mktemp("prefect-home")
    os.environ["PREFECT_HOME"] = str(home)
    os.environ["PREFECT_LOCAL_STORAGE_PATH"] = str(home / "storage")
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    with (
        prefect_test_harness(server_startup_timeout=120),
        temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}),
    ):
        yield


@pytest.fixture
def example_product() -> Path:
    return Path(__file__).resolve().parents[1] / "examples" / "olive-oil-bottle.jpg"
