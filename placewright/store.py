"""A content-addressed store for intermediate images.

Stages hand each other small :class:`ImageRef` values (a URL and a sha256), never pixel
arrays: that keeps Prefect's persisted results tiny and makes cache keys content hashes.
Blobs live under ``<root>/<sha[:2]>/<sha>.pwb``; ``root`` is a local folder or any fsspec URL.

A blob is a small fixed header (magic, height, width, channels, codec, payload length) and the
pixels: raw (the default: intermediates are read ~13 and written ~4 times per variant, and raw is the
fastest), or zlib-compressed at the ``cache_compression`` level (lossless; level 1 makes the
pipeline's RGB images ~2.8x and its cut-outs and masks ~8x smaller, at ~25 ms more per 1024x1024
RGB write and ~10 ms per read). Both codecs are always read, so changing the level needs no clean-up.

Each process keeps the blobs it wrote or read last in memory (:class:`BlobMemory`, bounded by
``cache_memory_bytes``): the next stage's read of an image just written needs no file read, copy and
hash. Pixels in memory were hashed when they came in and are handed out as copies, so they are what the
reference says; a local blob file that has gone meanwhile is written again from them.

The store heals itself:

- :meth:`BlobStore.put` checks a blob that is already there (header and size: a truncated file is
  caught without reading it) and rewrites it when it is wrong, so a ``--refresh`` run always ends
  with sound blobs;
- :meth:`BlobStore.get` checks the whole blob against its sha256; a missing or corrupt one raises
  :class:`~placewright.errors.BlobUnusable` (a corrupt file is deleted first), on which the flows
  make the product again with every stage recomputed;
- :meth:`BlobStore.evict` bounds a local store: the least recently used blobs (by mtime, which
  every read and every put that finds the blob refreshes) go first.

Blobs of the earlier format (raw ``.npy`` files) are never read; :meth:`BlobStore.evict` removes
them before any current blob.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import struct
import threading
import zlib
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fsspec
import numpy as np

from placewright.errors import BlobUnusable
from placewright.storage import write_atomically

SUFFIX = ".pwb"
LEGACY_SUFFIX = ".npy"  # earlier versions' raw blobs: never read, evicted first
MAGIC = b"PWBLOB1\n"
# magic, height, width, channels (0: a 2-D array), codec (0: raw, 1: zlib), payload bytes
HEADER = struct.Struct("<8sIIBBQ")
RAW, ZLIB = 0, 1
DEFAULT_LEVEL = 0  # raw: see the module docstring and Settings.cache_compression


@dataclass(frozen=True)
class ImageRef:
    """Where an intermediate image lives and what it holds."""

    uri: str
    sha256: str
    width: int
    height: int
    channels: int


@dataclass(frozen=True)
class Eviction:
    """What :meth:`BlobStore.evict` found and did (bytes are on-disk sizes)."""

    removed: int
    freed: int
    total: int  # what the store holds afterwards


def array_sha256(pixels: np.ndarray) -> str:
    """sha256 over an array's shape, dtype and bytes: equal pixels, equal hash."""
    digest = hashlib.sha256(f"{pixels.shape}|{pixels.dtype}|".encode())
    digest.update(np.ascontiguousarray(pixels).data)
    return digest.hexdigest()


def _shape_fields(shape: tuple[int, ...]) -> tuple[int, int, int]:
    return int(shape[0]), int(shape[1]), 0 if len(shape) == 2 else int(shape[2])


def encode_blob(pixels: np.ndarray, level: int = DEFAULT_LEVEL) -> bytes:
    """A blob's bytes for a uint8 (H, W) or (H, W, C) array: zlib at ``level`` (0: raw pixels)."""
    raw = np.ascontiguousarray(pixels).data
    payload = zlib.compress(raw, level) if level > 0 else bytes(raw)
    header = HEADER.pack(MAGIC, *_shape_fields(pixels.shape), ZLIB if level > 0 else RAW, len(payload))
    return header + payload


def blob_header(data: bytes) -> tuple[tuple[int, ...], int, int] | None:
    """``(shape, codec, file size)`` from a blob's first :data:`HEADER` bytes; None if they are not a header."""
    if len(data) < HEADER.size:
        return None
    magic, height, width, channels, codec, length = HEADER.unpack_from(data)
    if magic != MAGIC or codec not in (RAW, ZLIB):
        return None
    shape = (height, width) if channels == 0 else (height, width, channels)
    return shape, codec, HEADER.size + length


def decode_blob(data: bytes) -> np.ndarray | None:
    """The array a blob holds (writable), or None when the bytes are not a whole, sound blob."""
    header = blob_header(data)
    if header is None or header[2] != len(data):
        return None
    shape, codec, _ = header
    payload = memoryview(data)[HEADER.size :]
    try:
        raw = zlib.decompress(payload) if codec == ZLIB else payload
    except zlib.error:
        return None
    if len(raw) != int(np.prod(shape)):
        return None
    return np.frombuffer(raw, np.uint8).reshape(shape).copy()


class BlobMemory:
    """A process's most recently used blobs, by sha256, up to ``max_bytes`` of pixels (0: none kept).

    Arrays are kept read-only and handed out as copies, so no caller can change what another gets. An array
    larger than a quarter of the bound is not kept (large images go through the store, so memory stays
    bounded); the least recently used go first.
    """

    def __init__(self, max_bytes: int = 0) -> None:
        self.max_bytes = max_bytes
        self._arrays: OrderedDict[str, np.ndarray] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def resize(self, max_bytes: int) -> None:
        """Set the bound (from the settings), dropping what no longer fits."""
        with self._lock:
            self.max_bytes = max_bytes
            self._shrink()

    def keep(self, sha: str, pixels: np.ndarray) -> None:
        """Remember ``pixels`` (whose :func:`array_sha256` is ``sha``) as a read-only copy, when they fit."""
        if pixels.nbytes > self.max_bytes // 4:
            return
        with self._lock:
            if sha in self._arrays:
                self._arrays.move_to_end(sha)
                return
        kept = np.array(pixels, copy=True)
        kept.flags.writeable = False
        with self._lock:
            if sha not in self._arrays:
                self._arrays[sha] = kept
                self._bytes += kept.nbytes
                self._shrink()

    def recall(self, sha: str) -> np.ndarray | None:
        """A writable copy of the pixels kept under ``sha``, or None."""
        with self._lock:
            kept = self._arrays.get(sha)
            if kept is None:
                return None
            self._arrays.move_to_end(sha)
        return kept.copy()

    def forget(self) -> None:
        """Drop everything (as a new process starts)."""
        with self._lock:
            self._arrays.clear()
            self._bytes = 0

    def _shrink(self) -> None:
        while self._arrays and self._bytes > self.max_bytes:
            _, dropped = self._arrays.popitem(last=False)
            self._bytes -= dropped.nbytes


# This process's blobs in memory, shared by every store (a sha256 names the same pixels under any root).
MEMORY = BlobMemory()


class BlobStore:
    """Content-addressed blobs under ``root`` (a path or fsspec URL).

    ``storage_options`` go to fsspec (see :func:`placewright.storage.storage_options`); ``level`` is the
    zlib level new blobs are written with (0: raw); ``memory`` the process's recent blobs (None: files only).
    """

    def __init__(
        self,
        root: str,
        storage_options: dict[str, Any] | None = None,
        *,
        level: int = DEFAULT_LEVEL,
        memory: BlobMemory | None = None,
    ) -> None:
        self.fs, self.root = fsspec.core.url_to_fs(str(root), **(storage_options or {}))
        self.protocol = self.fs.protocol if isinstance(self.fs.protocol, str) else self.fs.protocol[0]
        self.local = self.protocol in ("file", "local")
        self.level = level
        self.memory = memory

    def _path(self, sha: str) -> str:
        return f"{self.root.rstrip('/')}/{sha[:2]}/{sha}{SUFFIX}"

    def _uri(self, path: str) -> str:
        return path if self.protocol == "file" else f"{self.protocol}://{path}"

    def _touch(self, path: str) -> bool:
        """Mark a local blob as just used (eviction goes by mtime); False when the local file is gone."""
        if self.local:
            try:
                os.utime(path)
            except FileNotFoundError:  # the next read or put sees to it
                return False
            except OSError:  # not ours to touch
                pass
        return True

    def _is_sound(self, path: str, shape: tuple[int, ...]) -> bool:
        """Whether the blob at ``path`` is there with a header for ``shape`` and the size that header says."""
        try:
            header = blob_header(self.fs.cat_file(path, start=0, end=HEADER.size))
            return header is not None and header[0] == shape and header[2] == self.fs.size(path)
        except (FileNotFoundError, OSError):
            return False

    def put(self, pixels: np.ndarray) -> ImageRef:
        """Store a uint8 (H, W), (H, W, 3) or (H, W, 4) array; when it is already there, check it.

        A blob already there is kept when its header matches and its size is whole (cheap: the
        payload is not read), and rewritten otherwise.
        """
        if pixels.dtype != np.uint8 or pixels.ndim not in (2, 3):
            raise ValueError(f"blobs are uint8 2-D or 3-D arrays, got {pixels.dtype} {pixels.shape}")
        sha = array_sha256(pixels)
        path = self._path(sha)
        if self._is_sound(path, pixels.shape):
            self._touch(path)
        else:
            write_atomically(self.fs, path, encode_blob(pixels, self.level), local=self.local)
        if self.memory is not None:
            self.memory.keep(sha, pixels)
        channels = 1 if pixels.ndim == 2 else int(pixels.shape[2])
        return ImageRef(self._uri(path), sha, int(pixels.shape[1]), int(pixels.shape[0]), channels)

    def get(self, ref: ImageRef) -> np.ndarray:
        """Load a blob, checking that it still holds what the reference says.

        Raises:
            BlobUnusable: the blob is missing, or corrupt (then it is deleted, so a put writes it again).
        """
        path = self._path(ref.sha256)
        if self.memory is not None and (pixels := self.memory.recall(ref.sha256)) is not None:
            if not self._touch(path):  # removed since: put it back from what this process holds
                write_atomically(self.fs, path, encode_blob(pixels, self.level), local=True)
            return pixels
        try:
            data = self.fs.cat_file(path)
        except FileNotFoundError:
            raise BlobUnusable(
                f"intermediate image {ref.sha256[:12]} is missing from {self.root} (evicted or deleted)",
                sha256=ref.sha256,
            ) from None
        pixels = decode_blob(data)
        if pixels is None or array_sha256(pixels) != ref.sha256:
            with contextlib.suppress(OSError):  # FileNotFoundError included: someone removed it already
                self.fs.rm_file(path)
            raise BlobUnusable(
                f"intermediate image {ref.sha256[:12]} in {self.root} was corrupt and has been removed",
                sha256=ref.sha256,
            )
        self._touch(path)
        if self.memory is not None:
            self.memory.keep(ref.sha256, pixels)
        return pixels

    def evict(self, max_bytes: int, *, keep_fraction: float = 0.8) -> Eviction:
        """Bound a local store: when it holds more than ``max_bytes``, remove its least recently used
        blobs (oldest mtime first; the earlier format's ``.npy`` files before any) until it holds at
        most ``keep_fraction * max_bytes``. Remote stores are left alone (a bucket lifecycle rule bounds
        them). A blob removed while a cached stage result still points at it is missing on the next
        read, and the product is made again.
        """
        if not self.local:
            return Eviction(0, 0, 0)
        blobs: list[tuple[bool, float, int, str]] = []
        root = Path(self.root)
        for folder in root.iterdir() if root.is_dir() else ():
            if len(folder.name) != 2 or not folder.is_dir():
                continue
            with os.scandir(folder) as entries:
                for entry in entries:
                    if not entry.name.endswith((SUFFIX, LEGACY_SUFFIX)):
                        continue
                    try:
                        stat = entry.stat()
                    except FileNotFoundError:
                        continue
                    blobs.append((entry.name.endswith(SUFFIX), stat.st_mtime, stat.st_size, entry.path))
        total = sum(size for _, _, size, _ in blobs)
        if total <= max_bytes:
            return Eviction(0, 0, total)
        target = int(max_bytes * keep_fraction)
        removed = freed = 0
        for _, _, size, path in sorted(blobs):
            if total - freed <= target:
                break
            with contextlib.suppress(FileNotFoundError):  # another process evicted it first
                os.remove(path)
            removed += 1
            freed += size
        return Eviction(removed, freed, total - freed)
