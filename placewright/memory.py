"""Keeping a run's memory flat: large images go back to the operating system when they are freed.

glibc's allocator keeps freed memory for reuse, in one arena per thread; with several threads each
making and dropping 3-50 MB images, the process's resident size then grows with the number of
variants although only a few are in flight. :func:`return_large_blocks` makes every allocation of
:data:`MMAP_THRESHOLD_BYTES` or more its own mapping (unmapped when freed) and caps the arenas.
Measured with `/usr/bin/time -v` (the CLI on the example at 1024x1024, classical backends, private
server): before, 1 variant peaked at 284 MB and 16 at 476 MB (1.68x); after, 232 MB and 301 MB (1.30x).
The CLI and the service's workers call it first thing.

:func:`variants_that_fit` bounds the other way memory grows: how many variants are in flight at once. A run
whose one variant needs more than the machine has available is refused before it starts; one whose variants
fit only a few at a time runs them a few at a time (the flows lower their runner's thread count).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from pathlib import Path

from placewright.errors import InvalidInput
from placewright.types import Size

log = logging.getLogger(__name__)

# mallopt parameters (malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
MMAP_THRESHOLD_BYTES = 1024 * 1024
TRIM_THRESHOLD_BYTES = 4 * 1024 * 1024
ARENAS = 4

_done = False


def return_large_blocks() -> bool:
    """Tune glibc's allocator for this process (once); False where there is no glibc (macOS, musl)."""
    global _done
    if _done:
        return True
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    ok = all(
        mallopt(param, value) == 1
        for param, value in (
            (M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES),
            (M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES),
            (M_ARENA_MAX, ARENAS),
        )
    )
    _done = ok
    if not ok:
        log.debug("mallopt refused a setting; the allocator keeps its defaults")
    return ok


# --- how many variants fit in memory at once ---

# Peak resident bytes per output pixel of one variant in flight (scene, composite, alpha, harmonized image and
# the stages' float temporaries): one 8192x8192 variant peaked at 2.8 GB over a ~0.3 GB process (~37 B/px).
VARIANT_BYTES_PER_PIXEL = 40


def available_bytes(meminfo: str = "/proc/meminfo", cgroup: str = "/sys/fs/cgroup") -> int | None:
    """Memory this process can still get without swapping, or None where it cannot say.

    The system's ``MemAvailable``, and in a container with a memory limit (cgroup v2 ``memory.max``) no more
    than what the limit leaves (``memory.max - memory.current``): a container sees the host's meminfo.
    """
    found: list[int] = []
    try:
        with open(meminfo) as lines:
            found += [int(line.split()[1]) * 1024 for line in lines if line.startswith("MemAvailable:")]
    except (OSError, ValueError, IndexError):
        pass
    try:
        limit = Path(cgroup, "memory.max").read_text().strip()
        if limit != "max":
            found.append(max(0, int(limit) - int(Path(cgroup, "memory.current").read_text())))
    except (OSError, ValueError):
        pass
    return min(found) if found else None


def variants_that_fit(size: Size, wanted: int, available: int | None) -> int:
    """How many variants of ``size`` may be in flight at once (1 to ``wanted``) in ``available`` bytes.

    Raises:
        InvalidInput: not even one fits (one line: what it needs, what there is, what to do).
    """
    one = VARIANT_BYTES_PER_PIXEL * size.width * size.height
    if available is None:
        return wanted
    if one > available:
        raise InvalidInput(
            f"a {size} variant needs about {one / 1e9:.1f} GB of memory and this machine has "
            f"{available / 1e9:.1f} GB available: choose a smaller size (or free memory)"
        )
    return max(1, min(wanted, available // one))
