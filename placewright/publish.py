"""Writing a finished run: final images, the RGBA cut-out and ``manifest.json``.

A run folder is complete or absent: everything is written into a hidden partial folder
beside it, the manifest last, and the folder is renamed into place in one step. On any
error the partial folder is removed and nothing is left behind.
"""

from __future__ import annotations

import io
import json
import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

import cv2
import fsspec
import numpy as np
from PIL import Image

from placewright import __version__
from placewright.backends import StageRecord
from placewright.imageio import encode_image
from placewright.manifest import AnalysisEntry, Manifest, ProductEntry, StageEntry, VariantEntry
from placewright.settings import OutputSettings
from placewright.types import Box

CUTOUT_PATH = "product/cutout.png"
MANIFEST_NAME = "manifest.json"
_SLUG_CHARS = 40
# Product pixels this close to the alpha edge are blended by design; fidelity is measured inside.
FIDELITY_ERODE_PX = 2
# Pillow releases the GIL while encoding, so variants encode in parallel.
ENCODE_THREADS = 4


@dataclass(frozen=True)
class VariantOutput:
    """One finished variant, ready to publish."""

    index: int
    seed: int
    image: np.ndarray
    product_box: Box
    surface_box: Box | None
    surface_line_y: int
    stages: dict[str, StageRecord]
    prompt: str | None = None
    background: str | None = None
    composite: np.ndarray | None = None  # the image before harmonize, for the fidelity figure
    product_alpha: np.ndarray | None = None


@dataclass(frozen=True)
class ProductOutput:
    """The product side of a run."""

    source: str
    sha256: str
    cutout: np.ndarray
    analysis: dict[str, object]
    stages: dict[str, StageRecord] = field(default_factory=dict)


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
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{uuid.uuid4().hex[:6]}"


def slugify(text: str) -> str:
    """Lower-case ASCII words joined by '-', at most a few dozen characters."""
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:_SLUG_CHARS].rstrip("-") or "scene"


def variant_filename(variant: VariantOutput, fmt: str) -> str:
    label = variant.prompt if variant.prompt is not None else (variant.background or "background")
    if variant.prompt is None:
        label = label.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    ext = "jpg" if fmt == "jpeg" else fmt
    return f"variant-{variant.index:02d}-{slugify(label)}.{ext}"


def publish_run(
    *,
    out_dir: str,
    run_id: str,
    product: ProductOutput,
    variants: list[VariantOutput],
    output: OutputSettings,
) -> Manifest:
    """Write the run folder ``<out_dir>/<run_id>/`` atomically and return its manifest.

    Raises:
        FileExistsError: when that run folder already exists.
    """
    fs, root = fsspec.core.url_to_fs(out_dir)
    root = root.rstrip("/")
    final_dir = f"{root}/{run_id}"
    if fs.exists(final_dir):
        raise FileExistsError(f"run folder already exists: {final_dir}")
    partial_dir = f"{root}/.{run_id}.partial-{uuid.uuid4().hex[:8]}"
    url_of = _url_maker(fs, final_dir)
    try:
        fs.makedirs(f"{partial_dir}/product", exist_ok=True)
        fs.pipe_file(f"{partial_dir}/{CUTOUT_PATH}", encode_image(product.cutout, "png"))
        ordered = sorted(variants, key=lambda v: v.index)
        with ThreadPoolExecutor(max_workers=ENCODE_THREADS) as pool:
            encoded = list(pool.map(lambda v: encode_image(v.image, output.format, quality=output.quality), ordered))
        entries = []
        for variant, data in zip(ordered, encoded, strict=True):
            name = variant_filename(variant, output.format)
            fs.pipe_file(f"{partial_dir}/{name}", data)
            fidelity = (
                product_fidelity(variant.composite, data, variant.product_alpha)
                if variant.composite is not None and variant.product_alpha is not None
                else None
            )
            entries.append(_variant_entry(variant, name, url_of(name), product.stages, fidelity))
        manifest = Manifest(
            run_id=run_id,
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            placewright_version=__version__,
            format=output.format,
            product=ProductEntry(
                source=product.source,
                sha256=product.sha256,
                cutout=CUTOUT_PATH,
                cutout_url=url_of(CUTOUT_PATH),
                analysis=AnalysisEntry(**product.analysis),
            ),
            variants=entries,
        )
        fs.pipe_file(f"{partial_dir}/{MANIFEST_NAME}", manifest_json(manifest).encode())
        fs.mv(partial_dir, final_dir, recursive=True)
    except BaseException:
        if fs.exists(partial_dir):
            fs.rm(partial_dir, recursive=True)
        raise
    return manifest


def manifest_json(manifest: Manifest) -> str:
    return json.dumps(manifest.model_dump(mode="json"), indent=2, ensure_ascii=False) + "\n"


def _variant_entry(
    variant: VariantOutput, name: str, url: str, product_stages: dict[str, StageRecord], fidelity: int | None
) -> VariantEntry:
    height, width = variant.image.shape[:2]
    stages = {**product_stages, **variant.stages}
    return VariantEntry(
        index=variant.index,
        prompt=variant.prompt,
        background=variant.background,
        seed=variant.seed,
        image=name,
        url=url,
        width=int(width),
        height=int(height),
        product_box=variant.product_box.as_list(),
        surface_box=variant.surface_box.as_list() if variant.surface_box else None,
        surface_line_y=variant.surface_line_y,
        product_fidelity=fidelity,
        stages={stage: StageEntry.of(record) for stage, record in stages.items()},
    )


def _url_maker(fs: fsspec.AbstractFileSystem, final_dir: str):
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    if protocol in ("file", "local"):
        from pathlib import Path

        base = Path(final_dir).resolve().as_uri()
        return lambda name: f"{base}/{name}"
    return lambda name: f"{protocol}://{final_dir}/{name}"
