"""The allocator tuning of placewright.memory: large images get mappings of their own, returned when freed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

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
    # glibc's defaults: any MALLOC_*_ variable (Dask's nanny sets MALLOC_TRIM_THRESHOLD_ in os.environ once
    # imported) turns its dynamic mmap threshold off.
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, mode], capture_output=True, text=True, cwd=ROOT, check=True, env=env
    )
    return int(done.stdout.strip())


def test_a_large_image_gets_a_mapping_of_its_own() -> None:
    assert _mapped_bytes("plain") == 0, "untuned, the image comes from the heap (kept after it is freed)"
    assert _mapped_bytes("tuned") >= 4 << 20, "tuned, it is mapped on its own (unmapped when freed)"


# --- how many variants fit in memory at once ---


def test_available_memory_reads_meminfo_and_a_container_limit(tmp_path: Path) -> None:
    from placewright.memory import available_bytes

    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       24000000 kB\nMemAvailable:   20000000 kB\n")
    cgroup = tmp_path / "cgroup"
    cgroup.mkdir()
    assert available_bytes(str(meminfo), str(cgroup)) == 20000000 * 1024, "no cgroup files: the system's"
    (cgroup / "memory.max").write_text("max\n")
    (cgroup / "memory.current").write_text("1000\n")
    assert available_bytes(str(meminfo), str(cgroup)) == 20000000 * 1024, "no limit"
    (cgroup / "memory.max").write_text(f"{4 * 1024**3}\n")
    (cgroup / "memory.current").write_text(f"{1024**3}\n")
    assert available_bytes(str(meminfo), str(cgroup)) == 3 * 1024**3, "the container's limit, less its use"
    assert available_bytes(str(tmp_path / "none"), str(tmp_path / "none")) is None
    real = available_bytes()
    assert real is None or real > 0


def test_variants_that_fit() -> None:
    from placewright.errors import InvalidInput
    from placewright.memory import VARIANT_BYTES_PER_PIXEL, variants_that_fit
    from placewright.types import Size

    one = VARIANT_BYTES_PER_PIXEL * 8192 * 8192
    assert variants_that_fit(Size(8192, 8192), 4, 10 * one) == 4
    assert variants_that_fit(Size(8192, 8192), 4, int(2.5 * one)) == 2
    assert variants_that_fit(Size(8192, 8192), 4, one) == 1
    assert variants_that_fit(Size(8192, 8192), 4, None) == 4, "unknown: as configured"
    with pytest.raises(InvalidInput, match=r"a 8192x8192 variant needs about 2\.7 GB .* 1\.0 GB available") as err:
        variants_that_fit(Size(8192, 8192), 4, 10**9)
    assert "\n" not in str(err.value)


def test_a_run_whose_one_variant_cannot_fit_is_refused_before_it_starts(
    tmp_path: Path, example_product: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from placewright import plan as planning
    from placewright.errors import InvalidInput
    from placewright.request import RunRequest
    from placewright.settings import Settings

    monkeypatch.setattr(planning, "available_bytes", lambda: 2 * 10**9)
    settings = Settings()
    big = RunRequest(product=str(example_product), prompts=["studio"], size="8192x8192", out=str(tmp_path / "o"))
    with pytest.raises(InvalidInput, match=r"8192x8192 variant needs about 2\.7 GB"):
        planning.plan_run(big, settings, downloads=tmp_path)
    assert not (tmp_path / "o").exists(), "refused before anything was written"
    small = RunRequest(product=str(example_product), prompts=["studio"], size="1024x1024", out=str(tmp_path / "o"))
    assert planning.plan_run(small, settings, downloads=tmp_path).size.width == 1024


def test_the_cli_refuses_a_size_that_cannot_fit_with_exit_2(
    tmp_path: Path, example_product: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from placewright import plan as planning
    from placewright.cli import app

    monkeypatch.setattr(planning, "available_bytes", lambda: 2 * 10**9)
    args = ["run", str(example_product), "-p", "studio", "--size", "8192x8192", "--out", str(tmp_path / "o")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "8192x8192 variant needs about 2.7 GB" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "o").exists()
