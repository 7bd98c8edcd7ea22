"""``placewright keys`` and ``placewright serve`` on the command line: what operators type, and their errors."""

from __future__ import annotations

import json
import socket
import sqlite3
from pathlib import Path

from tests.cli.test_cli_errors import run_cli


def test_a_key_is_printed_once_and_only_its_hash_is_kept(tmp_path: Path) -> None:
    made = run_cli(["keys", "create", "acme"], tmp_path)
    assert made.returncode == 0, made.stderr
    key = json.loads(made.stdout)
    assert key["token"].startswith(f"pw_{key['id']}_") and key["webhook_secret"].startswith("whsec_")

    listed = run_cli(["keys", "list"], tmp_path)
    assert listed.returncode == 0
    assert [k["name"] for k in json.loads(listed.stdout)] == ["acme"]
    assert key["token"] not in listed.stdout and key["webhook_secret"] not in listed.stdout
    database = tmp_path / ".placewright-service" / "service.db"
    with sqlite3.connect(database) as db:
        dump = "\n".join(db.iterdump())
    assert key["token"] not in dump
    assert key["token"].split("_", 2)[2] not in dump

    rotated = run_cli(["keys", "rotate-secret", "acme"], tmp_path)
    assert rotated.returncode == 0
    assert json.loads(rotated.stdout)["webhook_secret"] not in ("", key["webhook_secret"])
    assert run_cli(["keys", "revoke", "acme"], tmp_path).returncode == 0
    assert json.loads(run_cli(["keys", "list"], tmp_path).stdout)[0]["revoked"] is True


def test_key_mistakes_are_one_line_and_exit_2(tmp_path: Path) -> None:
    assert run_cli(["keys", "create", "acme"], tmp_path).returncode == 0
    for args, words in (
        (["keys", "create", "acme"], "acme"),
        (["keys", "revoke", "nobody"], "no key named 'nobody'"),
        (["keys", "rotate-secret", "nobody"], "no key named 'nobody'"),
    ):
        done = run_cli(args, tmp_path)
        assert done.returncode == 2, (args, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("placewright: error:") and words in lines[0], done.stderr


def test_serve_on_a_taken_port_is_one_line_and_starts_nothing(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_cli(["serve", "--port", str(port), "--workers", "0"], tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip() == f"placewright: error: cannot listen on 127.0.0.1:{port}: Address already in use"
    assert not (tmp_path / ".placewright-service").exists()


def test_bad_service_settings_are_one_line(tmp_path: Path) -> None:
    done = run_cli(["serve"], tmp_path, env={"PLACEWRIGHT_SERVICE__WORKERS": "-1"})
    assert done.returncode == 2
    assert done.stderr.startswith("placewright: error: bad configuration") and "service.workers" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
