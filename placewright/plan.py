"""Planning a run: a validated :class:`~placewright.request.RunRequest` checked against the world.

:func:`plan_run` fills every option the request leaves unset from the settings, holds a run that
arrived from outside to the ``access`` roots (:mod:`placewright.access`), fetches URL images (http(s)
through the URL guard, object stores through fsspec) and reads and fully decodes the product and
background images (refusing what is unusable), checks that the output location is usable, and lists
the variants. Bad input is one
:class:`~placewright.errors.InvalidInput` line, before anything is written. The CLI plans a request
before it starts Prefect (so bad input is refused in well under a second); the flows plan it again,
since they are entry points of their own (the Prefect UI, deployments, the HTTP service).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from placewright.access import UNRESTRICTED, Access
from placewright.download import fetch_source
from placewright.errors import InvalidInput
from placewright.imageio import load_image
from placewright.memory import available_bytes, variants_that_fit
from placewright.request import Product, RunRequest, Variant
from placewright.settings import Settings
from placewright.storage import Location, open_location
from placewright.types import OutputFormat, Size, UrlMode


@dataclass(frozen=True)
class RunPlan:
    """A run ready to submit.

    Attributes:
        request: the request with every option filled in (``surface``, ``size``, ``seed``,
            ``format``, ``urls``, ``out``); its prompts are the user's own.
        product: the product as named and its file's sha256.
        product_file: the local file to read it from (a URL product's download).
        variants: one per prompt, then one per background; with neither, one from
            ``scene.default_prompt``. Variant ``i`` has seed ``seed + i``.
        background_files: the local file of each of the request's backgrounds, in order (a URL
            background's download); the variants name the backgrounds as given.
    """

    request: RunRequest
    product: Product
    product_file: str
    variants: list[Variant]
    background_files: list[str] = field(default_factory=list)

    def background_file(self, variant: Variant) -> str | None:
        """The local file of ``variant``'s background (None: a generated scene)."""
        if variant.background is None or not self.background_files:
            return variant.background
        position = variant.index - (len(self.variants) - len(self.background_files))
        return self.background_files[position]

    # The request's options, every one filled in by with_defaults.
    @property
    def surface(self) -> str:
        return cast(str, self.request.surface)

    @property
    def size(self) -> Size:
        return cast(Size, self.request.size)

    @property
    def format(self) -> OutputFormat:
        return cast(OutputFormat, self.request.format)

    @property
    def out(self) -> str:
        return cast(str, self.request.out)


def with_defaults(request: RunRequest, settings: Settings) -> RunRequest:
    """``request`` with each unset option taken from ``settings``."""
    return request.model_copy(
        update={
            "surface": request.surface or settings.surface,
            "size": request.size or settings.output.size,
            "seed": settings.seed if request.seed is None else request.seed,
            "format": request.format or settings.output.format,
            "urls": request.urls or settings.storage.urls,
            "out": request.out or settings.out_dir,
        }
    )


def output_location(out: str | None, urls: UrlMode | None, settings: Settings) -> Location:
    """Where a run (or a campaign) publishes: ``out`` (default ``out_dir``) with its own URL mode, if any.

    The one way a run's location is opened: when it is checked, when its objects are written and
    their URLs made, and for a campaign's ``campaign.json``.
    """
    storage = settings.storage
    if urls is not None and urls != storage.urls:
        storage = storage.model_copy(update={"urls": urls})
    return open_location(out or settings.out_dir, storage)


def plan_run(request: RunRequest, settings: Settings, *, downloads: Path, access: Access = UNRESTRICTED) -> RunPlan:
    """Check ``request`` against the settings, the files and the output store; see the module doc.

    Args:
        request: a validated request.
        settings: where unset options come from, the input limits and the storage settings.
        downloads: a folder the caller owns (and removes) for URL images' downloads.
        access: where the run may read and publish: :data:`~placewright.access.UNRESTRICTED` (the
            CLI), or ``Access.remote(settings)`` for a run that arrived from outside.

    Raises:
        InvalidInput: naming the first problem.
    """
    filled = with_defaults(request, settings)
    if settings.runner.kind == "threads":  # the stages run in this process: one variant must fit its memory
        variants_that_fit(cast(Size, filled.size), 1, available_bytes())
    access.check_input(request.product, what="product")
    for background in request.backgrounds:
        access.check_input(background, what="background")
    access.check_output(filled.out or "", what="out")
    check_output_folder(filled.out or "")
    location = output_location(filled.out, filled.urls, settings)
    location.check_urls()
    limits = settings.limits
    files: dict[str, str] = {}  # a background repeated (a campaign scene's variants) is fetched once

    def local_file(source: str, what: str) -> str:
        if source not in files:
            files[source] = str(fetch_source(source, downloads, what=what, limits=limits, storage=settings.storage))
        return files[source]

    product_file = local_file(request.product, "product")
    product_image = load_image(product_file, limits=limits, what="product image", source=request.product)
    background_files = [local_file(b, "background") for b in request.backgrounds]
    hashes: dict[str, str] = {}
    for source, file in zip(request.backgrounds, background_files, strict=True):
        if source not in hashes:
            hashes[source] = load_image(file, limits=limits, what="background image", source=source).sha256
    location.check_reachable()  # last: it may take a network round trip
    return RunPlan(
        request=filled,
        product=Product(source=request.product, sha256=product_image.sha256),
        product_file=product_file,
        variants=list_variants(filled, settings, [hashes[b] for b in request.backgrounds]),
        background_files=background_files,
    )


def list_variants(request: RunRequest, settings: Settings, background_sha256: list[str] | None = None) -> list[Variant]:
    """The variants of a request whose options are filled in (:func:`with_defaults`).

    One per prompt, then one per background; with neither, one from ``scene.default_prompt``.
    Variant ``i`` has seed ``seed + i``. ``background_sha256`` are the backgrounds' file hashes
    when they have been read.
    """
    seed = request.seed if request.seed is not None else settings.seed
    prompts = list(request.prompts) if request.prompts or request.backgrounds else [settings.scene.default_prompt]
    hashes: list[str | None] = [None] * len(request.backgrounds)
    if background_sha256 is not None:
        hashes = list(background_sha256)
    variants = [
        Variant(index=i, seed=seed + i, prompt=p, background=None, background_sha256=None)
        for i, p in enumerate(prompts)
    ]
    variants += [
        Variant(index=len(prompts) + j, seed=seed + len(prompts) + j, prompt=None, background=b, background_sha256=sha)
        for j, (b, sha) in enumerate(zip(request.backgrounds, hashes, strict=True))
    ]
    return variants


def check_output_folder(out: str) -> None:
    """A local output folder must be a folder (or creatable) and writable; store URLs are checked on use."""
    if "://" in out and not out.startswith("file://"):
        return
    path = Path(out.removeprefix("file://"))
    existing = next((p for p in (path, *path.parents) if p.exists()), None)
    if existing is None:
        return
    if not existing.is_dir():
        raise InvalidInput(f"output folder {out} is not a folder ({existing} is a file)")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InvalidInput(f"output folder {out} is not writable")
