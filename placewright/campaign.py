"""Campaign files: many products x many scenes in one YAML document.

A campaign names its products (local files, http(s) URLs or storage URLs such as ``s3://bucket/key``),
its scenes (prompts or provided backgrounds, files or URLs, each made ``variants`` times), an output
store and run options::

    name: spring-olive-oil
    out: s3://my-bucket/campaigns
    options: {size: 1024x1024, format: webp, seed: 7, surface: table}
    variants_per_scene: 1
    products:
      - path: examples/olive-oil-bottle.jpg
      - url: https://cdn.example.com/p/soap.png
        name: soap
        surface: countertop
      - url: s3://my-bucket/products/candle.png
    scenes:
      - prompt: sunlit marble kitchen counter, morning light
      - prompt: rustic wooden table
        variants: 2
      - background: backgrounds/cafe.jpg
      - background: s3://my-bucket/backgrounds/loft.jpg

:func:`load_campaign` reads and checks a file; :func:`parse_campaign` checks an already parsed
mapping (what a flow receives). Every problem is one :class:`~placewright.errors.InvalidInput`
line naming the file and the field, e.g. ``campaign.yaml: scenes[1].prompt: must not be empty``.
Relative paths (products, backgrounds, a local ``out``) are resolved against the campaign file's
folder and stored absolute; local product and background files must exist. A campaign that arrived
from outside (``access`` in :func:`load_campaign`, :func:`parse_campaign`) is held to the access roots
(:mod:`placewright.access`): its file, its products' and backgrounds' paths and non-http URLs under
``access.input_roots``, its ``out`` under ``access.output_roots`` (or ``out_dir``), each checked
before the file is looked at, e.g. ``campaign: products[0].path: ../../etc/passwd is outside
access.input_roots (['.'])``.
YAML is read by :func:`placewright.safe_yaml.load_yaml` (hostile files, such as alias bombs, deep
nesting or duplicate keys, are refused at once). The ``options`` are the run contract's
(:class:`~placewright.request.RunOptions`), checked by the same rules as the CLI's and the flow's;
:meth:`CampaignSpec.requests` expands a campaign into one :class:`~placewright.request.RunRequest`
per product.
"""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath
from typing import Annotated, Any
from urllib.parse import unquote, urlparse

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from placewright.access import UNRESTRICTED, Access, local_path, scheme_of
from placewright.errors import InvalidInput
from placewright.naming import slugify
from placewright.request import (
    IMAGE_SOURCES,
    MAX_VARIANTS,
    Location,
    Prompt,
    RunOptions,
    RunRequest,
    SurfacePhrase,
    check_image_source,
)
from placewright.safe_yaml import load_yaml
from placewright.validation import validate

# Campaign and product names become folder names: lowercase letters, digits and '-' only.
SLUG_PATTERN = re.compile(r"[a-z0-9-]{1,60}")
MAX_NAME_CHARS = 60
MAX_PRODUCTS = 100
MAX_SCENES = 64
# Per scene; a product's scenes together are further held to request.MAX_VARIANTS (one run each).
MAX_VARIANTS_PER_SCENE = 16
# A campaign file is a few kilobytes of YAML; refuse anything that is clearly something else.
MAX_CAMPAIGN_FILE_BYTES = 1024 * 1024
# Name used when a product's file stem has no letters or digits at all.
FALLBACK_PRODUCT_NAME = "product"

StrictCount = Annotated[int, Field(strict=True, ge=1, le=MAX_VARIANTS_PER_SCENE)]


class _Model(BaseModel):
    """Base of the campaign models: immutable, unknown keys rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def _context(info: ValidationInfo) -> dict[str, Any]:
    return info.context if isinstance(info.context, dict) else {}


def _base_dir(info: ValidationInfo) -> Path:
    """The folder relative paths are resolved against: the campaign file's, else the working folder."""
    return Path(_context(info).get("base_dir") or Path.cwd())


def _access(info: ValidationInfo) -> Access:
    """Where the campaign may read and publish (see :mod:`placewright.access`); unrestricted by default."""
    return _context(info).get("access") or UNRESTRICTED


def _local_file(value: str, info: ValidationInfo) -> str:
    """``value`` made absolute against the campaign's folder; raises ValueError unless it is an existing file.

    The access roots are checked first: a path outside them is refused without looking at it.
    """
    if not value.strip():
        raise ValueError("must not be empty")
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = _base_dir(info) / path
    path = Path(os.path.normpath(path))
    if (problem := _access(info).input_problem(str(path))) is not None:
        raise ValueError(f"{value} {problem}")
    if not path.exists():
        raise ValueError(f"file not found: {path}")
    if not path.is_file():
        raise ValueError(f"not a file: {path}")
    return str(path)


def _image_url(value: str, info: ValidationInfo) -> str:
    """An image URL (http(s) or a storage URL), held to the access roots; raises ValueError otherwise."""
    value = value.strip()
    check_image_source(value, local=False)
    if (problem := _access(info).input_problem(value)) is not None:
        raise ValueError(f"{value} {problem}")
    return value


def _image_file_or_url(value: str, info: ValidationInfo) -> str:
    """A background: a URL as :func:`_image_url` checks it, or a file as :func:`_local_file` does."""
    stripped = value.strip()
    if scheme_of(stripped) is None:
        raise ValueError(f"must be {IMAGE_SOURCES}, got {stripped!r}")
    return _image_url(stripped, info) if scheme_of(stripped) else _local_file(value, info)


def _url_stem(url: str) -> str:
    return PurePosixPath(unquote(urlparse(url).path)).stem


class CampaignProduct(_Model):
    """One product: exactly one of ``path`` (absolute once loaded) and ``url`` (http(s) or storage)."""

    path: str | None = Field(None, description="Local product photo; absolute once loaded.")
    url: str | None = Field(
        None, description="URL of the product photo: http(s), or a storage URL (s3://bucket/key, gs://, az://)."
    )
    # Optional in the schema (the UI's form and the API accept a product without it); always set after
    # validation: the before-validator fills in the file stem.
    name: str | None = Field(None, description="Label used in output names; default: the file stem, slugified.")
    surface: SurfacePhrase | None = Field(None, description="Overrides options.surface for this product.")

    @model_validator(mode="before")
    @classmethod
    def _one_source_and_a_name(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        if (data.get("path") is None) == (data.get("url") is None):
            raise ValueError("give exactly one of path or url")
        if data.get("name") is None:
            source = data.get("path") if data.get("path") is not None else data.get("url")
            if isinstance(source, str):
                stem = Path(source).stem if data.get("path") is not None else _url_stem(source)
                data = {**data, "name": slugify(stem, limit=MAX_NAME_CHARS, fallback=FALLBACK_PRODUCT_NAME)}
        return data

    @field_validator("path")
    @classmethod
    def _path(cls, value: str | None, info: ValidationInfo) -> str | None:
        return None if value is None else _local_file(value, info)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None, info: ValidationInfo) -> str | None:
        return None if value is None else _image_url(value, info)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is None or not SLUG_PATTERN.fullmatch(value):
            raise ValueError(f"must be 1..{MAX_NAME_CHARS} characters of a-z, 0-9 and '-', got {value!r}")
        return value

    @property
    def source(self) -> str:
        """The local path or the URL."""
        return self.path if self.path is not None else str(self.url)


class CampaignScene(_Model):
    """One scene: exactly one of ``prompt`` and ``background`` (absolute once loaded)."""

    prompt: Prompt | None = Field(None, description="Scene description for the scene backend.")
    background: str | None = Field(
        None, description="A provided background image: a file (absolute once loaded), an http(s) or storage URL."
    )
    variants: StrictCount | None = Field(None, description="Images made per product; None: variants_per_scene.")

    @model_validator(mode="before")
    @classmethod
    def _one_kind(cls, data: Any) -> Any:
        if isinstance(data, dict) and (data.get("prompt") is None) == (data.get("background") is None):
            raise ValueError("give exactly one of prompt or background")
        return data

    @field_validator("background")
    @classmethod
    def _background(cls, value: str | None, info: ValidationInfo) -> str | None:
        return None if value is None else _image_file_or_url(value, info)


class CampaignSpec(_Model):
    """A whole campaign, checked: outputs go under ``<out>/<name>/<run_id>/``."""

    name: str = Field(description="Campaign name: 1..60 characters of a-z, 0-9 and '-'.")
    out: Location | None = Field(None, description="Output store (folder or fsspec URL); None: the settings' out_dir.")
    options: RunOptions = Field(
        RunOptions(), title="Options", description="Run options of every product; unset ones come from settings."
    )
    variants_per_scene: StrictCount = Field(1, description="Images per scene and product, unless a scene says.")
    products: list[CampaignProduct] = Field(min_length=1, max_length=MAX_PRODUCTS)
    scenes: list[CampaignScene] = Field(min_length=1, max_length=MAX_SCENES)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not SLUG_PATTERN.fullmatch(value):
            raise ValueError(f"must be 1..{MAX_NAME_CHARS} characters of a-z, 0-9 and '-', got {value!r}")
        return value

    @field_validator("out")
    @classmethod
    def _out(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        out = value
        if "://" not in value:
            path = Path(value).expanduser()
            out = str(path if path.is_absolute() else Path(os.path.normpath(_base_dir(info) / path)))
        if (problem := _access(info).output_problem(out)) is not None:
            raise ValueError(f"{value} {problem}")
        return out

    @model_validator(mode="after")
    def _unique_names_and_bounded_runs(self) -> CampaignSpec:
        first: dict[str, int] = {}
        for index, product in enumerate(self.products):
            if product.name in first:
                other = first[product.name]
                raise ValueError(
                    f"products[{index}].name: duplicate name {product.name!r} "
                    f"(products[{other}]: {self.products[other].source} and products[{index}]: {product.source}); "
                    "give one of them a different name"
                )
            first[product.name] = index
        per_product = self.variants_per_product
        if per_product > MAX_VARIANTS:
            raise ValueError(
                f"scenes: {per_product} variants per product (limit {MAX_VARIANTS}); use fewer scenes or variants"
            )
        return self

    def variants_of(self, scene: CampaignScene) -> int:
        """How many images ``scene`` gives each product."""
        return scene.variants if scene.variants is not None else self.variants_per_scene

    @property
    def variants_per_product(self) -> int:
        """Images made per product: the sum of every scene's variants."""
        return sum(self.variants_of(scene) for scene in self.scenes)

    @property
    def variant_count(self) -> int:
        """Images made by the whole campaign: products x the sum of scene variants."""
        return len(self.products) * self.variants_per_product

    def requests(self) -> list[tuple[CampaignProduct, RunRequest]]:
        """Each product with its run request: every scene, each repeated ``variants`` times in a row.

        The pipeline makes prompts first, then backgrounds, giving variant ``i`` seed ``seed + i``,
        so the repeats of one scene get different seeds. A product's ``surface`` overrides the
        campaign's; options left unset come from the settings when the request is planned.
        """
        prompts: list[str] = []
        backgrounds: list[str] = []
        for scene in self.scenes:
            repeats = self.variants_of(scene)
            if scene.prompt is not None:
                prompts += [scene.prompt] * repeats
            else:
                backgrounds += [str(scene.background)] * repeats
        options = dict(self.options)
        return [
            (
                product,
                RunRequest(
                    **{**options, "surface": product.surface or self.options.surface},
                    product=product.source,
                    prompts=prompts,
                    backgrounds=backgrounds,
                    out=self.out,
                ),
            )
            for product in self.products
        ]


def load_campaign(path: str | Path, *, access: Access = UNRESTRICTED) -> CampaignSpec:
    """Read and check a campaign YAML file.

    Args:
        path: the campaign file (a path or ``file://`` URL); relative paths inside it are resolved
            against its folder.
        access: where the campaign may read and publish; a restricted one is checked first for the
            file itself, then for every path, URL and ``out`` inside it.

    Returns:
        The checked campaign, every local path absolute.

    Raises:
        InvalidInput: one line naming the file (and the field) for a missing, unreadable, empty or
            malformed file, and for the first invalid field.
    """
    source = str(path)
    file = Path(local_path(source)).expanduser()
    if (problem := access.input_problem(str(file))) is not None:
        raise InvalidInput(f"{source}: campaign file {problem}")
    if not file.exists():
        raise InvalidInput(f"{source}: campaign file not found")
    if not file.is_file():
        raise InvalidInput(f"{source}: not a file")
    size = file.stat().st_size
    if size > MAX_CAMPAIGN_FILE_BYTES:
        raise InvalidInput(f"{source}: too large for a campaign file ({size} bytes, limit {MAX_CAMPAIGN_FILE_BYTES})")
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InvalidInput(f"{source}: not UTF-8 text") from None
    except OSError as exc:
        raise InvalidInput(f"{source}: cannot read: {exc.strerror or exc}") from None
    data = load_yaml(text, source=source)
    if data is None:
        raise InvalidInput(f"{source}: the file is empty (a campaign needs name, products and scenes)")
    if not isinstance(data, dict):
        raise InvalidInput(
            f"{source}: the top level must be a mapping (name:, products:, scenes:, ...), got {_kind(data)}"
        )
    return parse_campaign(data, base_dir=file.resolve().parent, source=source, access=access)


def parse_campaign(data: dict[str, Any], *, base_dir: Path, source: str, access: Access = UNRESTRICTED) -> CampaignSpec:
    """Check an already parsed campaign mapping.

    Args:
        data: the campaign, as YAML or JSON gives it.
        base_dir: folder that relative paths are resolved against.
        source: how errors name the campaign (its file name).
        access: where the campaign may read and publish (see :func:`load_campaign`).

    Returns:
        The checked campaign, every local path absolute.

    Raises:
        InvalidInput: ``"<source>: <field path>: <problem>"`` for the first invalid field, with
            ``"(and N more)"`` when there are others.
    """
    if not isinstance(data, dict):
        raise InvalidInput(f"{source}: a campaign must be a mapping, got {_kind(data)}")
    return validate(CampaignSpec, data, source=source, context={"base_dir": Path(base_dir), "access": access})


def _kind(value: object) -> str:
    return {list: "a list", str: "text"}.get(type(value), f"a {type(value).__name__}")
