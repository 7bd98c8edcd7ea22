"""Campaign files: loading, error messages, expansion into run requests, and downloading URL products."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from PIL import Image

from placewright.campaign import CampaignSpec, load_campaign, parse_campaign
from placewright.download import fetch_product
from placewright.errors import InvalidInput
from placewright.request import RunRequest
from placewright.types import Size

EXAMPLE = """\
name: spring-olive-oil          # slug [a-z0-9-], 1..60 chars
out: s3://my-bucket/campaigns
options:
  size: 1024x1024
  format: webp
  seed: 7
  surface: table
variants_per_scene: 1
products:
  - path: examples/olive-oil-bottle.jpg
  - url: https://cdn.example.com/p/soap.png
    name: soap
    surface: countertop
scenes:
  - prompt: sunlit marble kitchen counter, morning light
  - prompt: rustic wooden table
    variants: 2
  - background: backgrounds/cafe.jpg
"""


def png_bytes(color: str = "red", side: int = 8) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (side, side), color).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def campaign_dir(tmp_path: Path) -> Path:
    """A folder with the example campaign file and the images it names."""
    folder = tmp_path / "campaign"
    for name in ("examples/olive-oil-bottle.jpg", "backgrounds/cafe.jpg", "examples/other/olive-oil-bottle.png"):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(png_bytes())
    (folder / "campaign.yaml").write_text(EXAMPLE)
    return folder


def test_smoke_example_loads_with_absolute_paths(campaign_dir: Path) -> None:
    spec = load_campaign(campaign_dir / "campaign.yaml")
    assert spec.name == "spring-olive-oil"
    assert spec.out == "s3://my-bucket/campaigns"
    assert (spec.options.size, spec.options.format, spec.options.seed, spec.options.surface) == (
        Size(1024, 1024),
        "webp",
        7,
        "table",
    )
    bottle, soap = spec.products
    assert bottle.path == str(campaign_dir / "examples/olive-oil-bottle.jpg") and Path(bottle.path).is_absolute()
    assert (bottle.url, bottle.name, bottle.surface) == (None, "olive-oil-bottle", None)
    assert (soap.path, soap.url, soap.name, soap.surface) == (
        None,
        "https://cdn.example.com/p/soap.png",
        "soap",
        "countertop",
    )
    assert [s.prompt for s in spec.scenes] == [
        "sunlit marble kitchen counter, morning light",
        "rustic wooden table",
        None,
    ]
    assert spec.scenes[2].background == str(campaign_dir / "backgrounds/cafe.jpg")
    assert [spec.variants_of(s) for s in spec.scenes] == [1, 2, 1]
    assert spec.variant_count == 2 * 4


def test_defaults_and_relative_out(campaign_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (campaign_dir / "min.yaml").write_text(
        "name: c\nout: results\nproducts: [{path: examples/olive-oil-bottle.jpg}]\nscenes: [{prompt: a table}]\n"
    )
    monkeypatch.chdir(campaign_dir.parent)  # relative paths follow the file, not the working folder
    spec = load_campaign("campaign/min.yaml")
    assert spec.options.model_dump() == {"surface": None, "size": None, "seed": None, "format": None, "urls": None}
    assert spec.variants_per_scene == 1 and spec.variant_count == 1
    assert spec.out == str(campaign_dir / "results")


def test_spec_is_frozen(campaign_dir: Path) -> None:
    spec = load_campaign(campaign_dir / "campaign.yaml")
    with pytest.raises(ValueError):
        spec.name = "other"  # type: ignore[misc]
    with pytest.raises(ValueError):
        spec.products[0].name = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("spelled", "expected"),
    [("JPG", "jpeg"), ("jpeg", "jpeg"), ("png", "png"), ("WebP", "webp")],
)
def test_format_is_normalised(campaign_dir: Path, spelled: str, expected: str) -> None:
    data = yaml.safe_load(EXAMPLE)
    data["options"]["format"] = spelled
    assert parse_campaign(data, base_dir=campaign_dir, source="c.yaml").options.format == expected


def test_default_names_are_slugified_stems(campaign_dir: Path) -> None:
    data = yaml.safe_load(EXAMPLE)
    (campaign_dir / "My Product_Photo.PNG").write_bytes(png_bytes())
    data["products"] = [{"path": "My Product_Photo.PNG"}, {"url": "https://x.example/a/Big%20Jar.webp?v=2"}]
    spec = parse_campaign(data, base_dir=campaign_dir, source="c.yaml")
    assert [p.name for p in spec.products] == ["my-product-photo", "big-jar"]


def _broken(change: str) -> str:
    """The example document with one edit applied (``old=>new`` replaces text; anything else is the whole file)."""
    if "=>" not in change:
        return change
    old, new = change.split("=>")
    assert old in EXAMPLE
    return EXAMPLE.replace(old, new, 1)


BROKEN = [
    pytest.param("variants_per_scene: 1=>colour: red", "campaign.yaml: colour: unknown key", id="unknown-key"),
    pytest.param("    variants: 2=>    variant: 2", "scenes[1].variant: unknown key", id="unknown-nested-key"),
    pytest.param(
        "  - url: https://cdn.example.com/p/soap.png=>  - url: https://cdn.example.com/p/soap.png\n    path: x.jpg",
        "products[1]: give exactly one of path or url",
        id="path-and-url",
    ),
    pytest.param(
        "url: https://cdn.example.com/p/soap.png\n    name: soap=>name: soap",
        "products[1]: give exactly one of path or url",
        id="neither-path-nor-url",
    ),
    pytest.param("prompt: rustic wooden table=>prompt: '  '", "scenes[1].prompt: must not be empty", id="empty-prompt"),
    pytest.param(
        "prompt: rustic wooden table=>prompt: " + "x" * 2001,
        "scenes[1].prompt: is too long (2001 characters, limit 2000)",
        id="long-prompt",
    ),
    pytest.param("size: 1024x1024=>size: huge", "options.size: must look like WIDTHxHEIGHT", id="bad-size"),
    pytest.param("size: 1024x1024=>size: 10x10", "options.size: 10x10 is out of range", id="tiny-size"),
    pytest.param(
        "format: webp=>format: gif",
        "options.format: must be one of: 'webp', 'jpeg' or 'png' (got 'gif')",
        id="bad-format",
    ),
    pytest.param("seed: 7=>seed: -1", "options.seed: must be >= 0", id="negative-seed"),
    pytest.param("seed: 7=>seed: yes", "options.seed: must be a whole number, got True", id="boolean-seed"),
    pytest.param("surface: table=>surface: " + "x" * 201, "options.surface: is too long", id="long-surface"),
    pytest.param("format: webp=>format: webp\n  urls: signed", "options.urls: must be one of", id="bad-urls"),
    pytest.param("variants: 2=>variants: 0", "scenes[1].variants:", id="variants-0"),
    pytest.param("variants_per_scene: 1=>variants_per_scene: 17", "variants_per_scene:", id="variants-17"),
    pytest.param("name: soap=>name: olive-oil-bottle", "products[1].name: duplicate name", id="duplicate-names"),
    pytest.param("name: spring-olive-oil=>name: Spring Oil", "campaign.yaml: name: must be", id="bad-slug"),
    pytest.param(
        "path: examples/olive-oil-bottle.jpg=>path: examples/missing.jpg",
        "products[0].path: file not found:",
        id="missing-product-file",
    ),
    pytest.param(
        "background: backgrounds/cafe.jpg=>background: backgrounds",
        "scenes[2].background: not a file:",
        id="background-is-folder",
    ),
    pytest.param("url: https://cdn=>url: ftp://cdn", "products[1].url: must be an http(s) URL", id="non-http-url"),
    pytest.param("scenes:=>scenes: []\nold_scenes:", "campaign.yaml: scenes:", id="no-scenes"),
    pytest.param("    variants: 2=>  variants: 2", "campaign.yaml: YAML syntax error at line 17", id="yaml-syntax"),
    pytest.param("- a\n- b\n", "campaign.yaml: the top level must be a mapping", id="top-level-list"),
    pytest.param("", "campaign.yaml: the file is empty", id="empty-file"),
    pytest.param("# only a comment\n", "campaign.yaml: the file is empty", id="comment-only"),
]


@pytest.mark.parametrize(("change", "expected"), BROKEN)
def test_invalid_input(campaign_dir: Path, change: str, expected: str, monkeypatch: pytest.MonkeyPatch) -> None:
    (campaign_dir / "campaign.yaml").write_text(_broken(change))
    monkeypatch.chdir(campaign_dir)
    with pytest.raises(InvalidInput) as caught:
        load_campaign("campaign.yaml")
    message = str(caught.value)
    assert expected in message
    assert message.startswith("campaign.yaml: ") and "\n" not in message


def test_duplicate_names_name_both_products(campaign_dir: Path) -> None:
    data = yaml.safe_load(EXAMPLE)
    data["products"] = [{"path": "examples/olive-oil-bottle.jpg"}, {"path": "examples/other/olive-oil-bottle.png"}]
    with pytest.raises(InvalidInput) as caught:
        parse_campaign(data, base_dir=campaign_dir, source="c.yaml")
    message = str(caught.value)
    assert "products[1].name: duplicate name 'olive-oil-bottle'" in message
    assert str(campaign_dir / "examples/olive-oil-bottle.jpg") in message
    assert str(campaign_dir / "examples/other/olive-oil-bottle.png") in message


def test_invalid_input_counts_further_errors(campaign_dir: Path) -> None:
    data = yaml.safe_load(EXAMPLE)
    data["options"]["format"] = "gif"
    data["scenes"][0]["prompt"] = ""
    data["scenes"][1]["variants"] = 99
    with pytest.raises(InvalidInput, match=r"^c\.yaml: options\.format: .* \(and 2 more\)$"):
        parse_campaign(data, base_dir=campaign_dir, source="c.yaml")


@pytest.mark.parametrize("target", ["missing.yaml", "."], ids=["missing-file", "folder"])
def test_invalid_file(campaign_dir: Path, target: str) -> None:
    with pytest.raises(InvalidInput, match=r"campaign file not found|not a file"):
        load_campaign(campaign_dir / target)


def test_too_many_variants_per_product(campaign_dir: Path) -> None:
    data = yaml.safe_load(EXAMPLE)
    data["scenes"] = [{"prompt": f"scene {i}", "variants": 16} for i in range(5)]
    with pytest.raises(InvalidInput, match="scenes: 80 variants per product"):
        parse_campaign(data, base_dir=campaign_dir, source="c.yaml")


def test_requests_expand_scenes_per_product(campaign_dir: Path) -> None:
    data = {
        "name": "c",
        "options": {"seed": 3, "surface": "table", "format": "png"},
        "products": [
            {"path": "examples/olive-oil-bottle.jpg"},
            {"url": "https://x.example/soap.png", "surface": "shelf"},
        ],
        "scenes": [{"prompt": "marble"}, {"prompt": "wood", "variants": 2}, {"background": "backgrounds/cafe.jpg"}],
        "out": "results",
    }
    spec = parse_campaign(data, base_dir=campaign_dir, source="c.yaml")
    cafe = str(campaign_dir / "backgrounds/cafe.jpg")
    bottle = str(campaign_dir / "examples/olive-oil-bottle.jpg")
    common = dict(prompts=["marble", "wood", "wood"], backgrounds=[cafe], seed=3, format="png")
    out = str(campaign_dir / "results")
    assert spec.requests() == [
        (spec.products[0], RunRequest(product=bottle, surface="table", out=out, **common)),
        (spec.products[1], RunRequest(product="https://x.example/soap.png", surface="shelf", out=out, **common)),
    ]
    assert spec.variant_count == sum(len(r.prompts) + len(r.backgrounds) for _, r in spec.requests()) == 8


def test_requests_variants_per_scene(campaign_dir: Path) -> None:
    data = {
        "name": "c",
        "variants_per_scene": 3,
        "products": [{"path": "examples/olive-oil-bottle.jpg"}],
        "scenes": [{"prompt": "a"}, {"background": "backgrounds/cafe.jpg", "variants": 1}],
    }
    spec = parse_campaign(data, base_dir=campaign_dir, source="c.yaml")
    ((_, request),) = spec.requests()
    assert request.prompts == ["a", "a", "a"] and len(request.backgrounds) == 1
    assert (request.surface, request.seed, request.size, request.out) == (None, None, None, None), "left to settings"
    assert isinstance(spec, CampaignSpec) and spec.variant_count == 4


# --- fetch_product -------------------------------------------------------------------------------------------

MAX_BYTES = 4096
LOCAL = ["127.0.0.1"]  # the test server is on loopback, which the URL guard refuses unless allowed
PNG = png_bytes("blue", 16)
BIG = b"\x89PNG" + b"\0" * (MAX_BYTES * 2)


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.0: a response without Content-Length ends when the connection closes.
    protocol_version = "HTTP/1.0"

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        if path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/p/soap.png")
            self.end_headers()
            return
        routes: dict[str, tuple[int, str, bytes, bool]] = {
            "/p/soap.png": (200, "image/png", PNG, True),
            "/p/noext": (200, "image/png; charset=binary", PNG, True),
            "/p/s3.png": (200, "binary/octet-stream", PNG, True),
            "/p/blob": (200, "application/octet-stream", PNG, True),
            "/page.png": (200, "text/html; charset=utf-8", b"<html>not an image</html>", True),
            "/big.png": (200, "image/png", BIG, True),
            "/big-unsized.png": (200, "image/png", BIG, False),
        }
        if path == "/slow.png":
            time.sleep(1.0)
        status, content_type, body, sized = routes.get(path, (404, "text/plain", b"not found", True))
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            if sized:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:  # the client gave up
            pass

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


@pytest.mark.parametrize(
    ("path", "extension"),
    [("/p/soap.png", ".png"), ("/redirect", ".png"), ("/p/noext", ".png"), ("/p/s3.png?sig=1", ".png")],
)
def test_fetch_product_writes_exact_bytes(server: str, tmp_path: Path, path: str, extension: str) -> None:
    dest = tmp_path / "downloads"
    got = fetch_product(server + path, dest, max_bytes=MAX_BYTES, timeout_s=5, allowed_hosts=LOCAL)
    assert got.parent == dest and got.suffix == extension and len(got.stem) == 16
    assert got.read_bytes() == PNG
    assert list(dest.iterdir()) == [got]
    again = fetch_product(server + path, dest, max_bytes=MAX_BYTES, timeout_s=5, allowed_hosts=LOCAL)
    assert again == got and list(dest.iterdir()) == [got]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/missing.png", "HTTP 404"),
        ("/page.png", "not an image (content type text/html)"),
        ("/p/blob", "not an image (content type application/octet-stream)"),
        ("/big.png", "too large"),
        ("/big-unsized.png", f"more than {MAX_BYTES} bytes"),
        ("/slow.png", "timed out"),
    ],
)
def test_fetch_product_invalid_input(server: str, tmp_path: Path, path: str, expected: str) -> None:
    dest = tmp_path / "downloads"
    dest.mkdir()
    url = server + path
    with pytest.raises(InvalidInput) as caught:
        fetch_product(url, dest, max_bytes=MAX_BYTES, timeout_s=0.3, allowed_hosts=LOCAL)
    message = str(caught.value)
    assert expected in message and url in message and "\n" not in message
    assert list(dest.iterdir()) == []


def test_fetch_product_connection_error(tmp_path: Path) -> None:
    probe = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    port = probe.server_port
    probe.server_close()  # nothing listens on this port any more
    dest = tmp_path / "downloads"
    with pytest.raises(InvalidInput, match=f"product URL http://127.0.0.1:{port}/p.png: cannot download"):
        fetch_product(f"http://127.0.0.1:{port}/p.png", dest, max_bytes=MAX_BYTES, timeout_s=2, allowed_hosts=LOCAL)
    assert list(dest.iterdir()) == []


@pytest.mark.parametrize("url", ["ftp://example.com/p.png", "file:///etc/passwd", "not a url"])
def test_fetch_product_refuses_non_http(tmp_path: Path, url: str) -> None:
    with pytest.raises(InvalidInput, match="must be an http"):
        fetch_product(url, tmp_path, max_bytes=MAX_BYTES, timeout_s=1)
