"""Images given as URLs: http(s) through the URL guard, object stores through fsspec, into the plan's downloads."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import fsspec
import pytest
from PIL import Image

from placewright.download import fetch_image, fetch_source, fetch_stored
from placewright.errors import InvalidInput
from placewright.plan import plan_run
from placewright.request import RunRequest
from placewright.settings import LimitsSettings, Settings, StorageSettings
from tests.fake_http import FakeJsonServer
from tests.s3 import MotoS3

MAX_BYTES = 1 << 20
LOCAL = ["127.0.0.1"]


def _image(color: str, size: tuple[int, int] = (96, 80), fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format=fmt)
    return buffer.getvalue()


PRODUCT = _image("red")
BACKGROUND = _image("green", (160, 120), "JPEG")


class TrickleServer(FakeJsonServer):
    """GET /bg.jpg: a background; /trickle.png: headers at once, then 1 byte per second for 30 s."""

    def get(self, handler: BaseHTTPRequestHandler) -> None:
        if handler.path == "/bg.jpg":
            handler.send_response(200)
            handler.send_header("Content-Type", "image/jpeg")
            handler.send_header("Content-Length", str(len(BACKGROUND)))
            handler.end_headers()
            handler.wfile.write(BACKGROUND)
        elif handler.path == "/trickle.png":
            handler.send_response(200)
            handler.send_header("Content-Type", "image/png")
            handler.send_header("Content-Length", str(len(PRODUCT)))
            handler.end_headers()
            handler.wfile.flush()
            for byte in PRODUCT[:30]:
                handler.wfile.write(bytes([byte]))
                handler.wfile.flush()
                time.sleep(1.0)
        else:
            super().get(handler)


@pytest.fixture
def server() -> Iterator[TrickleServer]:
    with TrickleServer() as running:
        yield running


# --- http(s): the URL guard's deadline and its messages ------------------------------------------------------------


def test_a_sender_of_one_byte_per_second_is_cut_off_at_the_deadline(server: TrickleServer, tmp_path: Path) -> None:
    dest = tmp_path / "downloads"
    started = time.monotonic()
    with pytest.raises(InvalidInput) as caught:
        fetch_image(f"{server.url}/trickle.png", dest, max_bytes=MAX_BYTES, timeout_s=2, allowed_hosts=LOCAL)
    elapsed = time.monotonic() - started
    assert str(caught.value) == f"product URL {server.url}/trickle.png: timed out after 2 s"
    assert elapsed < 3.0, f"the 2 s deadline held for {elapsed:.1f} s against a 30 s trickle"
    assert list(dest.iterdir()) == [], "no partial file is left"


def test_messages_name_what_is_fetched(server: TrickleServer, tmp_path: Path) -> None:
    got = fetch_image(f"{server.url}/bg.jpg", tmp_path, what="background", max_bytes=MAX_BYTES, timeout_s=5,
                      allowed_hosts=LOCAL)  # fmt: skip
    assert got.read_bytes() == BACKGROUND and got.suffix == ".jpg"
    with pytest.raises(InvalidInput, match=rf"^background URL {server.url}/bg.jpg: .*loopback"):
        fetch_image(f"{server.url}/bg.jpg", tmp_path, what="background", max_bytes=MAX_BYTES, timeout_s=5)
    with pytest.raises(InvalidInput, match=rf"^background URL {server.url}/none.png: HTTP 404"):
        fetch_image(f"{server.url}/none.png", tmp_path, what="background", max_bytes=MAX_BYTES, timeout_s=5,
                    allowed_hosts=LOCAL)  # fmt: skip


def test_a_plan_fetches_an_http_background_through_the_guard(server: TrickleServer, tmp_path: Path) -> None:
    product = tmp_path / "soap.png"
    product.write_bytes(PRODUCT)
    url = f"{server.url}/bg.jpg"
    request = RunRequest(product=str(product), backgrounds=[url, url])
    downloads = tmp_path / "downloads"
    with pytest.raises(InvalidInput, match=rf"^background URL {url}: .*loopback.*limits.allowed_hosts"):
        plan_run(request, Settings(), downloads=downloads)
    settings = Settings.model_validate({"limits": {"allowed_hosts": LOCAL}})
    plan = plan_run(request, settings, downloads=downloads)
    assert [v.background for v in plan.variants] == [url, url], "the variants name the URL as given"
    (file,) = set(plan.background_files)
    assert Path(file).parent == downloads and Path(file).read_bytes() == BACKGROUND
    assert [plan.background_file(v) for v in plan.variants] == [file, file]
    assert [p for p in server.gets if p["path"] == "/bg.jpg"] == [server.gets[-1]], "fetched once, not per variant"


# --- object stores through fsspec ------------------------------------------------------------------------------------


@pytest.fixture
def bucket(s3: MotoS3) -> str:
    name = s3.new_bucket("images")
    client = s3.client()
    client.put_object(Bucket=name, Key="products/soap.png", Body=PRODUCT, ContentType="image/png")
    client.put_object(Bucket=name, Key="backgrounds/cafe.jpg", Body=BACKGROUND)
    client.put_object(Bucket=name, Key="folder/inner.png", Body=PRODUCT)
    return name


def _stored(url: str, dest: Path, max_bytes: int = MAX_BYTES) -> Path:
    return fetch_stored(url, dest, what="background", max_bytes=max_bytes, timeout_s=10, storage=StorageSettings())


def test_an_object_is_copied_into_the_downloads(bucket: str, tmp_path: Path) -> None:
    got = _stored(f"s3://{bucket}/backgrounds/cafe.jpg", tmp_path / "d")
    assert got.parent == tmp_path / "d" and got.suffix == ".jpg" and got.read_bytes() == BACKGROUND
    assert [p.name for p in (tmp_path / "d").iterdir()] == [got.name], "nothing else is left"


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        ("backgrounds/missing.jpg", "not found (no such object, or no such bucket)"),
        ("folder", "is a folder, not an image file"),
    ],
)
def test_store_problems_are_one_line(bucket: str, tmp_path: Path, key: str, problem: str) -> None:
    url = f"s3://{bucket}/{key}"
    with pytest.raises(InvalidInput) as caught:
        _stored(url, tmp_path / "d")
    assert str(caught.value) == f"background URL {url}: {problem}"
    assert not (tmp_path / "d").exists() or list((tmp_path / "d").iterdir()) == []


def test_a_missing_bucket(s3: MotoS3, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"^background URL s3://no-such-bucket-x1/b\.jpg: not found"):
        _stored("s3://no-such-bucket-x1/b.jpg", tmp_path)


def test_an_object_over_the_limit_is_refused_before_it_is_read(
    bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import s3fs

    def no_reading(*args: object, **kwargs: object) -> None:
        raise AssertionError("the object was opened although its size is over the limit")

    monkeypatch.setattr(s3fs.S3FileSystem, "_open", no_reading)
    url = f"s3://{bucket}/products/soap.png"
    with pytest.raises(InvalidInput) as caught:
        _stored(url, tmp_path, max_bytes=100)
    assert str(caught.value) == f"background URL {url}: {len(PRODUCT)} bytes is too large (limit 100)"


def test_the_limit_holds_while_reading_when_no_size_is_known(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fsspec.implementations.memory import MemoryFileSystem

    fs = fsspec.filesystem("memory")
    fs.pipe_file("/limits/big.png", b"x" * (3 * 1024 * 1024))
    real_info = MemoryFileSystem.info
    monkeypatch.setattr(
        MemoryFileSystem, "info", lambda self, path, **kw: {**real_info(self, path, **kw), "size": None}
    )
    with pytest.raises(InvalidInput) as caught:
        _stored("memory://limits/big.png", tmp_path / "d", max_bytes=1024 * 1024 + 5)
    assert str(caught.value) == "background URL memory://limits/big.png: more than 1048581 bytes (the limit)"
    assert list((tmp_path / "d").iterdir()) == [], "the partial download is removed"
    fs.rm("/limits", recursive=True)


def test_no_credentials(bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import s3fs

    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    s3fs.S3FileSystem.clear_instance_cache()
    url = f"s3://{bucket}/products/soap.png"
    with pytest.raises(InvalidInput) as caught:
        _stored(url, tmp_path)
    message = str(caught.value)
    assert message.startswith(f"background URL {url}: no credentials for s3:// (") and "\n" not in message, message


def test_unknown_and_uninstalled_protocols(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InvalidInput) as caught:
        _stored("nosuch://bucket/b.png", tmp_path)
    assert str(caught.value) == "background URL nosuch://bucket/b.png: unknown storage protocol nosuch://"

    def not_installed(*args: object, **kwargs: object) -> None:
        raise ImportError("Please install gcsfs to access Google Storage")

    monkeypatch.setattr(fsspec.core, "url_to_fs", not_installed)
    with pytest.raises(InvalidInput) as caught:
        _stored("gs://bucket/b.png", tmp_path)
    assert str(caught.value) == "background URL gs://bucket/b.png: gs:// storage needs gcsfs (pip install gcsfs)"


def test_fetch_source_reads_paths_where_they_are(tmp_path: Path) -> None:
    limits, storage = LimitsSettings(), StorageSettings()
    for source in ("a/b.png", "/srv/b.png"):
        assert fetch_source(source, tmp_path, what="product", limits=limits, storage=storage) == Path(source)
    assert fetch_source("file:///srv/b.png", tmp_path, what="product", limits=limits, storage=storage) == Path(
        "/srv/b.png"
    )
    assert list(tmp_path.iterdir()) == []


def test_a_plan_reads_product_and_background_from_the_store(bucket: str, tmp_path: Path) -> None:
    product, background = f"s3://{bucket}/products/soap.png", f"s3://{bucket}/backgrounds/cafe.jpg"
    downloads = tmp_path / "downloads"
    plan = plan_run(RunRequest(product=product, backgrounds=[background]), Settings(), downloads=downloads)
    assert plan.product.source == product, "the manifest names the product as given"
    assert Path(plan.product_file).parent == downloads and Path(plan.product_file).read_bytes() == PRODUCT
    assert plan.variants[0].background == background
    assert Path(plan.background_file(plan.variants[0]) or "").read_bytes() == BACKGROUND
    with pytest.raises(InvalidInput) as caught:
        plan_run(RunRequest(product=f"s3://{bucket}/products/gone.png"), Settings(), downloads=downloads)
    assert (
        str(caught.value)
        == f"product URL s3://{bucket}/products/gone.png: not found (no such object, or no such bucket)"
    )


def test_a_bad_image_from_the_store_is_named_by_its_url(s3: MotoS3, tmp_path: Path) -> None:
    bucket = s3.new_bucket("images")
    s3.client().put_object(Bucket=bucket, Key="p.png", Body=b"not an image at all")
    with pytest.raises(InvalidInput) as caught:
        plan_run(RunRequest(product=f"s3://{bucket}/p.png"), Settings(), downloads=tmp_path)
    assert str(caught.value).startswith(f"product image s3://{bucket}/p.png is not an image")
