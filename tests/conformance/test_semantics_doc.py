"""docs/semantics.md's capability table is the one the backends declare (it cannot drift)."""

from __future__ import annotations

from .capabilities import DOC, rendered, table


def test_capability_table_matches_declared_features() -> None:
    page = DOC.read_text(encoding="utf-8")
    assert rendered(page) == page, (
        "docs/semantics.md's capability table differs from the backends' declared features; "
        "regenerate it with `make semantics-doc` (python -m tests.conformance.capabilities). Expected:\n" + table())


def test_every_declared_capability_is_a_row() -> None:
    from odm.backends.base import Features

    page = DOC.read_text(encoding="utf-8")
    for name in vars(Features):
        if not name.startswith("_") and not callable(getattr(Features, name)):
            assert f"| `{name}` |" in page, f"capability {name} missing from docs/semantics.md"
