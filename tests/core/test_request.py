"""The run contract and planning a run: every bad argument is named, in one line, before any work starts."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from placewright.errors import InvalidInput
from placewright.plan import plan_run
from placewright.request import RunRequest, Variant
from placewright.settings import Settings
from placewright.types import Size
from placewright.validation import validate


@pytest.fixture
def product(tmp_path: Path) -> str:
    path = tmp_path / "soap_bottle.png"
    Image.new("RGB", (120, 160), (200, 200, 200)).save(path)
    return str(path)


def _plan(tmp_path: Path, **fields):
    request = validate(RunRequest, fields)
    return plan_run(request, Settings(), downloads=tmp_path / "downloads")


def test_defaults_come_from_the_settings(product: str, tmp_path: Path) -> None:
    plan = _plan(tmp_path, product=product)
    assert plan.variants == [Variant(index=0, seed=0, prompt=Settings().scene.default_prompt, background=None)]
    assert (plan.size, plan.format, plan.surface, plan.out) == (Size(1024, 1024), "webp", "table", Settings().out_dir)
    assert plan.request.prompts == [], "the default prompt makes a variant but is not the user's prompt"
    assert plan.product.source == product and len(plan.product.sha256) == 64


def test_one_variant_per_prompt_and_background_with_seeds(product: str, tmp_path: Path) -> None:
    background = tmp_path / "bg.jpg"
    Image.new("RGB", (300, 200), (10, 120, 10)).save(background)
    plan = _plan(tmp_path, product=product, prompts=["a", " b "], backgrounds=[str(background)], seed=10, format="JPG")
    assert [(v.index, v.seed, v.prompt, v.background) for v in plan.variants] == [
        (0, 10, "a", None),
        (1, 11, "b", None),
        (2, 12, None, str(background)),
    ]
    assert plan.variants[2].background_sha256 and plan.format == "jpeg"


def test_sizes_read_as_text_or_as_numbers(product: str) -> None:
    assert RunRequest(product=product, size="640 x 480").size == Size(640, 480)  # type: ignore[arg-type]
    assert RunRequest(product=product, size={"width": 640, "height": 480}).size == Size(640, 480)  # type: ignore[arg-type]
    assert RunRequest(product=product, size=Size(640, 480)).size == Size(640, 480)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"size": "big"}, "size: must look like WIDTHxHEIGHT (e.g. 1024x1024), got 'big'"),
        ({"size": "10x10"}, "size: 10x10 is out of range: each side must be 64..8192 pixels"),
        ({"size": {"width": 640}}, "size.height: required"),
        ({"format": "gif"}, "format: must be one of: 'webp', 'jpeg' or 'png' (got 'gif')"),
        ({"urls": "signed"}, "urls: must be one of: 'auto', 'presigned', 'public' or 'plain' (got 'signed')"),
        ({"prompts": ["  "]}, "prompts[0]: must not be empty"),
        ({"prompts": ["x" * 5000]}, "prompts[0]: is too long (5000 characters, limit 2000)"),
        (
            {"prompts": ["p"] * 40, "backgrounds": ["b"] * 40},
            "too many variants: 80 prompts and backgrounds (limit 64)",
        ),
        ({"surface": " "}, "surface: must not be empty"),
        ({"surface": "x" * 201}, "surface: is too long (201 characters, limit 200)"),
        ({"seed": -1}, "seed: must be >= 0"),
        ({"seed": "-1"}, "seed: must be >= 0"),
        ({"seed": "abc"}, "seed: must be a whole number (got 'abc')"),
        ({"seed": True}, "seed: must be a whole number, got True"),
        ({"seed": 1.5}, "seed: must be a whole number (got 1.5)"),
        (
            {"product": "ftp://example.com/p.png"},
            "product: must be a local path, an http(s) URL or a storage URL (s3://bucket/key, gs://, az://, "
            "file://), got 'ftp://example.com/p.png'",
        ),
        ({"product": "sftp://host/p.png"}, "product: must be a local path, an http(s) URL or a storage URL"),
        ({"product": "simplecache::s3://b/p.png"}, "product: must be a local path, an http(s) URL or a storage"),
        ({"product": "https:///p.png"}, "product: must be an http(s) URL with a host name, got 'https:///p.png'"),
        ({"product": "s3://"}, "product: must name a file or object, got 's3://'"),
        ({"backgrounds": ["ok.png", "ftp://x/b.png"]}, "backgrounds[1]: must be a local path, an http(s) URL or"),
        ({"out": ""}, "out: must not be empty"),
        ({"colour": "red"}, "colour: unknown key; allowed: product, prompts, backgrounds, out, surface, size"),
    ],
)
def test_invalid_request(product: str, fields: dict, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        validate(RunRequest, {"product": product, **fields})
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


@pytest.mark.parametrize(
    "source",
    ["s3://bucket/products/soap.png", "S3://bucket/p.png", "gs://bucket/p.png", "az://container/p.png",
     "file:///srv/images/p.png", "https://cdn.example.com/p.png", "relative/p.png"],
)  # fmt: skip
def test_products_and_backgrounds_may_be_paths_http_or_storage_urls(source: str) -> None:
    request = RunRequest(product=source, backgrounds=[source])
    assert (request.product, request.backgrounds) == (source, [source]), "kept as given"


def test_a_request_is_immutable(product: str) -> None:
    request = RunRequest(product=product)
    with pytest.raises(ValueError):
        request.seed = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"product": "/nonexistent/product.png"}, "product image not found: /nonexistent/product.png"),
        ({"backgrounds": ["/nonexistent/bg.png"]}, "background image not found: /nonexistent/bg.png"),
    ],
)
def test_missing_files(product: str, tmp_path: Path, fields: dict, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        _plan(tmp_path, **{"product": product, **fields})


def test_output_folder_that_is_a_file(product: str, tmp_path: Path) -> None:
    blocker = tmp_path / "taken"
    blocker.write_text("a file, not a folder")
    for out in (blocker, blocker / "sub"):
        with pytest.raises(InvalidInput, match="is not a folder"):
            _plan(tmp_path, product=product, out=str(out))


def test_output_folder_that_does_not_exist_yet_is_fine(product: str, tmp_path: Path) -> None:
    assert _plan(tmp_path, product=product, out=str(tmp_path / "new" / "deeper")).out.endswith("deeper")


def test_public_urls_need_a_public_base_url(product: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="public_base_url"):
        _plan(tmp_path, product=product, urls="public")


def test_the_ui_form_schema_shows_choices_and_numbers() -> None:
    schema = RunRequest.model_json_schema()
    properties = schema["properties"]
    assert list(properties)[:3] == ["product", "prompts", "backgrounds"], "what the run is made from comes first"
    assert {"webp", "jpeg", "png"} == set(properties["format"]["anyOf"][0]["enum"])
    assert {"auto", "presigned", "public", "plain"} == set(properties["urls"]["anyOf"][0]["enum"])
    numbers, text, none = properties["size"]["anyOf"]  # numbers or WIDTHxHEIGHT text (or unset)
    assert numbers["properties"]["width"] == {"type": "integer", "minimum": 64, "maximum": 8192, "title": "Width"}
    assert numbers["properties"]["height"]["type"] == "integer" and text["type"] == "string"
    assert none == {"type": "null"}
    assert properties["seed"]["anyOf"][0] == {"minimum": 0, "type": "integer"}
