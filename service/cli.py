"""What ``placewright serve``, ``placewright worker`` and ``placewright keys`` do (the CLI parses, this runs)."""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import threading

from flows.server_environment import without_telemetry
from placewright.settings import Settings
from service.records import ApiKey, Records
from service.runtime import Places

log = logging.getLogger("placewright.service")


def _quiet_prefect() -> None:
    without_telemetry()
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")


def _log_setup() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per Prefect API call otherwise


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _check_port(host: str, port: int) -> None:
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
    except OSError as exc:
        raise RuntimeError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def serve(settings: Settings, *, host: str | None, port: int | None, workers: int | None) -> None:
    """Run the service until SIGTERM/SIGINT; with no PREFECT_API_URL, a private Prefect server beside it."""
    import uvicorn

    from service.app import create_app

    _quiet_prefect()
    _log_setup()
    host = host or settings.service.host
    port = settings.service.port if port is None else port
    if port == 0:
        port = _free_port(host)
    _check_port(host, port)  # before the Prefect server starts: a taken port is one line, not a log dump
    service = settings.service.model_copy(update={"host": host, "port": port})
    settings = settings.model_copy(update={"service": service})
    local_api = None
    if not os.environ.get("PREFECT_API_URL"):
        from flows.background_server import running

        background, _ = running()  # `placewright server start`'s, when it is up: its UI shows the jobs
        if background is not None:
            os.environ["PREFECT_API_URL"] = background.url
        else:
            from flows.local_api import LocalApi

            local_api = LocalApi().start()
            local_api.wait_ready()
            os.environ["PREFECT_API_URL"] = local_api.url  # the workers inherit it
    try:
        places = Places.of(settings, port)
        print(
            f"placewright serve: {places.base_url} (API docs: {places.base_url}/docs); "
            f"{settings.service.workers if workers is None else workers} worker(s); "
            f"Prefect API {os.environ['PREFECT_API_URL']}",
            file=sys.stderr,
            flush=True,
        )
        app = create_app(settings, port=port, workers=workers)
        uvicorn.run(
            app,
            host=host,
            port=port,
            log_level="warning",
            timeout_graceful_shutdown=int(settings.service.shutdown_grace_s) + 5,
        )
    finally:
        if local_api is not None:
            local_api.stop()


def work(settings: Settings, *, processes: int) -> None:
    """``placewright worker``: warm workers on this machine for a service elsewhere (same Prefect API and stores)."""
    from service.engine import Engine
    from service.supervisor import Supervisor

    _quiet_prefect()
    _log_setup()
    if not os.environ.get("PREFECT_API_URL"):
        raise SystemExit("placewright: error: set PREFECT_API_URL to the service's Prefect server")
    places = Places.of(settings)
    supervisor = Supervisor(settings, places, processes)
    engine = Engine(settings.service.deployment)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    supervisor.start()
    print(
        f"placewright worker: {processes} warm worker(s) for deployment {settings.service.deployment}", file=sys.stderr
    )
    try:
        while not stop.wait(2.0):
            try:
                for flow_run in engine.orphans(engine.deployment_id(), supervisor.tags()):
                    log.warning("flow run %s lost its worker: %s", flow_run.id, engine.recover(flow_run))
            except Exception as exc:
                log.warning("recovery: %s: %s", type(exc).__name__, exc)
    finally:
        supervisor.stop(settings.service.shutdown_grace_s)


def records(settings: Settings) -> Records:
    settings.service.state_dir.mkdir(parents=True, exist_ok=True)
    return Records(settings.service.state_dir / "service.db")


def describe_key(key: ApiKey) -> dict[str, object]:
    return {"name": key.name, "id": key.id, "created_at": key.created_at, "revoked": key.revoked}
