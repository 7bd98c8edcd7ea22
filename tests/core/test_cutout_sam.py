"""The SAM cut-out backend on a tiny random-weight SamModel saved to a temp folder, offline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from placewright.cutout import cut_out
from placewright.cutout.sam import SamCutter, pick_mask, prompt_box
from placewright.models import MODELS
from placewright.settings import CutoutSettings, ModelSpec
from tests.synth import render_product_photo

# A seed whose random tiny SAM gives a non-empty mask on the test photos (checked).
TINY_SAM_SEED = 1


def save_tiny_sam(folder: Path, seed: int = TINY_SAM_SEED) -> Path:
    """Write a tiny random-weight SamModel (128 px input, 32 px masks) and its SamProcessor to ``folder``."""
    from transformers import SamConfig, SamImageProcessor, SamModel, SamProcessor

    torch.manual_seed(seed)
    config = SamConfig(
        vision_config={
            "hidden_size": 32,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "intermediate_size": 64,
            "image_size": 128,
            "patch_size": 16,
            "output_channels": 32,
            "window_size": 4,
            "global_attn_indexes": [1],
            "num_pos_feats": 16,
            "mlp_dim": 64,
        },
        prompt_encoder_config={
            "hidden_size": 32,
            "image_size": 128,
            "patch_size": 16,
            "mask_input_channels": 4,
            "num_point_embeddings": 4,
        },
        mask_decoder_config={
            "hidden_size": 32,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "mlp_dim": 64,
            "iou_head_hidden_dim": 32,
            "iou_head_depth": 2,
            "num_multimask_outputs": 3,
        },
    )
    SamModel(config).eval().save_pretrained(folder)
    image_processor = SamImageProcessor(
        size={"longest_edge": 128},
        pad_size={"height": 128, "width": 128},
        mask_size={"longest_edge": 32},
        mask_pad_size={"height": 32, "width": 32},
    )
    SamProcessor(image_processor=image_processor).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_sam(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_sam(tmp_path_factory.mktemp("tiny-sam"))


def photo() -> np.ndarray:
    return render_product_photo("bottle", size=(192, 160), label_rgb=(220, 60, 90)).rgb


def test_unavailable_without_weights(tmp_path: Path, tiny_sam: Path) -> None:
    missing = CutoutSettings(sam=ModelSpec(model=str(tmp_path / "no-sam")))
    assert "no-sam" in SamCutter.unavailable_reason(missing)
    assert SamCutter.unavailable_reason(CutoutSettings(sam=ModelSpec(model=str(tiny_sam)))) is None


def test_box_prompt_mask_and_single_load(tiny_sam: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from transformers import SamProcessor

    sent: list[dict] = []
    real_call = SamProcessor.__call__

    def recording(self, *args, **kwargs):
        out = real_call(self, *args, **kwargs)
        sent.append({"boxes": kwargs["input_boxes"], "size": kwargs["images"].size, "model_boxes": out["input_boxes"]})
        return out

    monkeypatch.setattr(SamProcessor, "__call__", recording)
    image = photo()
    options = CutoutSettings(sam=ModelSpec(model=str(tiny_sam), device="cpu", dtype="float16"))
    rgba = SamCutter(options)(image)
    assert rgba.shape == (160, 192, 4) and rgba.dtype == np.uint8
    alpha = rgba[..., 3]
    assert (alpha >= 128).mean() > 0.005
    assert ((alpha > 0) & (alpha < 255)).mean() < 0.1, "binary apart from a thin soft edge"

    [[[x0, y0, x1, y1]]] = sent[0]["boxes"]
    assert sent[0]["size"] == (192, 160)
    assert (x0, y0, x1, y1) == (5.0, 4.0, 187.0, 156.0)
    assert (x1 - x0) * (y1 - y0) / (192 * 160) == pytest.approx(0.95**2, abs=0.01)
    # The processor rescaled it to the model's 128 px input (long side 192 -> 128).
    assert sent[0]["model_boxes"][0, 0].tolist() == pytest.approx(
        [x0 * 2 / 3, y0 * 2 / 3, x1 * 2 / 3, y1 * 2 / 3], abs=0.5
    )

    SamCutter(options)(image)
    assert MODELS.loads[("sam", str(tiny_sam), "cpu", str(torch.float32))] == 1, "loaded once, float32 on the CPU"
    model, _, _, _ = SamCutter(options).model()
    assert next(model.parameters()).dtype == torch.float32


def test_sam_runs_inside_cut_out(tiny_sam: Path) -> None:
    result = cut_out(photo(), options=CutoutSettings(backend="sam", sam=ModelSpec(model=str(tiny_sam))))
    assert result.record.backend == "sam" and result.record.error is None
    assert result.rgba.shape[2] == 4 and result.rgba[..., 3].max() == 255


def test_prompt_box_and_mask_choice() -> None:
    assert prompt_box(200, 100, 0.95) == [5.0, 3.0, 195.0, 97.0]
    masks = np.zeros((3, 32, 32), bool)
    masks[0, 2:30, 2:30] = True  # fills the whole prompt box: the backdrop
    masks[1, 10:25, 12:20] = True  # an object inside the box
    box = np.array([2.0, 2.0, 30.0, 30.0])
    assert pick_mask(masks, np.array([0.9, 0.6, 0.8]), box) == 1, "best score among non-backdrop candidates"
    assert pick_mask(masks[[0]], np.array([0.9]), box) == 0, "nothing else: the best one"
