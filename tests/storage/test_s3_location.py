"""Publishing to S3 through a real S3 HTTP endpoint (moto's server on 127.0.0.1)."""

from __future__ import annotations

import json
import time

import httpx
import numpy as np
import pytest

from placewright.errors import InvalidInput
from placewright.publish import PublishedRun, publish_run
from placewright.settings import OutputSettings, StorageSettings
from placewright.storage import Location, StoredObject, open_location
from tests.core.test_publish import _variants, product_parts, replace_image
from tests.s3 import MotoS3


def _publish(url: str, run_id: str = "run-1", variants=None, **storage) -> PublishedRun:
    big = [replace_image(v, np.full((600, 800, 3), 60 + 50 * v.variant.index, np.uint8)) for v in _variants()]
    return publish_run(
        location=open_location(url, StorageSettings(**storage)),
        run_path=f"spring/{run_id}",
        run_id=run_id,
        created_at="2026-11-22T05:00:00+00:00",
        **product_parts(),
        variants=variants if variants is not None else big,
        output=OutputSettings(format="webp"),
    )


def test_objects_content_types_cache_headers_and_manifest(s3: MotoS3) -> None:
    bucket = s3.new_bucket()
    published = _publish(f"s3://{bucket}/ads")
    keys = set(s3.objects(bucket))
    manifest = published.manifest
    names = ("manifest.json", "product/cutout.png", "contact-sheet.webp", "index.html")
    expected = {f"ads/spring/run-1/{name}" for name in names}
    for variant in manifest.variants:
        expected |= {f"ads/spring/run-1/{variant.image}", f"ads/spring/run-1/{variant.preview}"}
    assert keys == expected
    client = s3.client()
    for key in keys:
        head = client.head_object(Bucket=bucket, Key=key)
        if key.endswith("manifest.json"):
            assert head["ContentType"] == "application/json" and head["CacheControl"] == "no-cache"
        elif key.endswith("index.html"):  # the gallery links presigned URLs here: it changes as they do
            assert head["ContentType"] == "text/html; charset=utf-8" and head["CacheControl"] == "no-cache"
        else:
            assert head["ContentType"] == ("image/png" if key.endswith(".png") else "image/webp")
            assert head["CacheControl"] == "public, max-age=31536000, immutable"
    stored = json.loads(client.get_object(Bucket=bucket, Key="ads/spring/run-1/manifest.json")["Body"].read())
    assert stored == manifest.model_dump(mode="json")
    assert stored["location"] == f"s3://{bucket}/ads/spring/run-1"
    assert stored["urls_expire_at"] is not None


def test_presigned_urls_fetch_the_objects_as_they_are(s3: MotoS3) -> None:
    bucket = s3.new_bucket()
    published = _publish(f"s3://{bucket}/ads")
    client = s3.client()
    urls = [published.manifest.product.cutout_url, published.manifest_url]
    for variant in published.manifest.variants:
        urls += [variant.url, str(variant.preview_url)]
    for url in urls:
        assert url.startswith(s3.endpoint) and "X-Amz-Algorithm=AWS4-HMAC-SHA256" in url, url
        assert "X-Amz-Expires=604800" in url, "signed for storage.presign_expiry_s (7 days)"
        key = url.removeprefix(f"{s3.endpoint}/{bucket}/").split("?", 1)[0]
        response = httpx.get(url, timeout=10)
        assert response.status_code == 200
        assert response.content == client.get_object(Bucket=bucket, Key=key)["Body"].read()
        if not key.endswith(".json"):
            assert response.headers["content-type"].startswith("image/")
    unsigned = httpx.get(published.manifest.variants[0].url.split("?", 1)[0], timeout=10)
    assert unsigned.status_code == 403, "the bucket is private: only the signed URL works"


def test_publishing_the_same_run_again_writes_no_object(s3: MotoS3) -> None:
    bucket = s3.new_bucket()
    first = _publish(f"s3://{bucket}/ads")
    before = s3.objects(bucket)
    time.sleep(1.1)  # a new second: presigned URLs signed now differ (the gallery keeps the manifest's)
    second = _publish(f"s3://{bucket}/ads")
    assert second.written == []
    assert s3.objects(bucket) == before, "same keys, ETags and LastModified: nothing rewritten"
    assert second.manifest == first.manifest, "the stored manifest (and its URLs) is kept"


def test_public_base_url_instead_of_presigning(s3: MotoS3) -> None:
    bucket = s3.new_bucket()
    published = _publish(f"s3://{bucket}/ads", public_base_url="https://cdn.example.com")
    variant = published.manifest.variants[0]
    assert variant.url == f"https://cdn.example.com/spring/run-1/{variant.image}"
    assert published.manifest.urls_expire_at is None


def test_plain_urls_name_the_objects(s3: MotoS3) -> None:
    bucket = s3.new_bucket()
    published = _publish(f"s3://{bucket}/ads", urls="plain")
    assert (
        published.manifest.variants[0].url == f"s3://{bucket}/ads/spring/run-1/{published.manifest.variants[0].image}"
    )


def test_explicit_endpoint_setting_beats_the_environment(s3: MotoS3, monkeypatch: pytest.MonkeyPatch) -> None:
    import s3fs

    bucket = s3.new_bucket()
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens there
    s3fs.S3FileSystem.clear_instance_cache()
    location = open_location(f"s3://{bucket}/x", StorageSettings(endpoint_url=s3.endpoint))
    location.check_reachable()
    assert location.write(StoredObject("a.txt", b"hello", "text/plain"))
    assert location.read("a.txt") == b"hello"


def test_missing_bucket_is_one_line(s3: MotoS3) -> None:
    with pytest.raises(InvalidInput, match="bucket 'no-such-bucket' does not exist"):
        open_location("s3://no-such-bucket/ads", StorageSettings()).check_reachable()


def test_unreachable_endpoint_is_one_line(s3: MotoS3) -> None:
    location = open_location("s3://bucket/ads", StorageSettings(endpoint_url="http://127.0.0.1:9"))
    with pytest.raises(InvalidInput, match="not reachable") as caught:
        location.check_reachable()
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("url", "settings", "message"),
    [
        ("nosuchprotocol://x/y", {}, "not a storage location"),
        ("placewright-out", {"urls": "presigned"}, "presigned URLs need an object store"),
        ("placewright-out", {"urls": "public"}, "public_base_url is not set"),
    ],
)
def test_bad_locations(url: str, settings: dict, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        open_location(url, StorageSettings(**settings)).check_urls()


def test_server_stopped_mid_publish_leaves_no_manifest(s3_private: MotoS3, monkeypatch: pytest.MonkeyPatch) -> None:
    """The store goes away after two objects: publishing fails, and no manifest names a missing object."""
    bucket = s3_private.new_bucket()
    real_write = Location.write
    writes = {"n": 0}

    def write_then_stop(self: Location, item: StoredObject) -> bool:
        result = real_write(self, item)
        writes["n"] += 1
        if writes["n"] == 2:
            s3_private.stop()
        return result

    monkeypatch.setattr(Location, "write", write_then_stop)
    monkeypatch.setattr("placewright.publish.PUBLISH_THREADS", 1)
    with pytest.raises(Exception) as caught:
        _publish(f"s3://{bucket}/ads")
    assert "connect" in str(caught.value).lower()

    s3_private.start()  # same port; moto kept the objects
    monkeypatch.setattr(Location, "write", real_write)
    assert not [k for k in s3_private.objects(bucket) if k.endswith("manifest.json")]
    published = _publish(f"s3://{bucket}/ads")  # the retry completes the run
    keys = set(s3_private.objects(bucket))
    named = {f"ads/spring/run-1/{v.image}" for v in published.manifest.variants} | {"ads/spring/run-1/manifest.json"}
    assert named <= keys, "every object the manifest names exists"
