"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from placewright.errors import first_line
from service.deps import RuntimeDep
from service.schemas import Health, Readiness

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health, summary="The process answers")
def health() -> Health:
    return Health(status="ok")


@router.get(
    "/ready",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "Not ready: a check failed"}},
    summary="Ready for jobs: the job engine, the records and the workers",
)
def ready(rt: RuntimeDep) -> JSONResponse:
    checks: dict[str, str] = {}
    try:
        checks["engine"] = "ok" if rt.deployment_id is not None and rt.engine.deployment_id() else "no deployment"
    except Exception as exc:
        checks["engine"] = f"unreachable: {first_line(exc)}"
    try:
        rt.records.active_count("-")
        checks["records"] = "ok"
    except Exception as exc:
        checks["records"] = f"failing: {first_line(exc)}"
    supervisor = getattr(rt, "supervisor", None)
    if supervisor is not None:
        alive = supervisor.alive_count()
        checks["workers"] = "ok" if alive > 0 else "no worker running"
    ok = all(value == "ok" for value in checks.values())
    body = Readiness(status="ready" if ok else "not ready", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)
