"""The FastAPI application: ``create_app(settings)``; ``placewright serve`` runs it under uvicorn.

Routes: ``/v1/jobs`` (:mod:`service.routers.jobs`), the prototype's ``/image/...``
(:mod:`service.routers.legacy`), ``/health`` and ``/ready`` (:mod:`service.routers.health`) and, for a
local store, its published files read-only at ``/files`` (nothing under a dot folder: the work files
and cached results are not served). Every error is RFC 9457 problem details; request bodies above
``service.max_body_bytes`` are refused with 413 before they are read whole.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from placewright import __version__
from placewright.settings import Settings
from service import problems
from service.routers import health, jobs, legacy
from service.runtime import Places, Runtime
from service.supervisor import Supervisor

log = logging.getLogger("placewright.service")


class BodyLimit:
    """ASGI middleware: 413 for a body over ``limit`` bytes, by Content-Length or as it streams in."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, send)
            return
        received = 0

        async def limited() -> Any:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise HTTPException(413, f"the request body is over {self.limit} bytes (service.max_body_bytes)")
            return message

        await self.app(scope, limited, send)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        import json

        body = json.dumps(
            {
                "type": "about:blank",
                "title": "Content Too Large",
                "status": 413,
                "detail": f"the request body is over {self.limit} bytes (service.max_body_bytes)",
                "instance": scope.get("path", ""),
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/problem+json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class PublishedFiles(StaticFiles):
    """A local store's published files, read-only; nothing under a folder or file whose name starts with a dot."""

    def get_path(self, scope: Scope) -> str:
        path = super().get_path(scope)
        if any(part.startswith(".") for part in path.replace("\\", "/").split("/") if part):
            raise HTTPException(404)
        return path


def create_app(settings: Settings, *, port: int | None = None, workers: int | None = None) -> FastAPI:
    """The service: records and loops started on startup; ``workers`` warm workers (default ``service.workers``)."""
    places = Places.of(settings, port)
    count = settings.service.workers if workers is None else workers

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = Runtime(settings, places)
        app.state.runtime = runtime
        # Prefect's sync client calls would see this event loop and turn into coroutines: run them in a thread.
        await anyio.to_thread.run_sync(runtime.start)
        supervisor = None
        if count > 0:
            supervisor = Supervisor(settings, places, count)
            supervisor.on_change.append(runtime.set_alive_workers)
            supervisor.start()
        runtime.supervisor = supervisor  # type: ignore[attr-defined]
        if not runtime.records.keys():
            log.warning("no API keys yet: create one with `placewright keys create NAME`")
        try:
            yield
        finally:
            if supervisor is not None:
                await anyio.to_thread.run_sync(supervisor.stop, settings.service.shutdown_grace_s)
            await anyio.to_thread.run_sync(runtime.stop)

    app = FastAPI(
        title="Placewright",
        version=__version__,
        description="Product placement jobs: a product photo and scene prompts in, finished ad images out.",
        lifespan=lifespan,
    )
    problems.install(app)
    app.include_router(health.router)
    app.include_router(jobs.router)
    app.include_router(legacy.router)
    if places.serves_files:
        from pathlib import Path

        Path(places.out_root).mkdir(parents=True, exist_ok=True)
        app.mount("/files", PublishedFiles(directory=places.out_root, check_dir=False), name="files")
    app.add_middleware(BodyLimit, limit=settings.service.max_body_bytes)
    return app
