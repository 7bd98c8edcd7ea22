"""Runs leave nothing behind: no temporary files, no partial objects, also when they fail."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from flows.place_product import place_product
from placewright.settings import get_settings
from placewright.storage import Location

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

    manifest = place_product(str(example_product), prompts=["a", "b"], size="640x640", out=str(out))
    assert _files(temp) == before
    published = _files(out)
    assert {p.name for p in published} >= {"manifest.json", *(v["image"] for v in manifest["variants"])}

    real_write = Location.write

    def disk_full_after_the_cutout(self: Location, item) -> bool:
        if "/variant-" in item.key:
            raise OSError(28, "No space left on device")
        return real_write(self, item)

    monkeypatch.setattr(Location, "write", disk_full_after_the_cutout)
    state = place_product(str(example_product), prompts=["c"], size="640x640", out=str(out), return_state=True)
    assert state.is_failed()
    assert _files(temp) == before, "no temporary files after a failed run"
    assert _files(out) == published, "the failed run removed the objects its attempts had written"
    assert sorted(p.name for p in out.iterdir()) == [manifest["run_id"]], "and its (empty) folder"
    assert not [p for p in _files(out, cache) if p.name.endswith(".partial")]
