"""Reading user images safely, and encoding outputs.

:func:`load_image` is the one door every user-supplied image goes through: it reads the
file once (hashing it), checks size limits before decoding pixels, honours EXIF
orientation, converts every Pillow mode to 8-bit RGB or RGBA, and raises
:class:`~placewright.errors.InvalidInput` with a one-line reason for anything unusable.
"""

from __future__ import annotations

import functools
import hashlib
import io
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from placewright.errors import InvalidInput
from placewright.settings import LimitsSettings
from placewright.types import OutputFormat

# Formats accepted as input: what Pillow decodes and a product photo plausibly is.
ACCEPTED_FORMATS = frozenset({"PNG", "JPEG", "MPO", "WEBP", "TIFF", "BMP", "GIF"})
# An alpha channel whose largest value is below this is "fully transparent".
FULLY_TRANSPARENT_MAX_ALPHA = 8
_PIL_FORMAT = {"webp": "WEBP", "jpeg": "JPEG", "png": "PNG"}
CONTENT_TYPES = {"webp": "image/webp", "jpeg": "image/jpeg", "png": "image/png"}
# The creation time written into the embedded sRGB profile (year, month, day, hour, minute, second),
# and where an ICC header keeps it: a constant, so the same pixels always give the same file.
ICC_DATE = (2024, 1, 1, 0, 0, 0)
ICC_DATE_BYTES = slice(24, 36)


@dataclass(frozen=True)
class LoadedImage:
    """A decoded user image.

    Attributes:
        pixels: (H, W, 3) RGB or (H, W, 4) RGBA uint8; RGBA only when the alpha is not all opaque.
        sha256: hex digest of the file's bytes.
        format: Pillow's format name ("PNG", "JPEG", ...).
        source_mode: the Pillow mode the file was stored in ("P", "CMYK", "I;16", ...).
    """

    pixels: np.ndarray
    sha256: str
    format: str
    source_mode: str

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])


def read_bytes(path: str | Path, *, limits: LimitsSettings, what: str = "image", source: str | None = None) -> bytes:
    """Read a user file, refusing what is missing, not a file, empty or too large.

    ``source`` is how messages name the file when it is a download of it (the URL the user gave).
    """
    p = Path(path)
    named = source or p
    if not p.exists():
        raise InvalidInput(f"{what} not found: {named}")
    if not p.is_file():
        raise InvalidInput(f"{what} is not a file: {named}")
    size = p.stat().st_size
    if size == 0:
        raise InvalidInput(f"{what} is empty: {named}")
    if size > limits.max_file_bytes:
        raise InvalidInput(f"{what} is too large: {named} has {size} bytes (limit {limits.max_file_bytes})")
    try:
        return p.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read {what} {named}: {exc.strerror or exc}") from None


def load_image(
    path: str | Path, *, limits: LimitsSettings, what: str = "image", source: str | None = None
) -> LoadedImage:
    """Load and validate one user image from ``path``.

    Args:
        path: a PNG, JPEG, WebP, TIFF, BMP or GIF file (GIF: the first frame).
        limits: pixel and size limits.
        what: how messages name the image ("product image", "background image").
        source: how messages name the file, when ``path`` is a download of it: the URL as given.

    Returns:
        The decoded image, EXIF orientation applied, as 8-bit RGB or RGBA.

    Raises:
        InvalidInput: missing, unreadable, truncated or corrupt files, non-images, unsupported
            formats, images over ``limits.max_pixels`` or under ``limits.min_side``, and images
            whose alpha channel is fully transparent.
    """
    data = read_bytes(path, limits=limits, what=what, source=source)
    return decode_image(data, limits=limits, name=f"{what} {source or path}")


def decode_image(data: bytes, *, limits: LimitsSettings, name: str = "image") -> LoadedImage:
    """Decode image bytes with the checks of :func:`load_image`."""
    sha = hashlib.sha256(data).hexdigest()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            fmt = image.format or "?"
            if fmt not in ACCEPTED_FORMATS:
                raise InvalidInput(f"{name}: unsupported image format {fmt}")
            width, height = image.size
            if width * height > limits.max_pixels:
                raise InvalidInput(
                    f"{name} is too large: {width}x{height} = {width * height} pixels (limit {limits.max_pixels})"
                )
            if min(width, height) < limits.min_side:
                raise InvalidInput(
                    f"{name} is too small: {width}x{height} (each side must be >= {limits.min_side} pixels)"
                )
            image.seek(0)
            image.load()
            source_mode = image.mode
            image = ImageOps.exif_transpose(image)
            pixels = to_rgb_or_rgba(image)
    except InvalidInput:
        raise
    except UnidentifiedImageError:
        raise InvalidInput(f"{name} is not an image (or a format Pillow cannot read)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InvalidInput(f"{name} is too large to decode safely (decompression bomb)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise InvalidInput(f"{name} is truncated or corrupt ({exc})") from None
    if pixels.shape[2] == 4 and int(pixels[..., 3].max()) < FULLY_TRANSPARENT_MAX_ALPHA:
        raise InvalidInput(f"{name} is fully transparent: nothing to place")
    return LoadedImage(pixels=pixels, sha256=sha, format=fmt, source_mode=source_mode)


def to_rgb_or_rgba(image: Image.Image) -> np.ndarray:
    """Convert any Pillow mode to a uint8 (H, W, 3) or, when it carries transparency, (H, W, 4) array.

    16-bit and 32-bit modes are scaled (not clipped) to 8 bits; palette images keep their
    transparency; CMYK and YCbCr go through Pillow's converters. An all-opaque alpha is dropped.
    """
    mode = image.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        values = np.asarray(image, dtype=np.float64)
        scale = 255.0 / 65535.0 if mode != "I" or values.max() > 255 else 1.0
        gray = np.clip(np.rint(values * scale), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if mode == "F":
        values = np.asarray(image, dtype=np.float64)
        peak = values.max()
        scale = 255.0 if peak <= 1.0 else 255.0 / max(peak, 1e-9)
        gray = np.clip(np.rint(values * scale), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    has_alpha = mode in ("RGBA", "LA", "PA", "La", "RGBa") or (
        mode in ("P", "L", "RGB") and "transparency" in image.info
    )
    array = np.asarray(image.convert("RGBA" if has_alpha else "RGB"))
    if has_alpha and int(array[..., 3].min()) == 255:
        array = array[..., :3]
    return np.ascontiguousarray(array)


def encode_image(pixels: np.ndarray, fmt: OutputFormat, *, quality: int = 90, srgb_profile: bool = False) -> bytes:
    """Encode an RGB(A) uint8 array as WebP, JPEG (progressive, optimized) or PNG bytes.

    ``srgb_profile`` embeds a small sRGB ICC profile (588 bytes), which tells colour-managed browsers
    and ad tools the pixels are sRGB; pixel values are unchanged. The bytes are deterministic: the
    same pixels and options give the same file.

    JPEG has no alpha: an RGBA input is refused rather than silently flattened.
    """
    if fmt not in _PIL_FORMAT:
        raise ValueError(f"unknown output format {fmt!r}; choose one of: {', '.join(_PIL_FORMAT)}")
    if fmt == "jpeg" and pixels.shape[2] == 4:
        raise ValueError("JPEG cannot hold an alpha channel: flatten the image first")
    image = Image.fromarray(pixels)
    buffer = io.BytesIO()
    extra = {"icc_profile": srgb_icc_profile()} if srgb_profile else {}
    if fmt == "webp":
        image.save(buffer, "WEBP", quality=quality, method=4, **extra)
    elif fmt == "jpeg":
        image.save(buffer, "JPEG", quality=quality, optimize=True, progressive=True, subsampling="4:2:0", **extra)
    else:
        image.save(buffer, "PNG", compress_level=6, **extra)
    return buffer.getvalue()


@functools.lru_cache(maxsize=1)
def srgb_icc_profile() -> bytes:
    """Little CMS's built-in sRGB profile, serialized, with a fixed creation time.

    Little CMS stamps the profile with the time it is made (header bytes 24-35), which would make
    two runs of the same pixels publish different files; the stamp is set to :data:`ICC_DATE`.
    """
    from PIL import ImageCms

    profile = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    profile[ICC_DATE_BYTES] = struct.pack(">6H", *ICC_DATE)
    return bytes(profile)


def downscale(pixels: np.ndarray, long_side: int) -> np.ndarray:
    """A copy whose long side is at most ``long_side`` (area-averaged; alpha premultiplied so edges stay clean).

    Returns the input unchanged when it is already small enough.
    """
    height, width = pixels.shape[:2]
    scale = long_side / max(height, width)
    if scale >= 1:
        return pixels
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    if pixels.ndim == 3 and pixels.shape[2] == 4:
        alpha = pixels[..., 3:4].astype(np.float32) / 255
        premultiplied = np.concatenate([pixels[..., :3] * alpha, alpha * 255], axis=2)
        small = cv2.resize(premultiplied, size, interpolation=cv2.INTER_AREA)
        a = small[..., 3:4] / 255
        rgb = np.where(a > 0, small[..., :3] / np.maximum(a, 1e-6), 0)
        return np.clip(np.concatenate([rgb, small[..., 3:4]], axis=2) + 0.5, 0, 255).astype(np.uint8)
    return cv2.resize(pixels, size, interpolation=cv2.INTER_AREA)
