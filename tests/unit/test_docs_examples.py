"""Every ```python block of README.md and docs/ runs as written, so a documented example cannot rot.

A block that starts with an import is a whole program. Other blocks say on the line before them,
in an HTML comment (invisible on the site), how they run or why they do not:

- ``<!-- run: continues -->``: a fragment that goes on from the page's previous block that ran;
  the blocks of one chain run in order, as one program.
- ``<!-- run: after NAME -->``: a fragment that needs a model declared elsewhere; it starts a
  program with ``tests/unit/docs_setup/NAME.py`` (a User model and a few users, say) in front.
- ``<!-- run: on BACKEND -->`` (alone, or ``run: after NAME, on BACKEND``): the program runs on
  that backend's test server instead of the embedded SQLite default.
- ``<!-- not run: reason -->``: the block cannot run here (it imports the reader's own service).

Anything else fails ``test_every_block_runs_or_says_why``. Each program runs twice in a fresh
interpreter, in a temporary directory holding ``config.json`` for its backend (SQLite: a file
``app.db`` there), with ``ODM_DB_NAME``/``ODM_DB_INFO`` set for a server backend: an example must
not depend on a fresh database.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests import servers

ROOT = Path(__file__).resolve().parents[2]
SETUP = Path(__file__).resolve().parent / "docs_setup"
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("**/*.md"))]
_BLOCK = re.compile(r"^(?P<before>[^\n]*)\n(?P<indent>[ \t]*)```python[ \t]*\n(?P<body>.*?)^(?P=indent)```", re.M | re.S)
_MARK = re.compile(r"<!--\s*(?P<kind>not run|run):\s*(?P<what>.*?)\s*-->")
_SERVERS = ("postgres", "mongodb", "dynamodb")


@dataclass
class Program:
    where: str  # page:line of its first block
    backend: str = "sqlite"
    parts: list[str] = field(default_factory=list)

    @property
    def code(self) -> str:
        return "\n".join(self.parts)


def _programs() -> tuple[list[Program], list[str]]:
    """The programs the pages make, and the blocks that neither run nor say why."""
    programs: list[Program] = []
    unexplained: list[str] = []
    for page in PAGES:
        text = "\n" + page.read_text(encoding="utf-8")  # so a block on the first line has a line before it
        current: Program | None = None
        for m in _BLOCK.finditer(text):
            body = textwrap.dedent(m["body"])
            where = f"{page.relative_to(ROOT)}:{text.count(chr(10), 0, m.start('body'))}"
            mark = _MARK.search(m["before"])
            if mark and mark["kind"] == "not run":
                if not mark["what"]:
                    unexplained.append(f"{where}: 'not run:' without a reason")
                continue
            options = [o.strip() for o in mark["what"].split(",")] if mark else []
            if "continues" in options:
                if current is None:
                    unexplained.append(f"{where}: 'run: continues' but no block before it ran")
                else:
                    current.parts.append(body)
                continue
            setup = [o.removeprefix("after ").strip() for o in options if o.startswith("after ")]
            on = [o.removeprefix("on ").strip() for o in options if o.startswith("on ")]
            if not setup and not body.lstrip().startswith(("import ", "from ")):
                unexplained.append(f"{where}: a fragment with no <!-- run: ... --> or <!-- not run: reason --> before it")
                continue
            current = Program(where, on[0] if on else "sqlite")
            if current.backend not in ("sqlite", *_SERVERS):
                unexplained.append(f"{where}: unknown backend {current.backend!r}")
            for name in setup:
                current.parts.append((SETUP / f"{name}.py").read_text(encoding="utf-8"))
            current.parts.append(body)
            programs.append(current)
    return programs, unexplained


PROGRAMS, UNEXPLAINED = _programs()


def test_every_block_runs_or_says_why() -> None:
    assert UNEXPLAINED == []
    # Guards the block pattern itself: a change of fence style must not silently run nothing.
    assert len(PROGRAMS) >= 15, [p.where for p in PROGRAMS]


@pytest.fixture(scope="module")
def server_info(server_stack: list[servers.Process]) -> Iterator[Callable[[str], dict[str, Any]]]:
    """The ``dbInfo`` of each server backend's test server, started when a program first needs it."""
    made: dict[str, dict[str, Any]] = {}
    cleanups: list[Callable[[], None]] = []

    def info(backend: str) -> dict[str, Any]:
        if backend not in made:
            if backend == "postgres":
                db = servers.PostgresDatabase()
                cleanups.append(db.drop)
                made[backend] = {"dsn": db.dsn}
            elif backend == "mongodb":
                made[backend] = {"uri": servers.mongodb_uri(server_stack), "database": f"odm_docs_{uuid.uuid4().hex[:8]}"}
            else:
                endpoint = servers.dynamodb_endpoint(server_stack)
                cleanups.append(servers.guard_ttl_tables(endpoint))
                made[backend] = {"endpoint": endpoint, "awsRegion": "us-east-1", "awsSecretKeyId": "test",
                                 "awsSecretAccessKey": "test", "tablePrefix": f"docs{uuid.uuid4().hex[:6]}_"}
        return made[backend]

    yield info
    for cleanup in reversed(cleanups):
        cleanup()


@pytest.mark.parametrize("program", PROGRAMS, ids=[f"{p.where}[{p.backend}]" for p in PROGRAMS])
def test_example_runs(program: Program, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ODM_")}
    info: dict[str, Any] = {"path": "app.db"}
    if program.backend != "sqlite":
        info = request.getfixturevalue("server_info")(program.backend)
        env.update(ODM_DB_NAME=program.backend, ODM_DB_INFO=json.dumps(info))
    (tmp_path / "config.json").write_text(json.dumps({"database": {"dbName": program.backend, "dbInfo": info}}))
    for _ in range(2):  # twice: an example must not depend on a fresh database (app.db persists)
        done = subprocess.run([sys.executable, "-c", program.code], capture_output=True, text=True, timeout=120,
                              cwd=tmp_path, env=env)
        assert done.returncode == 0, f"{program.where} failed on {program.backend}:\n{done.stderr[-3000:]}"


def test_the_quickstart_of_make_demo_leaves_no_temporary_directory(tmp_path: Path) -> None:
    # README: `make demo` runs examples/quickstart.py; its database lives in a temporary directory.
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("ODM_")}, "TMPDIR": str(temp)}
    done = subprocess.run([sys.executable, str(ROOT / "examples" / "quickstart.py")], capture_output=True, text=True,
                          timeout=120, cwd=ROOT / "examples", env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "stale save refused" in done.stdout and "deleted 10 generated users; 4 left" in done.stdout
    assert list(temp.iterdir()) == []
