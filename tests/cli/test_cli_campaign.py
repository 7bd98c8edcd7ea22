"""`placewright campaign FILE` as a user runs it: a real process with its own local Prefect server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from PIL import Image

from placewright.campaign import load_campaign
from placewright.errors import InvalidInput
from tests.synth import make_product_photo

ROOT = Path(__file__).resolve().parents[2]


def _campaign(tmp_path: Path, *, broken: bool = False) -> Path:
    bottle, _ = make_product_photo("bottle", product_rgb=(40, 110, 60), size=(360, 480), seed=1)
    Image.fromarray(bottle).save(tmp_path / "bottle.png")
    second = {"path": "box.png"}
    if broken:
        (tmp_path / "box.png").write_bytes(b"not an image at all")
    else:
        box, _ = make_product_photo("box", product_rgb=(200, 60, 40), size=(480, 360), seed=2)
        Image.fromarray(box).save(tmp_path / "box.png")
    document = {
        "name": "cli-test",
        "out": "out",
        "options": {"size": "384x384"},
        "products": [{"path": "bottle.png"}, second],
        "scenes": [{"prompt": "marble counter"}, {"prompt": "wooden table"}, {"prompt": "pink studio"}],
    }
    path = tmp_path / "campaign.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def _run(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "PLACEWRIGHT_"))}
    env.update(
        PYTHONPATH=str(ROOT),
        PREFECT_HOME=str(tmp_path / "prefect-home"),
        PLACEWRIGHT_CACHE_DIR=str(tmp_path / "cache"),
    )
    return subprocess.run(
        [sys.executable, "-m", "placewright.cli", "campaign", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )


def test_two_products_by_three_scenes(tmp_path: Path) -> None:
    result = _run([str(_campaign(tmp_path))], tmp_path)
    assert result.returncode == 0, result.stderr
    run_dir = Path(result.stdout.strip())
    assert run_dir.parent == tmp_path / "out" / "cli-test"
    summary = json.loads((run_dir / "campaign.json").read_text())
    assert summary["status"] == "completed" and summary["published_variants"] == 6
    for product in ("bottle", "box"):
        manifest = json.loads((run_dir / product / "manifest.json").read_text())
        assert len(manifest["variants"]) == 3
        assert all(Image.open(run_dir / product / v["image"]).size == (384, 384) for v in manifest["variants"])


def test_broken_product_exits_1_after_publishing_the_rest(tmp_path: Path) -> None:
    result = _run([str(_campaign(tmp_path, broken=True))], tmp_path)
    assert result.returncode == 1
    line = result.stderr.strip()
    assert "\n" not in line and "3 of 6 variant(s) published; failed: box (product image" in line, line
    (run_dir,) = (tmp_path / "out" / "cli-test").iterdir()
    assert (run_dir / "bottle" / "manifest.json").is_file() and not (run_dir / "box").exists()
    assert json.loads((run_dir / "campaign.json").read_text())["status"] == "incomplete"


def test_invalid_campaign_file_is_one_line_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "campaign.yaml"
    path.write_text("name: x\nproducts: []\nscenes:\n  - prompt: a\n")
    result = _run([str(path)], tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().startswith(f"placewright: error: {path}: products")
    assert "\n" not in result.stderr.strip() and not (tmp_path / "out").exists()


def _alias_bomb(levels: int = 9, width: int = 9) -> str:
    """A few hundred bytes of YAML whose aliases expand to ``width ** levels`` strings."""
    lines = [f"a0: &a0 [{', '.join(['lol'] * width)}]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]" for i in range(1, levels)]
    return "\n".join(["name: bomb", *lines, "products: []", "scenes: []"]) + "\n"


HOSTILE = {
    "alias-bomb": (_alias_bomb(), "too many nodes once aliases are expanded"),
    "deep-nesting": ("name: deep\nscenes: " + "[" * 900 + "]" * 900 + "\n", "nesting deeper than 64 levels"),
    "duplicate-key": ("name: a\nproducts: []\nname: b\nscenes: []\n", "duplicate key 'name' at line 3"),
}


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_campaign_files_are_refused_at_once_in_one_line(tmp_path: Path, case: str) -> None:
    text, expected = HOSTILE[case]
    path = tmp_path / "campaign.yaml"
    path.write_text(text)
    assert len(text.encode()) < 4000, "a small file"
    started = time.perf_counter()
    with pytest.raises(InvalidInput, match=expected):
        load_campaign(path)
    assert time.perf_counter() - started < 1.0, "refused well under a second"
    result = _run([str(path)], tmp_path)
    assert result.returncode == 2 and expected in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_a_url_mode_the_store_cannot_serve_is_refused_before_any_run(tmp_path: Path) -> None:
    """The campaign's own ``options.urls`` is checked up front, as every product's run would use it."""
    path = _campaign(tmp_path)
    document = yaml.safe_load(path.read_text())
    document["options"]["urls"] = "public"  # no storage.public_base_url is set
    path.write_text(yaml.safe_dump(document))
    result = _run([str(path)], tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == (
        "placewright: error: storage.urls is 'public' but storage.public_base_url is not set"
    )
    assert not (tmp_path / "out").exists()
