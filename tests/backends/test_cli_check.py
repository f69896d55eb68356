"""``odm check`` makes a real round trip: OK against each test server, one line and exit 1 when unreachable."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from odm.cli import EXIT_ERROR, EXIT_OK, main

from ..servers import free_port


def write(tmp_path: Path, name: str, info: dict[str, Any]) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"database": {"dbName": name, "dbInfo": info}}))
    return path


def test_check_connects_to_the_real_server(target: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    reg = target.registry()
    name, info = reg.backend.name, dict(reg.backend.info)
    reg.close()
    assert main(["check", str(write(tmp_path, name, info))]) == EXIT_OK
    out = capsys.readouterr()
    assert "OK, connected to" in out.out and out.err == ""


SECRET = "s3cr3t-pa55word"


@pytest.mark.parametrize("name, info", [
    ("postgres", lambda port: {"host": f"127.0.0.1:{port}", "database": "app", "user": "app", "pass": SECRET}),
    ("postgres", lambda port: {"dsn": f"postgresql://app:{SECRET}@127.0.0.1:{port}/app"}),
    ("mongodb", lambda port: {"host": f"127.0.0.1:{port}", "user": "app", "pass": SECRET, "timeout": 0.3}),
    ("mongodb", lambda port: {"uri": f"mongodb://app:{SECRET}@127.0.0.1:{port}/app", "timeout": 0.3}),
    ("dynamodb", lambda port: {"endpoint": f"http://127.0.0.1:{port}", "awsSecretKeyId": "AKIDCHECK",
                               "awsSecretAccessKey": SECRET}),
], ids=["postgres-host", "postgres-dsn", "mongodb-host", "mongodb-uri", "dynamodb"])
def test_check_of_an_unreachable_server_fails_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                            name: str, info: Any) -> None:
    port = free_port()  # nothing listens there
    assert main(["check", str(write(tmp_path, name, info(port)))]) == EXIT_ERROR
    out = capsys.readouterr()
    assert out.out == "" and out.err.startswith("odm: ") and out.err.count("\n") == 1
    assert str(port) in out.err and SECRET not in out.err


def test_check_with_refused_credentials_fails_with_one_line(_targets: Any, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """A role the PostgreSQL server does not know: refused whatever its authentication method."""
    import psycopg.conninfo

    reg = _targets("postgres").registry()
    params = psycopg.conninfo.conninfo_to_dict(reg.backend.info["dsn"])
    reg.close()
    params.update(user="odm_no_such_role", password=SECRET)
    dsn = psycopg.conninfo.make_conninfo(**params)
    assert main(["check", str(write(tmp_path, "postgres", {"dsn": dsn}))]) == EXIT_ERROR
    out = capsys.readouterr()
    assert out.out == "" and out.err.startswith("odm: ") and out.err.count("\n") == 1
    assert "odm_no_such_role" in out.err and SECRET not in out.err
