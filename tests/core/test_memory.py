"""The allocator tuning of placewright.memory: a freed large image goes back to the operating system."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# In a fresh process: allocate and free many large arrays from several threads, then read VmRSS.
PROBE = """
import sys, threading, numpy as np
if sys.argv[1] == "tuned":
    from placewright.memory import return_large_blocks
    assert return_large_blocks()
kept = []
def work():
    for _ in range(20):
        a = np.ones((1024, 1024, 3), np.uint8) * 3
        b = (a.astype(np.float32) * 0.5).astype(np.uint8)
        kept.append(bytearray(4096))  # a small live block after them, as a run's bookkeeping leaves
        del a, b
threads = [threading.Thread(target=work) for _ in range(4)]
[t.start() for t in threads]; [t.join() for t in threads]
rss = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmRSS"))
print(rss)
"""


def _rss_kib(mode: str) -> int:
    done = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, cwd=ROOT, check=True)
    return int(done.stdout.strip())


def test_freed_large_images_do_not_stay_resident() -> None:
    baseline = _rss_kib("plain")
    tuned = _rss_kib("tuned")
    # Untuned, glibc keeps freed blocks in per-thread arenas; tuned, each large block is unmapped on free.
    assert tuned < baseline / 2, (tuned, baseline)
    assert tuned < 60_000, f"{tuned} KiB resident after freeing every image"
