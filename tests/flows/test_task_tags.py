"""Model-bearing tasks carry the `gpu` tag, so one Prefect concurrency limit guards the GPU."""

from __future__ import annotations

from pathlib import Path

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


def test_a_run_drops_the_gpu_tag_where_no_backend_loads_a_model(tmp_path: Path) -> None:
    """Each tagged task run acquires a concurrency slot over the API: only worth it when a model may load."""
    from flows.pipeline import without_idle_gpu_tag
    from placewright.settings import Settings
    from placewright.stages import stages
    from tests.real_models import only

    cutout = next(s for s in stages() if s.name == "cutout")
    classical = Settings(models_dir=tmp_path / "no-models")
    assert "gpu" not in without_idle_gpu_tag(cut_out_product, cutout, classical).tags
    with_u2netp = Settings(models_dir=only("u2netp", folder=tmp_path))
    assert "gpu" in without_idle_gpu_tag(cut_out_product, cutout, with_u2netp).tags
    assert "gpu" in cut_out_product.tags  # the task itself keeps it


def test_without_a_gpu_limit_the_run_drops_the_tag(tmp_path: Path) -> None:
    """A tag no limit uses only costs each task run a slot request: a run keeps it only under a limit."""
    from flows.pipeline import without_idle_gpu_tag
    from placewright.settings import Settings
    from placewright.stages import stages
    from tests.real_models import only

    cutout = next(s for s in stages() if s.name == "cutout")
    with_u2netp = Settings(models_dir=only("u2netp", folder=tmp_path))
    assert "gpu" not in without_idle_gpu_tag(cut_out_product, cutout, with_u2netp, gpu_limited=False).tags
    assert "gpu" in without_idle_gpu_tag(cut_out_product, cutout, with_u2netp, gpu_limited=True).tags


@pytest.mark.usefixtures("prefect_server")
def test_the_gpu_limit_is_read_from_the_server() -> None:
    from prefect import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate

    from flows.pipeline import gpu_limit_set

    assert not gpu_limit_set()
    with get_client(sync_client=True) as client:
        client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name="tag:gpu", limit=1))
        try:
            assert gpu_limit_set(), "as `prefect concurrency-limit create gpu 1` makes it"
        finally:
            client.delete_global_concurrency_limit_by_name("tag:gpu")
    assert not gpu_limit_set()
