"""The typed spelling of models (docs/models.md, "Typing") under mypy --strict and pyright.

The fixtures in tests/typing are copied to a directory outside the repository and checked
from there, so ``odm`` is found the way a user's project finds it: through the installed
(editable, in ``make test``) package and its ``py.typed``. Each line of a fixture marked
``# E:`` must be reported by both checkers (``# E[mypy]:`` / ``# E[pyright]:``: by that one only),
and nothing else.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import odm

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "typing"
# Inside the repository (ignored by git), so repeated runs reuse mypy's cache.
MYPY_CACHE = ROOT / ".mypy_cache" / "typing-fixtures"
SOURCES = {name: FIXTURES / name for name in ("typed_ok.py", "typed_errors.py", "typed_bare.py")}
SOURCES["typed_models.py"] = ROOT / "examples" / "typed_models.py"
MYPY_FILES = PYRIGHT_FILES = tuple(SOURCES)
MARK = re.compile(r"# E(?:\[(mypy|pyright)\])?:")


def expected_lines(name: str, checker: str) -> set[int]:
    lines = SOURCES[name].read_text().splitlines()
    return {i for i, line in enumerate(lines, 1) if (m := MARK.search(line)) and m[1] in (None, checker)}


def test_markers_are_read() -> None:
    # A misspelt marker would expect nothing on its line: every "# E" comment must count for a checker.
    for name, source in SOURCES.items():
        marked = {i for i, line in enumerate(source.read_text().splitlines(), 1) if "# E" in line}
        assert marked == expected_lines(name, "mypy") | expected_lines(name, "pyright"), name


@pytest.fixture(scope="module")
def outside(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixtures, copied to a directory where ``odm`` is not importable from the working directory."""
    where = tmp_path_factory.mktemp("typed")
    for name, source in SOURCES.items():
        shutil.copy(source, where / name)
    return where


def test_py_typed_ships_with_odm() -> None:
    # Otherwise the checks below would say nothing about what an installed odm exposes.
    assert (Path(odm.__file__).parent / "py.typed").is_file()


def test_typed_example_runs() -> None:
    done = subprocess.run([sys.executable, str(SOURCES["typed_models.py"])], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "adults: ['ann@example.com: 31 years, Paris']" in done.stdout and "devs: ['bob@example.com']" in done.stdout
    assert "visit: ann@example.com UTC" in done.stdout


def test_mypy_strict(outside: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary", "--show-error-codes", "--hide-error-context",
         "--cache-dir", str(MYPY_CACHE), *MYPY_FILES],
        cwd=outside, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode in (0, 1), proc.stderr or proc.stdout
    reported: dict[str, set[int]] = {name: set() for name in MYPY_FILES}
    for line in proc.stdout.splitlines():
        if re.match(r"typed_\w+\.py:\d+: note:", line):  # an error's details (overload variants...)
            continue
        m = re.match(r"(typed_\w+\.py):(\d+): error:", line)
        assert m, f"unexpected mypy output (is odm found from outside the repository?): {line}"
        reported[m[1]].add(int(m[2]))
    for name in MYPY_FILES:
        assert reported[name] == expected_lines(name, "mypy"), f"{name}:\n{proc.stdout}"


def _pyright() -> list[str]:
    exe = shutil.which("pyright", path=str(Path(sys.executable).parent)) or shutil.which("pyright")
    if exe is None:
        pytest.skip("pyright is not installed (pip install pyright; it is in the test extras)")
    try:  # the first run fetches pyright's node package from npm: not possible offline
        probe = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        pytest.skip("pyright could not start in 120 s (fetching its node package?)")
    if probe.returncode != 0 or "pyright" not in probe.stdout:
        pytest.skip(f"pyright cannot run here (offline, no node package cached?): {(probe.stderr or probe.stdout)[-300:]}")
    return [exe]


def test_pyright(outside: Path) -> None:
    cmd = _pyright()
    proc = subprocess.run(
        [*cmd, "--outputjson", "--pythonpath", sys.executable, *PYRIGHT_FILES],
        cwd=outside, capture_output=True, text=True, timeout=180,
    )
    report = json.loads(proc.stdout)
    reported: dict[str, set[int]] = {name: set() for name in PYRIGHT_FILES}
    for diag in report["generalDiagnostics"]:
        if diag["severity"] == "error":
            reported[Path(diag["file"]).name].add(diag["range"]["start"]["line"] + 1)
    for name in PYRIGHT_FILES:
        assert reported[name] == expected_lines(name, "pyright"), f"{name}: {report['generalDiagnostics']}"


class _Typed(odm.Model):
    email: odm.fields.String[str] = odm.fields.String(required=True)
    age: odm.fields.Integer[int | None] = odm.fields.Integer(default=None)
    note: str = "a plain class attribute"  # annotated, but not a Field: not a field
    count = odm.fields.Integer()

    class Meta:
        name = "typed_runtime"
        hash_key = "email"


def test_annotations_change_nothing_at_run_time() -> None:
    # The annotations evaluate (field classes are subscriptable), as typing.get_type_hints would.
    assert eval(_Typed.__annotations__["age"], globals()) == odm.fields.Integer[int | None]
    assert list(_Typed._fields) == ["email", "age", "count"]
    # default=None on an optional field is "no default": same schema and values as the bare field.
    assert _Typed.age.field.default is _Typed.count.field.default
    assert _Typed.schema().load({"email": "x"}) == {"email": "x"}
    user = _Typed(email="x", age=3)
    assert (user.age, user.count, user.__dict__["age"]) == (3, None, 3)
    assert not hasattr(odm.fields.Integer, "__set__")  # still a non-data descriptor at run time


class _AutoKeyed(odm.Model):
    title: odm.fields.String[str] = odm.fields.String(required=True)
    size = odm.fields.Integer(default=0)

    class Meta:
        name = "typed_runtime_auto"


def test_typing_declarations_change_nothing_at_run_time() -> None:
    # The constructor overloads and the Model-level ``id`` exist for type checkers only.
    for cls in (odm.fields.String, odm.fields.Integer, odm.fields.Set, odm.fields.UUID):
        assert "__init__" not in vars(cls), cls
    assert "id" not in vars(odm.Model) and "id" not in odm.Model.__annotations__
    # A model keyed on its own field has no id (checkers see one: docs/models.md, "Typing").
    assert "id" not in _Typed._fields and not hasattr(_Typed, "id") and not hasattr(_Typed(email="x"), "id")
    with pytest.raises(odm.ValidationError, match="id"):
        _Typed(email="x", id="y")
    # Without a hash_key the id is added when the class is made, bound to it and first among the fields.
    assert list(_AutoKeyed._fields) == ["id", "title", "size"]
    assert isinstance(_AutoKeyed.id, odm.fields.FieldRef) and _AutoKeyed.id.field.model is _AutoKeyed
    post = _AutoKeyed(title="x")
    assert isinstance(post.id, str) and len(post.id) == 36 and post.size == 0
    assert _AutoKeyed(title="x", id="given").id == "given"
