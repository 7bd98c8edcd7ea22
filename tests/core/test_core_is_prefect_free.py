"""The image core can be used on its own: importing it loads neither Prefect nor any AI library.

Heavy libraries (torch, transformers, rembg, openai, spandrel) are imported inside the AI
backends when they run, so the classical pipeline works from the light install.
"""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import placewright

ADAPTERS = {"placewright.cli"}  # the CLI runs the flow, so it may import Prefect lazily
HEAVY = ("prefect", "torch", "torchvision", "transformers", "spandrel", "rembg", "openai", "onnxruntime")


def test_core_modules_import_no_orchestrator_and_no_ai_library() -> None:
    modules = [m.name for m in pkgutil.walk_packages(placewright.__path__, "placewright.") if m.name not in ADAPTERS]
    assert "placewright.cutout" in modules and "placewright.composite" in modules
    code = "import importlib, sys\n" + "".join(f"importlib.import_module({m!r})\n" for m in modules)
    code += f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=Path(__file__).parents[2]
    )
    assert out.stdout.strip() == "[]"
