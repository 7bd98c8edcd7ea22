"""A JSON-over-HTTP server on 127.0.0.1 for tests that speak to a real client (openai, httpx).

Subclasses decide what each POST gets by overriding :meth:`FakeJsonServer.answer`, and what each
GET gets by overriding :meth:`FakeJsonServer.get`. Every POST is kept in ``requests`` (path,
Authorization header, JSON body) and its handling time in ``seconds``, every GET in ``gets`` (path,
Host header); the server runs in a thread for the length of a ``with`` block.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


class FakeJsonServer:
    def __init__(self, url_path: str = "") -> None:
        self.requests: list[dict[str, Any]] = []
        self.gets: list[dict[str, Any]] = []
        self.seconds: list[float] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                started = time.perf_counter()
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
                status, payload = fake.answer(self.path, body)
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:  # the client gave up (timeout tests)
                    pass
                fake.seconds.append(time.perf_counter() - started)

            def do_GET(self) -> None:
                fake.gets.append({"path": self.path, "host": self.headers.get("Host")})
                with contextlib.suppress(OSError):  # the client gave up (timeout tests)
                    fake.get(self)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}{url_path}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def answer(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """``(HTTP status, JSON payload)`` for one POST; the default is a 404."""
        return 404, {"detail": "Not Found"}

    def get(self, handler: BaseHTTPRequestHandler) -> None:
        """Answer one GET through ``handler`` (``send_response``, ``wfile``...); the default is a 404.

        Every GET is kept in ``gets`` (path, Host header) before this is called.
        """
        handler.send_response(404)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
