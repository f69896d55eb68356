from __future__ import annotations

import hashlib
import importlib.metadata
import json
import sqlite3
import subprocess
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
    assert main(["sync", str(cfg), "climodels"]) == 0
    assert main(["check", str(cfg)]) == 0
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


# -- the command as a user runs it ----------------------------------------------------------------
ODM = str(Path(sys.executable).with_name("odm"))  # the console script pip installed
MODELS = ("from odm import Model, fields\n\n\nclass Gizmo(Model):\n    size = fields.Integer()\n\n"
          "    class Meta:\n        name = 'gizmos'\n        indexes = ['size']\n")


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, timeout=120)


def sqlite_config(folder: Path, name: str = "cli.json") -> Path:
    cfg = folder / name
    cfg.write_text(json.dumps({"database": {"dbName": "sqlite", "dbInfo": {"path": str(folder / "app.db")}}}))
    return cfg


def test_version_is_the_installed_package_version() -> None:
    done = run(ODM, "--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"odm (microkubes-odm) {importlib.metadata.version('microkubes-odm')}"


@pytest.mark.parametrize("command", [[], ["check"], ["sync"], ["copy"]])
def test_every_subcommand_has_help(command: list[str]) -> None:
    done = run(sys.executable, "-m", "odm.cli", *command, "--help")
    assert done.returncode == 0 and done.stderr == ""
    assert done.stdout.startswith("usage: odm") and ("exit codes" in done.stdout or command)


@pytest.mark.parametrize("argv, says", [
    ([], "the following arguments are required: COMMAND"),
    (["copy", "--from", "a.json", "models"], "the following arguments are required: --to"),
    (["sync", "cfg.json"], "the following arguments are required: MODULE"),
    (["copy", "--from", "a.json", "--to", "b.json", "models", "--batch-size", "many"], "invalid int value: 'many'"),
])
def test_a_usage_error_is_one_line_and_exit_code_2(argv: list[str], says: str) -> None:
    done = run(ODM, *argv)
    assert done.returncode == EXIT_USAGE and done.stdout == ""
    assert done.stderr.startswith("odm: ") and done.stderr.count("\n") == 1 and says in done.stderr


def test_modules_are_found_from_the_current_directory(tmp_path: Path) -> None:
    (tmp_path / "models.py").write_text(MODELS)
    sqlite_config(tmp_path)
    done = run(ODM, "sync", "cli.json", "models", cwd=tmp_path)  # the console script: cwd is not on sys.path by itself
    assert done.returncode == 0, done.stderr
    assert "create table gizmos" in done.stdout and "Traceback" not in done.stderr


def test_a_module_may_be_a_file_path_importing_its_neighbours(tmp_path: Path) -> None:
    app = tmp_path / "app"
    app.mkdir()
    (app / "base.py").write_text(MODELS)
    (app / "models.py").write_text("from base import Gizmo  # a sibling module\n\n"
                                   "from odm import Model, fields\n\n\nclass Widget(Model):\n    n = fields.Integer()\n\n"
                                   "    class Meta:\n        name = 'widgets'\n")
    cfg = sqlite_config(tmp_path)
    done = run(ODM, "sync", str(cfg), "./app/models.py", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "create table widgets" in done.stdout and "gizmos" not in done.stdout  # models defined in that file only
    missing = run(ODM, "sync", str(cfg), "./app/nothing.py", cwd=tmp_path)
    assert missing.returncode == EXIT_USAGE and missing.stderr == "odm: no such module file: app/nothing.py\n"


def test_an_odm_error_is_one_line_without_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "models.py").write_text(MODELS.replace("indexes = ['size']", "indexes = ['sise']"))
    sqlite_config(tmp_path)
    done = run(ODM, "sync", "cli.json", "models", cwd=tmp_path)
    assert done.returncode == EXIT_ERROR and done.stdout == ""
    assert done.stderr.startswith("odm: ") and done.stderr.count("\n") == 1 and "sise" in done.stderr


def test_sync_dry_run_changes_nothing(tmp_path: Path) -> None:
    (tmp_path / "models.py").write_text(MODELS)
    sqlite_config(tmp_path)
    dry = run(ODM, "sync", "cli.json", "models", "--dry-run", cwd=tmp_path)
    assert dry.returncode == 0 and "+ create table gizmos" in dry.stdout and "nothing was changed" in dry.stdout
    real = run(ODM, "sync", "cli.json", "models", cwd=tmp_path)
    assert "+ create table gizmos" in real.stdout and "done: created table gizmos" in real.stdout  # dry changed nothing


# -- check and sync --dry-run write nothing, not even SQLite's journal mode ------------------------
def snapshot(folder: Path) -> dict[str, str]:
    """Every file in the folder with its checksum (the configs and models included)."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def test_a_dry_run_on_a_missing_sqlite_file_plans_the_file_and_creates_nothing(tmp_path: Path) -> None:
    (tmp_path / "models.py").write_text(MODELS)
    sqlite_config(tmp_path)
    before = snapshot(tmp_path)
    dry = run(ODM, "sync", "cli.json", "models", "--dry-run", cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert f"+ create database file {tmp_path / 'app.db'}" in dry.stdout
    assert "+ create table gizmos" in dry.stdout and "+ create index gizmos__ix_size" in dry.stdout
    assert "Dry run: 3 change(s) planned, nothing was changed." in dry.stdout
    assert snapshot(tmp_path) == before  # no app.db, no -wal, no -shm


def test_a_dry_run_leaves_an_existing_sqlite_file_byte_for_byte(tmp_path: Path) -> None:
    (tmp_path / "models.py").write_text(MODELS)
    sqlite_config(tmp_path)
    with sqlite3.connect(tmp_path / "app.db") as conn:  # a database of another program: journal mode delete
        conn.execute("CREATE TABLE other (x)")
    conn.close()
    before = snapshot(tmp_path)
    dry = run(ODM, "sync", "cli.json", "models", "--dry-run", cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert "+ create table gizmos" in dry.stdout and "create database file" not in dry.stdout
    assert snapshot(tmp_path) == before  # still journal mode delete: no -wal or -shm, same bytes
    checked = run(ODM, "check", "cli.json", cwd=tmp_path)
    assert checked.returncode == 0 and "OK" in checked.stdout, checked.stderr
    assert snapshot(tmp_path) == before
    with sqlite3.connect(tmp_path / "app.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    conn.close()


def test_a_dry_run_reads_a_database_odm_made(tmp_path: Path) -> None:
    """odm's own files are in WAL mode: read-only, the plan still sees what exists."""
    (tmp_path / "models.py").write_text(MODELS)
    sqlite_config(tmp_path)
    assert run(ODM, "sync", "cli.json", "models", cwd=tmp_path).returncode == 0
    before = snapshot(tmp_path)
    dry = run(ODM, "sync", "cli.json", "models", "--dry-run", cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert "= table exists gizmos" in dry.stdout and "Nothing to do" in dry.stdout
    assert snapshot(tmp_path) == before


def test_check_of_a_missing_sqlite_file_says_so_and_creates_nothing(tmp_path: Path) -> None:
    cfg = tmp_path / "typo.json"
    cfg.write_text(json.dumps({"database": {"dbName": "sqlite", "dbInfo": {"path": str(tmp_path / "ap.db")}}}))
    before = snapshot(tmp_path)
    done = run(ODM, "check", str(cfg), cwd=tmp_path)
    assert done.returncode == EXIT_ERROR and done.stdout == ""
    assert done.stderr == (f"odm: {cfg}: the SQLite database file '{tmp_path / 'ap.db'}' does not exist (check the "
                           "path; 'odm sync' creates it with the tables)\n")
    assert snapshot(tmp_path) == before
