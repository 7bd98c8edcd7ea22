"""The Makefile's AI install says up front, in one line, when the disk cannot hold torch.

The check runs before pip: a fake venv whose stamps say the light installs are done, and whose python is the
base interpreter (no torch), reaches it without installing anything.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def bare_venv(tmp_path: Path) -> Path:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    base = Path(getattr(sys, "_base_executable", sys.executable)).resolve()
    (venv / "bin" / "python").symlink_to(base)
    check = subprocess.run([str(base), "-c", "import torch"], capture_output=True)
    if check.returncode == 0:
        pytest.skip("the base interpreter has torch: the check would be skipped")
    for stamp in (".installed", ".installed-test"):
        (venv / stamp).touch()
    return venv


def make_ai(venv: Path, *variables: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "-C", str(ROOT), f"VENV={venv}", *variables, f"{venv}/.installed-ai"],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_ai_install_stops_with_one_line_when_the_disk_is_short(bare_venv: Path) -> None:
    done = make_ai(bare_venv, "AI_INSTALL_GB=1000000", "TORCH=--no-index placewright-no-such-package==0")
    assert done.returncode == 2
    said = [line for line in done.stderr.splitlines() if not line.startswith("make")]
    assert len(said) == 1, done.stderr
    assert "needs about 1000000 GB free" in said[0]
    assert f"where {bare_venv} is" in said[0]
    assert "GB is free" in said[0]
    assert "placewright-no-such-package" not in done.stdout + done.stderr  # pip never ran
    assert not (bare_venv / ".installed-ai").exists()


def test_the_ai_install_goes_on_to_pip_when_the_disk_has_room(bare_venv: Path) -> None:
    done = make_ai(bare_venv, "AI_INSTALL_GB=0", "TORCH=--no-index placewright-no-such-package==0")
    assert done.returncode == 2
    assert "GB free" not in done.stderr
    assert "placewright-no-such-package" in done.stderr  # pip ran (offline), and found no such package
    assert not (bare_venv / ".installed-ai").exists()
