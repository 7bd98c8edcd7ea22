"""One typed settings object for the whole project.

Every value has a default. Values come, highest priority first, from: arguments given
in code, ``PLACEWRIGHT_*`` environment variables (nested sections with ``__``, e.g.
``PLACEWRIGHT_COMPOSITE__SHADOW_OPACITY=0.25``), a TOML file named by
``PLACEWRIGHT_CONFIG_FILE`` (or ``placewright.toml`` in the working directory), and
the defaults below. Unknown keys are refused (a typo surfaces instead of being ignored).
Settings are built at the edges (CLI, flow entry) and passed down as typed sections: core
functions never read the environment.
"""

from __future__ import annotations

import os
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from placewright.errors import InvalidInput
from placewright.request import OutputSize, SurfacePhrase
from placewright.types import OutputFormat, Size, UrlMode
from placewright.url_guard import normalise_allowlist_entry
from placewright.validation import describe, one_line


class Section(BaseModel):
    """Base for settings sections: immutable, unknown keys rejected (typos surface)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class ModelSpec(Section):
    """Where one AI backend finds its weights, and where it runs.

    ``model`` is a Hugging Face repo id (looked up in the local HF cache only: nothing is
    downloaded at run time), a local folder, or a weights file: absolute, or relative to
    ``models_dir`` (which :class:`Settings` fills in from its own ``models_dir``).
    """

    model: str = Field(description="HF repo id, local folder, or weights file (absolute or in models_dir).")
    device: Literal["auto", "cpu", "cuda", "mps"] = Field("auto", description="auto: cuda, then mps, then cpu.")
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = Field(
        "auto", description="auto: float16 on cuda, float32 elsewhere."
    )
    models_dir: Path | None = Field(None, description="Where relative weight files are looked for.")


class DiffusionMemorySettings(Section):
    """Memory options for diffusion pipelines on small GPUs."""

    cpu_offload: bool = Field(False, description="Keep idle sub-models on the CPU (CUDA only): less VRAM, slower.")
    vae_tiling: bool = Field(False, description="Decode large images in tiles.")
    attention_slicing: bool = Field(False, description="Compute attention in slices: less memory, slower.")
    safety_checker: bool = Field(False, description="Keep an SD pipeline's NSFW safety checker if it has one.")


class LimitsSettings(Section):
    """What input images are accepted, and where product URLs may be fetched from."""

    max_pixels: int = Field(64_000_000, gt=0, description="Refuse images with more pixels (decompression bombs).")
    min_side: int = Field(32, gt=0, description="Refuse images whose shorter side is smaller than this.")
    max_file_bytes: int = Field(200 * 1024 * 1024, gt=0, description="Refuse files larger than this.")
    download_timeout_s: float = Field(60.0, gt=0, le=3600, description="Time limit of fetching a product URL.")
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="URLs fetched for a user (product URLs) may only reach public addresses; these host names "
        '(exact), IP addresses or CIDR networks are allowed too, e.g. ["minio.internal", "10.0.0.0/8"].',
    )

    @field_validator("allowed_hosts")
    @classmethod
    def _host_entries(cls, value: list[str]) -> list[str]:
        return [normalise_allowlist_entry(entry) for entry in value]


class AccessSettings(Section):
    """What a run that arrives from outside (the Prefect UI, a deployment, the HTTP service) may read and write.

    The CLI reads and writes where its user says. A flow run of a deployment, a campaign filled in a
    form and a job of the HTTP service are someone else's request: their local paths and non-http
    URLs (``file://``, ``s3://``, any fsspec URL) must lie under an input root, and their ``out``
    under an output root. http(s) URLs go through the URL guard (public addresses only) instead.
    """

    input_roots: list[str] = Field(
        default_factory=lambda: ["."],
        description="Folders or storage URL prefixes that remote runs may read products, backgrounds and "
        "campaign files from. Default: the worker's working directory (the checkout: examples/ works).",
    )
    output_roots: list[str] = Field(
        default_factory=list,
        description="Folders or storage URL prefixes that remote runs may publish to. Empty: out_dir only.",
    )


class OcrSettings(Section):
    """Offline text reading (PP-OCRv4 ONNX models run by onnxruntime): the enhance stage's label guard."""

    model: ModelSpec = Field(
        ModelSpec(model="pp-ocrv4"),
        description="A folder holding det.onnx and rec.onnx (PP-OCRv4; `placewright models pull pp-ocrv4`), "
        "absolute or in models_dir. device picks the onnxruntime provider (auto: CUDA when it has it).",
    )
    text_height: int = Field(
        32,
        ge=12,
        le=128,
        description="Texts are compared at this median text-box height (pixels): OCR is scale-sensitive.",
    )
    det_max_side: int = Field(1280, ge=64, le=4096, description="Detection runs at most at this long side.")
    det_thresh: float = Field(0.3, gt=0, lt=1, description="DB detection: text-probability threshold of a pixel.")
    box_thresh: float = Field(0.5, gt=0, lt=1, description="DB detection: mean probability a text box must reach.")
    unclip_ratio: float = Field(
        1.6, gt=0, le=4, description="DB detection: growth of a text box (area * ratio / perimeter)."
    )
    min_score: float = Field(
        0.8, ge=0, le=1, description="A line is legible (a label line) when recognised above this."
    )
    min_chars: int = Field(2, ge=1, description="A label line has at least this many characters (spaces not counted).")
    threads: int = Field(0, ge=0, le=64, description="onnxruntime intra-op threads (0: onnxruntime's default).")


class EnhanceSettings(Section):
    """Upscaling and sharpening of the product photo."""

    backend: str = "auto"
    target_long_side: int = Field(1024, ge=64, description="Upscale products whose long side is below this.")
    max_scale: float = Field(4.0, ge=1.0, description="Never upscale by more than this factor.")
    sharpen_radius: float = Field(1.0, gt=0, description="Unsharp-mask Gaussian sigma, in output pixels.")
    sharpen_amount: float = Field(0.6, ge=0, description="Unsharp-mask strength (0 = off).")
    sharpen_threshold: int = Field(2, ge=0, description="Differences below this (0-255) are not sharpened.")
    overshoot_limit: float = Field(
        2.0, ge=0, le=64, description="Sharpening may exceed the local 3x3 min/max by at most this (0-255)."
    )
    sharpen_radius_per_scale: float = Field(
        0.4, ge=0, le=4, description="Added to sharpen_radius per unit of upscale beyond 1 (wider blur, wider mask)."
    )
    upscaler: ModelSpec = Field(
        ModelSpec(model="realesrgan-x4plus.safetensors"),
        description="Super-resolution checkpoint (.pth/.safetensors) for the spandrel backend; the default is "
        "what `placewright models pull realesrgan-x4plus` writes.",
    )
    tile_size: int = Field(
        256,
        ge=0,
        description="spandrel: tile cores of this side, each fed with tile_overlap context per side; "
        "an axis that fits in tile_size + 2*tile_overlap is not split; 0 = whole image.",
    )
    tile_overlap: int = Field(
        64,
        ge=0,
        le=256,
        description="spandrel: context pixels fed around each tile; neighbours cross-fade linearly over its "
        "inner half, the outer half is dropped (64: tiled within 1-2 levels of untiled for Real-ESRGAN x4plus).",
    )
    label_guard: bool = Field(
        True,
        description="Keep label text from the source where the upscaled image reads differently (needs OCR models).",
    )
    label_max_cer: float = Field(
        0.1, ge=0, le=1, description="Label guard: largest character error rate of the result against the source."
    )
    label_margin: float = Field(
        0.3,
        ge=0,
        le=2,
        description="Label guard: text boxes grow by this fraction of the text height before protecting.",
    )
    ocr: OcrSettings = Field(OcrSettings(), description="Label guard: the OCR models and their thresholds.")


class CutoutSettings(Section):
    """Background removal."""

    backend: str = "auto"
    box_fraction: float = Field(0.95, gt=0.5, le=1.0, description="Seed box covering this much of the image.")
    work_side: int = Field(512, ge=128, description="GrabCut runs at this long side, then the mask is upsampled.")
    iterations: int = Field(5, ge=1, description="GrabCut iterations.")
    edge_softness_px: float = Field(1.5, ge=0, description="Width of the soft alpha edge, in pixels.")
    min_product_fraction: float = Field(0.005, gt=0, description="Refuse cut-outs smaller than this share.")
    grabcut_max_pixels: int = Field(
        40_000, ge=4096, description="GrabCut's region is shrunk to at most this many pixels (speed)."
    )
    backdrop_tolerance: float = Field(
        3.5, gt=0, description="Pixels this many noise RMS away from the backdrop model are product candidates."
    )
    remove_shadows: bool = Field(True, description="Treat darker copies of the backdrop (cast shadows) as backdrop.")
    rembg: ModelSpec = Field(
        ModelSpec(model="u2net"),
        description="rembg backend: a rembg session name (u2net, isnet-general-use, birefnet-general, ...) whose "
        "<name>.onnx lies in <models_dir>/rembg/, or a .onnx file (a rembg session name as its stem, else run "
        "as rembg's u2net_custom: 1x3x320x320 in, 1x1x320x320 out).",
    )
    u2net: ModelSpec = Field(
        ModelSpec(model="u2netp"),
        description="u2net backend (plain onnxruntime, no rembg): a U2-Net-family model name whose <name>.onnx "
        "lies in <models_dir>/rembg/ (`placewright models pull u2netp` fetches the default), or a .onnx file "
        "(1x3x320x320 in, 1x1x320x320 out, rembg's U2-Net normalisation).",
    )
    alpha_matting: bool = Field(False, description="rembg backend: refine the edge with rembg's alpha matting.")
    alpha_matting_foreground_threshold: int = Field(
        240, ge=0, le=255, description="Alpha matting: model mask levels above this are sure product."
    )
    alpha_matting_background_threshold: int = Field(
        10, ge=0, le=255, description="Alpha matting: model mask levels below this are sure backdrop."
    )
    alpha_matting_erode_size: int = Field(
        10, ge=0, le=100, description="Alpha matting: sure regions are eroded by this many pixels."
    )
    sam: ModelSpec = Field(
        ModelSpec(model="facebook/sam-vit-large"),
        description="SAM backend: a transformers SamModel + SamProcessor (HF repo id in the local cache, or a folder).",
    )


class A1111Settings(Section):
    """An AUTOMATIC1111 (stable-diffusion-webui, started with ``--api``) server: scene and harmonize backends."""

    base_url: str | None = Field(
        None, description="Server root, e.g. http://127.0.0.1:7860 (None: the a1111 backend is unavailable)."
    )
    username: str | None = Field(None, description="Basic-auth user (the server's --api-auth user:password).")
    password: SecretStr | None = Field(None, description="Basic-auth password.")
    timeout_seconds: float = Field(180.0, gt=0, le=3600, description="Limit per request (generation included).")
    sampler: str = Field("DPM++ 2M", min_length=1, description="sampler_name sent with every request.")
    steps: int = Field(25, ge=1, le=150, description="Sampling steps.")
    cfg_scale: float = Field(7.0, ge=1, le=30, description="Classifier-free guidance scale.")
    negative_prompt: str = Field(
        "text, watermark, logo, people, blurry, lowres, distorted, oversaturated",
        description="Negative prompt sent with every request.",
    )
    mask_blur: int = Field(8, ge=0, le=64, description="img2img: blur (pixels) of the kept product mask's edge.")


class SceneSettings(Section):
    """Background scenes."""

    backend: str = "auto"
    default_prompt: str = "a product on a wooden table in a bright, softly lit studio"
    work_side: int = Field(
        512, ge=64, le=4096, description="Procedural scenes are drawn at this long side, then upscaled."
    )
    horizon_range: tuple[float, float] = Field(
        (0.55, 0.62), description="Row range (fractions of the height) of the tabletop's back edge."
    )
    surface_depth: float = Field(
        0.40, gt=0, lt=1, description="Base line: this share of the tabletop depth in front of its back edge."
    )
    light_strength: float = Field(1.0, ge=0, le=2, description="Key light pool strength (0 = flat light).")
    texture_strength: float = Field(1.0, ge=0, le=2, description="Grain / vein contrast (0 = plain).")
    grain: float = Field(1.2, ge=0, le=8, description="Luminance grain (std, 0-255 levels) against banding.")
    diffusion: ModelSpec = Field(
        ModelSpec(model="black-forest-labs/FLUX.1-schnell"),
        description="diffusers backend: a text-to-image pipeline folder (model_index.json; Flux, SDXL, SD 1.5/2.x) "
        "or an HF repo id in the local cache.",
    )
    memory: DiffusionMemorySettings = Field(
        DiffusionMemorySettings(), description="diffusers backend: memory options (offload, VAE tiling, slicing)."
    )
    steps: int | None = Field(None, ge=1, le=200, description="diffusers: denoising steps (None: the family's).")
    guidance: float | None = Field(None, ge=0, le=30, description="diffusers: guidance scale (None: the family's).")
    negative_prompt: str = Field(
        "text, watermark, logo, people, hands, clutter, blurry, lowres, deformed",
        description="diffusers: negative prompt, used by pipelines with classifier-free guidance (SD, SDXL).",
    )
    scheduler: str | None = Field(
        None, description="diffusers: a scheduler class name (e.g. DPMSolverMultistepScheduler); None: the model's."
    )
    prompt_template: str = Field(
        "{prompt}, an empty {surface} in the foreground with nothing on it, product photography, photorealistic, "
        "soft natural light, high detail",
        description="diffusers and a1111: the text sent; {prompt} is the scene prompt, {surface} the run's surface.",
    )
    native_side: int = Field(
        0, ge=0, le=4096, description="diffusers: generate at about this side squared pixels (0: the model's own)."
    )
    a1111: A1111Settings = A1111Settings()


class AnalyzeSettings(Section):
    """Product identity and recommended size."""

    backend: str = "auto"
    size_scale: float = Field(1.0, gt=0, description="Multiplies every recommended size fraction.")
    max_width_fraction: float = Field(
        0.55, gt=0, le=1, description="Wide products are made smaller so their width stays within this."
    )
    llm_model: str = Field("gpt-4o-mini", min_length=1, description="openai-vision: the vision chat model.")
    llm_base_url: str | None = Field(
        None, description="openai-vision: an OpenAI-compatible /v1 URL; None: OPENAI_BASE_URL, else OpenAI."
    )
    llm_api_key: SecretStr | None = Field(
        None, description="openai-vision: the API key; None: OPENAI_API_KEY (any dummy for keyless local servers)."
    )
    llm_timeout_seconds: float = Field(30.0, gt=0, le=600, description="openai-vision: limit per request.")
    llm_max_retries: int = Field(
        0, ge=0, le=10, description="openai-vision: the client's own quick retries; 0 leaves them to the orchestrator."
    )
    llm_image_side: int = Field(
        512, ge=64, le=2048, description="openai-vision: the cut-out is sent downscaled to this long side at most."
    )


class LocateSettings(Section):
    """Finding the placement surface."""

    backend: str = "auto"
    band: tuple[float, float] = Field(
        (0.62, 0.74), description="Fallback band (fractions of the height) the base line is put in."
    )
    search_rows: tuple[float, float] = Field(
        (0.35, 0.90), description="Rows (fractions of the height) searched for a horizontal surface edge."
    )
    work_width: int = Field(384, ge=64, le=4096, description="Edge search runs at this width.")
    line_offset: float = Field(
        0.35, ge=0, lt=1, description="Base line: this fraction of the way from the found edge to the bottom."
    )
    min_contrast: float = Field(
        2.5, gt=0, description="Weakest edge accepted: mean step across the edge, in 0-255 grey levels."
    )
    min_confidence: float = Field(
        0.3, ge=0, le=1, description="Weakest lead of the best edge over the next best (0..1) accepted."
    )
    min_span: float = Field(0.5, gt=0, le=1, description="An edge must span at least this fraction of the width.")
    detector: ModelSpec = Field(
        ModelSpec(model="IDEA-Research/grounding-dino-tiny"),
        description="GroundingDINO checkpoint (transformers format) of the grounding-dino backend.",
    )
    box_threshold: float = Field(
        0.25, ge=0, le=1, description="grounding-dino: a surface box must score above this (0..1)."
    )
    text_threshold: float = Field(
        0.2, ge=0, le=1, description="grounding-dino: a word of the query must match the box above this (0..1)."
    )
    min_flatness: float = Field(
        1.5, ge=0, le=20, description="grounding-dino: boxes with width/height below this are ranked down and cut."
    )


class CompositeSettings(Section):
    """Placing the product in the scene."""

    shadow_opacity: float = Field(0.30, ge=0, le=1, description="Drop-shadow opacity.")
    contact_opacity: float = Field(0.55, ge=0, le=1, description="Contact-shadow opacity at the base.")
    color_match: float = Field(0.25, ge=0, le=1, description="How far product colour moves toward the scene.")
    max_gain: float = Field(0.12, ge=0, le=1, description="Bound on any brightness/colour gain change.")
    feather_px: float = Field(1.0, ge=0, description="Edge feathering of the product alpha, in pixels.")
    backend: str = "auto"
    max_width_fraction: float = Field(0.6, gt=0, le=1, description="The product is never wider than this.")
    margin_fraction: float = Field(
        0.03, ge=0, le=0.2, description="Smallest gap between the product and the frame's top/sides."
    )
    shadow_length: float = Field(
        0.35, ge=0, le=2, description="Drop-shadow reach behind the base, as a fraction of product height."
    )
    shadow_skew: float = Field(
        0.45, ge=-2, le=2, description="Drop-shadow shift to the right per unit height (light from the left)."
    )
    shadow_softness: float = Field(
        0.06, ge=0, le=0.5, description="Drop-shadow blur (sigma) far from the base, as a fraction of height."
    )
    real_size_min: float = Field(
        0.5, gt=0, le=1, description="A real-size height is kept at least this multiple of the size-fraction height."
    )
    real_size_max: float = Field(
        1.5, ge=1, le=4, description="A real-size height is kept at most this multiple of the size-fraction height."
    )


class HarmonizeSettings(Section):
    """Relighting around the product (product pixels never change)."""

    backend: str = "auto"
    strength: float = Field(0.35, ge=0, le=1, description="Blend strength (denoise for diffusion backends).")
    ring_px: int = Field(24, ge=0, description="Width of the band around the product that is relit.")
    spill: float = Field(
        0.25, ge=0, le=1, description="Colour bounce of the product onto its surroundings at strength 1."
    )
    max_change: float = Field(
        0.12, ge=0, le=1, description="Bound on the relative change of any ring pixel at strength 1."
    )
    inpaint: ModelSpec = Field(
        ModelSpec(model="diffusers/stable-diffusion-xl-1.0-inpainting-0.1"),
        description="diffusers-inpaint: an SD/SDXL inpainting, Flux.1 Fill or Flux pipeline folder (model_index.json).",
    )
    memory: DiffusionMemorySettings = DiffusionMemorySettings()
    prompt: str = Field(
        "soft natural light falling on the surface around the object, realistic contact shadow and reflection, "
        "photorealistic product photograph",
        min_length=1,
        description="diffusers-inpaint and a1111: the relit surroundings, sent after the variant's scene prompt.",
    )
    steps: int = Field(
        12, ge=1, le=100, description="diffusers-inpaint: denoising steps run (the pipeline gets steps / strength)."
    )
    guidance: float | None = Field(
        None, ge=0, le=100, description="diffusers-inpaint: guidance scale; None: SD/SDXL 7.5, Flux Fill 30, Flux 3.5."
    )
    work_side: int = Field(
        0, ge=0, le=4096, description="diffusers-inpaint: long side of the processed crop; 0: SD 512, SDXL/Flux 1024."
    )
    a1111: A1111Settings = A1111Settings()


class OutputSettings(Section):
    """Final images."""

    format: OutputFormat = "webp"
    quality: int = Field(90, ge=1, le=100, description="WebP/JPEG quality of the full-size images.")
    size: OutputSize = Field(Size(1024, 1024), description="Default output size (WIDTHxHEIGHT text or width/height).")
    preview_side: int = Field(
        512, ge=0, le=2048, description="Long side of the preview published next to each image; 0: no preview."
    )
    preview_quality: int = Field(80, ge=1, le=100, description="WebP/JPEG quality of the previews.")
    srgb_profile: bool = Field(True, description="Embed an sRGB ICC profile so browsers show the colours as made.")


class StorageSettings(Section):
    """Object storage: where published runs, intermediates and Prefect results live, and their URLs.

    ``s3://`` locations use the standard AWS environment (AWS_ACCESS_KEY_ID, AWS_PROFILE,
    AWS_ENDPOINT_URL, ~/.aws) unless ``endpoint_url``/``profile`` say otherwise.
    """

    endpoint_url: str | None = Field(
        None, description="S3-compatible endpoint (MinIO, R2, Ceph...); None: AWS_ENDPOINT_URL or AWS itself."
    )
    profile: str | None = Field(None, description="AWS profile for s3:// locations; None: AWS_PROFILE / default.")
    options: dict[str, Any] = Field(
        default_factory=dict, description="Extra fsspec storage options for every location (e.g. gcsfs project)."
    )
    urls: UrlMode = Field(
        "auto",
        description="URLs in the manifest. auto: public if public_base_url is set, else presigned on object "
        "stores, else file:// URLs. plain: the storage URL (s3://...).",
    )
    public_base_url: str | None = Field(
        None, description="Bucket website or CDN URL that serves the --out location's root (public URLs)."
    )
    public_root: str | None = Field(
        None,
        description="The folder or storage URL that public_base_url serves, when it is not the --out location "
        "itself (a CDN in front of a whole bucket, the service's /files): URLs are made relative to it.",
    )
    presign_expiry_s: int = Field(
        7 * 24 * 3600, ge=1, le=7 * 24 * 3600, description="Lifetime of presigned URLs (S3 allows at most 7 days)."
    )
    image_cache_control: str = Field(
        "public, max-age=31536000, immutable",
        description="Cache-Control of published images (a run's objects never change once written).",
    )
    manifest_cache_control: str = Field("no-cache", description="Cache-Control of manifest.json.")
    intermediates: str | None = Field(
        None,
        description="Where intermediate images go (path or fsspec URL). None: <cache_dir>/blobs for a local "
        "--out, <out>/.placewright/blobs for a remote one, so every worker that can reach it finds them.",
    )
    results: str | None = Field(
        None,
        description="Prefect result storage of cached stages (path or fsspec URL). None: <Prefect's local storage>/"
        "placewright for a local --out, <out>/.placewright/results for a remote one, so a retry on any machine "
        "reuses them. Results are JSON data; a record written any other way is refused.",
    )

    @field_validator("public_base_url")
    @classmethod
    def _http_base(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"public_base_url must be an http(s) URL, got {value!r}")
        return value


class ServiceSettings(Section):
    """``placewright serve``: the HTTP job service, its workers and its webhooks."""

    host: str = Field("127.0.0.1", min_length=1, description="Address the service listens on.")
    port: int = Field(8000, ge=0, le=65535, description="Port the service listens on (0: any free port).")
    public_url: str | None = Field(
        None,
        description="The service's URL as clients and browsers reach it (links in answers, published file "
        "URLs). None: http://<host>:<port>.",
    )
    state_dir: Path = Field(
        default_factory=lambda: Path(".placewright-service"),
        description="The service's own records: API keys (hashed), jobs, idempotency keys, the webhook outbox.",
    )
    out: str | None = Field(
        None,
        description="Where jobs publish (a folder or storage URL); each key gets its own folder under it. "
        "None: out_dir. A local folder is served read-only at /files.",
    )
    uploads: str | None = Field(
        None,
        description="Where uploaded product and background images are kept (a folder, or a storage URL that "
        "workers on other machines can read). None: <state_dir>/uploads.",
    )
    deployment: str = Field(
        "service", min_length=1, description="Name of the place-product deployment whose flow runs are jobs."
    )
    workers: int = Field(2, ge=0, le=64, description="Warm worker processes the service starts (0: none here).")
    poll_interval_s: float = Field(0.2, gt=0, le=60, description="How often idle workers and the reconciler look.")
    shutdown_grace_s: float = Field(
        30.0, ge=0, le=3600, description="On shutdown, running jobs get this long; the rest resume on restart."
    )
    max_body_bytes: int = Field(
        25 * 1024 * 1024, gt=0, description="Largest request body (a multipart upload included): 413 above it."
    )
    max_pixels: int = Field(40_000_000, gt=0, description="Largest uploaded image, in pixels: 413 above it.")
    max_variants: int = Field(16, ge=1, le=64, description="Most variants (prompts + backgrounds) per job.")
    rate_per_minute: int = Field(120, ge=1, description="Requests per minute per API key: 429 above it.")
    max_active_jobs: int = Field(
        64, ge=1, description="Most queued and running jobs per API key: 429 with Retry-After above it."
    )
    max_wait_s: float = Field(60.0, ge=0, le=600, description="The longest Prefer: wait=N a request may ask for.")
    create_wait_s: float = Field(
        2.0,
        ge=0,
        le=60,
        description="A new job's answer waits this long for its Prefect flow run. Runs are created one at a time "
        "(Prefect's SQLite database takes one writer at a time); in a burst, later jobs answer queued by then and "
        "their runs follow one by one.",
    )
    legacy_key: str | None = Field(
        None,
        description="The prototype's routes (/image/...) carry no API key: requests without one act as this key "
        "(its name). None: those routes need a key like /v1.",
    )
    webhook_timeout_s: float = Field(15.0, gt=0, le=120, description="Time limit of one webhook delivery attempt.")
    webhook_schedule_s: list[float] = Field(
        default_factory=lambda: [0, 5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400],
        min_length=1,
        description="Delay before each delivery attempt of an event (Standard Webhooks' schedule); after the "
        "last failed attempt the event is given up.",
    )
    webhook_jitter: float = Field(0.1, ge=0, le=1, description="Random share added to each retry's delay.")


class RetrySettings(Section):
    """Retries of transient failures (timeouts, HTTP 5xx) before a stage falls back."""

    retries: int = Field(2, ge=0)
    delay_seconds: list[float] = Field(default_factory=lambda: [1.0, 4.0])


class RunnerSettings(Section):
    """Where a flow's tasks run: threads in the flow's process (default), a Dask or a Ray cluster."""

    kind: Literal["threads", "dask", "ray"] = Field(
        "threads", description="threads: a thread pool in the flow run's process; dask/ray: that engine's workers."
    )
    threads: int = Field(4, ge=1, le=64, description="threads: parallel tasks (OpenCV/NumPy release the GIL).")
    address: str | None = Field(
        None,
        description="dask: an existing scheduler (tcp://host:8786); ray: an existing cluster (ray://host:10001). "
        "None: a local cluster started for each flow run.",
    )
    workers: int = Field(2, ge=1, le=256, description="Worker processes of a local Dask cluster.")
    threads_per_worker: int = Field(1, ge=1, le=64, description="Threads per worker of a local Dask cluster.")


class QualitySettings(Section):
    """The quality gate: checks on every variant, their limits, and what a failure does.

    Each check gives a score and passes when the score is within its limit (see
    :mod:`placewright.quality`). A variant that fails a check is made again with the next seed, up
    to ``retries`` times; if it still fails, ``on_failure`` decides: publish it flagged
    ``needs_review``, or leave it out (recorded in the manifest either way).
    """

    enabled: bool = Field(True, description="Run the checks on every variant (off: no scores, nothing flagged).")
    skip: list[str] = Field(
        default_factory=list,
        description="Checks not run: any of fidelity, cutout, placement, label, shadow, exposure.",
    )
    retries: int = Field(1, ge=0, le=5, description="Make a failing variant again with the next seed this many times.")
    on_failure: Literal["flag", "drop"] = Field(
        "flag", description="After the retries: flag (publish it marked needs_review) or drop (do not publish it)."
    )
    fidelity_max_levels: float = Field(
        4.0, ge=0, le=255, description="fidelity: product pixels may differ from the composite's by this (0-255)."
    )
    cutout_max_missing: float = Field(
        0.01, ge=0, le=1, description="cutout: the largest product part missing from the mask, as a share of it."
    )
    cutout_max_halo_px: float = Field(
        1.5, ge=0, le=100, description="cutout: average width (px) of backdrop-coloured band kept around the edge."
    )
    placement_max_offset: float = Field(
        0.02, ge=0, le=1, description="placement: the base may sit this far (share of the height) off the surface line."
    )
    placement_size_range: tuple[float, float] = Field(
        (0.35, 1.6), description="placement: product height / the analysis's recommended height must lie in this."
    )
    label_max_cer: float = Field(
        0.1, ge=0, le=1, description="label: character error rate of the final image's label against the source's."
    )
    shadow_min_darkening: float = Field(
        0.03, ge=0, le=1, description="shadow: the surface under the product must be darker than the scene by this."
    )
    exposure_max_clipped: float = Field(
        0.05, ge=0, le=1, description="exposure: share of pixels blown out (all channels >= 253) or crushed (<= 2)."
    )

    @field_validator("skip")
    @classmethod
    def _known_checks(cls, value: list[str]) -> list[str]:
        known = ("fidelity", "cutout", "placement", "label", "shadow", "exposure")
        unknown = [name for name in value if name not in known]
        if unknown:
            raise ValueError(f"unknown check {unknown[0]!r}; choose from: {', '.join(known)}")
        return value

    @field_validator("placement_size_range")
    @classmethod
    def _ordered(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not 0 < value[0] <= value[1]:
            raise ValueError(f"placement_size_range must be 0 < low <= high, got {value}")
        return value


class FaultSettings(Section):
    """Fault injection for drills and tests: make one stage fail on purpose. Off by default."""

    fail_stage: str | None = Field(None, description="The stage whose task raises an error (ingest, ..., publish).")
    while_file_exists: str | None = Field(
        None, description="Fail only while this file exists (delete it, then retry the run); None: always."
    )

    @field_validator("fail_stage")
    @classmethod
    def _known_stage(cls, value: str | None) -> str | None:
        from placewright.stages import task_names  # the stage table imports every stage (and these settings)

        if value is not None and value not in task_names():
            raise ValueError(f"unknown stage {value!r}; choose one of: {', '.join(task_names())}")
        return value


def _default_models_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "placewright" / "models"


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "placewright"


def _fill_specs(section: BaseModel, models_dir: Path) -> BaseModel:
    """``section`` with ``models_dir`` given to every ModelSpec in it (nested sections included) that has none."""
    updates: dict[str, Any] = {}
    for name in type(section).model_fields:
        value = getattr(section, name)
        if isinstance(value, ModelSpec):
            if value.models_dir is None:
                updates[name] = value.model_copy(update={"models_dir": models_dir})
        elif isinstance(value, BaseModel) and (filled := _fill_specs(value, models_dir)) is not value:
            updates[name] = filled
    return section.model_copy(update=updates) if updates else section


class Settings(BaseSettings):
    """All of Placewright's configuration."""

    model_config = SettingsConfigDict(
        env_prefix="PLACEWRIGHT_",
        env_nested_delimiter="__",
        # PLACEWRIGHT_ENHANCE__UPSCALER__DEVICE=cuda changes that one field, keeping the default model.
        nested_model_default_partial_update=True,
        env_ignore_empty=True,
        extra="forbid",  # a key the file misspells is an error, not silently ignored
        frozen=True,
    )

    out_dir: str = Field("placewright-out", description="Where run folders go (local path or fsspec URL).")
    cache_dir: Path = Field(default_factory=_default_cache_dir, description="Intermediate images.")
    models_dir: Path = Field(default_factory=_default_models_dir, description="Weight files of AI backends.")
    seed: int = Field(0, ge=0, description="Base seed; variant i uses seed + i.")
    surface: SurfacePhrase = Field(
        "table", description="What products stand on unless a run says: the scene prompt's, locate's and composite's."
    )
    cache_max_bytes: int = Field(
        2 * 1024**3,
        ge=0,
        description="Bound of a local intermediate-image store (<cache_dir>/blobs): after each run, when it holds "
        "more, the least recently used images are removed down to 80% of it (a removed image is recomputed when "
        "needed). 0: no bound. Remote stores (s3://) are not evicted: bound them with a bucket lifecycle rule.",
    )
    cache_memory_bytes: int = Field(
        128 * 1024**2,
        ge=0,
        description="Intermediate images each process keeps in memory after writing or reading them, so the "
        "next stage gets them without reading and hashing the file again (the files are still written). Images "
        "larger than a quarter of it always go through the store. 0: none.",
    )
    cache_compression: int = Field(
        0,
        ge=0,
        le=9,
        description="zlib level of new intermediate images (lossless). 0: raw pixels, fastest. 1: ~2.8x smaller "
        "RGB images, ~8x smaller cut-outs and masks, but ~25 ms more per 1024x1024 RGB write and ~10 ms per read "
        "(a computed 8-variant run: ~1.2 CPU-s more). Blobs of either kind are read.",
    )
    reuse_identical_runs: bool = Field(
        True,
        description="A run identical to an earlier one (same product, scenes, options, settings and code) copies "
        "that run's published files instead of running its stages; --refresh always runs them.",
    )
    limits: LimitsSettings = LimitsSettings()
    enhance: EnhanceSettings = EnhanceSettings()
    cutout: CutoutSettings = CutoutSettings()
    scene: SceneSettings = SceneSettings()
    analyze: AnalyzeSettings = AnalyzeSettings()
    locate: LocateSettings = LocateSettings()
    composite: CompositeSettings = CompositeSettings()
    harmonize: HarmonizeSettings = HarmonizeSettings()
    output: OutputSettings = OutputSettings()
    storage: StorageSettings = StorageSettings()
    retry: RetrySettings = RetrySettings()
    runner: RunnerSettings = RunnerSettings()
    quality: QualitySettings = QualitySettings()
    faults: FaultSettings = FaultSettings()
    access: AccessSettings = AccessSettings()
    service: ServiceSettings = ServiceSettings()

    @model_validator(mode="after")
    def _fill_models_dir(self) -> Settings:
        """Give every ModelSpec without its own models_dir this settings' models_dir."""
        for section_name in type(self).model_fields:
            section = getattr(self, section_name)
            if not isinstance(section, BaseModel):
                continue
            filled = _fill_specs(section, self.models_dir)
            if filled is not section:
                object.__setattr__(self, section_name, filled)
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        named = os.environ.get("PLACEWRIGHT_CONFIG_FILE")
        if named and not Path(named).is_file():
            raise ValueError(f"PLACEWRIGHT_CONFIG_FILE points at {named!r}, which is not a file")
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=config_file()))


def config_file() -> Path:
    """The TOML file settings are read from: ``$PLACEWRIGHT_CONFIG_FILE``, else ``./placewright.toml``."""
    return Path(os.environ.get("PLACEWRIGHT_CONFIG_FILE") or "placewright.toml")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings of this process (environment and config file read once).

    Raises:
        InvalidInput: one line naming the file or variable and the problem (an unknown or
            misspelled key, a bad value, a TOML syntax error, a missing config file).
    """
    source = f"bad configuration ({config_file()} and PLACEWRIGHT_* variables)"
    try:
        return Settings()
    except ValidationError as exc:
        raise InvalidInput(f"{source}: {describe(exc, Settings)}") from None
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput(f"bad configuration: {config_file()}: TOML syntax error: {one_line(str(exc))}") from None
    except RecursionError:
        raise InvalidInput(f"bad configuration: {config_file()}: nested too deeply") from None
    except ValueError as exc:  # settings_customise_sources: a config file that is not there
        raise InvalidInput(f"bad configuration: {one_line(str(exc))}") from None
