"""Bad input on the command line: exit code 2, one line on stderr, nothing written.

These runs fail before Prefect is imported, so each takes well under a second.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]


def run_cli(args: list[str], cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "PLACEWRIGHT_CACHE_DIR": str(cwd / "cache"), **(env or {})}
    full_env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-m", "placewright.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=full_env,
        timeout=120,
    )


def _png(path: Path, image: Image.Image) -> str:
    image.save(path)
    return str(path)


def _truncated_jpeg(path: Path) -> str:
    buffer = io.BytesIO()
    Image.effect_noise((400, 400), 60).convert("RGB").save(buffer, "JPEG")
    path.write_bytes(buffer.getvalue()[:3000])
    return str(path)


BAD_PRODUCTS = {
    "missing": lambda d: str(d / "nope.png"),
    "directory": lambda d: str(d),
    "not-an-image": lambda d: (d / "x.png").write_text("not an image") and str(d / "x.png"),
    "truncated": lambda d: _truncated_jpeg(d / "t.jpg"),
    "too-small": lambda d: _png(d / "s.png", Image.new("RGB", (10, 10))),
    "fully-transparent": lambda d: _png(d / "t.png", Image.new("RGBA", (100, 100), (0, 0, 0, 0))),
}


@pytest.mark.parametrize("case", BAD_PRODUCTS)
def test_bad_product_image(tmp_path: Path, case: str) -> None:
    product = BAD_PRODUCTS[case](tmp_path)
    result = run_cli(["run", product, "--out", str(tmp_path / "out")], tmp_path)
    _assert_refused(result, tmp_path)


GOOD_PRODUCT = lambda d: _png(d / "bottle.png", Image.new("RGB", (200, 300), (120, 30, 30)))  # noqa: E731

BAD_OPTIONS = {
    "size-words": ["--size", "large"],
    "size-too-big": ["--size", "100000x10"],
    "format": ["--format", "gif"],
    "seed": ["--seed", "abc"],
    "empty-prompt": ["--prompt", ""],
    "missing-background": ["--background", "/nonexistent/bg.jpg"],
    "unknown-option": ["--colour", "red"],
    "out-is-a-file": ["--out", "/etc/hostname"],
}


@pytest.mark.parametrize("case", BAD_OPTIONS)
def test_bad_options(tmp_path: Path, case: str) -> None:
    out = [] if "--out" in BAD_OPTIONS[case] else ["--out", str(tmp_path / "out")]
    result = run_cli(["run", GOOD_PRODUCT(tmp_path), *out, *BAD_OPTIONS[case]], tmp_path)
    _assert_refused(result, tmp_path)


def test_pixel_limit_from_settings(tmp_path: Path) -> None:
    result = run_cli(
        ["run", GOOD_PRODUCT(tmp_path), "--out", str(tmp_path / "out")],
        tmp_path,
        env={"PLACEWRIGHT_LIMITS__MAX_PIXELS": "1000"},
    )
    _assert_refused(result, tmp_path)
    assert "too large" in result.stderr


def test_bad_configuration(tmp_path: Path) -> None:
    result = run_cli(["run", GOOD_PRODUCT(tmp_path)], tmp_path, env={"PLACEWRIGHT_COMPOSITE__SHADOW_OPACITY": "nine"})
    _assert_refused(result, tmp_path)
    assert "bad configuration" in result.stderr and "composite.shadow_opacity: must be a number (got 'nine')" in (
        result.stderr
    )


CONFIG_FILES = {
    "unknown-top-level-key": ("sed = 7\n", "sed: unknown key; allowed: out_dir, cache_dir, models_dir, seed, surface"),
    "unknown-section-key": ("[scene]\nsurface = 'desk'\n", "scene.surface: unknown key; allowed: backend"),
    "bad-value": ("seed = -3\n", "seed: must be >= 0"),
    "toml-syntax": ("seed = = 3\n", "placewright.toml: TOML syntax error"),
    "nested-too-deep": ("x = " + "[" * 900 + "]" * 900 + "\n", "placewright.toml: nested too deeply"),
}


@pytest.mark.parametrize("case", CONFIG_FILES)
def test_bad_configuration_file(tmp_path: Path, case: str) -> None:
    text, expected = CONFIG_FILES[case]
    (tmp_path / "placewright.toml").write_text(text)  # read from the working folder
    result = run_cli(["run", GOOD_PRODUCT(tmp_path), "--out", str(tmp_path / "out")], tmp_path)
    _assert_refused(result, tmp_path)
    assert "bad configuration" in result.stderr and expected in result.stderr, result.stderr


def test_missing_argument(tmp_path: Path) -> None:
    _assert_refused(run_cli(["run"], tmp_path), tmp_path)


def _assert_refused(result: subprocess.CompletedProcess, workdir: Path) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("placewright: error: ")
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    assert not (workdir / "out").exists()
    assert not (workdir / "placewright-out").exists()


def test_task_runner_without_its_engine(tmp_path: Path) -> None:
    """runner.kind=ray without prefect-ray: one line naming what to install, exit 2, nothing written."""
    import importlib.util

    if importlib.util.find_spec("prefect_ray") is not None:
        pytest.skip("prefect-ray is installed here")
    env = {"PLACEWRIGHT_RUNNER__KIND": "ray", "PREFECT_HOME": str(tmp_path / "prefect-home")}
    result = run_cli(["run", GOOD_PRODUCT(tmp_path)], tmp_path, env=env)
    _assert_refused(result, tmp_path)
    assert "needs prefect-ray" in result.stderr
