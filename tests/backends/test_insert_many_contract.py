"""insert_many's one contract, on every backend (issue 9, item 9; docs/models.md "insert_many").

A call that cannot write every item raises ``DuplicateKey`` whose ``.written`` is exactly the keys
the call stored and whose ``.failed`` names the refused ones; every other item is not stored and
no existing item changes. A backend with ``features.atomic_insert_many`` runs the call as one
transaction, so ``.written`` is empty; the others write every item that can be written, across
as many server batches/transactions as the call needs (MongoDB batches of 500 by default,
DynamoDB transactions of 100 actions), and say so exactly.
"""

from __future__ import annotations

from typing import Any

import pytest

import odm

from .models import Note, User


def _stored() -> dict[str, str | None]:
    return {u.email: u.name for u in User.query()}


def _check(reg: odm.Registry, exc: pytest.ExceptionInfo[odm.DuplicateKey], sent: list[str], clashing: list[str],
           before: dict[str, str | None]) -> None:
    """The contract: stored = before + .written; .failed names the clashes; nothing else changed."""
    written = [k[0] for k in exc.value.written]  # type: ignore[attr-defined]
    failed = [k[0] for k in exc.value.failed]  # type: ignore[attr-defined]
    assert not set(written) & set(clashing)
    assert sorted(failed) == sorted(clashing)
    if reg.backend.features.atomic_insert_many:
        assert written == []
    else:
        assert sorted(written) == sorted(set(sent) - set(clashing))
    after = _stored()
    assert {k: v for k, v in after.items() if k in before} == before  # no existing item was replaced
    assert set(after) == set(before) | set(written)
    assert {after[k] for k in written} <= {"new"}


def test_key_clash_with_a_stored_item(reg: odm.Registry) -> None:
    User.create(email="b@x.io", name="old")
    before = _stored()
    sent = ["a@x.io", "b@x.io", "c@x.io"]
    with pytest.raises(odm.DuplicateKey, match="b@x.io") as exc:
        User.insert_many([User(email=e, name="new") for e in sent])
    _check(reg, exc, sent, ["b@x.io"], before)


def test_key_repeated_within_the_call(reg: odm.Registry) -> None:
    before = _stored()
    sent = ["a@x.io", "x@x.io", "a@x.io"]
    with pytest.raises(odm.DuplicateKey, match="a@x.io") as exc:
        User.insert_many([User(email=e, name="new") for e in sent])
    # The first "a" may be written (partial backends); the repeat is the refused one.
    written = [k[0] for k in exc.value.written]  # type: ignore[attr-defined]
    assert [k[0] for k in exc.value.failed] == ["a@x.io"]  # type: ignore[attr-defined]
    expected = [] if reg.backend.features.atomic_insert_many else ["a@x.io", "x@x.io"]
    assert sorted(written) == expected
    assert sorted(_stored()) == sorted(set(before) | set(written))


def test_clash_beyond_one_server_batch_reports_exactly(reg: odm.Registry) -> None:
    # 650 items span several DynamoDB transactions (100) and MongoDB batches (500).
    clashing = ["u0120@x.io", "u0599@x.io"]
    for email in clashing:
        User.create(email=email, name="old")
    before = _stored()
    sent = [f"u{i:04d}@x.io" for i in range(650)]
    with pytest.raises(odm.DuplicateKey) as exc:
        User.insert_many([User(email=e, name="new") for e in sent])
    _check(reg, exc, sent, clashing, before)


def test_unique_value_clash_writes_none_of_the_clashing_items(reg: odm.Registry) -> None:
    if not reg.backend.features.supports_unique_indexes:
        pytest.skip("the backend cannot enforce unique indexes")
    Note.create(title="kept", slug="taken")
    one, two = Note(title="one", slug="free"), Note(title="two", slug="taken")
    with pytest.raises(odm.DuplicateKey) as exc:
        Note.insert_many([one, two])
    written = exc.value.written  # type: ignore[attr-defined]
    assert [k[0] for k in exc.value.failed] == [two.id]  # type: ignore[attr-defined]
    titles = sorted(n.title for n in Note.query())
    assert titles == (["kept"] if reg.backend.features.atomic_insert_many else ["kept", "one"])
    assert len(written) == len(titles) - 1
    assert Note.query(Note.slug == "taken").first().title == "kept"


class Legacy(odm.Model):
    """A model whose from_dict maps an old input name: insert_many of dicts must go through it too."""

    k = odm.fields.String(required=True)
    name = odm.fields.String()

    class Meta:
        name = "suite_legacy_input"
        hash_key = "k"

    @classmethod
    def from_dict(cls, data):  # type: ignore[no-untyped-def,override]
        data = dict(data)
        if "legacy_name" in data:
            data["name"] = data.pop("legacy_name")
        return super().from_dict(data)


def test_insert_many_of_dicts_uses_an_overridden_from_dict(make_registry: Any) -> None:
    make_registry(Legacy)
    Legacy.insert_many([{"k": "a", "legacy_name": "old"}, {"k": "b", "name": "new"}])
    assert [(o.k, o.name) for o in Legacy.batch_get(["a", "b"])] == [("a", "old"), ("b", "new")]
