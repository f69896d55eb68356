"""``odm copy`` as a process: stopped by Ctrl-C (SIGINT) or SIGTERM midway and resumed, and its
progress bar on a real terminal. SQLite to SQLite (tests/backends/test_cli_copy.py covers the
other backends)."""

from __future__ import annotations

import json
import os
import pty
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ODM = str(Path(sys.executable).with_name("odm"))
MODELS = ("from odm import Model, fields\n\n\nclass Row(Model):\n    n = fields.Integer()\n    label = fields.String()\n\n"
          "    class Meta:\n        name = 'rows'\n        hash_key = 'n'\n")


def prepare(folder: Path, count: int) -> tuple[Path, Path]:
    (folder / "rows.py").write_text(MODELS)
    source, target = folder / "a.json", folder / "b.json"
    source.write_text(json.dumps({"database": {"dbName": "sqlite", "dbInfo": {"path": str(folder / "a.db")}}}))
    target.write_text(json.dumps({"database": {"dbName": "sqlite", "dbInfo": {"path": str(folder / "b.db")}}}))
    code = (f"import odm, rows\nwith odm.Registry.from_file({str(source)!r}) as reg:\n    reg.register(rows.Row)\n"
            f"    reg.sync()\n    rows.Row.insert_many([rows.Row(n=i, label='r%d' % i) for i in range({count})])\n")
    subprocess.run([sys.executable, "-c", code], cwd=folder, check=True, timeout=120)
    return source, target


def keys(db: Path) -> list[int]:
    with sqlite3.connect(db) as conn:
        return [json.loads(doc)["n"] for (doc,) in conn.execute('SELECT "doc" FROM "rows"')]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_copy_stopped_by_a_signal_resumes_where_it_stopped(tmp_path: Path, signum: int) -> None:
    source, target = prepare(tmp_path, 6000)
    argv = [ODM, "copy", "--from", str(source), "--to", str(target), "rows", "--progress-interval", "0"]
    # Batches of 2 and a line per batch: the stderr pipe fills long before the copy ends, so the
    # command is surely midway (blocked on its progress output) when the signal comes.
    proc = subprocess.Popen([*argv, "--batch-size", "2"], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    while "items (" not in proc.stderr.readline():
        pass
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signum, err[-500:]
    last = err.strip().splitlines()[-1]
    assert last.startswith("odm: interrupted") and "run the same command again to resume" in last
    assert "Traceback" not in err
    checkpoint = json.loads((tmp_path / "b.json.odm-copy.json").read_text())["models"]["Row"]
    assert 0 < checkpoint["copied"] < 6000 and checkpoint["cursor"]
    assert len(keys(tmp_path / "b.db")) >= checkpoint["copied"]
    done = subprocess.run([*argv, "--batch-size", "500"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "resuming from" in done.stdout and "Row: 6000 in source, 6000 in target: OK" in done.stdout
    assert f"resuming after {checkpoint['copied']}" in done.stderr
    assert sorted(keys(tmp_path / "b.db")) == list(range(6000))
    assert not (tmp_path / "b.json.odm-copy.json").exists()


def test_on_a_terminal_progress_is_one_line_redrawn(tmp_path: Path) -> None:
    source, target = prepare(tmp_path, 300)
    primary, secondary = pty.openpty()
    proc = subprocess.Popen([ODM, "copy", "--from", str(source), "--to", str(target), "rows", "--batch-size", "50"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=secondary, text=True)
    os.close(secondary)
    shown = b""
    while True:
        try:
            chunk = os.read(primary, 4096)
        except OSError:  # EIO: the command closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    os.close(primary)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0
    text = shown.decode()
    assert "\r" in text and "300/300 items (100%)" in text and "items/s" in text and "ETA" in text
    assert text.count("\n") == 1  # one line, redrawn, ended once the model is done
    assert "[########################] Row" in text
    assert "Row: 300 in source, 300 in target: OK" in out


def test_plain_progress_lines_when_not_on_a_terminal(tmp_path: Path) -> None:
    source, target = prepare(tmp_path, 100)
    done = subprocess.run([ODM, "copy", "--from", str(source), "--to", str(target), "rows", "--batch-size", "25",
                           "--progress-interval", "0"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0
    assert "\r" not in done.stderr
    assert done.stderr.splitlines() == ["Row: copying 100 items"] + [
        line for line in done.stderr.splitlines()[1:] if line.startswith(("Row: 25/100", "Row: 50/100", "Row: 75/100",
                                                                          "Row: 100/100"))]
    assert len(done.stderr.splitlines()) == 5


def test_a_checkpoint_of_another_copy_and_an_unknown_model_are_refused(tmp_path: Path) -> None:
    source, target = prepare(tmp_path, 3)
    other = tmp_path / "other.json"
    other.write_text(source.read_text())
    (tmp_path / "b.json.odm-copy.json").write_text(json.dumps({"format": 1, "from": str(other), "to": str(target),
                                                              "cursor_key": "00" * 32, "models": {}}))
    done = subprocess.run([ODM, "copy", "--from", str(source), "--to", str(target), "rows"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and done.stderr.count("\n") == 1
    assert done.stderr.startswith("odm: The checkpoint ") and "belongs to a copy from" in done.stderr
    unknown = subprocess.run([ODM, "copy", "--from", str(source), "--to", str(target), "rows", "Rows"], cwd=tmp_path,
                             capture_output=True, text=True, timeout=120)
    assert unknown.returncode == 2 and unknown.stderr == "odm: no model named Rows in rows (it has Row)\n"


#: Runs ``odm copy`` with a stdout that signals the command itself once it writes a given text: the
#: signal comes at that exact point (outside the copy step), not at a time the test guesses.
SIGNAL_AT = """
import os, signal, sys
from odm.cli import main

signum, text = int(sys.argv[1]), sys.argv[2]

class SignalAt:
    def __init__(self, stream):
        self.stream, self.sent = stream, False
    def write(self, data):
        self.stream.write(data)
        if text in data and not self.sent:
            self.sent = True
            self.stream.flush()
            os.kill(os.getpid(), signum)
        return len(data)
    def flush(self):
        self.stream.flush()

sys.stdout = SignalAt(sys.stdout)
raise SystemExit(main(sys.argv[3:]))
"""


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize("at", ["Copying from", "in target: OK"])  # registries just opened; the final counts
def test_a_signal_outside_the_copy_step_is_one_line_and_exit_128_plus_signal(tmp_path: Path, signum: int,
                                                                              at: str) -> None:
    source, target = prepare(tmp_path, 10)
    argv = ["copy", "--from", str(source), "--to", str(target), "rows"]
    done = subprocess.run([sys.executable, "-c", SIGNAL_AT, str(int(signum)), at, *argv], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert at in done.stdout  # the signal came where it was meant to
    assert done.returncode == 128 + signum, done.stderr
    assert "Traceback" not in done.stderr
    last = done.stderr.splitlines()[-1]  # after the progress lines, if the copy step ran
    # Before the first batch there is no checkpoint file to point to; after the copy there is.
    kept = "no batch was checkpointed yet" if at == "Copying from" else "the checkpoint "
    assert last.startswith(f"odm: interrupted ({signal.Signals(signum).name}); {kept}")
    assert "run the same command again" in last
    again = subprocess.run([ODM, *argv], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert "Row: 10 in source, 10 in target: OK" in again.stdout
    assert sorted(keys(tmp_path / "b.db")) == list(range(10))
