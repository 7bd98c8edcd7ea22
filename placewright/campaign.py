"""Campaign files: many products x many scenes in one YAML document.

A campaign names its products (local files or http(s) URLs), its scenes (prompts or provided
backgrounds, each made ``variants`` times), an output store and run options::

    name: spring-olive-oil
    out: s3://my-bucket/campaigns
    options: {size: 1024x1024, format: webp, seed: 7, surface: table}
    variants_per_scene: 1
    products:
      - path: examples/olive-oil-bottle.jpg
      - url: https://cdn.example.com/p/soap.png
        name: soap
        surface: countertop
    scenes:
      - prompt: sunlit marble kitchen counter, morning light
      - prompt: rustic wooden table
        variants: 2
      - background: backgrounds/cafe.jpg

:func:`load_campaign` reads and checks a file; :func:`parse_campaign` checks an already parsed
mapping (what a flow receives). Every problem is one :class:`~placewright.errors.InvalidInput`
line naming the file and the field, e.g. ``campaign.yaml: scenes[1].prompt: must not be empty``.
Relative paths (products, backgrounds, a local ``out``) are resolved against the campaign file's
folder and stored absolute; local product and background files must exist.
:func:`campaign_jobs` turns a campaign into one :class:`CampaignJob` per product, and
:func:`fetch_product` downloads a URL product into a folder the caller owns.
"""

from __future__ import annotations

import hashlib
import mimetypes
import os
import re
import tempfile
import time
import types
import typing
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Annotated, Any
from urllib.parse import unquote, urlparse

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from placewright.errors import InvalidInput
from placewright.request import FORMATS, MAX_PROMPT_CHARS, MAX_VARIANTS
from placewright.settings import OutputFormat
from placewright.types import Size

# Campaign and product names become folder names: lowercase letters, digits and '-' only.
SLUG_PATTERN = re.compile(r"[a-z0-9-]{1,60}")
MAX_NAME_CHARS = 60
MAX_PRODUCTS = 100
MAX_SCENES = 64
# Per scene; a product's scenes together are further held to request.MAX_VARIANTS (one run each).
MAX_VARIANTS_PER_SCENE = 16
# A surface phrase is a few words ("marble countertop"); anything longer is a mistake.
MAX_SURFACE_CHARS = 200
# A campaign file is a few kilobytes of YAML; refuse anything that is clearly something else.
MAX_CAMPAIGN_FILE_BYTES = 1024 * 1024
# Name used when a product's file stem has no letters or digits at all.
FALLBACK_PRODUCT_NAME = "product"
# Longest input shown back in an error message.
MAX_SHOWN_INPUT_CHARS = 60
# Downloads are read and written in chunks of this many bytes.
DOWNLOAD_CHUNK_BYTES = 64 * 1024
# File extensions trusted from a URL's path, and the extension written for each image content type.
IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff"})
CONTENT_TYPE_EXTENSIONS = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/jpg": ".jpg",
    "image/pjpeg": ".jpg",
    "image/webp": ".webp",
    "image/gif": ".gif",
    "image/bmp": ".bmp",
    "image/x-ms-bmp": ".bmp",
    "image/tiff": ".tif",
}
# Object stores often serve images uploaded without a type as these; accepted only for URLs ending in an
# image extension (the bytes are decoded and checked later by imageio.load_image anyway).
GENERIC_CONTENT_TYPES = frozenset({"application/octet-stream", "binary/octet-stream"})
SHA_NAME_CHARS = 16

StrictCount = Annotated[int, Field(strict=True, ge=1, le=MAX_VARIANTS_PER_SCENE)]


class _Model(BaseModel):
    """Base of the campaign models: immutable, unknown keys rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def _base_dir(info: ValidationInfo) -> Path:
    """The folder relative paths are resolved against: the campaign file's, else the working folder."""
    context = info.context if isinstance(info.context, dict) else {}
    return Path(context.get("base_dir") or Path.cwd())


def _local_file(value: str, info: ValidationInfo) -> str:
    """``value`` made absolute against the campaign's folder; raises ValueError unless it is an existing file."""
    if not value.strip():
        raise ValueError("must not be empty")
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = _base_dir(info) / path
    path = Path(os.path.normpath(path))
    if not path.exists():
        raise ValueError(f"file not found: {path}")
    if not path.is_file():
        raise ValueError(f"not a file: {path}")
    return str(path)


def _surface_phrase(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if not value:
        raise ValueError("must not be empty")
    if len(value) > MAX_SURFACE_CHARS:
        raise ValueError(f"is too long ({len(value)} characters, limit {MAX_SURFACE_CHARS})")
    return value


def slugify(text: str) -> str:
    """``text`` as a name: lowercase, runs of other characters turned into '-', at most 60 characters.

    Returns ``"product"`` when nothing usable is left.
    """
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:MAX_NAME_CHARS].strip("-")
    return slug or FALLBACK_PRODUCT_NAME


def _url_stem(url: str) -> str:
    return PurePosixPath(unquote(urlparse(url).path)).stem


class CampaignOptions(_Model):
    """Run options shared by every product; None leaves the value to the settings at run time."""

    size: str | None = Field(None, description="Output size WIDTHxHEIGHT (e.g. 1024x1024), normalised.")
    format: OutputFormat | None = Field(None, description="webp, jpeg (or jpg) or png.")
    seed: int | None = Field(None, strict=True, ge=0, description="Base seed; variant i of a product uses seed + i.")
    surface: str | None = Field(None, description="Surface phrase the products stand on, e.g. 'table'.")

    @field_validator("size", mode="before")
    @classmethod
    def _size(cls, value: object) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str):
            raise ValueError(f"size must be text like 1024x1024, got {value!r}")
        return str(Size.parse(value))

    @field_validator("format", mode="before")
    @classmethod
    def _format(cls, value: object) -> str | None:
        if value is None:
            return None
        fmt = value.strip().lower() if isinstance(value, str) else value
        if fmt == "jpg":
            fmt = "jpeg"
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {value!r}; choose one of: {', '.join(FORMATS)} (or jpg)")
        return fmt

    @field_validator("surface")
    @classmethod
    def _surface(cls, value: str | None) -> str | None:
        return _surface_phrase(value)


class CampaignProduct(_Model):
    """One product: exactly one of ``path`` (absolute once loaded) and ``url`` (http or https)."""

    path: str | None = Field(None, description="Local product photo; absolute once loaded.")
    url: str | None = Field(None, description="http(s) URL of the product photo.")
    # Optional in the schema (the UI's form and the API accept a product without it); always set after
    # validation: the before-validator fills in the file stem.
    name: str | None = Field(None, description="Label used in output names; default: the file stem, slugified.")
    surface: str | None = Field(None, description="Overrides options.surface for this product.")

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
                data = {**data, "name": slugify(stem)}
        return data

    @field_validator("path")
    @classmethod
    def _path(cls, value: str | None, info: ValidationInfo) -> str | None:
        return None if value is None else _local_file(value, info)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        _check_http_url(value, error=ValueError)
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is None or not SLUG_PATTERN.fullmatch(value):
            raise ValueError(f"must be 1..{MAX_NAME_CHARS} characters of a-z, 0-9 and '-', got {value!r}")
        return value

    @field_validator("surface")
    @classmethod
    def _surface(cls, value: str | None) -> str | None:
        return _surface_phrase(value)

    @property
    def source(self) -> str:
        """The local path or the URL."""
        return self.path if self.path is not None else str(self.url)


class CampaignScene(_Model):
    """One scene: exactly one of ``prompt`` and ``background`` (absolute once loaded)."""

    prompt: str | None = Field(None, description="Scene description for the scene backend.")
    background: str | None = Field(None, description="A provided background image; absolute once loaded.")
    variants: StrictCount | None = Field(None, description="Images made per product; None: variants_per_scene.")

    @model_validator(mode="before")
    @classmethod
    def _one_kind(cls, data: Any) -> Any:
        if isinstance(data, dict) and (data.get("prompt") is None) == (data.get("background") is None):
            raise ValueError("give exactly one of prompt or background")
        return data

    @field_validator("prompt")
    @classmethod
    def _prompt(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        if not value:
            raise ValueError("must not be empty")
        if len(value) > MAX_PROMPT_CHARS:
            raise ValueError(f"is too long ({len(value)} characters, limit {MAX_PROMPT_CHARS})")
        return value

    @field_validator("background")
    @classmethod
    def _background(cls, value: str | None, info: ValidationInfo) -> str | None:
        return None if value is None else _local_file(value, info)


class CampaignSpec(_Model):
    """A whole campaign, checked: outputs go under ``<out>/<name>/<run_id>/``."""

    name: str = Field(description="Campaign name: 1..60 characters of a-z, 0-9 and '-'.")
    out: str | None = Field(None, description="Output store (folder or fsspec URL); None: the settings' out_dir.")
    options: CampaignOptions = Field(CampaignOptions(), description="Run options; unset ones come from settings.")
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
        value = value.strip()
        if not value:
            raise ValueError("must not be empty (leave it out to use the settings' out_dir)")
        if "://" in value:
            return value
        path = Path(value).expanduser()
        return str(path if path.is_absolute() else Path(os.path.normpath(_base_dir(info) / path)))

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


@dataclass(frozen=True)
class CampaignJob:
    """One product's run: all the campaign's scenes, each repeated ``variants`` times.

    The pipeline makes prompts first, then backgrounds, giving variant ``i`` seed ``seed + i``, so
    the repeats of one scene get different seeds.

    Attributes:
        product_index: position of the product in the campaign.
        product_name: the product's (unique) name.
        product: absolute local path, or the http(s) URL to fetch first.
        surface: the product's surface phrase, else the campaign's; None: the settings'.
        prompts: prompt scenes in campaign order, each repeated ``variants`` times in a row.
        backgrounds: absolute background paths, likewise.
        seed: the campaign's base seed; None: the settings'.
    """

    product_index: int
    product_name: str
    product: str
    surface: str | None
    prompts: list[str]
    backgrounds: list[str]
    seed: int | None


def campaign_jobs(spec: CampaignSpec) -> list[CampaignJob]:
    """One :class:`CampaignJob` per product, in campaign order."""
    prompts: list[str] = []
    backgrounds: list[str] = []
    for scene in spec.scenes:
        repeats = spec.variants_of(scene)
        if scene.prompt is not None:
            prompts += [scene.prompt] * repeats
        else:
            backgrounds += [str(scene.background)] * repeats
    return [
        CampaignJob(
            product_index=index,
            product_name=str(product.name),
            product=product.source,
            surface=product.surface if product.surface is not None else spec.options.surface,
            prompts=list(prompts),
            backgrounds=list(backgrounds),
            seed=spec.options.seed,
        )
        for index, product in enumerate(spec.products)
    ]


def load_campaign(path: str | Path) -> CampaignSpec:
    """Read and check a campaign YAML file.

    Args:
        path: the campaign file; relative paths inside it are resolved against its folder.

    Returns:
        The checked campaign, every local path absolute.

    Raises:
        InvalidInput: one line naming the file (and the field) for a missing, unreadable, empty or
            malformed file, and for the first invalid field.
    """
    source = str(path)
    file = Path(path).expanduser()
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
    try:
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = _one_line(exc.problem or exc.context or "invalid YAML")
        raise InvalidInput(f"{source}: YAML syntax error{where}: {problem}") from None
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{source}: YAML syntax error: {_one_line(str(exc))}") from None
    if data is None:
        raise InvalidInput(f"{source}: the file is empty (a campaign needs name, products and scenes)")
    if not isinstance(data, dict):
        raise InvalidInput(
            f"{source}: the top level must be a mapping (name:, products:, scenes:, ...), got {_kind(data)}"
        )
    return parse_campaign(data, base_dir=file.resolve().parent, source=source)


def parse_campaign(data: dict[str, Any], *, base_dir: Path, source: str) -> CampaignSpec:
    """Check an already parsed campaign mapping.

    Args:
        data: the campaign, as YAML or JSON gives it.
        base_dir: folder that relative paths are resolved against.
        source: how errors name the campaign (its file name).

    Returns:
        The checked campaign, every local path absolute.

    Raises:
        InvalidInput: ``"<source>: <field path>: <problem>"`` for the first invalid field, with
            ``"(and N more)"`` when there are others.
    """
    if not isinstance(data, dict):
        raise InvalidInput(f"{source}: a campaign must be a mapping, got {_kind(data)}")
    try:
        return CampaignSpec.model_validate(data, context={"base_dir": Path(base_dir)})
    except ValidationError as exc:
        raise InvalidInput(_format_error(exc, source)) from None


def fetch_product(url: str, dest_dir: Path, *, max_bytes: int, timeout_s: float) -> Path:
    """Download a product image into ``dest_dir``.

    Redirects are followed; the body is streamed to a temporary name in ``dest_dir`` and renamed to
    ``<sha256(url)[:16]><ext>`` once complete (``ext`` from the URL's path, else the content type).

    Args:
        url: an http or https URL.
        dest_dir: folder the caller owns (created if missing); on failure nothing is left in it.
        max_bytes: refuse bodies larger than this.
        timeout_s: limit for connecting, for each read, and for the whole download.

    Returns:
        The downloaded file's path.

    Raises:
        InvalidInput: one line naming the URL: not http(s), connection failure or timeout, HTTP
            error status, a content type that is not an image, or a body over ``max_bytes``.
    """
    import httpx

    _check_http_url(url, error=InvalidInput)
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout_s
    partial: str | None = None
    try:
        with (
            httpx.Client(follow_redirects=True, timeout=timeout_s) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code >= 400:
                raise InvalidInput(f"product URL {url}: HTTP {response.status_code} {response.reason_phrase}".rstrip())
            content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
            extension = _extension(url, content_type)
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise InvalidInput(f"product URL {url}: {declared} bytes is too large (limit {max_bytes})")
            fd, partial = tempfile.mkstemp(dir=dest_dir, prefix=".download-", suffix=".part")
            received = 0
            with os.fdopen(fd, "wb") as handle:
                for chunk in response.iter_bytes(DOWNLOAD_CHUNK_BYTES):
                    received += len(chunk)
                    if received > max_bytes:
                        raise InvalidInput(f"product URL {url}: more than {max_bytes} bytes (the limit)")
                    if time.monotonic() > deadline:
                        raise InvalidInput(f"product URL {url}: download took longer than {timeout_s:g} s")
                    handle.write(chunk)
        target = dest_dir / f"{hashlib.sha256(url.encode()).hexdigest()[:SHA_NAME_CHARS]}{extension}"
        os.replace(partial, target)
        partial = None
        return target
    except httpx.TimeoutException:
        raise InvalidInput(f"product URL {url}: timed out after {timeout_s:g} s") from None
    except httpx.HTTPError as exc:
        raise InvalidInput(f"product URL {url}: cannot download: {_one_line(str(exc)) or type(exc).__name__}") from None
    finally:
        if partial is not None:
            Path(partial).unlink(missing_ok=True)


def _check_http_url(url: str, *, error: type[Exception]) -> None:
    parts = urlparse(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise error(f"must be an http(s) URL, got {_shown(url)}")


def _extension(url: str, content_type: str) -> str:
    """The file extension for a download; raises InvalidInput when the content type is not an image."""
    suffix = PurePosixPath(unquote(urlparse(url).path)).suffix.lower()
    if content_type.startswith("image/"):
        if suffix in IMAGE_EXTENSIONS:
            return suffix
        return CONTENT_TYPE_EXTENSIONS.get(content_type) or mimetypes.guess_extension(content_type) or ""
    if content_type in GENERIC_CONTENT_TYPES and suffix in IMAGE_EXTENSIONS:
        return suffix
    raise InvalidInput(f"product URL {url}: not an image (content type {content_type or 'missing'})")


def _format_error(exc: ValidationError, source: str) -> str:
    """``"<source>: <field path>: <problem>"`` for the first error of ``exc``."""
    errors = exc.errors()
    first = errors[0]
    loc = tuple(first["loc"])
    if first["type"] == "value_error" and "error" in first.get("ctx", {}):
        problem = str(first["ctx"]["error"])
    elif first["type"] == "extra_forbidden":
        model = _model_at(loc[:-1])
        allowed = f"; allowed: {', '.join(model.model_fields)}" if model is not None else ""
        problem = f"unknown key{allowed}"
    elif first["type"] == "missing":
        problem = "required"
    elif first["type"] == "model_type" and (model := _model_at(loc)) is not None:
        problem = f"must be a mapping of {', '.join(model.model_fields)} (got {_shown(first['input'])})"
    else:
        problem = first["msg"][:1].lower() + first["msg"][1:]
        if not isinstance(first.get("input"), dict | list):
            problem += f" (got {_shown(first.get('input'))})"
    problem = _one_line(problem)
    if loc:  # errors of the whole campaign (loc ()) name their own fields
        problem = f"{_field_path(loc)}: {problem}"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{source}: {problem}{more}"


def _field_path(loc: tuple[int | str, ...]) -> str:
    """``("scenes", 1, "prompt")`` as ``"scenes[1].prompt"``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _model_at(loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The campaign model class found at ``loc`` (list indices skipped), for listing allowed keys."""
    model: type[BaseModel] | None = CampaignSpec
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part) if model is not None else None
        model = _model_in(field.annotation) if field is not None else None
    return model


def _model_in(annotation: object) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is not None:
        for arg in typing.get_args(annotation):
            if (found := _model_in(arg)) is not None:
                return found
    return None


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= MAX_SHOWN_INPUT_CHARS else text[: MAX_SHOWN_INPUT_CHARS - 3] + "..."


def _kind(value: object) -> str:
    return {list: "a list", str: "text"}.get(type(value), f"a {type(value).__name__}")
