"""The run manifest: what a run produced and how, as written to ``manifest.json``."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from placewright.backends import StageRecord

# Fields that hold URLs (presigned ones change at every signing) and their expiry.
URL_FIELDS = frozenset({"url", "preview_url", "cutout_url", "urls_expire_at"})


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StageEntry(_Model):
    """One stage of one variant: the backend that ran, its time, and any fallback."""

    backend: str
    seconds: float
    fallback_from: str | None = None
    error: str | None = None
    skipped: list[str] = Field(default_factory=list, description="Backends not tried here, and why (no weights...).")

    @classmethod
    def of(cls, record: StageRecord) -> StageEntry:
        return cls(**record.as_dict())


class AnalysisEntry(_Model):
    name: str
    category: str
    size_fraction: float = Field(description="Product height as a fraction of the output height.")
    aspect: float = Field(description="Cut-out height / width.")
    width_cm: float | None = Field(None, description="Estimated real-world width (None: not estimated).")
    height_cm: float | None = Field(None, description="Estimated real-world height (None: not estimated).")
    placement: str | None = Field(None, description="How the product should stand, when the backend says.")
    confidence: float | None = Field(None, description="The backend's confidence, 0..1 (None: not reported).")
    backend: str


class ProductEntry(_Model):
    source: str = Field(description="The product image as given.")
    sha256: str = Field(description="sha256 of the product file's bytes.")
    cutout: str = Field(description="Path of the RGBA cut-out, relative to the run folder.")
    cutout_url: str
    analysis: AnalysisEntry


class VariantEntry(_Model):
    index: int
    prompt: str | None
    background: str | None
    seed: int
    image: str = Field(description="Path of the final image, relative to the run folder.")
    url: str = Field(description="Where to fetch the image: presigned, public (CDN) or file:// URL.")
    preview: str | None = Field(None, description="Path of the smaller preview, relative to the run folder.")
    preview_url: str | None = None
    bytes: int = Field(description="Size of the published image file.")
    sha256: str = Field(description="sha256 of the published image file's bytes.")
    width: int
    height: int
    product_box: list[int] = Field(description="[x0, y0, x1, y1] of the placed product, output pixels.")
    surface_box: list[int] | None
    surface_line_y: int = Field(description="Row the product's base rests on.")
    product_fidelity: int | None = Field(
        None,
        description="Largest pixel difference inside the (eroded) product between the composite and the published "
        "image: 0 = the product's pixels are unchanged (lossless formats); WebP/JPEG show their compression loss.",
    )
    stages: dict[str, StageEntry]


class Manifest(_Model):
    run_id: str
    created_at: str
    placewright_version: str
    format: str
    location: str = Field(description="The run folder: a local path or a storage URL (s3://bucket/prefix/run).")
    urls_expire_at: str | None = Field(None, description="When presigned URLs stop working (None: they do not).")
    product: ProductEntry
    variants: list[VariantEntry]
