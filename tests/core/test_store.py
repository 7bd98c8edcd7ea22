from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from placewright.errors import StageFailed
from placewright.store import BlobStore, array_sha256


@pytest.mark.parametrize("shape", [(30, 40), (30, 40, 3), (30, 40, 4)])
def test_round_trip_is_lossless(tmp_path: Path, shape: tuple[int, ...]) -> None:
    pixels = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    store = BlobStore(str(tmp_path))
    ref = store.put(pixels)
    assert (ref.width, ref.height) == (40, 30)
    assert ref.sha256 == array_sha256(pixels)
    assert np.array_equal(store.get(ref), pixels)


def test_content_addressed_and_idempotent(tmp_path: Path) -> None:
    store = BlobStore(str(tmp_path))
    pixels = np.full((20, 20, 3), 7, np.uint8)
    first, second = store.put(pixels), store.put(pixels.copy())
    assert first == second
    assert len(list(tmp_path.rglob("*.npy"))) == 1
    assert not list(tmp_path.rglob("*.partial"))


def test_missing_blob_is_a_clear_error(tmp_path: Path) -> None:
    store = BlobStore(str(tmp_path))
    ref = store.put(np.zeros((10, 10), np.uint8))
    Path(ref.uri).unlink()
    with pytest.raises(StageFailed, match="missing"):
        store.get(ref)


def test_corrupt_blob_is_detected(tmp_path: Path) -> None:
    store = BlobStore(str(tmp_path))
    ref = store.put(np.zeros((10, 10), np.uint8))
    other = BlobStore(str(tmp_path / "x")).put(np.ones((10, 10), np.uint8))
    Path(ref.uri).write_bytes(Path(other.uri).read_bytes())
    with pytest.raises(StageFailed, match="corrupt"):
        store.get(ref)


def test_refuses_non_uint8(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="uint8"):
        BlobStore(str(tmp_path)).put(np.zeros((4, 4), np.float32))
