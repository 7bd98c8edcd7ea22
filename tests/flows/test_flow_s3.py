"""The place-product flow publishing to S3 (moto's server on 127.0.0.1), against a Prefect test server."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from prefect.settings import PREFECT_LOCAL_STORAGE_PATH, temporary_settings

import tasks.publish
from placewright.settings import get_settings
from placewright.storage import Location
from tests.flows.runs import place, place_state
from tests.s3 import MotoS3

pytestmark = pytest.mark.usefixtures("prefect_server")


def _flow_artifacts(flow_run_id) -> list:
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        return client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )


def test_flow_publishes_to_s3_and_caches_there(
    s3: MotoS3, example_product: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stage_calls: dict
) -> None:
    bucket = s3.new_bucket()
    out = f"s3://{bucket}/spring"
    state = place_state(example_product, prompts=["marble counter", "wooden table"], size="768x512", out=out)
    manifest = state.result().model_dump(mode="json")
    run_prefix = f"spring/{manifest['run_id']}/"
    objects = s3.objects(bucket)
    published = {k for k in objects if k.startswith(run_prefix)}
    named = {run_prefix + name for name in ("manifest.json", manifest["product"]["cutout"], "index.html")}
    named.add(run_prefix + manifest["contact_sheet"])
    for variant in manifest["variants"]:
        named |= {run_prefix + variant["image"], run_prefix + variant["preview"]}
    assert published == named
    client = s3.client()
    stored = json.loads(client.get_object(Bucket=bucket, Key=run_prefix + "manifest.json")["Body"].read())
    assert stored == manifest and manifest["location"] == f"{out}/{manifest['run_id']}"
    for variant in manifest["variants"]:
        response = httpx.get(variant["url"], timeout=10)
        assert response.status_code == 200 and response.headers["content-type"] == "image/webp"
        assert response.content == client.get_object(Bucket=bucket, Key=run_prefix + variant["image"])["Body"].read()
    # Intermediates and Prefect's cached results live in the same bucket, for every worker to find.
    assert any(k.startswith("spring/.placewright/blobs/") and k.endswith(".pwb") for k in objects)
    assert any(k.startswith("spring/.placewright/results/") for k in objects)

    # The UI shows an image per variant (presigned URLs load in a browser), a table and a finished progress bar.
    artifacts = _flow_artifacts(state.state_details.flow_run_id)
    kinds = sorted(a.type for a in artifacts)
    assert kinds.count("image") == 2 and "table" in kinds and "progress" in kinds and "markdown" in kinds
    images = {a.data for a in artifacts if a.type == "image"}
    assert images == {v["preview_url"] for v in manifest["variants"]}
    assert next(a for a in artifacts if a.type == "progress").data == 100.0
    table = json.loads(next(a for a in artifacts if a.type == "table").data)
    assert [row["url"] for row in table] == [v["url"] for v in manifest["variants"]]

    # "Another machine": an empty local cache and an empty local Prefect result store.
    ran = dict(stage_calls)
    assert ran["cutout"] == 1 and ran["scene"] == 2, ran
    monkeypatch.setenv("PLACEWRIGHT_CACHE_DIR", str(tmp_path / "other-machine-cache"))
    get_settings.cache_clear()
    with temporary_settings({PREFECT_LOCAL_STORAGE_PATH: tmp_path / "other-machine-results"}):
        again = place(example_product, prompts=["marble counter", "wooden table"], size="768x512", out=out)
    assert stage_calls == ran, "no stage ran again: the cached results came from S3"
    assert not (tmp_path / "other-machine-cache").exists(), "nothing was read from or written to the local cache"
    assert [v["sha256"] for v in again["variants"]] == [v["sha256"] for v in manifest["variants"]]


def test_publish_retries_when_the_store_comes_back(
    s3_private: MotoS3, example_product: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The S3 server stops after two objects of the publish; the task's retry finishes the run."""
    bucket = s3_private.new_bucket()
    monkeypatch.setenv("PLACEWRIGHT_RETRY__DELAY_SECONDS", "[0.2, 0.2]")
    get_settings.cache_clear()
    real_write, real_publish = Location.write, tasks.publish.publish_run
    attempts = {"publish": 0, "writes": 0}

    def write_then_stop(self: Location, item) -> bool:
        written = real_write(self, item)
        attempts["writes"] += 1
        if attempts["publish"] == 1 and attempts["writes"] == 2:
            s3_private.stop()
        return written

    def publish_then_restart(**kwargs):
        attempts["publish"] += 1
        try:
            return real_publish(**kwargs)
        finally:
            if not s3_private.running:
                s3_private.start()  # the store is back before the retry

    monkeypatch.setattr(Location, "write", write_then_stop)
    monkeypatch.setattr("placewright.publish.PUBLISH_THREADS", 1)
    monkeypatch.setattr(tasks.publish, "publish_run", publish_then_restart)
    manifest = place(example_product, prompts=["a", "b"], size="640x640", out=f"s3://{bucket}/x")
    assert attempts["publish"] == 2, "the first attempt failed, the retry published"
    keys = set(s3_private.objects(bucket))
    prefix = f"x/{manifest['run_id']}/"
    assert prefix + "manifest.json" in keys
    assert {prefix + v["image"] for v in manifest["variants"]} <= keys


def test_store_gone_for_good_fails_without_a_manifest(
    s3_private: MotoS3, example_product: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = s3_private.new_bucket()
    monkeypatch.setenv("PLACEWRIGHT_RETRY__DELAY_SECONDS", "[0, 0]")
    get_settings.cache_clear()
    real_write = Location.write

    def write_then_stop(self: Location, item) -> bool:
        written = real_write(self, item)
        if "/variant-" in item.key:
            s3_private.stop()
        return written

    monkeypatch.setattr(Location, "write", write_then_stop)
    state = place_state(example_product, prompts=["a"], size="640x640", out=f"s3://{bucket}/x")
    assert state.is_failed()
    s3_private.start()
    keys = s3_private.objects(bucket)
    assert not [k for k in keys if k.endswith("manifest.json")], "no manifest names a missing object"
