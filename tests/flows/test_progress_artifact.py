"""The run's progress artifact: updated at most every so often, and always at the last variant."""

from __future__ import annotations

import pytest
from prefect import flow, get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterId

from flows.artifacts import VariantProgress

pytestmark = pytest.mark.usefixtures("prefect_server")


def _shown(progress: VariantProgress) -> tuple[float, str]:
    only = ArtifactFilter(id=ArtifactFilterId(any_=[progress.artifact_id]))
    with get_client(sync_client=True) as client:
        (mine,) = client.read_artifacts(artifact_filter=only)
    return mine.data, mine.description


@flow
def finish(total: int, every_s: float, then: list[int]) -> list[tuple[float, str]]:
    """Finish variants in groups of ``then``; what the artifact shows after each group."""
    progress = VariantProgress("run-x", total=total, every_s=every_s)
    shown = []
    for count in then:
        for _ in range(count):
            progress.variant_finished()
        shown.append(_shown(progress))
    return shown


def test_updates_are_spaced_and_the_last_is_always_shown() -> None:
    assert finish(4, 3600, [3, 1]) == [
        (0.0, "run run-x: variants finished (0/4)"),  # three quick variants: no write yet
        (100.0, "run run-x: variants finished (4/4)"),
    ]


def test_every_update_shows_when_they_are_far_enough_apart() -> None:
    assert finish(4, 0, [1, 1]) == [
        (25.0, "run run-x: variants finished (1/4)"),
        (50.0, "run run-x: variants finished (2/4)"),
    ]
