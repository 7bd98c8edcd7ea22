"""Adding a stage or a backend is a declaration: the flow, the manifest, ``placewright models``, the
progress bar and the fault drills follow, with no other file edited.

The stage here, ``quality``, is declared in this module only: a registry with a preferred backend that
cannot run here and a classical one, its task (one body, through ``stage_task``), and one entry
appended to the stage table. The backend, ``mirror``, is a subclass of the enhance stage's base class.
"""

from __future__ import annotations

import json
from abc import abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from typer.testing import CliRunner

import placewright.stages
from placewright.backends import Backend, Registry, StageRecord, run_chain
from placewright.cli import app
from placewright.enhance import ENHANCERS, Enhancer
from placewright.errors import StageFailed
from placewright.progress import FlowProgress
from placewright.settings import CompositeSettings, get_settings
from placewright.stages import Stage
from tasks.common import StageIO, stage_task
from tasks.refs import StagedImage
from tests.flows.runs import place, place_state

pytestmark = pytest.mark.usefixtures("prefect_server")

QUALITY: Registry = Registry("quality", preference=("sharpness", "contrast"))


class QualityCheck(Backend[CompositeSettings]):
    """Base of the quality backends: a score for a finished image."""

    registry: ClassVar[Registry] = QUALITY

    @abstractmethod
    def __call__(self, image: np.ndarray) -> float: ...


class Sharpness(QualityCheck):
    name = "sharpness"
    requires = ("surely_not_an_installed_quality_model",)

    def __call__(self, image: np.ndarray) -> float:
        raise AssertionError("never called: it is unavailable here")


class Contrast(QualityCheck):
    name = "contrast"

    def __call__(self, image: np.ndarray) -> float:
        return float(image.std())


@dataclass(frozen=True)
class QualityOutput:
    score: float
    record: StageRecord


SEEDS_CHECKED: list[int] = []


@stage_task("quality")
def check_quality(harmonize: StagedImage, seed: int, options: CompositeSettings, store_root: str) -> QualityOutput:
    """Score the variant's final image."""
    io = StageIO(store_root)
    image = io.get(harmonize.image)
    score, record = run_chain("quality", QUALITY.chain(options.backend), lambda b: b(options)(image), options=options)
    SEEDS_CHECKED.append(seed)
    return QualityOutput(score, record)


QUALITY_STAGE = Stage("quality", "variant", QUALITY, "composite", f"{__name__}:check_quality")


@pytest.fixture
def quality_stage(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(placewright.stages, "STAGES", (*placewright.stages.STAGES, QUALITY_STAGE))
    SEEDS_CHECKED.clear()


def _models() -> list[dict]:
    result = CliRunner().invoke(app, ["models", "--json"])  # what `placewright models --json` prints
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_a_stage_declared_in_the_table_runs_and_is_reported_everywhere(
    quality_stage: None, example_product: Path, tmp_path: Path
) -> None:
    manifest = place(example_product, prompts=["marble", "wood"], size="256x256", seed=3, out=str(tmp_path))

    assert sorted(SEEDS_CHECKED) == [3, 4], "the flow ran the stage once per variant, with each variant's seed"
    for variant in manifest["variants"]:
        assert list(variant["stages"]) == [s.name for s in placewright.stages.STAGES], "pipeline order"
        record = variant["stages"]["quality"]
        assert record["backend"] == "contrast" and record["fallback_from"] is None
        assert record["skipped"] == [
            "sharpness: needs surely_not_an_installed_quality_model (pip install 'placewright[ai]')"
        ]

    rows = [row for row in _models() if row["stage"] == "quality"]
    assert [(r["backend"], r["available"], r["selected_by"]) for r in rows] == [
        ("sharpness", False, "auto"),
        ("contrast", True, "fallback (always)"),
    ]
    per_product = len(placewright.stages.stages("product")) + 2  # ingest and publish besides
    assert FlowProgress(total_variants=2, enabled=False).total == per_product + 5 * 2, "5 variant stages each"


def test_a_declared_stage_takes_part_in_fault_drills(
    quality_stage: None, example_product: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLACEWRIGHT_FAULTS__FAIL_STAGE", "quality")
    monkeypatch.setenv("PLACEWRIGHT_RETRY__RETRIES", "0")
    get_settings.cache_clear()
    state = place_state(example_product, prompts=["marble"], size="256x256", out=str(tmp_path / "out"))
    with pytest.raises(StageFailed, match=r"^injected fault in stage quality"):
        state.result()
    assert not (tmp_path / "out").exists(), "a failed variant is not published"


def test_a_backend_defined_on_its_stage_base_class_runs_when_named(
    example_product: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ENHANCERS, "_backends", dict(ENHANCERS._backends))  # the registration ends with the test

    class Mirror(Enhancer):
        """Mirrors the product photo (a visible change, so the test can see it ran)."""

        name = "mirror"

        def __call__(self, image: np.ndarray) -> tuple[np.ndarray, float]:
            return np.ascontiguousarray(image[:, ::-1]), 1.0

    monkeypatch.setenv("PLACEWRIGHT_ENHANCE__BACKEND", "mirror")
    get_settings.cache_clear()
    manifest = place(example_product, prompts=["marble"], size="256x256", out=str(tmp_path))
    assert manifest["variants"][0]["stages"]["enhance"]["backend"] == "mirror"
    rows = {row["backend"]: row for row in _models() if row["stage"] == "enhance"}
    assert (rows["mirror"]["selected_by"], rows["mirror"]["source"], rows["mirror"]["available"]) == (
        "forced",
        "built in",
        True,
    )
    assert list(rows)[-1] == "mirror", "outside the preference order: listed after the classical backend"
    assert Mirror in ENHANCERS.chain("mirror") and Mirror not in ENHANCERS.chain("auto")
