"""Model-bearing tasks carry the `gpu` tag, so one Prefect concurrency limit guards the GPU."""

from __future__ import annotations

import pytest

from tasks.analyze import analyze_product
from tasks.composite import composite_variant
from tasks.cutout import cut_out_product
from tasks.enhance import enhance_product
from tasks.harmonize import harmonize_variant
from tasks.locate import locate_surface
from tasks.publish import publish_outputs
from tasks.scene import make_scene


@pytest.mark.parametrize("task", [enhance_product, cut_out_product, make_scene, locate_surface, harmonize_variant])
def test_model_bearing_tasks_are_tagged_gpu(task) -> None:
    assert "gpu" in task.tags


@pytest.mark.parametrize("task", [analyze_product, composite_variant, publish_outputs])
def test_other_tasks_are_not(task) -> None:
    assert "gpu" not in task.tags
