"""What a run published, as typed models: ``manifest.json`` per product run, ``campaign.json`` per campaign.

The entries extend the run contract's descriptions: a :class:`VariantEntry` is the
:class:`~placewright.request.Variant` it was made from plus what was published, a
:class:`ProductEntry` the :class:`~placewright.request.Product` plus its cut-out and
:class:`~placewright.analyze.Analysis`. The flows return these models; the files are written from them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from placewright.analyze import Analysis
from placewright.backends import StageRecord
from placewright.quality import QualityReport
from placewright.request import Product, Variant

# Fields that hold URLs (presigned ones change at every signing) and their expiry.
URL_FIELDS = frozenset(
    {"url", "preview_url", "cutout_url", "manifest_url", "contact_sheet_url", "gallery_url", "urls_expire_at"}
)
# A variant's verdict: it passed the quality gate, it failed it and is published for a person to look
# at, or the gate was off.
Verdict = Literal["passed", "needs_review", "unchecked"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProductEntry(Product):
    """The product of a run: the request's product, its cut-out and what analysis made of it."""

    cutout: str = Field(description="Path of the RGBA cut-out, relative to the run folder.")
    cutout_url: str
    analysis: Analysis


class VariantEntry(Variant):
    """One published variant: the request's variant and what was made of it."""

    image: str = Field(description="Path of the final image, relative to the run folder.")
    url: str = Field(description="Where to fetch the image: presigned, public (CDN) or file:// URL.")
    preview: str | None = Field(default=None, description="Path of the smaller preview, relative to the run folder.")
    preview_url: str | None = None
    bytes: int = Field(description="Size of the published image file.")
    sha256: str = Field(description="sha256 of the published image file's bytes.")
    width: int
    height: int
    product_box: list[int] = Field(description="[x0, y0, x1, y1] of the placed product, output pixels.")
    surface_box: list[int] | None
    surface_line_y: int = Field(description="Row the product's base rests on.")
    product_fidelity: int | None = Field(
        default=None,
        description="Largest pixel difference inside the (eroded) product between the composite and the published "
        "image: 0 = the product's pixels are unchanged (lossless formats); WebP/JPEG show their compression loss.",
    )
    stages: dict[str, StageRecord] = Field(
        description="Per stage, in pipeline order: the backend that ran, its seconds, any fallback (from which "
        "backend, and why) and the backends skipped as unavailable here."
    )
    verdict: Verdict = Field(
        default="unchecked", description="passed: every check passed; needs_review: published, a check failed."
    )
    attempts: int = Field(default=1, description="How often the variant was made (a failed check: again, next seed).")
    quality: QualityReport | None = Field(default=None, description="The quality gate's checks (None: gate off).")


class DroppedVariant(Variant):
    """A variant the quality gate left out (``quality.on_failure = "drop"``): why, and after how many attempts."""

    quality: QualityReport
    attempts: int


class Manifest(_Model):
    """``manifest.json``: one product's run."""

    run_id: str
    created_at: str
    placewright_version: str
    format: str
    location: str = Field(description="The run folder: a local path or a storage URL (s3://bucket/prefix/run).")
    urls_expire_at: str | None = Field(
        default=None, description="When presigned URLs stop working (None: they do not)."
    )
    product: ProductEntry
    variants: list[VariantEntry]
    dropped: list[DroppedVariant] = Field(
        default_factory=list, description="Variants made but left out by the quality gate (on_failure: drop)."
    )
    contact_sheet: str | None = Field(
        default=None, description="Every variant on one image with its scene, seed, backends and verdict."
    )
    contact_sheet_url: str | None = None
    gallery: str | None = Field(default=None, description="index.html showing the run, with relative links.")
    gallery_url: str | None = None


class VariantOutcome(Variant):
    """What became of one variant of a campaign: published (image, URL) or failed (why)."""

    status: Literal["published", "failed", "dropped"]
    verdict: Verdict | None = Field(default=None, description="The quality gate's verdict on a published variant.")
    image: str | None = None
    url: str | None = None
    preview_url: str | None = None
    error: str | None = Field(
        default=None, description="'<stage>: <reason>' of a failed variant; the failed checks of a dropped one."
    )


class ProductOutcome(_Model):
    """What became of one product of a campaign."""

    name: str
    source: str
    status: Literal["published", "incomplete", "failed"]
    error: str | None = Field(default=None, description="Why the product itself failed (no variant was made).")
    manifest: str | None = Field(default=None, description="Its manifest.json, relative to the campaign run folder.")
    manifest_url: str | None = None
    variants: list[VariantOutcome]


class CampaignSummary(_Model):
    """``campaign.json``: every product of a campaign run and what became of each variant."""

    campaign: str
    run_id: str
    created_at: str
    location: str
    status: Literal["completed", "incomplete"]
    variants: int
    published_variants: int
    failed_variants: int = Field(description="Variants not published: failed, or left out by the quality gate.")
    needs_review: int = Field(default=0, description="Published variants that failed a quality check.")
    dropped_variants: int = Field(default=0, description="Variants the quality gate left out (on_failure: drop).")
    products: list[ProductOutcome]
    contact_sheet: str | None = Field(default=None, description="Every variant of the campaign on one image.")
    contact_sheet_url: str | None = None
    gallery: str | None = Field(default=None, description="index.html of the campaign run, with relative links.")
    gallery_url: str | None = None


def to_json(model: BaseModel) -> str:
    """The model as the JSON file it is published as (indented, UTF-8 kept, trailing newline)."""
    return model.model_dump_json(indent=2) + "\n"
