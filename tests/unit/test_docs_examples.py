"""The runnable examples in README.md and docs/ run as written (on the embedded SQLite default),
so a documented example cannot rot.

A ```python block runs when it starts with an import (it is then a whole example; the other
blocks are fragments that show a call among others). Each runs in a fresh interpreter in a
temporary directory, so files it creates (``app.db``) start empty. A page may hold a whole
example that cannot run here (it imports the reader's own service, say): an HTML comment
``<!-- not run: reason -->`` on the line before its block says so.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("**/*.md"))]
_BLOCK = re.compile(r"^(?P<before>[^\n]*)\n(?P<indent>[ \t]*)```python\n(?P<body>.*?)^(?P=indent)```", re.M | re.S)


def _examples() -> list[tuple[str, str]]:
    found = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for m in _BLOCK.finditer(text):
            body = textwrap.dedent(m["body"])
            if not body.lstrip().startswith(("import ", "from ")) or "not run:" in m["before"]:
                continue
            line = text.count("\n", 0, m.start("body")) + 1
            found.append((f"{page.relative_to(ROOT)}:{line}", body))
    return found


EXAMPLES = _examples()


def test_the_pages_hold_whole_examples() -> None:
    # Guards the block pattern itself: a change of fence style must not silently run nothing.
    assert len(EXAMPLES) >= 7, [name for name, _ in EXAMPLES]


@pytest.mark.parametrize(("where", "code"), EXAMPLES, ids=[name for name, _ in EXAMPLES])
def test_example_runs(where: str, code: str, tmp_path: Path) -> None:
    for _ in range(2):  # twice: an example must not depend on a fresh directory (app.db persists)
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                              cwd=tmp_path)
        assert done.returncode == 0, f"{where} failed:\n{done.stderr[-3000:]}"
