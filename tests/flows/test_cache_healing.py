"""The intermediate-image cache heals and stays bounded.

A truncated, corrupt or evicted blob under a cached stage result used to break every later run of
that product (even ``--refresh`` skipped the existing file). Now a run that meets one makes the product
again once with every stage recomputed, ``--refresh`` rewrites what is damaged, and each run ends by
evicting the least recently used blobs of a local cache down under ``cache_max_bytes``.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from prefect.context import TaskRunContext

from flows.campaign import run_campaign
from placewright.errors import BlobUnusable
from placewright.settings import get_settings
from placewright.store import SUFFIX, BlobStore, ImageRef, array_sha256, decode_blob
from tests.flows.runs import place, place_state

pytestmark = pytest.mark.usefixtures("prefect_server")

ARGS = dict(prompts=["white studio"], size="384x384")


@pytest.fixture(autouse=True)
def stage_by_stage(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests are about the stages' own caches: no copying of an identical earlier run.

    Nor intermediate images kept in memory (``cache_memory_bytes``): each run reads the blob files, as a
    run in a new process does (the in-memory share is tested by itself below and in ``test_store``).
    """
    monkeypatch.setenv("PLACEWRIGHT_REUSE_IDENTICAL_RUNS", "false")
    monkeypatch.setenv("PLACEWRIGHT_CACHE_MEMORY_BYTES", "0")


@pytest.fixture
def blobs(isolated_settings: Path) -> Path:
    """The local intermediate-image store of the tests' runs."""
    return isolated_settings / "blobs"


@pytest.fixture
def written(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[ImageRef]]:
    """What each task put in the store, by task name (``ingest`` holds the product)."""
    by_task: dict[str, list[ImageRef]] = {}
    real = BlobStore.put

    def put(self: BlobStore, pixels: np.ndarray) -> ImageRef:
        ref = real(self, pixels)
        context = TaskRunContext.get()
        by_task.setdefault(context.task.name if context else "flow", []).append(ref)
        return ref

    monkeypatch.setattr(BlobStore, "put", put)
    return by_task


def _sha256_of_outputs(out: Path, manifest: dict) -> dict[str, str]:
    run_dir = out / manifest["run_id"]
    names = [manifest["product"]["cutout"], *(v["image"] for v in manifest["variants"])]
    return {name: hashlib.sha256((run_dir / name).read_bytes()).hexdigest() for name in names}


def _blob_files(blobs: Path) -> list[Path]:
    return sorted(blobs.rglob(f"*{SUFFIX}"))


def _sound(path: Path) -> bool:
    pixels = decode_blob(path.read_bytes())
    return pixels is not None and array_sha256(pixels) == path.name.removesuffix(SUFFIX)


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])


def _healing_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "recomputed" in r.getMessage()]


@pytest.mark.parametrize("damaged", ["harmonize", "composite", "cutout"])  # what publishing reads
def test_a_truncated_blob_is_recomputed_and_the_run_succeeds(
    tmp_path: Path,
    example_product: Path,
    blobs: Path,
    written: dict[str, list[ImageRef]],
    stage_calls: dict[str, int],
    caplog: pytest.LogCaptureFixture,
    damaged: str,
) -> None:
    out = tmp_path / "out"
    first = place(example_product, out=str(out), **ARGS)
    ref = written[damaged][0]
    path = Path(ref.uri)
    _truncate(path)

    caplog.set_level(logging.WARNING)
    second = place(example_product, out=str(out), **ARGS)

    assert _sound(path), "the blob was written again"
    assert all(_sound(p) for p in _blob_files(blobs))
    assert _sha256_of_outputs(out, second) == _sha256_of_outputs(out, first), "the same images as the first run"
    assert stage_calls["enhance"] == 2 and stage_calls["harmonize"] == 2, "every stage was computed again"
    (warning,) = _healing_warnings(caplog)
    assert ref.sha256[:12] in warning, warning

    caplog.clear()
    stage_calls.update(dict.fromkeys(stage_calls, 0))
    third = place(example_product, out=str(out), **ARGS)
    assert not any(stage_calls.values()), f"healed for good: every stage is cached again ({stage_calls})"
    assert _sha256_of_outputs(out, third) == _sha256_of_outputs(out, first)
    assert not _healing_warnings(caplog)


def test_a_blob_that_a_computed_stage_reads_is_corrupt(
    tmp_path: Path,
    example_product: Path,
    written: dict[str, list[ImageRef]],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The failure comes from inside a stage: enhance runs again, and its cached input's image is damaged."""
    out = tmp_path / "out"
    place(example_product, out=str(out), **ARGS)
    product = Path(written["ingest"][0].uri)
    _truncate(product)
    monkeypatch.setenv("PLACEWRIGHT_ENHANCE__SHARPEN_AMOUNT", "0.5")  # enhance is not cached for this
    get_settings.cache_clear()
    caplog.set_level(logging.WARNING)
    manifest = place(example_product, out=str(out), **ARGS)
    assert manifest["variants"][0]["stages"]["enhance"]["error"] is None
    assert _sound(product)
    (warning,) = _healing_warnings(caplog)
    assert written["ingest"][0].sha256[:12] in warning and "corrupt" in warning, warning


def test_a_blob_removed_while_this_process_holds_it_is_written_back(
    tmp_path: Path,
    example_product: Path,
    blobs: Path,
    stage_calls: dict[str, int],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With intermediate images kept in memory, a run in the same process reads them from there: every stage
    is cached, nothing is recomputed, and the blob files removed meanwhile are back for other processes."""
    monkeypatch.setenv("PLACEWRIGHT_CACHE_MEMORY_BYTES", str(64 * 1024**2))
    get_settings.cache_clear()
    out = tmp_path / "out"
    first = place(example_product, out=str(out), **ARGS)
    files = _blob_files(blobs)
    for path in files:
        path.unlink()
    stage_calls.update(dict.fromkeys(stage_calls, 0))
    caplog.set_level(logging.WARNING)
    second = place(example_product, out=str(out), **ARGS)
    assert not any(stage_calls.values()), f"every stage cached ({stage_calls})"
    assert not _healing_warnings(caplog)
    assert _sha256_of_outputs(out, second) == _sha256_of_outputs(out, first)
    read_back = {p for p in _blob_files(blobs)}
    assert read_back and read_back <= set(files) and all(_sound(p) for p in read_back), "written back, sound"


def test_refresh_rewrites_truncated_blobs(
    tmp_path: Path, example_product: Path, blobs: Path, caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "out"
    first = place(example_product, out=str(out), **ARGS)
    files = _blob_files(blobs)
    for path in files:
        _truncate(path)
    caplog.set_level(logging.WARNING)
    second = place(example_product, out=str(out), refresh=True, **ARGS)
    assert _blob_files(blobs) == files and all(_sound(p) for p in files), "every blob is sound again"
    assert not _healing_warnings(caplog), "a refresh rewrites what it puts: nothing to heal"
    assert _sha256_of_outputs(out, second) == _sha256_of_outputs(out, first)


def test_a_run_whose_blobs_were_all_evicted_succeeds(tmp_path: Path, example_product: Path, blobs: Path) -> None:
    out = tmp_path / "out"
    first = place(example_product, out=str(out), **ARGS)
    shutil.rmtree(blobs)
    second = place(example_product, out=str(out), **ARGS)
    assert _sha256_of_outputs(out, second) == _sha256_of_outputs(out, first)
    assert _blob_files(blobs) and all(_sound(p) for p in _blob_files(blobs))


def test_a_second_failure_is_a_real_failure(
    tmp_path: Path, example_product: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def never(self: BlobStore, ref: ImageRef) -> np.ndarray:
        raise BlobUnusable(f"intermediate image {ref.sha256[:12]} is missing (test)", sha256=ref.sha256)

    monkeypatch.setattr(BlobStore, "get", never)
    caplog.set_level(logging.WARNING)
    state = place_state(example_product, out=str(tmp_path / "out"), **ARGS)
    assert state.is_failed()
    with pytest.raises(BlobUnusable, match="is missing"):
        state.result()
    assert len(_healing_warnings(caplog)) == 1, "made again once, not more"


def test_the_cache_stays_under_its_bound(
    tmp_path: Path,
    example_product: Path,
    blobs: Path,
    written: dict[str, list[ImageRef]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bound = 2_000_000  # a 384x384 variant writes ~1.3 MB of intermediates, the product ~2 MB more
    monkeypatch.setenv("PLACEWRIGHT_CACHE_MAX_BYTES", str(bound))
    get_settings.cache_clear()
    out = tmp_path / "out"
    manifests = {}
    for prompt in ["white studio", "rustic wooden table", "pastel pink studio", "white studio"]:
        manifests.setdefault(prompt, []).append(place(example_product, out=str(out), prompts=[prompt], size="384x384"))
        assert sum(p.stat().st_size for p in _blob_files(blobs)) <= bound
    made = {ref.sha256: ref.width * ref.height * ref.channels for refs in written.values() for ref in refs}
    assert sum(made.values()) > 3 * bound, "the runs wrote far more than the bound"
    first, again = manifests["white studio"]
    assert _sha256_of_outputs(out, again) == _sha256_of_outputs(out, first), "evicted, then made again: the same"


def test_no_eviction_without_a_bound(tmp_path: Path, example_product: Path, blobs: Path, monkeypatch) -> None:
    monkeypatch.setenv("PLACEWRIGHT_CACHE_MAX_BYTES", "0")
    get_settings.cache_clear()
    place(example_product, out=str(tmp_path / "out"), **ARGS)
    assert sum(p.stat().st_size for p in _blob_files(blobs)) > 1_000_000


def test_compressed_cache_round_trips_a_run(
    tmp_path: Path, example_product: Path, blobs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    raw = place(example_product, out=str(out), **ARGS)
    raw_bytes = sum(p.stat().st_size for p in _blob_files(blobs))
    shutil.rmtree(blobs)
    monkeypatch.setenv("PLACEWRIGHT_CACHE_COMPRESSION", "1")
    get_settings.cache_clear()
    packed = place(example_product, out=str(out), **ARGS)  # every blob missing: healed, compressed
    assert sum(p.stat().st_size for p in _blob_files(blobs)) < raw_bytes / 2
    assert _sha256_of_outputs(out, packed) == _sha256_of_outputs(out, raw)


def test_a_campaign_product_heals(
    tmp_path: Path, example_product: Path, written: dict[str, list[ImageRef]], caplog: pytest.LogCaptureFixture
) -> None:
    shutil.copy(example_product, tmp_path / "bottle.jpg")
    document = {
        "name": "healing",
        "out": "out",
        "options": {"size": "384x384"},
        "products": [{"path": "bottle.jpg"}],
        "scenes": [{"prompt": "white studio"}, {"prompt": "rustic wooden table"}],
    }
    path = tmp_path / "campaign.yaml"
    path.write_text(yaml.safe_dump(document))
    first = run_campaign(campaign_file=str(path))
    _truncate(Path(written["cutout"][0].uri))
    caplog.set_level(logging.WARNING)
    state = run_campaign(campaign_file=str(path), return_state=True)
    assert state.is_completed()
    second = state.result()
    assert second.published_variants == first.published_variants == 2
    (warning,) = _healing_warnings(caplog)
    assert "product bottle" in warning and written["cutout"][0].sha256[:12] in warning
    assert _sound(Path(written["cutout"][0].uri))
