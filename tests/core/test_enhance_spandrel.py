"""The spandrel enhance backend on tiny random-weight checkpoints built from spandrel's own architectures.

Checkpoints are written the way the real ones are published: Real-ESRGAN RRDBNet as
``{"params_ema": state_dict}`` with basicsr key names (``conv_first``, ``body.N.rdbM.convK``,
``conv_body``, ``conv_upN``, ``conv_hr``, ``conv_last``; grow channels 32 as in every real
checkpoint), SRVGGNetCompact as ``{"params": state_dict}``, and the same tensors as .safetensors.
"""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from placewright.enhance import enhance
from placewright.enhance.spandrel import SpandrelEnhancer, load_upscaler
from placewright.models import MODELS
from placewright.settings import EnhanceSettings, ModelSpec


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
def test_tiled_matches_untiled(tmp_path: Path, kind: str) -> None:
    """With the default overlap tiles agree with one whole-image pass (float rounding aside); without, seams show."""
    path = write_checkpoint(tmp_path, kind)
    image = cv2.GaussianBlur(np.random.default_rng(3).integers(0, 256, (60, 76, 3), dtype=np.uint8), (0, 0), 1.5)

    def run(**tiling) -> np.ndarray:
        result = enhance(image, options=_options(path, target_long_side=304, **tiling))
        assert result.record.backend == "spandrel" and result.image.shape == (240, 304, 3)
        return result.image.astype(int)

    whole = run(tile_size=0)
    assert np.abs(run(tile_size=24, tile_overlap=16) - whole).max() <= 1
    assert np.abs(run(tile_size=24, tile_overlap=0) - whole).max() > 5


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


@pytest.mark.parametrize(
    ("content", "message"),
    [("restoration", "not a super-resolution upscaler"), ("junk", "spandrel cannot load"), ("unknown", "unknown")],
)
def test_unusable_checkpoint_falls_back_with_a_clear_error(tmp_path: Path, content: str, message: str) -> None:
    from spandrel.architectures.ESRGAN import ESRGAN

    path = tmp_path / f"{content}.pth"
    if content == "restoration":  # a 1x denoiser: loads fine, but is not an upscaler
        torch.save(ESRGAN(num_filters=8, num_blocks=1, scale=1).state_dict(), path)
    elif content == "unknown":
        torch.save({"foo.weight": torch.zeros(3)}, path)
    else:
        path.write_bytes(b"not a checkpoint at all")
    result = enhance(_product(), options=_options(path, target_long_side=96))
    assert result.record.backend == "lanczos" and result.record.fallback_from == "spandrel"
    assert message in result.record.error and path.name in result.record.error
