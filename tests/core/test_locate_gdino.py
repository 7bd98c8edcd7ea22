"""The grounding-dino locator: a tiny random-weight GroundingDINO loaded through the real backend."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from placewright.locate import LOCATORS, locate
from placewright.locate.grounding_dino import (
    NAME,
    GroundingDinoLocator,
    NoSurfaceDetected,
    pick_surface,
    surface_query,
)
from placewright.models import MODELS
from placewright.settings import LocateSettings, ModelSpec
from placewright.types import Box, Surface

WORDS = ["tabletop", "countertop", "table", "counter", "wooden", "kitchen", "marble", "shelf", "a", "the", "."]


def build_tiny_gdino(folder: Path) -> Path:
    """Save a tiny random-weight GroundingDINO (model + processor, BERT vocab with the query words) to ``folder``."""
    import torch
    from transformers import (
        BertTokenizer,
        GroundingDinoConfig,
        GroundingDinoForObjectDetection,
        GroundingDinoImageProcessor,
        GroundingDinoProcessor,
        SwinConfig,
    )

    folder.mkdir(parents=True, exist_ok=True)
    vocab = folder / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n")
    tokenizer = BertTokenizer(vocab=str(vocab), do_lower_case=True)
    images = GroundingDinoImageProcessor(size={"shortest_edge": 128, "longest_edge": 128})
    config = GroundingDinoConfig(
        d_model=32,
        encoder_layers=1,
        decoder_layers=2,  # 1 fails in transformers 5.23 (tie_weights_keys)
        encoder_attention_heads=4,
        decoder_attention_heads=4,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        num_queries=12,
        num_feature_levels=4,
        encoder_n_points=2,
        decoder_n_points=2,
        max_text_len=16,
        backbone_config=SwinConfig(
            window_size=7, embed_dim=8, depths=[1] * 4, num_heads=[1] * 4, image_size=128, out_indices=[2, 3, 4]
        ),
        text_config={
            "model_type": "bert",
            "vocab_size": len(tokenizer),
            "hidden_size": 16,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "intermediate_size": 16,
            "max_position_embeddings": 16,
        },
    )
    torch.manual_seed(0)
    GroundingDinoForObjectDetection(config).eval().save_pretrained(folder)
    GroundingDinoProcessor(image_processor=images, tokenizer=tokenizer).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_gdino(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_gdino(tmp_path_factory.mktemp("tiny-gdino"))


def _options(model: Path, **overrides: object) -> LocateSettings:
    return LocateSettings(detector=ModelSpec(model=str(model), device="cpu"), **overrides)


def _scene(width: int = 160, height: int = 120) -> np.ndarray:
    """A wall over a brown tabletop starting at 55% of the height."""
    scene = np.full((height, width, 3), (205, 196, 184), np.uint8)
    scene[round(0.55 * height) :] = (140, 96, 62)
    return scene


def test_registered_before_classical() -> None:
    assert [b.name for b in LOCATORS.chain("auto")] == [NAME, "classical"]


@pytest.mark.parametrize(
    ("phrase", "query"),
    [("table", "tabletop."), ("Wooden Table", "wooden tabletop."), ("kitchen counter.", "kitchen countertop."),
     ("shelf", "shelf."), ("  ", "tabletop.")],
)  # fmt: skip
def test_query(phrase: str, query: str) -> None:
    assert surface_query(phrase) == query


def test_real_model_runs_end_to_end(tiny_gdino: Path) -> None:
    scene = _scene(200, 150)
    before = scene.copy()
    locator = GroundingDinoLocator(_options(tiny_gdino))
    try:
        surface = locator(scene, phrase="table")
    except NoSurfaceDetected as exc:  # random weights may score every box low: the one allowed failure
        assert "no surface above thresholds" in str(exc) and "'tabletop.'" in str(exc)
    else:
        assert surface.backend == NAME and 0 <= surface.line_y < 150 and 0 <= surface.center_x < 200
        assert 0 <= surface.box.x0 < surface.box.x1 <= 200 and 0 <= surface.box.y0 < surface.box.y1 <= 150
    np.testing.assert_array_equal(scene, before)


@pytest.mark.parametrize("shape", [(120, 160, 3), (160, 96, 4), (64, 200, 3)])
def test_thresholds_zero_always_give_a_surface(tiny_gdino: Path, shape: tuple[int, int, int]) -> None:
    height, width = shape[:2]
    scene = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    options = _options(tiny_gdino, box_threshold=0.0, text_threshold=0.0)
    surface = GroundingDinoLocator(options)(scene, phrase="countertop")
    assert isinstance(surface, Surface) and surface.backend == NAME
    box = surface.box
    assert 0 <= box.x0 < box.x1 <= width and 0 <= box.y0 < box.y1 <= height
    assert box.y0 <= surface.line_y < height and box.x0 <= surface.center_x < box.x1
    expected = min(height - 1, round(box.y0 + options.line_offset * box.height))
    assert surface.line_y == expected, "base line follows the classical line_offset rule"
    assert 0.0 < surface.confidence <= 1.0


@pytest.mark.parametrize(("box_threshold", "text_threshold"), [(1.0, 1.0), (1.0, 0.0), (0.0, 1.0)])
def test_thresholds_one_fall_back_with_reason(tiny_gdino: Path, box_threshold: float, text_threshold: float) -> None:
    options = _options(tiny_gdino, box_threshold=box_threshold, text_threshold=text_threshold)
    with pytest.raises(NoSurfaceDetected, match="no surface above thresholds"):
        GroundingDinoLocator(options)(_scene(), phrase="table")
    result = locate(_scene(), phrase="table", known=None, options=options)
    assert result.record.backend in ("horizontal-edge", "band")
    assert result.record.fallback_from == NAME
    assert "NoSurfaceDetected: no surface above thresholds" in result.record.error


def test_used_by_the_stage_in_auto_mode(tiny_gdino: Path) -> None:
    result = locate(_scene(), phrase="table", known=None, options=_options(tiny_gdino, box_threshold=0.0))
    assert result.record.backend == NAME and result.record.fallback_from is None
    assert result.surface.backend == NAME


def test_known_surface_skips_detection(tiny_gdino: Path) -> None:
    known = Surface(line_y=80, center_x=60, box=None, backend="procedural")
    result = locate(_scene(), phrase="table", known=known, options=_options(tiny_gdino, box_threshold=0.0))
    assert result.surface is known and result.record.backend == "scene-geometry"


def test_loaded_once(tiny_gdino: Path) -> None:
    MODELS.clear()
    options = _options(tiny_gdino, box_threshold=0.0)
    timings = []
    for _ in range(3):
        started = time.process_time()
        GroundingDinoLocator(options)(_scene(320, 240), phrase="table")
        timings.append(time.process_time() - started)
    keys = [k for k in MODELS.loads if k[0] == NAME]
    assert len(keys) == 1 and MODELS.loads[keys[0]] == 1
    assert keys[0][1] == str(tiny_gdino.resolve()) and keys[0][2] == "cpu"
    print(f"grounding-dino CPU seconds per call (first loads the model): {[round(t, 3) for t in timings]}")


def test_unavailable_without_weights(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-gdino"
    reason = GroundingDinoLocator.unavailable_reason(_options(missing))
    assert reason is not None and str(missing) in reason
    assert GroundingDinoLocator.source(_options(missing)) == str(missing)
    # In auto mode the stage skips it and records why.
    result = locate(_scene(), phrase="table", known=None, options=_options(missing))
    assert result.record.fallback_from is None and result.record.skipped[0].startswith(f"{NAME}: ")


def test_available_with_weights(tiny_gdino: Path) -> None:
    assert GroundingDinoLocator.unavailable_reason(_options(tiny_gdino)) is None


# ---- box picking on hand-made detections (W=200, H=100)
PICK = {"width": 200, "height": 100, "box_threshold": 0.25, "min_flatness": 1.5}


def test_pick_flat_low_box_beats_tall_box() -> None:
    tall = (60, 30, 120, 100)  # 60 x 70: the table with its legs
    flat = (20, 55, 180, 90)  # 160 x 35: the tabletop
    assert pick_surface([tall, flat], [0.5, 0.45], **PICK) == (1, Box(20, 55, 180, 90))


def test_pick_tall_box_alone_is_cut_to_its_top() -> None:
    index, box = pick_surface([(60, 30, 120, 100)], [0.5], **PICK)
    assert index == 0 and box == Box(60, 30, 120, 70)  # 60 wide / 1.5 -> 40 high from the top


def test_pick_below_threshold_is_none() -> None:
    assert pick_surface([(20, 55, 180, 90)], [0.25], **PICK) is None  # not above the threshold
    assert pick_surface([], [], **PICK) is None
    assert pick_surface([(20, 55, 20.5, 90)], [0.9], **PICK) is None  # under a pixel wide


def test_pick_prefers_the_lower_half() -> None:
    upper, lower = (20, 10, 180, 40), (20, 60, 180, 90)
    assert pick_surface([upper, lower], [0.5, 0.5], **PICK)[0] == 1
    assert pick_surface([upper, lower], [0.9, 0.5], **PICK)[0] == 0, "a much better score still wins"


def test_pick_prefers_larger_boxes_and_clips_to_frame() -> None:
    small, large = (90, 60, 120, 70), (10, 60, 190, 95)
    assert pick_surface([small, large], [0.55, 0.5], **PICK)[0] == 1
    assert pick_surface([(-30, 50, 260, 130)], [0.6], **PICK) == (0, Box(0, 50, 200, 100))
