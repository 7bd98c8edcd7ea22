"""Flow-run heartbeats without the wait at the end of every run.

Prefect 3.8.8's synchronous flow engine joins its heartbeat thread when a flow run ends; the thread
sleeps in 1-second steps, so every flow run waited up to 1 s for it (an identical rerun: 1.06 s instead
of 0.12 s). Prefect's asynchronous engine does not join (``join_on_exit=False``): the daemon thread sees
the stop flag within a second and ends by itself, and it never emits for a run in a final state. Our
flows are synchronous; :func:`install` (called by :mod:`flows.pipeline`) gives them the asynchronous
engine's choice. Heartbeats
are still sent while a run goes on, so the zombie-run automation (``placewright server start``) still
marks a killed run Crashed.
"""

from __future__ import annotations

import inspect
from contextlib import AbstractContextManager
from typing import Any

from prefect import flow_engine

_SEND = flow_engine._send_heartbeats


def _send_without_join(engine: Any, join_on_exit: bool = True) -> AbstractContextManager[None]:
    return _SEND(engine, join_on_exit=False)


def install() -> bool:
    """Replace the engine's heartbeat context (once); False when this Prefect has no such hook."""
    if getattr(flow_engine._send_heartbeats, "__wrapped_by_placewright__", False):
        return True
    if "join_on_exit" not in inspect.signature(_SEND).parameters:
        return False
    _send_without_join.__wrapped_by_placewright__ = True  # type: ignore[attr-defined]
    flow_engine._send_heartbeats = _send_without_join
    return True
