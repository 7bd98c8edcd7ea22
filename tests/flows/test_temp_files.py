"""Runs leave nothing behind: no temporary files, no partial objects, also when they fail."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from placewright.settings import get_settings
from placewright.storage import Location
from tests.flows.runs import place, place_state

pytestmark = pytest.mark.usefixtures("prefect_server")


def _files(*roots: Path) -> set[Path]:
    return {p for root in roots if root.exists() for p in root.rglob("*") if p.is_file()}


def test_successful_and_failed_runs_leave_no_temporary_files(
    example_product: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))
    monkeypatch.setattr(tempfile, "tempdir", None)  # gettempdir() reads TMPDIR again
    monkeypatch.setenv("PLACEWRIGHT_RETRY__DELAY_SECONDS", "[0, 0]")
    get_settings.cache_clear()
    assert tempfile.gettempdir() == str(temp)
    out, cache = tmp_path / "out", tmp_path / "cache"
    before = _files(temp)

    manifest = place(example_product, prompts=["a", "b"], size="640x640", out=str(out))
    assert _files(temp) == before
    published = _files(out)
    assert {p.name for p in published} >= {"manifest.json", *(v["image"] for v in manifest["variants"])}

    real_write = Location.write

    def disk_full_after_the_cutout(self: Location, item) -> bool:
        if "/variant-" in item.key:
            raise OSError(28, "No space left on device")
        return real_write(self, item)

    monkeypatch.setattr(Location, "write", disk_full_after_the_cutout)
    state = place_state(example_product, prompts=["c"], size="640x640", out=str(out))
    assert state.is_failed()
    assert _files(temp) == before, "no temporary files after a failed run"
    assert _files(out) == published, "the failed run removed the objects its attempts had written"
    assert sorted(p.name for p in out.iterdir()) == [manifest["run_id"]], "and its (empty) folder"
    assert not [p for p in _files(out, cache) if p.name.endswith(".partial")]


def test_campaign_downloads_are_removed_after_success_and_failure(
    example_product: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Product URLs are downloaded to a temporary folder, which goes when the campaign ends."""
    import functools
    import http.server
    import threading

    from flows.campaign import run_campaign

    served = tmp_path / "served"
    served.mkdir()
    (served / "bottle.jpg").write_bytes(example_product.read_bytes())
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))
    monkeypatch.setattr(tempfile, "tempdir", None)
    monkeypatch.setenv("PLACEWRIGHT_LIMITS__ALLOWED_HOSTS", '["127.0.0.1"]')  # the URL guard refuses loopback
    get_settings.cache_clear()
    try:
        campaign = {
            "name": "from-urls",
            "out": str(tmp_path / "out"),
            "options": {"size": "384x384"},
            "products": [{"url": f"{base}/bottle.jpg", "name": "bottle"}, {"url": f"{base}/gone.jpg", "name": "gone"}],
            "scenes": [{"prompt": "white studio"}],
        }
        state = run_campaign(campaign=campaign, return_state=True)
    finally:
        server.shutdown()
    assert state.is_failed(), "the missing URL fails its product"
    assert _files(temp) == set() and list(temp.iterdir()) == [], "the download folder is gone"
    (run_dir,) = (tmp_path / "out" / "from-urls").iterdir()
    manifest = (run_dir / "bottle" / "manifest.json").read_text()
    assert f"{base}/bottle.jpg" in manifest, "the manifest names the URL, not the temporary copy"
    assert '"category": "bottle"' in manifest, "the analyzer saw the URL's file name"
