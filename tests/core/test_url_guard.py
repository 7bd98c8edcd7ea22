"""The URL guard: public addresses only, checked addresses connected to, redirects checked, deadlines held."""

from __future__ import annotations

import datetime
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import ip_address
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from placewright.download import fetch_product
from placewright.errors import InvalidInput
from placewright.settings import LimitsSettings
from placewright.url_guard import (
    Allowlist,
    FetchTimedOut,
    UrlRefused,
    check_address,
    guarded_get,
    guarded_request,
    resolve_checked,
)
from tests.fake_http import FakeJsonServer

MAX_BYTES = 1 << 20
LOCAL = ["127.0.0.1"]


def _png() -> bytes:
    import io

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(buffer, format="PNG")
    return buffer.getvalue()


PNG = _png()


class ImageServer(FakeJsonServer):
    """GET /p.png: a PNG; /redirect?to=URL: a 302 there; /loop: a redirect to itself; /slow.png,
    /stall.png, /slow-headers.png: a sender of 1 byte every 0.2 s, one that goes silent, one that
    trickles its headers."""

    def get(self, handler: BaseHTTPRequestHandler) -> None:
        path, _, query = handler.path.partition("?")
        if path == "/p.png":
            handler.send_response(200)
            handler.send_header("Content-Type", "image/png")
            handler.send_header("Content-Length", str(len(PNG)))
            handler.end_headers()
            handler.wfile.write(PNG)
        elif path in ("/redirect", "/loop"):
            handler.send_response(302)
            handler.send_header("Location", query.removeprefix("to=") if path == "/redirect" else "/loop")
            handler.send_header("Content-Length", "0")
            handler.end_headers()
        elif path in ("/slow.png", "/stall.png"):
            handler.send_response(200)
            handler.send_header("Content-Type", "image/png")
            handler.end_headers()  # no length: the body ends when the connection closes
            handler.wfile.flush()
            if path == "/stall.png":
                time.sleep(5)
            for byte in PNG * 20:
                handler.wfile.write(bytes([byte]))
                handler.wfile.flush()
                time.sleep(0.2)
        elif path == "/slow-headers.png":
            handler.wfile.write(b"HTTP/1.0 200 OK\r\n")
            for _ in range(50):
                handler.wfile.write(b"X-Pad: 1\r\n")
                handler.wfile.flush()
                time.sleep(0.2)
        else:
            super().get(handler)


@pytest.fixture
def server() -> Iterator[ImageServer]:
    with ImageServer() as running:
        yield running


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Every TCP connection httpcore opens (address, port); only 127.0.0.1 is really connected."""
    opened: list[tuple[str, int]] = []
    real = socket.create_connection

    def create_connection(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        opened.append((address[0], address[1]))
        if address[0] != "127.0.0.1":
            raise AssertionError(f"the guard let a connection to {address[0]} through")
        return real(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", create_connection)
    return opened


def _resolver(monkeypatch: pytest.MonkeyPatch, answers: dict[str, list[list[str]]]) -> list[str]:
    """Patch ``socket.getaddrinfo``: host -> one answer list per call (the last repeats); returns the hosts asked."""
    asked: list[str] = []
    real = socket.getaddrinfo

    def getaddrinfo(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        if host not in answers:
            return real(host, port, *args, **kwargs)
        calls = answers[host]
        found = calls[min(asked.count(host), len(calls) - 1)]
        asked.append(host)
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in found]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return asked


def _refused(url: str, dest: Path, allowed: list[str] | None = None, timeout_s: float = 5) -> str:
    with pytest.raises(InvalidInput) as caught:
        fetch_product(url, dest, max_bytes=MAX_BYTES, timeout_s=timeout_s, allowed_hosts=allowed or [])
    message = str(caught.value)
    assert message.startswith(f"product URL {url}: ") and "\n" not in message, message
    assert not dest.exists() or list(dest.iterdir()) == [], "nothing is left behind"
    return message


# --- check_address -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "metadata"),
        ("169.254.1.1", "link-local"),
        ("100.64.0.1", "CGNAT"),
        ("100.127.255.254", "CGNAT"),
        ("224.0.0.1", "multicast"),
        ("239.255.255.250", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("198.18.0.1", "private"),
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("fc00::1", "private"),
        ("fd12:3456::1", "private"),
        ("fe80::1", "link-local"),
        ("fec0::1", "site-local"),
        ("ff02::1", "multicast"),
        ("::ffff:127.0.0.1", "is the IPv4 address 127.0.0.1, a loopback address"),
        ("::ffff:169.254.169.254", "metadata"),
        ("::ffff:10.0.0.1", "private"),
        ("64:ff9b::a00:1", "is the IPv4 address 10.0.0.1, a private address"),
        ("::127.0.0.1", "reserved"),
        ("2002:7f00:1::1", "an address leading to 127.0.0.1, a loopback address"),
        ("2002:a00:1::1", "an address leading to 10.0.0.1, a private address"),
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", "private"),  # Teredo, client 127.0.0.1
    ],
)
def test_addresses_that_are_not_public_are_refused(address: str, reason: str) -> None:
    found = check_address(ip_address(address))
    assert found is not None and found.startswith(str(ip_address(address))) and reason in found, found
    assert check_address(address) == found, "text works too"


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"])
def test_public_addresses_pass(address: str) -> None:
    assert check_address(address) is None


def test_the_allowlist_opens_addresses_and_networks() -> None:
    allowlist = Allowlist.parse(["10.0.0.0/8", "127.0.0.1", "minio.internal."])
    assert check_address("10.1.2.3", allowlist) is None
    assert check_address("::ffff:10.1.2.3", allowlist) is None, "an IPv4-mapped address is that address"
    assert check_address("127.0.0.1", ["127.0.0.1"]) is None
    assert check_address("127.0.0.2", allowlist) is not None
    assert check_address("192.168.0.1", allowlist) is not None
    assert allowlist.allows_host("MinIO.Internal") and not allowlist.allows_host("other.internal")


def test_allowlist_entries_are_checked_by_the_settings() -> None:
    limits = LimitsSettings(allowed_hosts=["MinIO.internal.", "10.0.0.0/8", "[::1]"])
    assert limits.allowed_hosts == ["minio.internal", "10.0.0.0/8", "::1"]
    assert LimitsSettings().allowed_hosts == [], "nothing private is allowed by default"
    with pytest.raises(ValueError, match="'not a host' is not a host name, IP address or CIDR network"):
        LimitsSettings(allowed_hosts=["not a host"])


# --- resolve_checked -----------------------------------------------------------------------------------------------


def test_a_host_resolving_to_any_private_address_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    _resolver(monkeypatch, {"cdn.example": [["8.8.8.8", "10.0.0.7"]], "pub.example": [["8.8.8.8", "2606:4700::1"]]})
    with pytest.raises(
        UrlRefused, match=r"refused: cdn\.example resolves to 10\.0\.0\.7, a private address \(limits\.allowed_hosts"
    ):
        resolve_checked("cdn.example", 80)
    assert resolve_checked("cdn.example", 80, ["cdn.example"]) == [ip_address("8.8.8.8"), ip_address("10.0.0.7")]
    assert resolve_checked("cdn.example", 80, ["10.0.0.0/24"]) == [ip_address("8.8.8.8"), ip_address("10.0.0.7")]
    assert resolve_checked("pub.example", 443) == [ip_address("8.8.8.8"), ip_address("2606:4700::1")]


def test_ip_literals_are_not_resolved(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []

    def getaddrinfo(host: str, *args: Any, **kwargs: Any) -> list[Any]:
        asked.append(host)
        return []

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    assert resolve_checked("[2606:4700::1]", 443) == [ip_address("2606:4700::1")]
    with pytest.raises(UrlRefused, match="::1 is a loopback address"):
        resolve_checked("::1", 80)
    assert asked == []


def test_a_host_that_does_not_resolve(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: Any, **kwargs: Any) -> list[Any]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", fail)
    with pytest.raises(UrlRefused, match=r"cannot resolve host nowhere\.example: .*not known"):
        resolve_checked("nowhere.example", 80, timeout_s=5)


# --- fetch_product through the guard --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1/p.png", "127.0.0.1 is a loopback address"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is the link-local cloud metadata address"),
        ("http://10.0.0.1/p.png", "10.0.0.1 is a private address"),
        ("http://[::1]/p.png", "::1 is a loopback address"),
        ("http://[::ffff:127.0.0.1]/", "::ffff:7f00:1 is the IPv4 address 127.0.0.1, a loopback address"),
        ("https://100.64.0.1/p.png", "100.64.0.1 is a shared (CGNAT) address"),
        ("http://[fd00::1]:8080/p.png", "fd00::1 is a private address"),
        ("http://0.0.0.0:80/p.png", "0.0.0.0 is an unspecified address"),
    ],
)
def test_private_urls_are_refused_before_connecting(
    url: str, reason: str, tmp_path: Path, connections: list[tuple[str, int]]
) -> None:
    message = _refused(url, tmp_path / "downloads")
    assert f"refused: {reason} (limits.allowed_hosts can allow it)" in message, message
    assert connections == []


def test_a_host_name_resolving_to_a_private_address_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, connections: list[tuple[str, int]]
) -> None:
    _resolver(monkeypatch, {"images.example": [["93.184.216.34", "192.168.0.10"]]})
    message = _refused("http://images.example/p.png", tmp_path / "downloads")
    assert "images.example resolves to 192.168.0.10, a private address" in message
    assert connections == []


def test_a_redirect_to_a_private_address_is_refused(
    server: ImageServer, tmp_path: Path, connections: list[tuple[str, int]]
) -> None:
    url = f"{server.url}/redirect?to=http://10.0.0.1/p.png"
    message = _refused(url, tmp_path / "downloads", LOCAL)
    assert "10.0.0.1 is a private address" in message
    assert [get["path"] for get in server.gets] == ["/redirect?to=http://10.0.0.1/p.png"]
    assert {address for address, _ in connections} == {"127.0.0.1"}, "the redirect target was not connected to"


@pytest.mark.parametrize(
    ("target", "reason"),
    [("file:///etc/passwd", "is not an http(s) URL"), ("gopher://127.0.0.1/", "is not an http(s) URL")],
)
def test_a_redirect_to_another_scheme_is_refused(server: ImageServer, tmp_path: Path, target: str, reason: str) -> None:
    assert reason in _refused(f"{server.url}/redirect?to={target}", tmp_path / "downloads", LOCAL)


def test_redirects_are_followed_at_most_five_times(server: ImageServer, tmp_path: Path) -> None:
    assert "more than 5 redirects" in _refused(f"{server.url}/loop", tmp_path / "downloads", LOCAL)
    assert len(server.gets) == 6


def test_an_allowed_redirect_is_followed(server: ImageServer, tmp_path: Path) -> None:
    got = fetch_product(
        f"{server.url}/redirect?to=/p.png", tmp_path, max_bytes=MAX_BYTES, timeout_s=5, allowed_hosts=LOCAL
    )
    assert got.read_bytes() == PNG and got.suffix == ".png"


def test_the_allowlist_opens_the_local_server(server: ImageServer, tmp_path: Path) -> None:
    url = f"{server.url}/p.png"
    assert "127.0.0.1 is a loopback address" in _refused(url, tmp_path / "refused")
    assert server.gets == [], "refused without a request"
    got = fetch_product(url, tmp_path / "downloads", max_bytes=MAX_BYTES, timeout_s=5, allowed_hosts=LOCAL)
    assert got.read_bytes() == PNG and list((tmp_path / "downloads").iterdir()) == [got]


def test_the_request_goes_to_the_checked_address(
    server: ImageServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, connections: list[tuple[str, int]]
) -> None:
    """DNS rebinding: the first answer is allowed, later ones are private; only the first is ever used."""
    port = server.server.server_port
    asked = _resolver(monkeypatch, {"cdn.example": [["127.0.0.1"], ["10.0.0.1"]]})
    url = f"http://cdn.example:{port}/p.png"
    got = fetch_product(url, tmp_path, max_bytes=MAX_BYTES, timeout_s=5, allowed_hosts=LOCAL)
    assert got.read_bytes() == PNG
    assert asked == ["cdn.example"], "resolved once"
    assert connections == [("127.0.0.1", port)], "connected to the checked address"
    assert server.gets == [{"path": "/p.png", "host": f"cdn.example:{port}"}], "with the URL's Host header"


@pytest.mark.parametrize("path", ["/slow.png", "/stall.png", "/slow-headers.png"])
def test_a_slow_sender_cannot_hold_the_download_past_its_limit(server: ImageServer, tmp_path: Path, path: str) -> None:
    """1 byte every 0.2 s (would take 20+ s), a sender gone silent, headers trickled: all stop at the 1 s limit."""
    started = time.monotonic()
    message = _refused(f"{server.url}{path}", tmp_path / "downloads", LOCAL, timeout_s=1)
    elapsed = time.monotonic() - started
    assert message.endswith("timed out after 1 s"), message
    assert elapsed < 2, f"took {elapsed:.1f} s"


# --- https: the host name is the TLS server name and what the certificate is checked against --------------------------


def _certificate(tmp_path: Path, name: str) -> tuple[Path, Path, Path]:
    """A CA file and a server certificate and key for the DNS name ``name`` only (no IP address in it)."""
    pytest.importorskip("cryptography")
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "placewright test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    ca_file, cert_file, key_file = tmp_path / "ca.pem", tmp_path / "cert.pem", tmp_path / "key.pem"
    ca_file.write_bytes(ca.public_bytes(pem))
    cert_file.write_bytes(cert.public_bytes(pem))
    key_file.write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return ca_file, cert_file, key_file


@pytest.mark.parametrize("certified", ["images.example", "other.example"])
def test_https_verifies_the_certificate_against_the_host_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, certified: str
) -> None:
    ca_file, cert_file, key_file = _certificate(tmp_path, certified)
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
    server_names: list[str | None] = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    context.sni_callback = lambda sock, name, ctx: server_names.append(name)  # type: ignore[func-returns-value]
    with ImageServer() as server:
        server.server.socket = context.wrap_socket(server.server.socket, server_side=True)
        port = server.server.server_port
        _resolver(monkeypatch, {"images.example": [["127.0.0.1"]]})
        url = f"https://images.example:{port}/p.png"
        if certified == "images.example":
            got = fetch_product(url, tmp_path / "d", max_bytes=MAX_BYTES, timeout_s=5, allowed_hosts=LOCAL)
            assert got.read_bytes() == PNG
            assert server.gets == [{"path": "/p.png", "host": f"images.example:{port}"}]
        else:
            message = _refused(url, tmp_path / "d", LOCAL)
            assert "cannot download" in message and "certificate" in message.lower(), message
    assert server_names == ["images.example"], "the host name was sent as TLS server name"


# --- guarded_request: other methods, redirects not followed ---------------------------------------------------------


class EchoServer:
    """Every request (method, path, body, headers) is kept in ``seen``. /echo: 200 with the body sent;
    /status/<code>?to=URL: that status with ``Location: URL``; /slow: headers after 5 s."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []
        echo = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                echo.seen.append(
                    {"method": self.command, "path": self.path, "body": body, "headers": dict(self.headers)}
                )
                path, _, query = self.path.partition("?")
                try:
                    if path == "/slow":
                        time.sleep(5)
                    if path.startswith("/status/"):
                        self.send_response(int(path.removeprefix("/status/")))
                        self.send_header("Location", query.removeprefix("to="))
                        body = b""
                    else:
                        self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:  # the client gave up
                    pass

            do_GET = do_POST = do_PUT = _handle

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    running = EchoServer()
    yield running
    running.close()


def _read(url: str, method: str = "POST", **kwargs: Any) -> tuple[int, bytes, Any]:
    """``(status, body, GuardedResponse)`` of one guarded request within 5 s."""
    kwargs.setdefault("allowlist", LOCAL)
    with guarded_request(method, url, deadline=time.monotonic() + 5, **kwargs) as answer:
        return answer.response.status_code, b"".join(answer.iter_bytes()), answer


def test_a_post_sends_its_body_and_headers_to_the_checked_address(
    echo: EchoServer, connections: list[tuple[str, int]]
) -> None:
    status, body, answer = _read(
        f"{echo.url}/echo", content=b'{"a":1}', headers={"Content-Type": "application/json", "X-Test": "yes"}
    )
    assert (status, body) == (200, b'{"a":1}')
    assert answer.redirects == [] and str(answer.address) == "127.0.0.1"
    [seen] = echo.seen
    assert (seen["method"], seen["path"], seen["body"]) == ("POST", "/echo", b'{"a":1}')
    assert seen["headers"]["Content-Type"] == "application/json" and seen["headers"]["X-Test"] == "yes"
    assert connections == [("127.0.0.1", echo.server.server_port)]


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/hook", "http://169.254.169.254/", "http://[::1]:9/hook"])
def test_a_post_to_a_refused_address_is_not_sent(url: str, connections: list[tuple[str, int]]) -> None:
    with pytest.raises(UrlRefused, match="refused: "):
        _read(url, content=b"{}", allowlist=[])
    assert connections == []


@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
def test_a_redirect_is_the_answer_when_redirects_are_not_followed(echo: EchoServer, code: int) -> None:
    status, _, answer = _read(
        f"{echo.url}/status/{code}?to=http://10.0.0.1/elsewhere", content=b"{}", follow_redirects=False
    )
    assert status == code and answer.response.headers["location"] == "http://10.0.0.1/elsewhere"
    assert answer.redirects == [] and answer.url == f"{echo.url}/status/{code}?to=http://10.0.0.1/elsewhere"
    assert [seen["path"] for seen in echo.seen] == [f"/status/{code}?to=http://10.0.0.1/elsewhere"]


@pytest.mark.parametrize(("code", "method", "body"), [(302, "GET", b""), (303, "GET", b""), (307, "POST", b"{}")])
def test_a_followed_redirect_of_a_post(echo: EchoServer, code: int, method: str, body: bytes) -> None:
    """307 and 308 repeat the POST with its body; 301, 302 and 303 turn it into a GET without one."""
    status, _, answer = _read(
        f"{echo.url}/status/{code}?to=/echo", content=b"{}", headers={"Content-Type": "application/json"}
    )
    assert status == 200 and answer.redirects == [f"{echo.url}/echo"]
    first, second = echo.seen
    assert (first["method"], first["body"]) == ("POST", b"{}")
    assert (second["method"], second["path"], second["body"]) == (method, "/echo", body)
    assert ("Content-Type" in second["headers"]) == (method == "POST")


def test_a_followed_redirect_of_a_post_is_checked(echo: EchoServer, connections: list[tuple[str, int]]) -> None:
    with pytest.raises(UrlRefused, match=r"10\.0\.0\.1 is a private address"):
        _read(f"{echo.url}/status/307?to=http://10.0.0.1/hook", content=b"{}")
    assert {address for address, _ in connections} == {"127.0.0.1"}


def test_a_post_is_held_to_its_deadline(echo: EchoServer) -> None:
    started = time.monotonic()
    with (
        pytest.raises(FetchTimedOut),
        guarded_request("POST", f"{echo.url}/slow", allowlist=LOCAL, deadline=started + 0.5, content=b"{}"),
    ):
        pass
    assert time.monotonic() - started < 1.5


def test_guarded_get_is_a_get(echo: EchoServer) -> None:
    with guarded_get(f"{echo.url}/status/302?to=/echo", allowlist=LOCAL, deadline=time.monotonic() + 5) as answer:
        assert answer.response.status_code == 200
    assert [seen["method"] for seen in echo.seen] == ["GET", "GET"]
