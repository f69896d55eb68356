from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from odm.cli import EXIT_ERROR, EXIT_USAGE, main


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


def test_bad_config_is_exit_code_1_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(tmp_path / "missing.json")]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "does not exist" in err and err.count("\n") == 1
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"database": {"dbName": "sqlite", "dbInfo": {"Path": str(tmp_path / "x.db")}}}))
    assert main(["check", str(cfg)]) == EXIT_ERROR
    assert "'Path' (did you mean 'path'?)" in capsys.readouterr().err
    assert not (tmp_path / "x.db").exists()


def test_usage_errors_are_exit_code_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"database": {"dbName": "sqlite", "dbInfo": {"path": str(tmp_path / "x.db")}}}))
    with pytest.raises(SystemExit) as info:
        main(["frobnicate"])
    assert info.value.code == EXIT_USAGE
    assert main(["sync", str(cfg), "no_such_module_here"]) == EXIT_USAGE
    assert "no module named 'no_such_module_here'" in capsys.readouterr().err
    assert main(["sync", str(cfg), "json"]) == EXIT_USAGE  # a module with no models
    assert "no models found in json" in capsys.readouterr().err
    assert not (tmp_path / "x.db").exists()  # nothing was opened
