"""Loading user images: every format and mode converts correctly; bad files are refused clearly."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from placewright.errors import InvalidInput
from placewright.imageio import decode_image, encode_image, load_image
from placewright.settings import LimitsSettings

LIMITS = LimitsSettings()


def _save(tmp_path: Path, image: Image.Image, name: str, **params) -> Path:
    path = tmp_path / name
    image.save(path, **params)
    return path


def _rgb_pattern(w: int = 64, h: int = 48) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([(x * 4) % 256, (y * 5) % 256, ((x + y) * 2) % 256], axis=2).astype(np.uint8)


@pytest.mark.parametrize(
    ("name", "params", "tolerance"),
    [
        ("a.png", {}, 0),
        ("a.bmp", {}, 0),
        ("a.tiff", {}, 0),
        ("a.webp", {"lossless": True}, 0),
        ("a.jpg", {"quality": 95}, 40),
    ],
)
def test_formats_round_trip(tmp_path: Path, name: str, params: dict, tolerance: int) -> None:
    pixels = _rgb_pattern()
    loaded = load_image(_save(tmp_path, Image.fromarray(pixels), name, **params), limits=LIMITS)
    assert loaded.pixels.shape == (48, 64, 3)
    assert loaded.pixels.dtype == np.uint8
    assert np.abs(loaded.pixels.astype(int) - pixels).max() <= tolerance


def test_gif_first_frame(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (40, 40), c) for c in ((255, 0, 0), (0, 0, 255))]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    loaded = load_image(path, limits=LIMITS)
    assert tuple(loaded.pixels[20, 20]) == (255, 0, 0)


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    pixels = np.zeros((40, 80, 3), np.uint8)
    pixels[:, :40] = (255, 0, 0)  # left half red
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    path = _save(tmp_path, Image.fromarray(pixels), "rot.jpg", exif=exif, quality=95)
    loaded = load_image(path, limits=LIMITS)
    assert loaded.pixels.shape[:2] == (80, 40)  # portrait after orientation
    assert loaded.pixels[5, 20, 0] > 200 and loaded.pixels[75, 20, 0] < 60  # red now on top


def test_mode_1_and_l(tmp_path: Path) -> None:
    bw = Image.new("1", (40, 40), 0)
    bw.paste(1, (0, 0, 20, 40))
    loaded = load_image(_save(tmp_path, bw, "bw.png"), limits=LIMITS)
    assert loaded.pixels.shape == (40, 40, 3)
    assert tuple(loaded.pixels[10, 5]) == (255, 255, 255) and tuple(loaded.pixels[10, 30]) == (0, 0, 0)
    gray = load_image(_save(tmp_path, Image.new("L", (40, 40), 77), "g.png"), limits=LIMITS)
    assert tuple(gray.pixels[0, 0]) == (77, 77, 77)


def test_la_and_rgba_keep_alpha(tmp_path: Path) -> None:
    la = Image.new("LA", (40, 40), (200, 0))
    la.paste((100, 255), (10, 10, 30, 30))
    loaded = load_image(_save(tmp_path, la, "la.png"), limits=LIMITS)
    assert loaded.pixels.shape == (40, 40, 4)
    assert loaded.pixels[20, 20, 3] == 255 and loaded.pixels[0, 0, 3] == 0
    assert tuple(loaded.pixels[20, 20, :3]) == (100, 100, 100)


def test_opaque_alpha_is_dropped(tmp_path: Path) -> None:
    loaded = load_image(_save(tmp_path, Image.new("RGBA", (40, 40), (1, 2, 3, 255)), "o.png"), limits=LIMITS)
    assert loaded.pixels.shape == (40, 40, 3)


def test_palette_with_transparency(tmp_path: Path) -> None:
    image = Image.new("P", (40, 40), 0)
    image.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    image.paste(1, (10, 10, 30, 30))
    path = _save(tmp_path, image, "p.png", transparency=0)
    loaded = load_image(path, limits=LIMITS)
    assert loaded.pixels.shape == (40, 40, 4)
    assert loaded.pixels[0, 0, 3] == 0
    assert tuple(loaded.pixels[20, 20]) == (255, 0, 0, 255)


def test_cmyk(tmp_path: Path) -> None:
    cmyk = Image.new("CMYK", (40, 40), (0, 255, 255, 0))  # pure red in CMYK
    loaded = load_image(_save(tmp_path, cmyk, "c.tiff"), limits=LIMITS)
    r, g, b = (int(v) for v in loaded.pixels[20, 20])
    assert r > 200 and g < 60 and b < 60


def test_sixteen_bit_is_scaled_not_clipped(tmp_path: Path) -> None:
    values = np.full((40, 40), 32896, np.uint16)  # mid grey in 16 bits
    values[:20] = 65535
    image = Image.fromarray(values)
    loaded = load_image(_save(tmp_path, image, "g16.png"), limits=LIMITS)
    assert loaded.pixels[30, 0, 0] in (127, 128, 129)
    assert loaded.pixels[0, 0, 0] == 255


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda p: None, "not found"),
        (lambda p: p.write_bytes(b""), "empty"),
        (lambda p: p.write_text("hello, I am not a picture"), "not an image"),
        (lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64), "not an image"),
    ],
    ids=["missing", "empty", "text-with-png-name", "bad-png-header"],
)
def test_invalid_input(tmp_path: Path, setup, message: str) -> None:
    path = tmp_path / "product.png"
    setup(path)
    with pytest.raises(InvalidInput, match=message):
        load_image(path, limits=LIMITS)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_file(tmp_path: Path, fmt: str) -> None:
    buffer = io.BytesIO()
    Image.fromarray(_rgb_pattern(256, 256)).save(buffer, fmt)
    data = buffer.getvalue()
    path = tmp_path / "cut.img"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InvalidInput, match="truncated or corrupt"):
        load_image(path, limits=LIMITS)


def test_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="not a file"):
        load_image(tmp_path, limits=LIMITS)


def test_pixel_limit_checked_before_decoding(tmp_path: Path) -> None:
    path = _save(tmp_path, Image.new("RGB", (400, 300)), "big.png")
    with pytest.raises(InvalidInput, match="too large"):
        load_image(path, limits=LimitsSettings(max_pixels=100_000))


def test_decompression_bomb(tmp_path: Path) -> None:
    # A tiny file that claims a huge canvas: refused from its header.
    path = _save(tmp_path, Image.new("1", (20000, 20000)), "bomb.png")
    assert path.stat().st_size < 200_000
    with pytest.raises(InvalidInput, match="too large"):
        load_image(path, limits=LIMITS)


def test_too_small(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="too small"):
        load_image(_save(tmp_path, Image.new("RGB", (16, 200)), "s.png"), limits=LIMITS)


def test_fully_transparent(tmp_path: Path) -> None:
    path = _save(tmp_path, Image.new("RGBA", (64, 64), (255, 0, 0, 0)), "t.png")
    with pytest.raises(InvalidInput, match="fully transparent"):
        load_image(path, limits=LIMITS)


def test_sha256_is_of_the_file_bytes() -> None:
    import hashlib

    buffer = io.BytesIO()
    Image.new("RGB", (40, 40), (9, 9, 9)).save(buffer, "PNG")
    data = buffer.getvalue()
    assert decode_image(data, limits=LIMITS).sha256 == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("fmt", ["webp", "jpeg", "png"])
def test_encode_image(fmt: str) -> None:
    pixels = _rgb_pattern(128, 96)
    data = encode_image(pixels, fmt, quality=92)
    decoded = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    assert decoded.shape == pixels.shape
    assert np.abs(decoded.astype(int) - pixels).mean() < (0.01 if fmt == "png" else 8)


def test_encode_refuses_alpha_in_jpeg() -> None:
    with pytest.raises(ValueError, match="alpha"):
        encode_image(np.zeros((8, 8, 4), np.uint8), "jpeg")
