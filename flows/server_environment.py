"""The environment of the Prefect servers Placewright starts (``placewright server start``, a CLI run's private one).

Both run Prefect's server (its ``create_app`` factory under uvicorn) with the caller's environment plus
the defaults below; a variable the user set wins.

- No telemetry unless asked for (self-hosted): :data:`NO_TELEMETRY`, also the default of every Placewright
  process that talks to Prefect (:func:`without_telemetry`).
- **Task runs recorded in batches.** Task runs reach the server as events, and by default its task-run
  recorder writes each event in a transaction of its own. Writing what arrived together, at least once
  a second, halved the server's CPU per 8-variant run (0.90 to 0.42 CPU-s, ``benchmarks/bench_speed.py``),
  CPU that a small machine's image work waits for. The dashboard shows a task run's state up to a
  second later. Prefect reads the interval as whole seconds (a value under 1 makes the recorder poll
  without pause), so it stays at 1. A server stopped normally writes what it holds first.
"""

from __future__ import annotations

import os

# Set DO_NOT_TRACK=0 (and PREFECT_SERVER_ANALYTICS_ENABLED=true on a server) to allow Prefect's telemetry.
NO_TELEMETRY = {"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}
DEFAULTS = {
    **NO_TELEMETRY,
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE": "200",
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_FLUSH_INTERVAL": "1",
}


def server_environment(**fixed: str) -> dict[str, str]:
    """This process's environment, :data:`DEFAULTS` where it sets nothing, then ``fixed`` (always as given)."""
    return {**DEFAULTS, **os.environ, **fixed}


def without_telemetry() -> None:
    """Make :data:`NO_TELEMETRY` this process's default (before Prefect is imported); the user's values win."""
    for key, value in NO_TELEMETRY.items():
        os.environ.setdefault(key, value)
