"""The allocator tuning of placewright.memory: large images get mappings of their own, returned when freed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# In a fresh process: free one large block (untuned glibc then raises its mmap threshold above that
# size, so the next large images come from the heap and stay resident when freed), then allocate a
# 4 MiB image and report how many bytes glibc's mallinfo2 says were mapped for it.
PROBE = """
import ctypes, sys
import numpy as np
FIELDS = ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")
class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in FIELDS]
libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2
if sys.argv[1] == "tuned":
    from placewright.memory import return_large_blocks
    assert return_large_blocks()
warm = np.ones(8 << 20, np.uint8)
del warm
before = libc.mallinfo2().hblkhd
image = np.ones(4 << 20, np.uint8)
print(libc.mallinfo2().hblkhd - before)
"""


def _mapped_bytes(mode: str) -> int:
    done = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, cwd=ROOT, check=True)
    return int(done.stdout.strip())


def test_a_large_image_gets_a_mapping_of_its_own() -> None:
    assert _mapped_bytes("plain") == 0, "untuned, the image comes from the heap (kept after it is freed)"
    assert _mapped_bytes("tuned") >= 4 << 20, "tuned, it is mapped on its own (unmapped when freed)"
