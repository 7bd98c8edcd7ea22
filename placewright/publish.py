"""Publishing a finished run: web-ready images, previews, the RGBA cut-out, a contact sheet, an
``index.html`` gallery and ``manifest.json``.

A run lives under ``<location>/<run_path>/`` (``run_path`` is ``<run_id>`` or ``<campaign>/<run_id>``).
Objects are written images first, manifest last, each atomically, so a manifest never names a
missing object: a run is complete exactly when its ``manifest.json`` exists. Publishing is
idempotent: an object that already holds the same bytes is not written again, so publishing the
same run twice (a retried task, a retried flow run) writes nothing new. When the last attempt
fails and the run has no manifest, its objects are removed (best effort: an unreachable store
keeps them, still without a manifest).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import cv2
import numpy as np
from PIL import Image

from placewright import __version__
from placewright.analyze import Analysis
from placewright.backends import StageRecord
from placewright.contact_sheet import TILE_WIDTH, Tile, contact_sheet
from placewright.gallery import GALLERY_NAME, run_gallery
from placewright.imageio import CONTENT_TYPES, downscale, encode_image
from placewright.manifest import URL_FIELDS, DroppedVariant, Manifest, ProductEntry, VariantEntry, Verdict, to_json
from placewright.naming import slugify
from placewright.quality import QualityReport
from placewright.request import Product, Variant
from placewright.settings import OutputSettings
from placewright.storage import Location, StoredObject
from placewright.types import Box, Surface

logger = logging.getLogger(__name__)

CUTOUT_PATH = "product/cutout.png"
MANIFEST_NAME = "manifest.json"
CONTACT_SHEET_STEM = "contact-sheet"
# The stages a contact-sheet tile names the backend of (the ones that shape how a variant looks).
SHEET_STAGES = ("scene", "cutout", "harmonize")
# The contact sheet shown on the Prefect run page is embedded in a markdown artifact (a data: URL, the
# only image a browser shows there for a local run): kept small.
SHEET_PREVIEW_SIDE = 1000
SHEET_PREVIEW_QUALITY = 72
# Longest scene label in a variant's file name.
LABEL_CHARS = 40
# Product pixels this close to the alpha edge are blended by design; fidelity is measured inside.
FIDELITY_ERODE_PX = 2
# Pillow releases the GIL while encoding and uploads wait on the network: both run in parallel.
PUBLISH_THREADS = 8


# Pixels, or a loader that returns them when they are needed.
Pixels = np.ndarray | Callable[[], np.ndarray]


@dataclass(frozen=True)
class FinishedVariant:
    """A variant's pixels and geometry, ready to publish.

    Attributes:
        variant: what it was made from.
        image: (H, W, 3) uint8, the final image.
        product_box: where the product is, output pixels.
        surface: where it stands.
        stages: every stage's record, in pipeline order (product stages included).
        composite: the image before harmonize, for the product-fidelity figure (None: not measured).
        product_alpha: (H, W) uint8 product alpha in output pixels (with ``composite``).
        quality: the quality gate's report (None: the gate was off).
        attempts: how often the variant was made (the gate makes failing ones again).

    The pixels may be given as loaders (no-argument callables): publishing then holds the arrays of
    only the few variants it is encoding at a time, whatever the number of variants.
    """

    variant: Variant
    image: Pixels
    product_box: Box
    surface: Surface
    stages: dict[str, StageRecord]
    composite: Pixels | None = None
    product_alpha: Pixels | None = None
    quality: QualityReport | None = None
    attempts: int = 1

    @property
    def verdict(self) -> Verdict:
        if self.quality is None or not self.quality.checks:
            return "unchecked"
        return "passed" if self.quality.passed else "needs_review"


@dataclass(frozen=True)
class _Encoded:
    """What publishing keeps of a variant once its pixels are encoded (and let go)."""

    data: bytes
    preview: bytes | None
    fidelity: int | None
    tile: np.ndarray  # TILE_WIDTH wide, for the contact sheet
    thumbnail: bytes  # small JPEG of ``tile``
    width: int
    height: int


def _array(pixels: Pixels | None) -> np.ndarray | None:
    return pixels() if callable(pixels) else pixels


def _encode_variant(finished: FinishedVariant, output: OutputSettings) -> _Encoded:
    image = _array(finished.image)
    assert image is not None
    data = _encode(image, output.format, output.quality, output)
    composite, alpha = _array(finished.composite), _array(finished.product_alpha)
    fidelity = product_fidelity(composite, data, alpha) if composite is not None and alpha is not None else None
    tile = downscale(image, TILE_WIDTH)
    return _Encoded(
        data=data,
        preview=_preview(image, output),
        fidelity=fidelity,
        tile=tile,
        thumbnail=encode_image(tile, "jpeg", quality=SHEET_PREVIEW_QUALITY),
        width=int(image.shape[1]),
        height=int(image.shape[0]),
    )


def product_fidelity(reference: np.ndarray, encoded: bytes, product_alpha: np.ndarray) -> int:
    """Largest pixel difference (0-255) inside the eroded product mask between ``reference`` and the
    published file: 0 means the product's pixels (its label) reached the output unchanged.
    """
    solid = (product_alpha == 255).astype(np.uint8)
    kernel = np.ones((2 * FIDELITY_ERODE_PX + 1, 2 * FIDELITY_ERODE_PX + 1), np.uint8)
    inside = cv2.erode(solid, kernel).astype(bool)
    if not inside.any():
        return 0
    published = np.asarray(Image.open(io.BytesIO(encoded)).convert("RGB"))
    return int(np.abs(published[inside].astype(np.int16) - reference[inside].astype(np.int16)).max())


def new_run_id(now: datetime | None = None) -> str:
    """A sortable, unique run id such as ``20261122T041502Z-3f9a1c``."""
    return run_id_for(now or datetime.now(UTC), uuid.uuid4().hex)


def run_id_for(created: datetime, unique_hex: str) -> str:
    """The run id of a run started at ``created``: its UTC time, then 6 hex digits of ``unique_hex`` (a flow run id)."""
    return f"{created.astimezone(UTC):%Y%m%dT%H%M%SZ}-{unique_hex[:6]}"


def variant_filename(variant: Variant, fmt: str, *, preview: bool = False) -> str:
    """``variant-<index>-<scene label>[.preview].<ext>``: the label is the prompt, or the background's file stem."""
    label = variant.prompt if variant.prompt is not None else (variant.background or "background")
    if variant.prompt is None:
        label = label.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    ext = "jpg" if fmt == "jpeg" else fmt
    slug = slugify(label, limit=LABEL_CHARS, fallback="scene")
    return f"variant-{variant.index:02d}-{slug}{'.preview' if preview else ''}.{ext}"


@dataclass(frozen=True)
class PublishedRun:
    """What publishing did: the manifest (as stored), where it is, and which objects it wrote."""

    manifest: Manifest
    run_uri: str
    manifest_url: str
    written: list[str]
    unchanged: list[str]
    sheet_preview: bytes | None = None  # a small JPEG of the contact sheet, for the Prefect run page
    thumbnails: dict[int, bytes] = field(default_factory=dict)  # variant index -> small JPEG (campaign sheet)
    copied_from: str | None = None  # the earlier identical run whose files were copied (placewright.republish)


def publish_run(
    *,
    location: Location,
    run_path: str,
    run_id: str,
    created_at: str,
    product: Product,
    cutout: np.ndarray,
    analysis: Analysis,
    variants: list[FinishedVariant],
    output: OutputSettings,
    dropped: list[DroppedVariant] | None = None,
    clean_on_failure: bool = True,
) -> PublishedRun:
    """Publish a run under ``<location>/<run_path>/``: images first, manifest last; see the module doc.

    Args:
        location: where runs are published.
        run_path: the run's folder under the location, e.g. ``20261122T041502Z-3f9a1c``.
        run_id: the run's id, recorded in the manifest.
        created_at: ISO time the run started (part of the manifest, so republishing is byte-identical).
        product: the product as named, and its file's sha256.
        cutout: (h, w, 4) uint8, the product's cut-out.
        analysis: what the analyze stage made of it.
        variants: the finished variants.
        output: formats, qualities and preview size.
        dropped: variants the quality gate left out (listed in the manifest and on the contact sheet).
        clean_on_failure: when publishing fails and the run has no manifest, remove its objects,
            including those of earlier attempts (False when a retry follows).
    """
    keyed = lambda name: f"{run_path}/{name}"  # noqa: E731
    ordered = sorted(variants, key=lambda v: v.variant.index)
    fmt = output.format
    with ThreadPoolExecutor(max_workers=PUBLISH_THREADS) as pool:  # at most this many variants' pixels at once
        encoded = list(pool.map(lambda v: _encode_variant(v, output), ordered))
    cutout_png = encode_image(cutout, "png", srgb_profile=output.srgb_profile)
    dropped = sorted(dropped or [], key=lambda d: d.index)
    sheet_name = f"{CONTACT_SHEET_STEM}.{'jpg' if fmt == 'jpeg' else fmt}"
    sheet_pixels = run_sheet(
        analysis.name,
        run_id,
        ordered,
        dropped,
        tiles={f.variant.index: e.tile for f, e in zip(ordered, encoded, strict=True)},
    )
    sheet = _encode(sheet_pixels, fmt, output.quality, output)

    images = [StoredObject(keyed(CUTOUT_PATH), cutout_png, CONTENT_TYPES["png"], location.settings.image_cache_control)]
    entries = []
    for finished, done in zip(ordered, encoded, strict=True):
        data, preview = done.data, done.preview
        name = variant_filename(finished.variant, fmt)
        images.append(StoredObject(keyed(name), data, CONTENT_TYPES[fmt], location.settings.image_cache_control))
        preview_name = None
        if preview is not None:
            preview_name = variant_filename(finished.variant, fmt, preview=True)
            images.append(
                StoredObject(keyed(preview_name), preview, CONTENT_TYPES[fmt], location.settings.image_cache_control)
            )
        entries.append(_variant_entry(finished, done, name, preview_name, location, keyed))
    images.append(StoredObject(keyed(sheet_name), sheet, CONTENT_TYPES[fmt], location.settings.image_cache_control))
    expires = None
    if location.url_mode == "presigned":
        lifetime = timedelta(seconds=location.settings.presign_expiry_s)
        expires = (datetime.now(UTC) + lifetime).isoformat(timespec="seconds")
    manifest = Manifest(
        run_id=run_id,
        created_at=created_at,
        placewright_version=__version__,
        format=fmt,
        location=location.uri(run_path),
        urls_expire_at=expires,
        product=ProductEntry(
            **dict(product),
            cutout=CUTOUT_PATH,
            cutout_url=location.url_for(keyed(CUTOUT_PATH)),
            analysis=analysis,
        ),
        variants=entries,
        dropped=dropped,
        contact_sheet=sheet_name,
        contact_sheet_url=location.url_for(keyed(sheet_name)),
        gallery=GALLERY_NAME,
        gallery_url=location.url_for(keyed(GALLERY_NAME)),
    )
    gallery_key = keyed(GALLERY_NAME)

    written: list[str] = []
    unchanged: list[str] = []
    try:
        with ThreadPoolExecutor(max_workers=PUBLISH_THREADS) as pool:
            for item, did_write in zip(images, pool.map(location.write, images), strict=True):
                (written if did_write else unchanged).append(item.key)
        manifest_key = keyed(MANIFEST_NAME)
        stored = _stored_manifest(location, manifest_key)
        same_run = stored is not None and _without_urls(stored) == _without_urls(manifest.model_dump(mode="json"))
        if same_run:
            manifest = Manifest.model_validate(stored)  # the same run: keep the manifest (and URLs) it has
        # The gallery is made from the manifest that stays, so it links the same (presigned) URLs: publishing
        # the same run again rewrites neither. It goes before the manifest, like every object the manifest names.
        page = run_gallery(manifest, absolute=location.url_mode == "presigned").encode()
        cache = location.settings.manifest_cache_control
        gallery_written = location.write(StoredObject(gallery_key, page, "text/html; charset=utf-8", cache))
        (written if gallery_written else unchanged).append(gallery_key)
        if same_run:
            unchanged.append(manifest_key)
        else:
            manifest_object = StoredObject(
                manifest_key,
                to_json(manifest).encode(),
                "application/json",
                location.settings.manifest_cache_control,
            )
            location.write(manifest_object)
            written.append(manifest_key)
    except BaseException:
        if clean_on_failure and location.read_quietly(keyed(MANIFEST_NAME)) is None:
            # No manifest: the run's objects (from this attempt and earlier ones) are unreachable litter.
            _remove_quietly(location, [item.key for item in images] + [gallery_key], run_path)
        raise
    return PublishedRun(
        manifest=manifest,
        run_uri=location.uri(run_path),
        manifest_url=location.url_for(keyed(MANIFEST_NAME)),
        written=written,
        unchanged=unchanged,
        sheet_preview=encode_image(downscale(sheet_pixels, SHEET_PREVIEW_SIDE), "jpeg", quality=SHEET_PREVIEW_QUALITY),
        thumbnails={f.variant.index: e.thumbnail for f, e in zip(ordered, encoded, strict=True)},
    )


def _encode(pixels: np.ndarray, fmt: str, quality: int, output: OutputSettings) -> bytes:
    return encode_image(pixels, fmt, quality=quality, srgb_profile=output.srgb_profile)  # type: ignore[arg-type]


def _preview(pixels: np.ndarray, output: OutputSettings) -> bytes | None:
    if output.preview_side == 0 or max(pixels.shape[:2]) <= output.preview_side:
        return None
    return _encode(downscale(pixels, output.preview_side), output.format, output.preview_quality, output)


def _stored_manifest(location: Location, key: str) -> dict | None:
    data = location.read(key)
    if data is None:
        return None
    try:
        return json.loads(data)
    except ValueError:
        return None  # a damaged manifest is replaced


def _without_urls(value: object) -> object:
    """The manifest without its URLs and their expiry: presigned URLs differ at every signing."""
    if isinstance(value, dict):
        return {k: _without_urls(v) for k, v in value.items() if k not in URL_FIELDS}
    if isinstance(value, list):
        return [_without_urls(v) for v in value]
    return value


def _remove_quietly(location: Location, keys: list[str], run_path: str) -> None:
    for key in keys:
        try:
            location.remove(key)
        except Exception as exc:  # the store may be what failed; the manifest was not written either way
            logger.warning("could not remove %s after a failed publish: %s", location.uri(key), exc)
            return
    location.remove_empty_folders(run_path)


def _variant_entry(
    finished: FinishedVariant,
    done: _Encoded,
    name: str,
    preview: str | None,
    location: Location,
    keyed: Callable[[str], str],
) -> VariantEntry:
    data, width, height, fidelity = done.data, done.width, done.height, done.fidelity
    return VariantEntry(
        **dict(finished.variant),
        image=name,
        url=location.url_for(keyed(name)),
        preview=preview,
        preview_url=location.url_for(keyed(preview)) if preview else None,
        bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        width=int(width),
        height=int(height),
        product_box=finished.product_box.as_list(),
        surface_box=finished.surface.box.as_list() if finished.surface.box else None,
        surface_line_y=finished.surface.line_y,
        product_fidelity=fidelity,
        stages=finished.stages,
        verdict=finished.verdict,
        attempts=finished.attempts,
        quality=finished.quality,
    )


def sheet_lines(stages: dict[str, StageRecord], quality: QualityReport | None, scene: str) -> tuple[str, ...]:
    """A contact-sheet caption's lines under the title: the scene, failed checks, the main backends."""
    lines = [scene]
    if quality is not None and not quality.passed:
        lines.append(f"failed: {quality.summary()}")
    lines.append(" · ".join(f"{s}: {stages[s].backend}" for s in SHEET_STAGES if s in stages))
    return tuple(lines)


def run_sheet(
    name: str,
    run_id: str,
    finished: list[FinishedVariant],
    dropped: list[DroppedVariant],
    tiles: dict[int, np.ndarray] | None = None,
) -> np.ndarray:
    """The run's contact sheet: every variant, published or left out, in index order.

    ``tiles``: each variant's image already made small (else its full image is used).
    """
    tiles_of = tiles or {}
    tiles = [
        (
            f.variant.index,
            Tile(
                image=tiles_of[f.variant.index] if f.variant.index in tiles_of else _array(f.image),
                title=f"#{f.variant.index} · seed {f.variant.seed}",
                verdict=f.verdict,
                lines=sheet_lines(f.stages, f.quality, f.variant.scene_label),
            ),
        )
        for f in finished
    ]
    tiles += [
        (
            d.index,
            Tile(
                image=None,
                title=f"#{d.index} · seed {d.seed}",
                verdict="dropped",
                lines=(d.scene_label, f"failed: {d.quality.summary()}"),
            ),
        )
        for d in dropped
    ]
    return contact_sheet([tile for _, tile in sorted(tiles, key=lambda t: t[0])], f"{name} · run {run_id}")
