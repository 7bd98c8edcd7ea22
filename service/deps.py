"""What routes depend on: the runtime, the caller's API key, and the per-key request rate."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.problems import ApiProblem
from service.records import ApiKey
from service.runtime import Runtime, TooMany


def runtime(request: Request) -> Runtime:
    return request.app.state.runtime


RuntimeDep = Annotated[Runtime, Depends(runtime)]


def token_of(request: Request) -> str | None:
    """The API key token from ``Authorization: Bearer <token>`` or ``X-Api-Key: <token>``."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.headers.get("x-api-key") or None


def _limited(rt: Runtime, key: ApiKey) -> ApiKey:
    try:
        rt.check_rate(key)
    except TooMany as exc:
        raise ApiProblem(429, str(exc), headers={"Retry-After": str(exc.retry_after)}) from None
    return key


def api_key(request: Request, rt: RuntimeDep) -> ApiKey:
    """The caller's live API key (401 without one), counted against its rate limit (429)."""
    token = token_of(request)
    key = rt.records.authenticate(token) if token else None
    if key is None:
        detail = "an API key is required (Authorization: Bearer <key>)" if not token else "the API key is not valid"
        raise ApiProblem(401, detail, headers={"WWW-Authenticate": 'Bearer realm="placewright"'})
    return _limited(rt, key)


def legacy_key(request: Request, rt: RuntimeDep) -> ApiKey:
    """The prototype's routes: the caller's key if it sends one, else ``service.legacy_key`` when set."""
    if token_of(request) is not None:
        return api_key(request, rt)
    name = rt.settings.service.legacy_key
    key = rt.records.key_named(name) if name else None
    if key is None or key.revoked:
        raise ApiProblem(
            401,
            "an API key is required (Authorization: Bearer <key>); service.legacy_key opens these routes without one",
            headers={"WWW-Authenticate": 'Bearer realm="placewright"'},
        )
    return _limited(rt, key)


KeyDep = Annotated[ApiKey, Depends(api_key)]
LegacyKeyDep = Annotated[ApiKey, Depends(legacy_key)]
