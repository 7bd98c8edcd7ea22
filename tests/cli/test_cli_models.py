"""`placewright models`: every backend, where it looks, and whether it can run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _models(tmp_path: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("PLACEWRIGHT_", "OPENAI_"))}
    full_env.update(PYTHONPATH=str(ROOT), PLACEWRIGHT_MODELS_DIR=str(tmp_path / "models"), **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", "placewright.cli", "models", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=tmp_path,
        timeout=120,
    )


def test_models_lists_every_stage_with_its_classical_fallback_ready(tmp_path: Path) -> None:
    result = _models(tmp_path, "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    stages = {row["stage"] for row in rows}
    assert stages == {"enhance", "cutout", "scene", "analyze", "locate", "composite", "harmonize"}
    for stage in stages:
        last = [row for row in rows if row["stage"] == stage][-1]
        assert last["available"] and last["source"] == "built in" and last["selected_by"] == "fallback (always)"
    for row in rows:
        if not row["available"]:
            assert row["reason"], "an unavailable backend says why"


def test_models_table(tmp_path: Path) -> None:
    result = _models(tmp_path)
    assert result.returncode == 0, result.stderr
    assert "grabcut" in result.stdout and "ready" in result.stdout
