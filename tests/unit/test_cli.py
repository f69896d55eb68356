from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from odm.cli import main


def test_check_and_sync(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"database": {"dbName": "sqlite", "dbInfo": {"path": str(tmp_path / "x.db")}}}))
    (tmp_path / "climodels.py").write_text(
        "from odm import Model, fields\nclass Widget(Model):\n    size = fields.Integer()\n"
        "    class Meta:\n        name = 'widgets'\n        indexes = ['size']\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert main(["check", str(cfg)]) == 0
    assert main(["sync", str(cfg), "climodels"]) == 0
    out = capsys.readouterr().out
    assert "created table widgets" in out and "widgets__ix_size" in out
    assert main(["sync", str(cfg), "climodels"]) == 0
    assert "Nothing to do" in capsys.readouterr().out
    sys.modules.pop("climodels", None)


def test_bad_config_exit_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(tmp_path / "missing.json")]) == 2
    assert "does not exist" in capsys.readouterr().err
