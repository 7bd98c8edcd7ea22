"""Flow runs send heartbeats while they run, and end without waiting for the heartbeat thread."""

from __future__ import annotations

import threading
import time

import pytest
from prefect import flow, flow_engine
from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

import flows.pipeline  # noqa: F401  (installs the heartbeat behaviour, as the flows' import does)

pytestmark = pytest.mark.usefixtures("prefect_server")


def _heartbeat_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if "heartbeat_loop" in repr(getattr(t, "_target", None) or "")
            or "heartbeat_loop" in repr(getattr(t, "_args", ""))]  # fmt: skip


def test_a_flow_run_ends_without_joining_its_heartbeat_thread() -> None:
    assert getattr(flow_engine._send_heartbeats, "__wrapped_by_placewright__", False)

    @flow
    def quick() -> int:
        time.sleep(0.2)
        return 1

    before = set(_heartbeat_threads())
    with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: 30}):
        assert quick() == 1
        left = [t for t in _heartbeat_threads() if t not in before and t.is_alive()]
    # The thread was not waited for: it is still finishing its 1-second sleep, and ends by itself.
    assert left, "the heartbeat thread was joined (or never started)"
    for thread in left:
        assert thread.daemon
        thread.join(timeout=3)
        assert not thread.is_alive()
