"""Secrets in a config never appear in anything ``odm`` prints: not in a plan, a progress line,
a log line (-vv) or an error."""

from __future__ import annotations

import json
import logging
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

import odm
from odm.cli import EXIT_ERROR, EXIT_OK, main

from ..servers import free_port

SECRET = "s3cr3t-Pa55word"
KEY_ID = "AKIDSECRETKEYID42"


def write(path: Path, name: str, info: dict[str, Any]) -> Path:
    path.write_text(json.dumps({"database": {"dbName": name, "dbInfo": info}}))
    return path


def test_a_copy_to_dynamodb_never_shows_the_aws_keys(_targets: Any, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    reg = _targets("dynamodb").registry()
    info = {**reg.backend.info, "awsSecretKeyId": KEY_ID, "awsSecretAccessKey": SECRET, "tablePrefix": f"s{uuid.uuid4().hex[:6]}_"}
    reg.close()
    (tmp_path / "vault.py").write_text("from odm import Model, fields\n\n\nclass Box(Model):\n    note = fields.String()\n\n"
                                       "    class Meta:\n        name = 'boxes'\n")
    source = write(tmp_path / "a.json", "sqlite", {"path": str(tmp_path / "a.db")})
    target = write(tmp_path / "b.json", "dynamodb", info)
    handlers = list(logging.getLogger("odm").handlers)
    assert main(["-vv", "sync", str(target), str(tmp_path / "vault.py"), "--dry-run"]) == EXIT_OK
    assert logging.getLogger("odm").handlers == handlers  # -vv logs for that command only
    box = sys.modules.pop("vault").Box  # the module the command loaded from the file
    with odm.Registry.from_file(source) as src:
        src.register(box)
        src.sync()
        box.insert_many([box(note=f"n{i}") for i in range(20)])
    assert main(["-vv", "copy", "--from", str(source), "--to", str(target), str(tmp_path / "vault.py"),
                 "--batch-size", "5", "--progress-interval", "0"]) == EXIT_OK
    sys.modules.pop("vault", None)
    out = capsys.readouterr()
    assert "Box: 20 in source, 20 in target: OK" in out.out
    for text in (out.out, out.err):
        assert SECRET not in text and KEY_ID not in text


@pytest.mark.parametrize("name, info", [
    ("postgres", lambda port: {"dsn": f"postgresql://app:{SECRET}@127.0.0.1:{port}/app"}),
    ("postgres", lambda port: {"host": f"127.0.0.1:{port}", "database": "app", "user": "app", "pass": SECRET}),
    ("mongodb", lambda port: {"uri": f"mongodb://app:{SECRET}@127.0.0.1:{port}/app", "timeout": 0.3}),
    ("dynamodb", lambda port: {"endpoint": f"http://127.0.0.1:{port}", "awsSecretKeyId": KEY_ID,
                               "awsSecretAccessKey": SECRET, "awsRegion": "us-east-1"}),
], ids=["postgres-dsn", "postgres-pass", "mongodb-uri", "dynamodb"])
@pytest.mark.parametrize("command", ["check", "sync", "copy-from", "copy-to"])
def test_errors_never_show_a_secret(tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, info: Any,
                                    command: str) -> None:
    port = free_port()  # nothing listens there
    bad = write(tmp_path / "bad.json", name, info(port))
    good = write(tmp_path / "good.json", "sqlite", {"path": str(tmp_path / "good.db")})
    (tmp_path / "m.py").write_text("from odm import Model, fields\n\n\nclass Thing(Model):\n    x = fields.Integer()\n\n"
                                   "    class Meta:\n        name = 'things'\n")
    argv = {"check": ["check", str(bad)], "sync": ["sync", str(bad), str(tmp_path / "m.py")],
            "copy-from": ["copy", "--from", str(bad), "--to", str(good), str(tmp_path / "m.py")],
            "copy-to": ["copy", "--from", str(good), "--to", str(bad), str(tmp_path / "m.py")]}[command]
    if command == "copy-to":
        assert main(["sync", str(good), str(tmp_path / "m.py")]) == EXIT_OK
        capsys.readouterr()
    assert main(["-vv", *argv]) == EXIT_ERROR
    out = capsys.readouterr()
    assert out.err.splitlines()[-1].startswith("odm: ") and str(port) in out.err
    assert SECRET not in out.out + out.err and KEY_ID not in out.out + out.err
