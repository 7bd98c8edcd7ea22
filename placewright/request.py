"""The run contract: what a user asks for, one model for every entry point.

:class:`RunRequest` is what the CLI builds from its options, what the ``place-product`` flow takes
as its parameter (so the Prefect UI shows it as a form), what each product of a campaign expands
into, and what the HTTP service will accept. Its rules (limits, choices, one-line messages) live
here once, in the annotated field types below; :class:`RunOptions`, the options a campaign sets
for all its products, is the same fields. Checks that need the disk or the network (files exist
and decode, the output store is reachable) happen when the request is planned
(:func:`placewright.plan.plan_run`).

:class:`Variant` and :class:`Product` are what a run makes and from what; they travel from the plan
through the flow to the manifest, whose entries extend them (:mod:`placewright.manifest`).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, model_validator

from placewright.access import HTTP_SCHEMES, STORAGE_SCHEMES, scheme_of
from placewright.types import OutputFormat, Size, UrlMode
from placewright.validation import shown

MAX_PROMPT_CHARS = 2000
MAX_VARIANTS = 64
# A surface phrase is a few words ("marble countertop"); anything longer is a mistake.
MAX_SURFACE_CHARS = 200
# Output sides accepted, in pixels.
MIN_SIDE, MAX_SIDE = 64, 8192
# Paths and URLs longer than this are mistakes (and would not fit a file system).
MAX_LOCATION_CHARS = 4096


def _text(limit: int) -> AfterValidator:
    """Stripped, non-empty text of at most ``limit`` characters."""

    def check(value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("must not be empty")
        if len(value) > limit:
            raise ValueError(f"is too long ({len(value)} characters, limit {limit})")
        return value

    return AfterValidator(check)


def _size_from_text(value: object) -> object:
    """``"1024x768"`` as ``{"width": 1024, "height": 768}``; anything else is left to the model."""
    if not isinstance(value, str):
        return value
    parts = value.lower().replace(" ", "").split("x")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise ValueError(f"must look like WIDTHxHEIGHT (e.g. 1024x1024), got {value!r}")
    return {"width": int(parts[0]), "height": int(parts[1])}


def _size_in_range(size: Size) -> Size:
    if not (MIN_SIDE <= size.width <= MAX_SIDE and MIN_SIDE <= size.height <= MAX_SIDE):
        raise ValueError(f"{size} is out of range: each side must be {MIN_SIDE}..{MAX_SIDE} pixels")
    return size


# The size's JSON schema (the Prefect UI's form, the server's parameter check): width and height as
# numbers, or WIDTHxHEIGHT text as campaign files and the CLI write it.
_SIDE_SCHEMA = {"type": "integer", "minimum": MIN_SIDE, "maximum": MAX_SIDE}
SIZE_JSON_SCHEMA = {
    "anyOf": [
        {
            "type": "object",
            "title": "Width and height",
            "properties": {"width": {**_SIDE_SCHEMA, "title": "Width"}, "height": {**_SIDE_SCHEMA, "title": "Height"}},
            "required": ["width", "height"],
        },
        {"type": "string", "title": "WIDTHxHEIGHT", "pattern": r"^\s*\d+\s*[xX]\s*\d+\s*$"},
    ]
}


def _not_a_bool(value: object) -> object:
    if isinstance(value, bool):  # YAML's yes/no and JSON's true are not numbers
        raise ValueError(f"must be a whole number, got {value!r}")
    return value


def _format_name(value: object) -> object:
    if isinstance(value, str):
        value = value.strip().lower()
        return "jpeg" if value == "jpg" else value
    return value


# How the contract names the image sources it accepts, in its messages.
IMAGE_URLS = "an http(s) URL or a storage URL (s3://bucket/key, gs://, az://, file://)"
IMAGE_SOURCES = f"a local path, {IMAGE_URLS}"


def check_image_source(value: str, *, local: bool = True) -> str:
    """``value`` if it is a local path, an http(s) URL with a host, or a storage URL naming an object.

    Args:
        value: the path or URL.
        local: whether a local path is accepted (a campaign product's ``url:`` must be a URL).

    Raises:
        ValueError: any other URL (``ftp://``, ``sftp://``, a chained fsspec URL, ``x://`` with no scheme).
    """
    scheme = scheme_of(value)
    rest = value.split("://", 1)[1] if "://" in value else value
    if scheme == "" and local:
        return value
    if scheme in HTTP_SCHEMES:
        if not rest.split("/", 1)[0].split("?", 1)[0]:
            raise ValueError(f"must be an http(s) URL with a host name, got {shown(value)}")
        return value
    if scheme in (*STORAGE_SCHEMES, "file") and "::" not in value:
        if not rest.strip("/"):
            raise ValueError(f"must name a file or object, got {shown(value)}")
        return value
    raise ValueError(f"must be {IMAGE_SOURCES if local else IMAGE_URLS}, got {shown(value)}")


Prompt = Annotated[str, _text(MAX_PROMPT_CHARS)]
SurfacePhrase = Annotated[str, _text(MAX_SURFACE_CHARS)]
Location = Annotated[str, _text(MAX_LOCATION_CHARS)]
ImageSource = Annotated[str, _text(MAX_LOCATION_CHARS), AfterValidator(check_image_source)]
OutputSize = Annotated[
    Size, BeforeValidator(_size_from_text), AfterValidator(_size_in_range), WithJsonSchema(SIZE_JSON_SCHEMA)
]
Seed = Annotated[int, Field(ge=0), BeforeValidator(_not_a_bool)]
Format = Annotated[OutputFormat, BeforeValidator(_format_name)]


class _Contract(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RunOptions(_Contract):
    """Options of a run; None leaves each to the settings (``surface``, ``output.size``, ``seed``...)."""

    surface: SurfacePhrase | None = Field(
        default=None,
        description="What the product stands on ('table', 'shelf'): asked for in the scene, searched for, "
        "and used for scale. Default: the settings' surface.",
    )
    size: OutputSize | None = Field(
        default=None, title="Size", description="Output size in pixels (or WIDTHxHEIGHT text)."
    )
    seed: Seed | None = Field(
        default=None, description="Base seed; variant i uses seed + i. Default: the settings' seed."
    )
    format: Format | None = Field(default=None, description="Image format of the outputs (jpg counts as jpeg).")
    urls: UrlMode | None = Field(
        default=None,
        title="URLs",
        description="URLs in the manifest: auto, presigned, public (needs storage.public_base_url) or plain. "
        "Default: the settings' storage.urls.",
    )


class RunInputs(_Contract):
    """What a run is made from and where it goes."""

    product: ImageSource = Field(
        description="The product photo: a path on the machine that runs it, an http(s) URL, or a storage URL "
        "(s3://bucket/key, gs://, az://, file://)."
    )
    prompts: list[Prompt] = Field(
        default_factory=list, max_length=MAX_VARIANTS, description="Scene prompts, one variant each."
    )
    backgrounds: list[ImageSource] = Field(
        default_factory=list,
        max_length=MAX_VARIANTS,
        description="Background images to use as they are, one variant each: paths, http(s) or storage URLs.",
    )
    out: Location | None = Field(
        default=None,
        description="Where the run folder goes: a folder or a storage URL (s3://bucket/prefix). Default: out_dir.",
    )


class RunRequest(RunOptions, RunInputs):
    """One product in one or more scenes: the run contract (see the module docstring).

    Its fields are ``RunInputs``' then ``RunOptions``' (the order the UI form shows them).
    """

    @model_validator(mode="after")
    def _bounded_variants(self) -> RunRequest:
        count = len(self.prompts) + len(self.backgrounds)
        if count > MAX_VARIANTS:
            raise ValueError(f"too many variants: {count} prompts and backgrounds (limit {MAX_VARIANTS})")
        return self


class Product(_Contract):
    """The product a run places: as the user named it, and what its file holds."""

    source: str = Field(description="The product image as given (a path or a URL).")
    sha256: str = Field(description="sha256 of the product file's bytes.")


class Variant(_Contract):
    """One image a run makes: from a prompt or from a provided background, with its seed."""

    index: int = Field(description="Position in the run: prompts first, then backgrounds.")
    seed: int = Field(description="The run's seed + index: the same seed makes the same image.")
    prompt: str | None = Field(description="The scene prompt (None: a provided background).")
    background: str | None = Field(description="The provided background as given (None: a generated scene).")
    background_sha256: str | None = Field(default=None, description="sha256 of the background file's bytes.")

    @property
    def scene_label(self) -> str:
        """How the variant's scene is shown to people: its prompt, or ``background <path>``."""
        return self.prompt if self.prompt is not None else f"background {self.background}"


__all__ = [
    "IMAGE_SOURCES",
    "IMAGE_URLS",
    "MAX_PROMPT_CHARS",
    "MAX_SURFACE_CHARS",
    "MAX_VARIANTS",
    "OutputSize",
    "Product",
    "Prompt",
    "RunOptions",
    "RunRequest",
    "Seed",
    "SurfacePhrase",
    "Variant",
    "check_image_source",
]
