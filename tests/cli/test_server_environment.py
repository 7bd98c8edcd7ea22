"""The environment of the Prefect servers Placewright starts (flows/server_environment.py), and what it records."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from flows.server_environment import DEFAULTS, server_environment
from tests.cli.test_cli_server import _env as cli_environment

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "olive-oil-bottle.jpg"
BATCH = "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE"
INTERVAL = "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_FLUSH_INTERVAL"


def test_defaults_fill_what_the_user_did_not_set(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in DEFAULTS:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("SOMETHING_ELSE", "kept")
    env = server_environment(PREFECT__SERVER_FINAL="1")
    assert {key: env[key] for key in DEFAULTS} == DEFAULTS
    assert env["SOMETHING_ELSE"] == "kept" and env["PREFECT__SERVER_FINAL"] == "1"
    assert int(env[INTERVAL]) >= 1, "Prefect reads the interval as whole seconds: 0 would make it poll without pause"


def test_the_user_wins_over_a_default_and_fixed_values_win_over_the_user(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BATCH, "1")
    monkeypatch.setenv("PREFECT_API_URL", "http://elsewhere/api")
    env = server_environment(PREFECT_API_URL="http://127.0.0.1:4200/api")
    assert env[BATCH] == "1"
    assert env["PREFECT_API_URL"] == "http://127.0.0.1:4200/api"


def test_a_private_server_records_every_task_run_before_it_stops(tmp_path: Path) -> None:
    """The CLI's private server is stopped when the run ends: the task runs it still held are written first."""
    home = tmp_path / "prefect-home"
    env = cli_environment(home, tmp_path)  # no PREFECT_API_URL, no background server in this home: a private one
    argv = [sys.executable, "-m", "placewright.cli", "run", str(EXAMPLE), "-p", "a", "-p", "b", "--size", "256x256"]
    run = subprocess.run([*argv, "--out", "out"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    (database,) = home.glob("*.db")
    with sqlite3.connect(database) as db:
        states = [row[0] for row in db.execute("SELECT state_type FROM task_run")]
        (flow_state,) = [row[0] for row in db.execute("SELECT state_type FROM flow_run")]
    # ingest, 3 product stages, 2 x (4 variant stages + the check), publish
    assert (flow_state, sorted(states)) == ("COMPLETED", ["COMPLETED"] * 15)
