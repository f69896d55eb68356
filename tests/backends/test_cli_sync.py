"""``odm sync`` on every backend: the plan printed first, ``--dry-run`` changing nothing, the
applied actions logged at INFO on ``odm.sync``."""

from __future__ import annotations

import json
import logging
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from odm import Index, Model, fields
from odm.cli import EXIT_OK, main

MODULE = __name__


class CliGadget(Model):
    """A table with an index (a GSI on DynamoDB) and a TTL: everything a plan shows."""

    gid = fields.String(required=True)
    color = fields.String()
    until = fields.DateTime()

    class Meta:
        name = "cli_sync_gadgets"
        hash_key = "gid"
        indexes = [Index("color")]
        ttl = {"attribute": "until", "seconds": 60}


def config_of(target: Any, tmp_path: Path) -> Path:
    reg = target.registry()
    name, info = reg.backend.name, dict(reg.backend.info)
    reg.close()
    path = tmp_path / f"{target.name}.json"
    path.write_text(json.dumps({"database": {"dbName": name, "dbInfo": info}}))
    return path


def table_exists(target: Any, table: str) -> bool:
    """Asked of the server with its own driver, not through odm's sync."""
    reg = target.registry()
    try:
        backend = reg.backend
        if backend.name == "mongodb":
            return table in backend.db.list_collection_names()
        if backend.name == "dynamodb":
            return backend.stored_table_name(table) in backend.client.list_tables()["TableNames"]
        return bool(backend.run(backend.table_exists_op(table)))
    finally:
        reg.close()


def test_dry_run_prints_the_plan_and_creates_nothing(target: Any, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    if target.name == "sqlite-memory":
        pytest.skip("a memory database lives only as long as the command's own connection")
    cfg = config_of(target, tmp_path)
    assert main(["sync", str(cfg), MODULE, "--dry-run"]) == EXIT_OK
    out = capsys.readouterr().out
    assert re.search(r"\+ create (table|collection) cli_sync_gadgets", out)
    assert "color" in out  # the index (GSI on DynamoDB) is in the plan
    assert "+ enable TTL cli_sync_gadgets" in out
    assert "nothing was changed" in out
    assert not table_exists(target, "cli_sync_gadgets")


def test_sync_shows_the_plan_applies_it_and_logs_each_action(target: Any, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str],
                                                             caplog: pytest.LogCaptureFixture) -> None:
    if target.name == "sqlite-memory":
        pytest.skip("a memory database lives only as long as the command's own connection")
    cfg = config_of(target, tmp_path)
    module = _write_part_module(tmp_path)  # MODULE given as a file path
    try:
        with caplog.at_level(logging.INFO, logger="odm.sync"):
            assert main(["sync", str(cfg), str(module)]) == EXIT_OK
        out = capsys.readouterr().out
        assert out.index("Plan for") < out.index(" cli_sync_parts") < out.index("done: created")
        assert "size" in out.split("Applied")[0]  # the index is planned
        logged = [r.getMessage() for r in caplog.records if r.name == "odm.sync"]
        assert any(re.search(r"created (table|collection) cli_sync_parts", m) for m in logged), logged
        assert all(r.levelno == logging.INFO for r in caplog.records if r.name == "odm.sync")
        assert table_exists(target, "cli_sync_parts")
        assert main(["sync", str(cfg), str(module)]) == EXIT_OK
        again = capsys.readouterr().out
        assert "Nothing to do" in again and re.search(r"= (table|collection) exists cli_sync_parts", again)
        assert again.count("exists") >= 2  # the index (or GSI) is listed as in place too
    finally:
        sys.modules.pop("cli_part_models", None)
        target.forget("cli_sync_parts")


def _write_part_module(tmp_path: Path) -> Path:
    """A models file defining only a TTL-free model (a DynamoDB Local server holds few TTL tables)."""
    path = tmp_path / "cli_part_models.py"
    path.write_text("from odm import Index, Model, fields\n\n\n"
                    "class CliPart(Model):\n    pid = fields.String(required=True)\n    size = fields.Integer()\n\n"
                    "    class Meta:\n        name = 'cli_sync_parts'\n        hash_key = 'pid'\n"
                    "        indexes = [Index('size')]\n")
    return path


def test_a_new_index_on_an_existing_table_is_planned_and_dry_run_leaves_it_out(
        target: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if target.name == "sqlite-memory":
        pytest.skip("a memory database lives only as long as the command's own connection")
    cfg = config_of(target, tmp_path)
    base = tmp_path / "base_parts.py"
    base.write_text("from odm import Index, Model, fields\n\n\n"
                    "class Spare(Model):\n    sid = fields.String(required=True)\n    size = fields.Integer()\n"
                    "    label = fields.String()\n\n    class Meta:\n        name = 'cli_sync_spares'\n"
                    "        hash_key = 'sid'\n        indexes = [Index('size')]\n")
    grown = tmp_path / "grown_parts.py"  # the same table, one more index (a unique one: guards on DynamoDB)
    grown.write_text(base.read_text().replace("indexes = [Index('size')]", "indexes = [Index('size'), Index('label', unique=True)]"))
    try:
        assert main(["sync", str(cfg), str(base)]) == EXIT_OK
        capsys.readouterr()
        for _ in range(2):  # the second dry run plans the same: the first created nothing
            assert main(["sync", str(cfg), str(grown), "--dry-run"]) == EXIT_OK
            plan = capsys.readouterr().out
            assert re.search(r"= (table|collection) exists cli_sync_spares", plan)
            assert re.search(r"\+ create (index|GSI) \S*label", plan), plan
            assert re.search(r"= (index|GSI) exists \S*size", plan), plan
        assert main(["sync", str(cfg), str(grown)]) == EXIT_OK
        assert re.search(r"done: created (index|GSI) \S*label", capsys.readouterr().out)
        assert main(["sync", str(cfg), str(grown)]) == EXIT_OK
        assert "Nothing to do" in capsys.readouterr().out
    finally:
        sys.modules.pop("base_parts", None)
        sys.modules.pop("grown_parts", None)
        target.forget("cli_sync_spares")
