from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

from placewright.errors import BlobUnusable, StageFailed
from placewright.store import (
    HEADER,
    LEGACY_SUFFIX,
    SUFFIX,
    BlobMemory,
    BlobStore,
    array_sha256,
    decode_blob,
    encode_blob,
)

SHAPES = [(30, 40), (30, 40, 1), (30, 40, 3), (30, 40, 4), (1, 1), (7, 13, 3), (31, 17, 4), (513, 257)]


def _pixels(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


@pytest.mark.parametrize("level", [0, 1, 6])
@pytest.mark.parametrize("shape", SHAPES)
def test_round_trip_is_exact(tmp_path: Path, shape: tuple[int, ...], level: int) -> None:
    """Gray, RGB, RGBA, a (H, W, 1) array and odd sizes come back exactly, raw or compressed."""
    pixels = _pixels(shape)
    pixels[: shape[0] // 2] = 9  # something to compress
    store = BlobStore(str(tmp_path), level=level)
    ref = store.put(pixels)
    assert (ref.width, ref.height) == (shape[1], shape[0])
    assert ref.channels == (1 if len(shape) == 2 else shape[2])
    assert ref.sha256 == array_sha256(pixels)
    back = store.get(ref)
    assert back.shape == pixels.shape and back.dtype == np.uint8 and np.array_equal(back, pixels)
    assert back.flags.writeable, "stages may work on what they read in place"


def test_compression_makes_smooth_images_smaller(tmp_path: Path) -> None:
    pixels = np.zeros((256, 256, 4), np.uint8)
    pixels[64:192, 64:192] = (200, 120, 40, 255)  # a cut-out: mostly transparent
    raw, packed = encode_blob(pixels, 0), encode_blob(pixels, 1)
    assert len(raw) == HEADER.size + pixels.nbytes
    assert len(packed) < len(raw) / 20
    assert np.array_equal(decode_blob(packed), pixels)
    # Either codec is read whatever level the store writes with.
    for level, other in ((0, 1), (1, 0)):
        ref = BlobStore(str(tmp_path / f"w{level}"), level=level).put(pixels)
        assert np.array_equal(BlobStore(str(tmp_path / f"w{level}"), level=other).get(ref), pixels)


def test_content_addressed_and_idempotent(tmp_path: Path) -> None:
    store = BlobStore(str(tmp_path))
    pixels = np.full((20, 20, 3), 7, np.uint8)
    first, second = store.put(pixels), store.put(pixels.copy())
    assert first == second
    assert len(list(tmp_path.rglob(f"*{SUFFIX}"))) == 1
    assert first.uri.endswith(f"{first.sha256}{SUFFIX}")
    assert not list(tmp_path.rglob("*.partial"))


def test_missing_blob_is_a_clear_error(tmp_path: Path) -> None:
    store = BlobStore(str(tmp_path))
    ref = store.put(np.zeros((10, 10), np.uint8))
    Path(ref.uri).unlink()
    with pytest.raises(BlobUnusable, match=f"{ref.sha256[:12]} is missing") as raised:
        store.get(ref)
    assert isinstance(raised.value, StageFailed) and raised.value.sha256 == ref.sha256


@pytest.mark.parametrize("damage", ["truncated", "other-blob", "garbage", "empty", "flipped-byte"])
def test_corrupt_blob_is_detected_and_removed(tmp_path: Path, damage: str) -> None:
    store = BlobStore(str(tmp_path), level=1)
    pixels = _pixels((40, 30, 3))
    ref = store.put(pixels)
    path = Path(ref.uri)
    data = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "other-blob":
        other = BlobStore(str(tmp_path / "x"), level=1).put(np.ones((40, 30, 3), np.uint8))
        path.write_bytes(Path(other.uri).read_bytes())
    elif damage == "garbage":
        path.write_bytes(b"\x93NUMPY not a blob at all" * 10)
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        path.write_bytes(data[:-5] + bytes([data[-5] ^ 0xFF]) + data[-4:])
    with pytest.raises(BlobUnusable, match="corrupt"):
        store.get(ref)
    assert not path.exists(), "the corrupt file is removed, so the next put writes it again"
    with pytest.raises(BlobUnusable, match="missing"):
        store.get(ref)
    assert store.put(pixels) == ref
    assert np.array_equal(store.get(ref), pixels)


@pytest.mark.parametrize("level", [0, 1])
def test_put_rewrites_a_truncated_blob(tmp_path: Path, level: int) -> None:
    """What --refresh relies on: a put over a damaged file replaces it (it used to be skipped)."""
    store = BlobStore(str(tmp_path), level=level)
    pixels = _pixels((64, 48, 4))
    ref = store.put(pixels)
    path = Path(ref.uri)
    sound = path.read_bytes()
    for damaged in (sound[:-1], sound[: HEADER.size - 1], b"", sound[:10] + b"\0" * (len(sound) - 10)):
        path.write_bytes(damaged)
        assert store.put(pixels) == ref
        assert path.read_bytes() == sound
    assert np.array_equal(store.get(ref), pixels)


def test_put_keeps_a_sound_blob_and_marks_it_used(tmp_path: Path) -> None:
    store = BlobStore(str(tmp_path))
    ref = store.put(_pixels((16, 16)))
    path = Path(ref.uri)
    os.utime(path, (1_000_000, 1_000_000))
    inode = path.stat().st_ino
    store.put(_pixels((16, 16)))
    assert path.stat().st_ino == inode, "not written again"
    assert path.stat().st_mtime > time.time() - 60, "but marked as just used"
    os.utime(path, (1_000_000, 1_000_000))
    store.get(ref)
    assert path.stat().st_mtime > time.time() - 60, "a read marks it too"


def test_refuses_non_uint8(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="uint8"):
        BlobStore(str(tmp_path)).put(np.zeros((4, 4), np.float32))


def _aged(store: BlobStore, count: int, side: int = 32) -> list[Path]:
    """``count`` blobs of ``side``² RGB, the first the least recently used."""
    paths = []
    for i in range(count):
        path = Path(store.put(np.full((side, side, 3), i, np.uint8)).uri)
        os.utime(path, (1_000_000 + i, 1_000_000 + i))
        paths.append(path)
    return paths


def test_evict_removes_least_recently_used_first(tmp_path: Path) -> None:
    store = BlobStore(str(tmp_path))
    paths = _aged(store, 10)
    size = paths[0].stat().st_size
    assert store.evict(10 * size).removed == 0, "within the bound: nothing goes"
    store.get(store.put(np.full((32, 32, 3), 0, np.uint8)))  # the oldest is used again: now the newest
    evicted = store.evict(5 * size, keep_fraction=0.8)
    assert (evicted.removed, evicted.freed, evicted.total) == (6, 6 * size, 4 * size)
    assert [p.exists() for p in paths] == [True] + [False] * 6 + [True] * 3


def test_evict_removes_the_old_format_first(tmp_path: Path) -> None:
    store = BlobStore(str(tmp_path))
    paths = _aged(store, 3)
    legacy = paths[0].parent / f"{paths[0].parent.name * 32}{LEGACY_SUFFIX}"
    legacy.write_bytes(b"\0" * paths[0].stat().st_size)  # newer than every blob, but never read
    unrelated = tmp_path / "notes.txt"
    unrelated.write_text("not a blob")
    evicted = store.evict(3 * paths[0].stat().st_size, keep_fraction=1.0)
    assert evicted.removed == 1 and not legacy.exists() and all(p.exists() for p in paths)
    assert unrelated.exists(), "only blobs are ever removed"


def test_evict_of_an_empty_or_absent_store(tmp_path: Path) -> None:
    assert BlobStore(str(tmp_path / "nothing")).evict(1).total == 0
    assert BlobStore(str(tmp_path)).evict(1).total == 0


# --- the in-memory share (cache_memory_bytes) ---


def test_memory_answers_a_read_without_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A blob this process wrote is read back from memory: no file read, no hash; equal pixels, a private copy."""
    memory = BlobMemory(64 * 1024**2)
    store = BlobStore(str(tmp_path), memory=memory)
    pixels = _pixels((64, 48, 3))
    ref = store.put(pixels)
    pixels[:] = 0  # the caller changes its array after the put: what is kept does not change
    monkeypatch.setattr(store.fs, "cat_file", lambda *a, **k: pytest.fail("read the file"))
    back = store.get(ref)
    assert array_sha256(back) == ref.sha256 and back.flags.writeable
    back[:] = 7  # nor does a reader's change reach the next reader
    assert array_sha256(store.get(ref)) == ref.sha256


def test_memory_writes_back_a_blob_removed_meanwhile(tmp_path: Path) -> None:
    memory = BlobMemory(64 * 1024**2)
    store = BlobStore(str(tmp_path), memory=memory)
    ref = store.put(_pixels((40, 30, 4), seed=3))
    path = Path(ref.uri)
    path.unlink()
    assert array_sha256(store.get(ref)) == ref.sha256
    again = decode_blob(path.read_bytes())
    assert again is not None and array_sha256(again) == ref.sha256, "the file is back, whole"
    memory.forget()
    assert array_sha256(BlobStore(str(tmp_path)).get(ref)) == ref.sha256, "and readable without the memory"


def test_memory_keeps_what_a_read_verified(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ref = BlobStore(str(tmp_path)).put(_pixels((20, 20, 3), seed=4))
    memory = BlobMemory(64 * 1024**2)
    reader = BlobStore(str(tmp_path), memory=memory)
    reader.get(ref)  # from the file, checked
    monkeypatch.setattr(reader.fs, "cat_file", lambda *a, **k: pytest.fail("read the file twice"))
    assert array_sha256(reader.get(ref)) == ref.sha256


def test_memory_is_bounded_and_leaves_large_images_to_the_store(tmp_path: Path) -> None:
    memory = BlobMemory(4 * 100 * 100 * 3)  # four 100x100 RGB images
    store = BlobStore(str(tmp_path), memory=memory)
    refs = [store.put(_pixels((100, 100, 3), seed=i)) for i in range(6)]
    assert memory._bytes <= memory.max_bytes
    assert memory.recall(refs[0].sha256) is None and memory.recall(refs[5].sha256) is not None, "LRU"
    big = store.put(_pixels((120, 120, 3), seed=9))  # more than a quarter of the bound
    assert memory.recall(big.sha256) is None
    assert array_sha256(store.get(big)) == big.sha256, "read from the store"
    memory.resize(0)
    assert memory._bytes == 0 and memory.recall(refs[5].sha256) is None


def test_a_store_without_memory_reads_its_files(tmp_path: Path) -> None:
    """Corruption is still caught on read when nothing is in memory (a new process, or cache_memory_bytes = 0)."""
    store = BlobStore(str(tmp_path), memory=BlobMemory(0))
    ref = store.put(_pixels((30, 30, 3), seed=5))
    path = Path(ref.uri)
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(BlobUnusable):
        store.get(ref)
