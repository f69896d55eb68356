"""Queries: every operator, the two-valued semantics, ordering, windows and pages."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

import odm

from .models import Address, Event, Note, User

UTC = dt.timezone.utc


@pytest.fixture
def people(reg: odm.Registry) -> odm.Registry:
    User.insert_many([
        User(email="ann@x.io", name="Ann", age=31, score=9.8, tags=["admin", "dev"], address=Address(city="Paris"),
             balance=Decimal("10.5"), created_at=dt.datetime(2024, 1, 1, tzinfo=UTC)),
        User(email="bob@x.io", name="Bob", age=17, score=5.0, tags=["dev"], address=Address(city="Berlin"),
             created_at=dt.datetime(2024, 6, 1, tzinfo=UTC)),
        User(email="cy@x.io", name="Cy", age=45, active=False, created_at=dt.datetime(2023, 3, 1, tzinfo=UTC)),
        User(email="dee@x.io", name="Dee%_x", tags=[], created_at=dt.datetime(2025, 1, 1, tzinfo=UTC)),
        User(email="eve@x.io", age=31, score=9.9, address=Address(city="Paris", street="Main")),
    ])
    return reg


def emails(q: odm.Query) -> set[str]:
    return {u.email for u in q}


def test_comparisons_never_match_missing(people: odm.Registry) -> None:
    assert emails(User.query(User.age >= 18)) == {"ann@x.io", "cy@x.io", "eve@x.io"}
    assert emails(User.query(User.age < 40)) == {"ann@x.io", "bob@x.io", "eve@x.io"}
    assert emails(User.query(User.age == 31)) == {"ann@x.io", "eve@x.io"}
    assert emails(User.query(User.age <= 17)) == {"bob@x.io"}
    assert emails(User.query(User.age > 31)) == {"cy@x.io"}


def test_not_equal_and_not_in_match_missing(people: odm.Registry) -> None:
    assert emails(User.query(User.age != 31)) == {"bob@x.io", "cy@x.io", "dee@x.io"}
    assert emails(User.query(User.age.not_in([17, 45]))) == {"ann@x.io", "dee@x.io", "eve@x.io"}
    assert emails(User.query(~(User.age < 40))) == {"cy@x.io", "dee@x.io"}


def test_none_and_exists(people: odm.Registry) -> None:
    assert emails(User.query(User.age == None)) == {"dee@x.io"}  # noqa: E711
    assert emails(User.query(User.age.not_exists())) == {"dee@x.io"}
    assert emails(User.query(User.score.exists())) == {"ann@x.io", "bob@x.io", "eve@x.io"}
    assert emails(User.query(User.score != None)) == {"ann@x.io", "bob@x.io", "eve@x.io"}  # noqa: E711


def test_in_between_startswith(people: odm.Registry) -> None:
    assert emails(User.query(User.age.in_([17, 45, 99]))) == {"bob@x.io", "cy@x.io"}
    assert emails(User.query(User.age.in_([]))) == set()
    assert emails(User.query(User.age.between(17, 31))) == {"ann@x.io", "bob@x.io", "eve@x.io"}
    assert emails(User.query(User.name.startswith("A"))) == {"ann@x.io"}
    assert emails(User.query(User.name.startswith("a"))) == set()
    assert emails(User.query(User.name.startswith("Dee%"))) == {"dee@x.io"}
    assert emails(User.query(User.name.startswith("De_"))) == set()


def test_contains_list_element_and_substring(people: odm.Registry) -> None:
    assert emails(User.query(User.tags.contains("dev"))) == {"ann@x.io", "bob@x.io"}
    assert emails(User.query(User.tags.contains("de"))) == set()
    assert emails(User.query(User.name.contains("o"))) == {"bob@x.io"}
    assert emails(User.query(User.name.contains("%"))) == {"dee@x.io"}


def test_combinators_and_keywords(people: odm.Registry) -> None:
    q = User.query((User.score > 9.5) | User.tags.contains("admin"), active=True)
    assert emails(q) == {"ann@x.io", "eve@x.io"}
    assert emails(User.query(User.age >= 18, User.name.startswith("A"))) == {"ann@x.io"}
    assert emails(User.query().filter(User.age > 18).filter(~User.name.exists())) == {"eve@x.io"}
    assert emails(User.query(active=False)) == {"cy@x.io"}


def test_embedded_paths(people: odm.Registry) -> None:
    assert emails(User.query(User.address.city == "Paris")) == {"ann@x.io", "eve@x.io"}
    assert emails(User.query(User.address.street.exists())) == {"eve@x.io"}
    assert emails(User.query(User.address.city != "Paris")) == {"bob@x.io", "cy@x.io", "dee@x.io"}


def test_datetime_decimal_and_float_comparisons(people: odm.Registry) -> None:
    # eve's created_at is the default, now.
    assert emails(User.query(User.created_at >= dt.datetime(2024, 1, 1, tzinfo=UTC))) == {
        "ann@x.io", "bob@x.io", "dee@x.io", "eve@x.io"}
    since = dt.datetime(2024, 5, 31, 22, 0, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    assert emails(User.query(User.created_at.between(since - dt.timedelta(days=1), since))) == {"bob@x.io"}
    assert emails(User.query(User.balance > Decimal("10.4"))) == {"ann@x.io"}
    assert emails(User.query(User.score >= 9.8)) == {"ann@x.io", "eve@x.io"}


def test_first_count_exists_delete(people: odm.Registry) -> None:
    assert User.query(User.age > 100).first() is None
    assert User.query(User.name == "Bob").first().email == "bob@x.io"
    assert User.query(User.age >= 18).count() == 3
    assert User.query(User.age >= 18).exists()
    assert not User.query(User.age > 100).exists()
    assert User.query(User.age >= 18).delete() == 3
    assert emails(User.query()) == {"bob@x.io", "dee@x.io"}


def test_order_limit_offset(people: odm.Registry) -> None:
    if not people.backend.features.supports_arbitrary_order:
        with pytest.raises(odm.QueryError, match="index"):
            list(User.query().order_by(-User.age))
        return
    ordered = [u.email for u in User.query().order_by(User.age, User.email)]
    assert ordered == ["dee@x.io", "bob@x.io", "ann@x.io", "eve@x.io", "cy@x.io"]  # missing first ascending
    ordered = [u.email for u in User.query().order_by(-User.age, User.email)]
    assert ordered == ["cy@x.io", "ann@x.io", "eve@x.io", "bob@x.io", "dee@x.io"]  # missing last descending
    assert [u.email for u in User.query().order_by("-age", "email").limit(2).offset(1)] == ["ann@x.io", "eve@x.io"]
    assert [u.email for u in User.query().order_by(User.name).limit(2)] == ["eve@x.io", "ann@x.io"]


def test_delete_a_window_deletes_exactly_it(reg: odm.Registry) -> None:
    """A query with an order and a limit deletes the items it would read, and only those."""
    Event.insert_many([Event(stream="w", seq=i) for i in range(7)] + [Event(stream="x", seq=1)])
    assert Event.query(Event.stream == "w").order_by(-Event.seq).limit(3).delete() == 3
    assert [e.seq for e in Event.query(Event.stream == "w").order_by(Event.seq)] == [0, 1, 2, 3]
    assert Event.query(Event.stream == "w").order_by(Event.seq).offset(1).limit(2).delete() == 2
    assert [e.seq for e in Event.query(Event.stream == "w").order_by(Event.seq)] == [0, 3]
    assert Event.query(Event.stream == "x").count() == 1


def test_range_key_order_works_everywhere(reg: odm.Registry) -> None:
    Event.insert_many([Event(stream="s", seq=i, kind="k") for i in (5, 1, 3, 2, 4)] + [Event(stream="t", seq=0)])
    assert [e.seq for e in Event.query(Event.stream == "s").order_by(Event.seq)] == [1, 2, 3, 4, 5]
    assert [e.seq for e in Event.query(Event.stream == "s").order_by(-Event.seq).limit(2)] == [5, 4]
    assert [e.seq for e in Event.query(Event.stream == "s", Event.seq > 2).order_by(Event.seq)] == [3, 4, 5]
    assert Event.query(Event.stream == "s").offset(3).count() == 2


def test_pages_follow_cursor_to_the_end(reg: odm.Registry) -> None:
    Event.insert_many([Event(stream="p", seq=i) for i in range(23)] + [Event(stream="other", seq=1)])
    q = Event.query(Event.stream == "p").order_by(Event.seq)
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        page = q.page(size=5, cursor=cursor)
        seen += [e.seq for e in page.items]
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break
        assert isinstance(cursor, str)
    assert seen == list(range(23)) and pages == 5


def test_page_is_stable_under_concurrent_inserts(reg: odm.Registry) -> None:
    Event.insert_many([Event(stream="c", seq=i * 10) for i in range(10)])
    q = Event.query(Event.stream == "c").order_by(Event.seq)
    first = q.page(size=4)
    assert [e.seq for e in first.items] == [0, 10, 20, 30]
    Event.create(stream="c", seq=5)  # lands before the cursor: must not shift the next page
    second = q.page(size=4, cursor=first.next_cursor)
    assert [e.seq for e in second.items] == [40, 50, 60, 70]


def test_tampered_cursor_is_rejected(reg: odm.Registry) -> None:
    Event.insert_many([Event(stream="x", seq=i) for i in range(4)])
    q = Event.query(Event.stream == "x").order_by(Event.seq)
    cursor = q.page(size=2).next_cursor
    assert cursor
    bad = ("A" if cursor[0] != "A" else "B") + cursor[1:]
    with pytest.raises(odm.QueryError, match="cursor"):
        q.page(size=2, cursor=bad)
    with pytest.raises(odm.QueryError, match="cursor"):
        Event.query(Event.stream == "y").order_by(Event.seq).page(size=2, cursor=cursor)


def test_iteration_streams_many_items(reg: odm.Registry) -> None:
    Note.insert_many([Note(title=f"n{i:04d}", count=i) for i in range(1200)])
    total = 0
    for note in Note.query(Note.count >= 0):
        total += note.count
    assert total == sum(range(1200))
    assert Note.query(Note.count >= 600).limit(7).count() == 7
    assert len(list(Note.query(Note.count >= 600).limit(7))) == 7


def test_unknown_field_in_query_is_query_error(reg: odm.Registry) -> None:
    with pytest.raises(odm.QueryError, match="no field 'agee'"):
        User.query(agee=3)
    with pytest.raises(odm.QueryError, match="Not a valid integer"):
        User.query(User.age > "old")
    with pytest.raises(odm.QueryError, match="no field"):
        User.query(User.address.zip == "1")


def test_explain_returns_native_query(people: odm.Registry) -> None:
    plan = User.query(User.age > 3).explain()
    assert isinstance(plan, dict) and plan


def test_user_values_are_data(reg: odm.Registry) -> None:
    tricky = ["' OR 1=1 --", '$gt', '{"$ne": null}', "a\"b", "%", "_", "\\", "#name", ":v"]
    for i, value in enumerate(tricky):
        User.create(email=f"t{i}@x.io", name=value)
    for i, value in enumerate(tricky):
        assert emails(User.query(User.name == value)) == {f"t{i}@x.io"}
        assert emails(User.query(User.name.startswith(value))) >= {f"t{i}@x.io"}
