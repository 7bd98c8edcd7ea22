"""Checking run requests: every bad argument is named before any work starts."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from placewright.errors import InvalidInput
from placewright.request import build_request
from placewright.settings import Settings


@pytest.fixture
def product(tmp_path: Path) -> str:
    path = tmp_path / "soap_bottle.png"
    Image.new("RGB", (120, 160), (200, 200, 200)).save(path)
    return str(path)


def _build(product: str, **kwargs):
    args = dict(prompts=None, backgrounds=None, surface=None, size=None, seed=None, format=None, out=None)
    args.update(kwargs)
    return build_request(product, settings=Settings(), **args)


def test_default_variant_from_default_prompt(product: str) -> None:
    request = _build(product)
    assert len(request.variants) == 1
    assert request.variants[0].prompt == Settings().scene.default_prompt
    assert str(request.size) == "1024x1024" and request.format == "webp"


def test_one_variant_per_prompt_and_background_with_seeds(product: str, tmp_path: Path) -> None:
    background = tmp_path / "bg.jpg"
    Image.new("RGB", (300, 200), (10, 120, 10)).save(background)
    request = _build(product, prompts=["a", "b"], backgrounds=[str(background)], seed=10, format="JPG")
    assert [(v.index, v.seed, v.prompt) for v in request.variants] == [(0, 10, "a"), (1, 11, "b"), (2, 12, None)]
    assert request.variants[2].background is not None
    assert request.format == "jpeg"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"size": "big"}, "WIDTHxHEIGHT"),
        ({"size": "10x10"}, "out of range"),
        ({"format": "gif"}, "unknown format"),
        ({"prompts": ["  "]}, "empty"),
        ({"prompts": ["x" * 5000]}, "too long"),
        ({"surface": " "}, "surface"),
        ({"seed": -1}, "seed"),
        ({"backgrounds": ["/nonexistent/bg.png"]}, "background image not found"),
    ],
)
def test_invalid_input(product: str, kwargs: dict, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        _build(product, **kwargs)


def test_missing_product() -> None:
    with pytest.raises(InvalidInput, match="product image not found"):
        _build("/nonexistent/product.png")


def test_output_folder_that_is_a_file(product: str, tmp_path: Path) -> None:
    blocker = tmp_path / "taken"
    blocker.write_text("a file, not a folder")
    for out in (blocker, blocker / "sub"):
        with pytest.raises(InvalidInput, match="is not a folder"):
            _build(product, out=str(out))


def test_output_folder_that_does_not_exist_yet_is_fine(product: str, tmp_path: Path) -> None:
    assert _build(product, out=str(tmp_path / "new" / "deeper")).out_dir.endswith("deeper")
