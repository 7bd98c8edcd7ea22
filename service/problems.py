"""Errors as RFC 9457 problem details: one shape for every 4xx and 5xx, never a stack trace."""

from __future__ import annotations

import logging
import re
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from placewright.errors import InvalidInput, first_line
from placewright.validation import one_line
from service.schemas import Problem

log = logging.getLogger("placewright.service")
PROBLEM_JSON = "application/problem+json"


class ApiProblem(Exception):
    """An error answer: ``status`` and a one-line ``detail``, with extra members and headers if needed."""

    def __init__(self, status: int, detail: str, *, headers: dict[str, str] | None = None, **members: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers or {}
        self.members = members


def problem_response(
    status: int, detail: str | None, request: Request, headers: dict[str, str] | None = None, **members: Any
) -> JSONResponse:
    body = Problem(title=HTTPStatus(status).phrase, status=status, detail=detail, instance=request.url.path, **members)
    return JSONResponse(
        body.model_dump(mode="json", exclude_none=True), status_code=status, headers=headers, media_type=PROBLEM_JSON
    )


def _validation_errors(exc: RequestValidationError) -> tuple[str, list[dict[str, str]]]:
    errors = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error.get("loc", ()) if part not in ("body",)) or "body"
        errors.append({"field": where, "message": one_line(str(error.get("msg", "invalid")))})
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:3]) or "the request is not valid"
    return detail, errors


def install(app: FastAPI) -> None:
    """Answer every error as problem details."""

    @app.exception_handler(ApiProblem)
    async def _api_problem(request: Request, exc: ApiProblem) -> JSONResponse:
        return problem_response(exc.status, exc.detail, request, exc.headers, **exc.members)

    @app.exception_handler(InvalidInput)
    async def _invalid(request: Request, exc: InvalidInput) -> JSONResponse:
        return problem_response(422, first_line(exc), request)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        detail, errors = _validation_errors(exc)
        return problem_response(422, detail, request, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else None
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            # Starlette's Allow names only the first route whose path matched (GET and POST /v1/jobs are two).
            headers["Allow"] = ", ".join(allowed_methods(request)) or headers.get("Allow", "")
        return problem_response(exc.status_code, detail, request, headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return problem_response(500, "an unexpected error; it has been logged", request)


# Methods a 405's Allow header may name.
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(request: Request) -> list[str]:
    """The methods the request's path takes, for a 405's ``Allow`` (Starlette's names only the first route
    whose path matched: GET and POST ``/v1/jobs`` are two routes).

    As the OpenAPI schema says, where it describes the path: a concrete path before templated ones
    (``/v1/jobs/upload`` is POST only, though ``/v1/jobs/{job_id}`` would take GET of it). Other
    paths: a mount of static files takes GET and HEAD; the rest, what their routes take.
    """
    from starlette.routing import Match, Mount

    path = request.scope.get("path", "")
    documented = request.app.openapi().get("paths", {})
    matching = [template for template in documented if _template(template).fullmatch(path)]
    chosen = [template for template in matching if "{" not in template] or matching
    methods = {method.upper() for template in chosen for method in documented[template]}
    if methods:
        return [method for method in _METHODS if method in methods]
    routes = request.app.router.routes
    if any(isinstance(r, Mount) and r.matches(request.scope)[0] != Match.NONE for r in routes):
        return ["GET", "HEAD"]
    return [
        method
        for method in _METHODS
        if any(route.matches({**request.scope, "method": method})[0] == Match.FULL for route in routes)
    ]


def _template(path: str) -> re.Pattern[str]:
    """An OpenAPI path template as a regular expression (``{name}``: one path segment)."""
    return re.compile("".join("[^/]+" if part.startswith("{") else re.escape(part) for part in _PARTS.split(path)))


_PARTS = re.compile(r"(\{[^}/]+\})")


# OpenAPI: the problem answers each route may give.
def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {
        status: {"model": Problem, "description": HTTPStatus(status).phrase, "content": {PROBLEM_JSON: {}}}
        for status in statuses
    }
