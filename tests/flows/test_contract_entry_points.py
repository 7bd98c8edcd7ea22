"""One contract, one message: a bad value is refused with the same line by the CLI, a campaign file and the flow.

The CLI gets the value as typed text, a campaign file as YAML, the flow (as the Prefect UI or a deployment
would call it) as JSON; all three go through ``RunRequest`` and its one set of rules.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from PIL import Image

from flows.place_product import place_product
from placewright.errors import InvalidInput

ROOT = Path(__file__).resolve().parents[2]

# field, the value as typed on the command line, as written in YAML/JSON, and the one line every entry point gives.
BAD_VALUES = {
    "negative-seed": ("seed", "-1", -1, "seed: must be >= 0"),
    "word-seed": ("seed", "abc", "abc", "seed: must be a whole number (got 'abc')"),
    "tiny-size": ("size", "10x10", "10x10", "size: 10x10 is out of range: each side must be 64..8192 pixels"),
    "size-words": ("size", "large", "large", "size: must look like WIDTHxHEIGHT (e.g. 1024x1024), got 'large'"),
    "format": ("format", "gif", "gif", "format: must be one of: 'webp', 'jpeg' or 'png' (got 'gif')"),
    "url-mode": ("urls", "signed", "signed", "urls: must be one of: 'auto', 'presigned', 'public' or 'plain' (got"),
    "long-surface": ("surface", "x" * 201, "x" * 201, "surface: is too long (201 characters, limit 200)"),
}


def _product(folder: Path) -> Path:
    path = folder / "bottle.png"
    Image.new("RGB", (200, 300), (120, 30, 30)).save(path)
    return path


def _cli(args: list[str], cwd: Path) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PLACEWRIGHT_CACHE_DIR": str(cwd / "cache")}
    result = subprocess.run(
        [sys.executable, "-m", "placewright.cli", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=120
    )
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith("placewright: error: ")
    return line.removeprefix("placewright: error: ")


def _refusal(entry: str, field: str, typed: str, value: object, folder: Path) -> str:
    product = _product(folder)
    if entry == "cli":
        return _cli(["run", str(product), f"--{field}", typed, "--out", str(folder / "out")], folder)
    if entry == "campaign":
        document = {
            "name": "c",
            "options": {field: value},
            "products": [{"path": str(product)}],
            "scenes": [{"prompt": "a table"}],
        }
        (folder / "campaign.yaml").write_text(yaml.safe_dump(document))
        return _cli(["campaign", "campaign.yaml"], folder)
    state = place_product({"product": str(product), field: value}, return_state=True)  # as a deployment passes it
    assert state.is_failed()
    with pytest.raises(InvalidInput) as caught:
        state.result()
    return str(caught.value)


@pytest.mark.usefixtures("prefect_server")
@pytest.mark.parametrize("entry", ["cli", "campaign", "flow"])
@pytest.mark.parametrize("case", BAD_VALUES)
def test_the_same_bad_value_gets_the_same_line_everywhere(case: str, entry: str, tmp_path: Path) -> None:
    field, typed, value, expected = BAD_VALUES[case]
    line = _refusal(entry, field, typed, value, tmp_path)
    if entry == "campaign":
        assert line.startswith(f"campaign.yaml: options.{expected}"), line  # the file and the field's path first
    else:
        assert line.startswith(expected), line
    assert "\n" not in line and not (tmp_path / "out").exists()
