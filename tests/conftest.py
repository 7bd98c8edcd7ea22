"""Shared fixtures: isolated settings and caches per test, one Prefect test server per session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.s3 import CREDENTIALS, MotoS3

# Before anything imports Prefect: no telemetry, and Prefect's state kept out of the user's home.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Each test gets its own cache and output folders and a fresh settings object."""
    from placewright.settings import get_settings
    from placewright.store import MEMORY

    for key in list(os.environ):
        if key.startswith(("PLACEWRIGHT_", "OPENAI_")):  # a developer's OpenAI key must not reach tests
            monkeypatch.delenv(key)
    cache = tmp_path / "cache"
    monkeypatch.setenv("PLACEWRIGHT_CACHE_DIR", str(cache))
    monkeypatch.setenv("PLACEWRIGHT_OUT_DIR", str(tmp_path / "out"))
    # No weights unless a test brings them (a developer's pulled models would change the backends chosen).
    monkeypatch.setenv("PLACEWRIGHT_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    MEMORY.forget()  # no intermediate image of another test in memory, as in a new process
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


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoS3]:
    """moto's S3 server on 127.0.0.1, shared by the tests that only read and write."""
    server = MotoS3().start()
    yield server
    server.stop()


def _use_s3(server: MotoS3, monkeypatch: pytest.MonkeyPatch) -> MotoS3:
    """Point the standard AWS environment at ``server``, as a user's shell would."""
    import s3fs

    for key, value in CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", server.endpoint)
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(key, raising=False)
    s3fs.S3FileSystem.clear_instance_cache()  # the endpoint comes from the env, not the cache key
    return server


@pytest.fixture
def s3(moto_server: MotoS3, monkeypatch: pytest.MonkeyPatch) -> Iterator[MotoS3]:
    """The shared S3 server, with the AWS environment pointing at it."""
    yield _use_s3(moto_server, monkeypatch)
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()


@pytest.fixture
def s3_private(monkeypatch: pytest.MonkeyPatch) -> Iterator[MotoS3]:
    """An S3 server of this test's own, which the test may stop and restart."""
    server = MotoS3().start()
    yield _use_s3(server, monkeypatch)
    server.stop()
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()
