"""The tiny pipelines the diffusion backends' tests use load offline and run (sanity of the fixtures)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.tiny_diffusion import PIPELINES, save_tiny_pipeline


@pytest.mark.parametrize("kind", ["sd", "flux"])
def test_saved_pipeline_reloads_offline_and_runs(kind: str, tmp_path: Path) -> None:
    import diffusers
    import torch

    folder = save_tiny_pipeline(kind, tmp_path / kind)
    pipe = getattr(diffusers, PIPELINES[kind][0]).from_pretrained(str(folder), local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    extra = {"max_sequence_length": 32} if kind == "flux" else {}
    image = pipe(
        "a bottle", num_inference_steps=2, height=64, width=64, generator=torch.Generator().manual_seed(0), **extra
    ).images[0]
    assert image.size == (64, 64)
