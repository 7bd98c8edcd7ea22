"""A run identical to an earlier one is published from that run's files: no stage runs, nothing is encoded."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from flows.campaign import run_campaign
from placewright.manifest import Manifest
from tests.flows.runs import place
from tests.flows.test_campaign_flow import _products, _write_campaign

pytestmark = pytest.mark.usefixtures("prefect_server")

PROMPTS = ["white studio", "rustic wooden table"]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _published_files(manifest: dict) -> list[str]:
    names = [manifest["product"]["cutout"], manifest["contact_sheet"]]
    for variant in manifest["variants"]:
        names += [variant["image"]] + ([variant["preview"]] if variant["preview"] else [])
    return names


def test_an_identical_run_copies_the_earlier_runs_files(
    example_product: Path, tmp_path: Path, stage_calls: dict[str, int]
) -> None:
    first = place(example_product, prompts=PROMPTS, size="384x384", out=str(tmp_path))
    made = dict(stage_calls)
    second = place(example_product, prompts=PROMPTS, size="384x384", out=str(tmp_path))

    assert stage_calls == made, "no stage ran for the identical run"
    assert second["run_id"] != first["run_id"]
    old, new = Path(first["location"]), Path(second["location"])
    assert new.parent == old.parent and new.name == second["run_id"]
    for name in _published_files(first):
        assert _digest(new / name) == _digest(old / name), name
    # The manifest is the new run's: its id, folder and URLs, and the same images and verdicts.
    stored = Manifest.model_validate_json((new / "manifest.json").read_text())
    assert stored.run_id == second["run_id"] and stored.location == str(new)
    for entry, earlier in zip(stored.variants, first["variants"], strict=True):
        assert entry.url == (new / entry.image).as_uri()
        assert entry.sha256 == earlier["sha256"] == _digest(new / entry.image)
        assert entry.verdict == earlier["verdict"]
    assert stored.gallery_url == (new / "index.html").as_uri()
    page = (new / "index.html").read_text()
    assert second["run_id"] in page and first["run_id"] not in page
    assert all(name in page for name in _published_files(first) if not name.startswith("product/"))


def test_what_changes_a_run_makes_it_again(example_product: Path, tmp_path: Path, stage_calls: dict[str, int]) -> None:
    place(example_product, prompts=PROMPTS, size="384x384", out=str(tmp_path))
    scenes = stage_calls["scene"]
    place(example_product, prompts=[PROMPTS[0], "pastel pink studio"], size="384x384", out=str(tmp_path))
    assert stage_calls["scene"] == scenes + 1, "one new scene; the other comes from the scene stage's cache"
    place(example_product, prompts=PROMPTS, size="384x384", seed=7, out=str(tmp_path))
    assert stage_calls["scene"] == scenes + 3, "another seed: both scenes made again"
    place(example_product, prompts=PROMPTS, size="384x384", out=str(tmp_path), refresh=True)
    assert stage_calls["scene"] == scenes + 5, "--refresh runs every stage"


def test_an_earlier_run_whose_files_are_gone_is_not_copied(
    example_product: Path, tmp_path: Path, stage_calls: dict[str, int]
) -> None:
    first = place(example_product, prompts=PROMPTS, size="384x384", out=str(tmp_path))
    Path(first["location"], first["variants"][1]["image"]).unlink()
    harmonized = stage_calls["harmonize"]
    second = place(example_product, prompts=PROMPTS, size="384x384", out=str(tmp_path))
    assert stage_calls["harmonize"] == harmonized, "made the usual way, from the stages' caches"
    assert Path(second["location"], second["variants"][1]["image"]).is_file()
    third = place(example_product, prompts=PROMPTS, size="384x384", out=str(tmp_path))
    assert Path(third["location"], third["variants"][1]["image"]).is_file()


def test_a_tampered_record_is_ignored(
    example_product: Path, tmp_path: Path, isolated_settings: Path, stage_calls: dict[str, int]
) -> None:
    place(example_product, prompts=PROMPTS, size="384x384", out=str(tmp_path))
    records = list((isolated_settings / "runs").glob("*.json"))
    assert len(records) == 1
    record = json.loads(records[0].read_text())
    record["manifest"]["variants"][0]["bytes"] += 1  # names a file that is not what it says
    records[0].write_text(json.dumps(record))
    second = place(example_product, prompts=PROMPTS, size="384x384", out=str(tmp_path))
    assert Path(second["location"], second["variants"][0]["image"]).is_file()
    records[0].write_text("{not json")
    third = place(example_product, prompts=PROMPTS, size="384x384", out=str(tmp_path))
    assert third["variants"][0]["sha256"] == second["variants"][0]["sha256"]


def test_an_identical_campaign_copies_every_product(tmp_path: Path, stage_calls: dict[str, int]) -> None:
    path = _write_campaign(tmp_path, _products(tmp_path))
    first = run_campaign(campaign_file=str(path))
    made = dict(stage_calls)
    second = run_campaign(campaign_file=str(path))
    assert stage_calls == made, "no stage ran for the identical campaign"
    assert second.run_id != first.run_id and second.published_variants == first.published_variants == 6
    for before, after in zip(first.products, second.products, strict=True):
        assert after.status == "published" and after.manifest == before.manifest
        for old, new in zip(before.variants, after.variants, strict=True):
            assert new.url is not None and second.run_id in new.url and new.image == old.image
            old_file = Path(first.location, before.name, old.image)
            new_file = Path(second.location, after.name, new.image)
            assert _digest(new_file) == _digest(old_file)
    assert Path(second.location, "campaign.json").is_file() and Path(second.location, "index.html").is_file()
