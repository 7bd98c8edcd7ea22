"""The image core can be used without Prefect: importing it never imports Prefect."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import placewright

ADAPTERS = {"placewright.cli"}  # the CLI runs the flow, so it may import Prefect lazily


def test_core_modules_do_not_import_prefect() -> None:
    modules = [m.name for m in pkgutil.walk_packages(placewright.__path__, "placewright.") if m.name not in ADAPTERS]
    assert "placewright.cutout" in modules and "placewright.composite" in modules
    code = "import importlib, sys\n" + "".join(f"importlib.import_module({m!r})\n" for m in modules)
    code += "print(sorted(m for m in sys.modules if m == 'prefect' or m.startswith('prefect.')))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=Path(__file__).parents[2]
    )
    assert out.stdout.strip() == "[]"
