"""The examples run as documented (on the embedded SQLite default), so they cannot rot."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(script: str) -> str:
    done = subprocess.run([sys.executable, str(ROOT / "examples" / script)], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_async_quickstart_runs_twice() -> None:
    for _ in range(2):
        out = _run("async_quickstart.py")
        assert "created: 100" in out and "read back: 100 accounts" in out
        assert "GET user7: 200 | GET nobody: 404" in out
        assert "stale save refused" in out and "deleted: 100" in out
