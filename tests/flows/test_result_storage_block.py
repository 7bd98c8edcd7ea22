"""The stages' result storage block is saved once, found by later processes, and saved again when it has gone."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from prefect import get_client

from flows import pipeline
from flows.pipeline import result_storage
from placewright.settings import Settings

pytestmark = pytest.mark.usefixtures("prefect_server")


def test_saved_once_then_checked_and_saved_again_when_deleted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    requests: Counter[str] = Counter()
    real = httpx.Client.send

    def send(self: httpx.Client, request: httpx.Request, *args: Any, **kwargs: Any) -> httpx.Response:
        requests[request.method] += 1
        return real(self, request, *args, **kwargs)

    monkeypatch.setattr(httpx.Client, "send", send)
    settings = Settings(cache_dir=tmp_path / "cache")
    out = f"s3://bucket-{tmp_path.name}/runs"  # a location of its own: no other test saved its block
    first = result_storage(out, settings)
    assert first._block_document_id is not None and requests["POST"] >= 1
    requests.clear()
    again = result_storage(out, settings)
    assert again._block_document_id == first._block_document_id
    assert requests == Counter(GET=1), f"one read, no write: {dict(requests)}"
    pipeline._SAVED_STORAGE.clear()  # as a new process (a CLI run) starts: it finds the block, writes nothing
    requests.clear()
    found = result_storage(out, settings)
    assert found._block_document_id == first._block_document_id
    assert not requests.keys() - {"GET"}, f"reads only: {dict(requests)}"
    with get_client(sync_client=True) as client:
        client.delete_block_document(first._block_document_id)
    requests.clear()
    saved = result_storage(out, settings)
    assert requests["POST"] >= 1, "saved again"
    with get_client(sync_client=True) as client:
        assert client.read_block_document(saved._block_document_id).name == saved._block_document_name
