"""The rembg cut-out backend on a tiny hand-weighted ONNX model (a "red product" detector), offline."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from placewright.cutout import CUTTERS, cut_out
from placewright.cutout.from_mask import finish_mask
from placewright.cutout.rembg import RembgCutter
from placewright.errors import StageFailed
from placewright.models import MODELS
from placewright.settings import CutoutSettings, ModelSpec
from tests.synth import iou, render_product_photo

# Red minus green (after rembg's ImageNet normalization) above this is "product".
RED_LEVEL = 0.85


def export_red_detector(path: Path) -> Path:
    """Write a tiny ONNX model in rembg's U2-Net convention: 1x3x320x320 in, 1x1x320x320 sigmoid out.

    Its weights are set by hand: it answers ~1 where the red channel clearly exceeds the
    green one (a red product) and ~0 on grey or white backdrops, so masks can be checked.
    """

    class RedDetector(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.diff = torch.nn.Conv2d(3, 1, 1)
            self.smooth = torch.nn.Conv2d(1, 1, 3, padding=1, bias=False)
            with torch.no_grad():
                self.diff.weight.copy_(torch.tensor([8.0, -8.0, 0.0]).view(1, 3, 1, 1))
                self.diff.bias.fill_(-8.0 * RED_LEVEL)
                self.smooth.weight.fill_(1.0 / 9.0)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.sigmoid(self.smooth(self.diff(x)))

    path.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(
        RedDetector().eval(),
        (torch.zeros(1, 3, 320, 320),),
        str(path),
        input_names=["input.1"],
        output_names=["out"],
        opset_version=17,
        dynamo=False,
    )
    return path


@pytest.fixture(scope="module")
def red_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_red_detector(tmp_path_factory.mktemp("onnx") / "red-detector.onnx")


@pytest.fixture(autouse=True)
def no_downloads(monkeypatch: pytest.MonkeyPatch) -> None:
    """rembg downloads through pooch.retrieve: make any attempt fail loudly."""
    import pooch

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"rembg tried to download {args[:1]}")

    monkeypatch.setattr(pooch, "retrieve", refuse)


def photo():
    return render_product_photo("bottle", size=(256, 224), label_rgb=(220, 60, 90), backdrop="gradient", shadow=True)


def test_unavailable_until_the_named_model_file_is_there(tmp_path: Path, red_onnx: Path) -> None:
    options = CutoutSettings(rembg=ModelSpec(model="u2net", models_dir=tmp_path))
    reason = RembgCutter.unavailable_reason(options)
    assert reason is not None and str(tmp_path / "rembg" / "u2net.onnx") in reason and "never downloaded" in reason
    assert "rembg@-" in CUTTERS.signature("auto", options)
    (tmp_path / "rembg").mkdir()
    shutil.copy(red_onnx, tmp_path / "rembg" / "u2net.onnx")
    assert RembgCutter.unavailable_reason(options) is None
    assert "not supported" in RembgCutter.unavailable_reason(CutoutSettings(rembg=ModelSpec(model="sam")))
    missing = CutoutSettings(rembg=ModelSpec(model="nope.onnx", models_dir=tmp_path))
    assert "no weights file 'nope.onnx'" in RembgCutter.unavailable_reason(missing)


def test_custom_onnx_cuts_out_the_red_product(red_onnx: Path) -> None:
    synth = photo()
    home_before = os.environ.get("U2NET_HOME")
    options = CutoutSettings(rembg=ModelSpec(model=str(red_onnx), device="cpu"))
    rgba = RembgCutter(options)(synth.rgb)
    assert rgba.shape == (*synth.rgb.shape[:2], 4) and rgba.dtype == np.uint8
    alpha = rgba[..., 3]
    assert iou(alpha >= 128, synth.mask) > 0.97
    assert alpha[0, 0] == 0 and alpha.max() == 255
    soft = (alpha > 0) & (alpha < 255)
    assert 0 < soft.mean() < 0.02, "a thin soft edge, not a blurred one"
    # Backdrop un-mixed from edge pixels: their colour is the product's red, not pinkish grey.
    edge = (alpha > 25) & (alpha < 230)
    assert rgba[edge][:, 1].mean() < 70 < synth.rgb[edge][:, 1].mean()
    assert os.environ.get("U2NET_HOME") == home_before, "U2NET_HOME restored"

    result = cut_out(synth.rgb, options=options)
    assert result.record.backend == "rembg" and result.record.error is None
    x0, _, _, y1 = synth.box
    assert abs(result.box.x0 - x0) <= 3 and abs(result.box.y1 - y1) <= 3
    key = ("rembg", str(red_onnx), ("CPUExecutionProvider",))
    assert MODELS.loads[key] == 1, "the session is created once"


def test_named_session_runs_from_models_dir_without_download(tmp_path: Path, red_onnx: Path) -> None:
    home = tmp_path / "models" / "rembg"
    home.mkdir(parents=True)
    shutil.copy(red_onnx, home / "u2netp.onnx")
    options = CutoutSettings(rembg=ModelSpec(model="u2netp", models_dir=tmp_path / "models", device="cpu"))
    synth = photo()
    session = RembgCutter(options).session()
    assert type(session).__name__ == "U2netpSession"
    assert iou(RembgCutter(options)(synth.rgb)[..., 3] >= 128, synth.mask) > 0.97


def test_alpha_matting_keeps_the_product_and_its_edge(red_onnx: Path) -> None:
    synth = photo()
    options = CutoutSettings(rembg=ModelSpec(model=str(red_onnx)), alpha_matting=True)
    rgba = RembgCutter(options)(synth.rgb)
    assert rgba.shape == (*synth.rgb.shape[:2], 4)
    assert iou(rgba[..., 3] >= 128, synth.mask) > 0.97
    assert rgba[0, 0, 3] == 0


def test_broken_model_falls_back_to_grabcut_with_the_reason(tmp_path: Path) -> None:
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"this is not an onnx model")
    synth = photo()
    result = cut_out(synth.rgb, options=CutoutSettings(rembg=ModelSpec(model=str(broken))))
    assert result.record.backend == "grabcut" and result.record.fallback_from == "rembg"
    assert result.record.error.startswith("rembg: ") and "broken.onnx" in result.record.error


def test_an_empty_mask_is_a_failure_not_an_empty_cutout() -> None:
    synth = photo()
    with pytest.raises(StageFailed, match="found no product"):
        finish_mask(synth.rgb, np.zeros(synth.mask.shape, np.float32), CutoutSettings(), mask_side=320, backend="x")
