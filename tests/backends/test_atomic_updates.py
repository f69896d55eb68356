"""Atomic updates beyond inc (issue 12, section 5): list and set elements, unset, nested paths and
``Query.update``, with the same stored result on every backend."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

import odm
from odm import EmbeddedModel, Model, fields

from .models import Note, Session


class Spot(EmbeddedModel):
    city = fields.String(required=True)
    street = fields.String()
    visits = fields.Integer()
    codes = fields.List(fields.String())
    marks = fields.Set(fields.String())


class Doc(Model):
    k = fields.String(required=True)
    group = fields.String()
    tags = fields.List(fields.String())
    scores = fields.List(fields.Float())
    spots = fields.List(fields.Embedded(Spot))
    labels = fields.Set(fields.String())
    nums = fields.Set(fields.Integer())
    money = fields.List(fields.Decimal())
    amounts = fields.Set(fields.Decimal())
    blobs = fields.Set(fields.Bytes())
    n = fields.Integer()
    where = fields.Embedded(Spot)

    class Meta:
        name = "suite_atomic"
        hash_key = "k"
        gsi = {"by_group": {"hash_key": "group", "range_key": "n"}}  # DynamoDB orders by an index's range key


class Ledger(Model):
    k = fields.String(required=True)
    items = fields.List(fields.String())
    version = fields.Integer()

    class Meta:
        name = "suite_atomic_ledger"
        hash_key = "k"
        version_field = "version"


@pytest.fixture
def docs(make_registry: Callable[..., odm.Registry]) -> odm.Registry:
    return make_registry(Doc, Ledger)


def stored(key: str) -> dict[str, Any]:
    """The item as read back from the server (not the instance update() refreshed)."""
    return Doc.get(key).to_dict()


# -- keyword actions ------------------------------------------------------------------------------

def test_append_remove_add_discard_and_unset(docs: odm.Registry) -> None:
    d = Doc.create(k="a", tags=["x"], labels={"m"}, n=1)
    d.update(tags=odm.append("y", "x"), labels=odm.add("c", "a", "m"))
    assert d.tags == ["x", "y", "x"] and d.labels == {"a", "c", "m"}
    d.update(tags=odm.remove("x"), labels=odm.discard("m", "absent"), n=odm.unset())
    assert stored("a") == {"k": "a", "tags": ["y"], "labels": {"a", "c"}}
    assert d.n is None and d.tags == ["y"]


def test_a_set_stays_sorted_and_free_of_duplicates_as_stored(docs: odm.Registry) -> None:
    """Equality on a set compares the stored (sorted) form: it must hold after adds in any order."""
    d = Doc.create(k="s", labels={"b"}, nums={5})
    d.update(labels=odm.add("c", "a", "b", "a"), nums=odm.add(-1, 10, 5, 2))
    assert Doc.query(Doc.labels == {"a", "b", "c"}).count() == 1
    assert Doc.query(Doc.nums == {-1, 2, 5, 10}).count() == 1
    d.update(labels=odm.discard("b"))
    assert Doc.query(Doc.labels == {"a", "c"}, Doc.labels.contains("c")).count() == 1


def test_missing_and_empty_containers(docs: odm.Registry) -> None:
    d = Doc.create(k="m", nums=set())
    d.update(tags=odm.append("first"), labels=odm.add("one"), nums=odm.add(3))  # all start empty
    assert stored("m")["tags"] == ["first"] and stored("m")["labels"] == {"one"} and stored("m")["nums"] == {3}
    e = Doc.create(k="e")
    e.update(tags=odm.remove("x"), labels=odm.discard("x"), n=5)  # missing stays missing
    assert stored("e") == {"k": "e", "n": 5}
    d.update(labels=odm.discard("one"), tags=odm.remove("first"))  # emptied: still present, empty
    got = Doc.get("m")
    assert got.labels == set() and got.tags == []
    assert Doc.query(Doc.labels.exists(), Doc.labels == set(), Doc.k == "m").count() == 1
    d.update(labels=odm.add("back"))  # adding to the emptied set
    assert Doc.get("m").labels == {"back"}


def test_remove_takes_every_occurrence_and_ignores_absent_values(docs: odm.Registry) -> None:
    d = Doc.create(k="r", tags=["a", "b", "a", "c", "a"], scores=[1.5, 2.0, 1.5])
    d.update(tags=odm.remove("a", "zz"), scores=odm.remove(1.5))
    assert stored("r")["tags"] == ["b", "c"] and stored("r")["scores"] == [2.0]
    d.update(tags=odm.remove("nothing"))
    assert stored("r")["tags"] == ["b", "c"]


def test_lists_of_embedded_models_and_exact_decimals(docs: odm.Registry) -> None:
    tiny = Decimal("0.000000000000000000012345678901234567")
    d = Doc.create(k="x", spots=[{"city": "Oslo"}], money=[Decimal("1.10")])
    d.update(spots=odm.append({"city": "Rome", "visits": 2}, {"city": "Oslo"}), money=odm.append(tiny, Decimal("2")))
    got = Doc.get("x")
    assert [s.city for s in got.spots] == ["Oslo", "Rome", "Oslo"]
    assert got.money == [Decimal("1.1"), tiny, Decimal("2")]
    d.update(spots=odm.remove({"city": "Oslo"}), money=odm.remove(Decimal("2.0")))
    got = Doc.get("x")
    assert [s.to_dict() for s in got.spots] == [{"city": "Rome", "visits": 2}]
    assert got.money == [Decimal("1.1"), tiny]


def test_sets_of_decimals_store_query_and_take_actions_by_numeric_value(docs: odm.Registry) -> None:
    """A Set is stored in numeric order with one element per number (1, 1.0 and 1.00 are one element)."""
    big = Decimal("-1234567890123456789012345678901.23")  # 33 digits: within Decimal128 and DynamoDB
    d = Doc.create(k="dec", amounts={Decimal("1.0"), Decimal("1E+2"), Decimal("-0"), Decimal("0.10")})
    assert stored("dec")["amounts"] == {Decimal("0"), Decimal("0.1"), Decimal("1"), Decimal("100")}
    d.update(amounts=odm.add(Decimal("1.00"), Decimal("100"), Decimal("-2.5"), big, Decimal("12345678901.5"), Decimal("0E-7")))
    want = {big, Decimal("-2.5"), Decimal("0"), Decimal("0.1"), Decimal("1"), Decimal("100"), Decimal("12345678901.5")}
    got = Doc.get("dec").amounts
    assert got == want and sorted(str(v) for v in got) == sorted(["-1234567890123456789012345678901.23", "-2.5", "0",
                                                                   "0.1", "1", "100", "12345678901.5"])
    # Equality compares the stored (sorted) form, however the set was spelled or built.
    assert Doc.query(Doc.amounts == {Decimal("1E+2"), Decimal("1.000"), Decimal("-0.0"), Decimal("0.100"), Decimal("-2.50"),
                                     big, Decimal("12345678901.50")}).count() == 1
    assert Doc.query(Doc.amounts.contains(Decimal("1.000"))).count() == 1
    assert Doc.query(Doc.amounts.contains(Decimal("1E+2")), Doc.amounts.contains(big)).count() == 1
    assert Doc.query(Doc.amounts.contains(Decimal("2"))).count() == 0
    d.update(amounts=odm.discard(Decimal("1E0"), Decimal("-0.0"), Decimal("7"), Decimal("100.000")))
    assert stored("dec")["amounts"] == want - {Decimal("1"), Decimal("0"), Decimal("100")}
    assert Doc.query(Doc.amounts == want - {Decimal("1"), Decimal("0"), Decimal("100")}).count() == 1
    d.update(Doc.amounts.add(Decimal("5"), Decimal("-3")))
    assert Doc.query(Doc.amounts == want - {Decimal("1"), Decimal("0"), Decimal("100")} | {Decimal("5"), Decimal("-3")}).count() == 1
    # A set built whole (save) equals the one built by actions.
    Doc.create(k="dec2", amounts=Doc.get("dec").amounts)
    assert Doc.query(Doc.amounts.contains(Decimal("5.0"))).count() == 2


def test_sets_of_bytes_built_whole_or_by_actions_are_equal(docs: odm.Registry) -> None:
    """The stored order is the one an add keeps (MongoDB orders BinData by length first)."""
    d = Doc.create(k="b1", blobs={b"\xff", b"\x01\x00"})
    d.update(blobs=odm.add(b"\x02", b"\x00\x00\x00", b"\xff"))
    whole = {b"\xff", b"\x01\x00", b"\x02", b"\x00\x00\x00"}
    Doc.create(k="b2", blobs=whole)
    assert Doc.get("b1").blobs == whole
    assert Doc.query(Doc.blobs == whole).count() == 2
    assert Doc.query(Doc.blobs.contains(b"\x01\x00")).count() == 2
    d.update(blobs=odm.discard(b"\x02", b"\x03"))
    assert Doc.query(Doc.blobs == whole - {b"\x02"}).count() == 1


def test_concurrent_decimal_set_adds_lose_nothing(docs: odm.Registry) -> None:
    Doc.create(k="race3", amounts={Decimal("0.5")})

    def work(i: int) -> None:
        obj = Doc.get("race3")
        for j in range(5):
            obj.update(amounts=odm.add(Decimal(f"{j}.{i}0"), Decimal(f"-{i}E+1")))

    _hammer(4, work)
    got = Doc.get("race3").amounts
    assert got == {Decimal("0.5")} | {Decimal(f"{j}.{i}") for i in range(4) for j in range(5)} | {Decimal(-10 * i) for i in range(4)}


# -- hostile values -------------------------------------------------------------------------------

HOSTILE = ["it's", 'say "hi"', "$where", "$set", "a.b.c", "{\"json\": 1}", "'); DROP TABLE x; --", "%s %%", "\\", "é☃𝄞"]


def test_hostile_values_are_stored_as_given(docs: odm.Registry) -> None:
    d = Doc.create(k="h")
    d.update(tags=odm.append(*HOSTILE), labels=odm.add(*HOSTILE))
    assert stored("h")["tags"] == HOSTILE and stored("h")["labels"] == set(HOSTILE)
    d.update(Doc.tags.remove("$where", "a.b.c"), Doc.labels.discard("'); DROP TABLE x; --"))
    assert stored("h")["tags"] == [v for v in HOSTILE if v not in ("$where", "a.b.c")]
    assert stored("h")["labels"] == set(HOSTILE) - {"'); DROP TABLE x; --"}


def test_a_nul_or_a_wrong_type_is_refused_before_any_write(docs: odm.Registry) -> None:
    d = Doc.create(k="bad", tags=["ok"])
    with pytest.raises(odm.ValidationError) as info:
        d.update(tags=odm.append("fine", "nul\x00here"))
    assert "tags" in info.value.messages
    with pytest.raises(odm.ValidationError):
        d.update(nums=odm.add(1, "two"), tags=odm.append("never"))
    with pytest.raises(odm.ValidationError):
        d.update(Doc.where.visits.inc(1), Doc.where.city.set(None))  # a required sub-field
    assert stored("bad") == {"k": "bad", "tags": ["ok"]}


#: Elements in one action's arguments: a 3,000-value append, set add and 1,500-value removal.
HUGE = 3000
#: Removals sent in the same update as a set add (MongoDB: one pipeline whose ``$filter``/``$in``
#: compares every element with every removed value; SecantusDB takes 22 s for 1,500 x 1,500).
MIXED_REMOVALS = 300


def test_huge_lists(docs: odm.Registry) -> None:
    d = Doc.create(k="big")
    values = [f"v{i:05d}" for i in range(HUGE)]
    d.update(tags=odm.append(*values))
    d.update(tags=odm.remove(*values[::2]))
    assert Doc.get("big").tags == values[1::2]
    # Removal and a set add in one update; the set add is HUGE values sorted into the stored set.
    d.update(tags=odm.remove(*values[1:2 * MIXED_REMOVALS:2]), labels=odm.add(*reversed(values)))
    got = Doc.get("big")
    assert got.tags == values[2 * MIXED_REMOVALS + 1::2] and got.labels == set(values)
    assert Doc.query(Doc.labels == set(values)).count() == 1  # stored sorted, as the codec writes it


# -- wrong use ----------------------------------------------------------------------------------------

def test_wrong_field_kinds_say_what_would_work(docs: odm.Registry) -> None:
    d = Doc.create(k="w")
    with pytest.raises(odm.ValidationError, match=r"Doc.tags is a List field; use odm.append\(\)"):
        d.update(tags=odm.add("x"))
    with pytest.raises(odm.ValidationError, match=r"Doc.labels is a Set field; use odm.add\(\)"):
        d.update(labels=odm.append("x"))
    with pytest.raises(odm.ValidationError, match="Integer field; assign the new value"):
        d.update(n=odm.append(1))
    with pytest.raises(odm.QueryError, match=r"Doc\.labels is a Set field; use Doc\.labels\.discard\(\)"):
        Doc.labels.remove("x")
    with pytest.raises(odm.QueryError, match=r"Doc\.where\.city\.append\(\) works on a List field"):
        Doc.where.city.append("x")
    with pytest.raises(odm.QueryError, match=r"Doc\.where\.city\.inc\(\) needs an Integer"):
        Doc.where.city.inc()
    with pytest.raises(odm.QueryError, match="at least one value"):
        odm.append()
    with pytest.raises(odm.QueryError, match="at least one value"):
        Doc.tags.append()
    with pytest.raises(odm.ValidationError, match="key field"):
        d.update(k=odm.unset())
    with pytest.raises(TypeError):
        bool(Doc.tags.append("x"))
    assert stored("w") == {"k": "w"}


def test_conflicting_actions_are_refused(docs: odm.Registry) -> None:
    d = Doc.create(k="c", where={"city": "Paris"})
    with pytest.raises(odm.QueryError, match="twice"):
        d.update(Doc.tags.append("x"), tags=odm.remove("y"))
    with pytest.raises(odm.QueryError, match="overlap"):
        d.update(Doc.where.city.set("Rome"), where={"city": "Oslo"})
    with pytest.raises(odm.QueryError, match="same path"):
        d.update(Doc.where.codes.append("a"), Doc.where.codes.remove("b"))
    with pytest.raises(odm.QueryError, match="takes actions"):
        d.update("tags")
    assert stored("c") == {"k": "c", "where": {"city": "Paris"}}


# -- nested paths ----------------------------------------------------------------------------------

def test_nested_actions(docs: odm.Registry) -> None:
    d = Doc.create(k="n", where={"city": "Paris", "street": "Main", "codes": ["a"]})
    d.update(Doc.where.city.set("Lyon"), Doc.where.street.unset(), Doc.where.visits.inc(3),
             Doc.where.codes.append("b", "a"), Doc.where.marks.add("z", "y"), Doc.tags.append("t"))
    assert stored("n") == {"k": "n", "tags": ["t"],
                           "where": {"city": "Lyon", "visits": 3, "codes": ["a", "b", "a"], "marks": {"y", "z"}}}
    d.update(Doc.where.codes.remove("a"), Doc.where.marks.discard("z"), Doc.where.visits.inc(-1))
    assert stored("n")["where"] == {"city": "Lyon", "visits": 2, "codes": ["b"], "marks": {"y"}}
    assert Doc.query(Doc.where.marks == {"y"}, Doc.where.visits == 2).count() == 1


def test_a_nested_action_needs_its_embedded_model(docs: odm.Registry) -> None:
    d = Doc.create(k="np", n=1)
    with pytest.raises(odm.ConditionFailed, match="has no 'where'"):
        d.update(Doc.where.city.set("Paris"), n=2)
    assert stored("np") == {"k": "np", "n": 1}


def test_update_with_a_condition_and_actions(docs: odm.Registry) -> None:
    d = Doc.create(k="cond", n=1, tags=["a"])
    with pytest.raises(odm.ConditionFailed):
        d.update(Doc.tags.append("b"), condition=Doc.n == 2)
    d.update(Doc.n == 1, Doc.tags.append("b"))  # an expression given positionally is the condition
    assert stored("cond")["tags"] == ["a", "b"]
    with pytest.raises(odm.ConditionFailed):
        d.update(Doc.n == 5, labels=odm.add("q"))
    assert "labels" not in stored("cond")


# -- concurrency -------------------------------------------------------------------------------------

def _hammer(threads: int, work: Callable[[int], None]) -> None:
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            work(i)
        except BaseException as exc:  # reported below
            errors.append(exc)

    pool = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert not errors, errors


def test_concurrent_appends_lose_nothing(docs: odm.Registry) -> None:
    Doc.create(k="race")

    def work(i: int) -> None:
        obj = Doc.get("race")
        for j in range(15):
            obj.update(tags=odm.append(f"{i}-{j}"), n=odm.inc(1))

    _hammer(6, work)
    got = Doc.get("race")
    assert sorted(got.tags) == sorted(f"{i}-{j}" for i in range(6) for j in range(15))
    assert got.n == 90


def test_concurrent_set_adds_and_list_removes_lose_nothing(docs: odm.Registry) -> None:
    """An emptied set and list removal are computed from a read on DynamoDB: retried, never lost."""
    Doc.create(k="race2", labels=set(), tags=[f"t{i}" for i in range(24)])

    def work(i: int) -> None:
        obj = Doc.get("race2")
        for j in range(6):
            obj.update(labels=odm.add(f"{i}-{j}"), tags=odm.remove(f"t{i * 6 + j}"))

    _hammer(4, work)
    got = Doc.get("race2")
    assert got.labels == {f"{i}-{j}" for i in range(4) for j in range(6)}
    assert got.tags == []


def test_actions_beside_a_unique_index(make_registry: Callable[..., odm.Registry]) -> None:
    """Changing a uniquely indexed field in the same update (DynamoDB: one transaction with its guards)."""
    make_registry(Note)
    n = Note.create(title="t", slug="one", labels={"a"})
    Note.create(title="u", slug="two")
    n.update(labels=odm.add("b"), slug="three")
    assert Note.get(n.id).labels == {"a", "b"}
    with pytest.raises(odm.DuplicateKey):
        n.update(labels=odm.discard("a"), slug="two")
    got = Note.get(n.id)
    assert (got.slug, got.labels) == ("three", {"a", "b"})


# -- versions and TTL --------------------------------------------------------------------------------

def test_version_field_with_actions(docs: odm.Registry) -> None:
    a = Ledger.create(k="l", items=["x"])
    assert a.version == 1
    a.update(items=odm.append("y"))
    assert a.version == 2 and Ledger.get("l").version == 2
    stale = Ledger.get("l")
    a.update(Ledger.items.remove("x"))
    with pytest.raises(odm.ConcurrentModification):
        stale.update(items=odm.append("lost"))
    got = Ledger.get("l")
    assert got.items == ["y"] and got.version == 3


def test_ttl_field_with_actions(make_registry: Callable[..., odm.Registry]) -> None:
    # The suite's TTL model: a 7th TTL-enabled table on the shared DynamoDB Local stalls GSI
    # creation (docs/testing.md, "DynamoDB Local hazard").
    import datetime as dt

    make_registry(Session)
    session = Session.create(token="t-actions", user="u", expires_at=odm.utcnow() + dt.timedelta(hours=1))
    later = odm.utcnow() + dt.timedelta(hours=2)
    session.update(Session.user.set("v"), expires_at=later)
    got = Session.get("t-actions")
    assert got.user == "v" and got.expires_at == later
    session.update(user=odm.unset(), expires_at=odm.utcnow() - dt.timedelta(seconds=5))
    assert Session.get_or_none("t-actions") is None  # expired: absent, as for any other write


# -- Query.update ---------------------------------------------------------------------------------------

def test_query_update_changes_every_match_and_counts_them(docs: odm.Registry) -> None:
    for i in range(6):
        Doc.create(k=f"q{i}", group="g" if i < 4 else "other", n=i, tags=["old"])
    count = Doc.query(Doc.group == "g").update(Doc.tags.append("new"), n=odm.inc(10), labels=odm.add("seen"))
    assert count == 4
    for i in range(6):
        got = Doc.get(f"q{i}")
        if i < 4:
            assert (got.tags, got.n, got.labels) == (["old", "new"], i + 10, {"seen"})
        else:
            assert (got.tags, got.n, got.labels) == (["old"], i, None)
    assert Doc.query(Doc.group == "nobody").update(n=1) == 0
    assert Doc.query(Doc.group == "other").update(tags=odm.remove("old"), group="g") == 2
    assert Doc.query(Doc.group == "g").count() == 6


def test_query_update_with_order_and_limit(docs: odm.Registry) -> None:
    for i in range(5):
        Doc.create(k=f"o{i}", group="o", n=i)
    assert Doc.query(Doc.group == "o", Doc.n >= 0).order_by(-Doc.n).limit(2).update(tags=odm.append("top")) == 2
    assert sorted(d.n for d in Doc.query(Doc.tags.contains("top"))) == [3, 4]


def test_query_update_keeps_versions_per_item(docs: odm.Registry) -> None:
    Ledger.create(k="v1")
    b = Ledger.create(k="v2")
    b.update(items=odm.append("x"))
    assert Ledger.query().update(items=odm.append("all")) == 2
    assert {x.k: x.version for x in Ledger.query()} == {"v1": 2, "v2": 3}
    with pytest.raises(odm.ConcurrentModification):
        b.update(items=odm.append("stale"))


def test_query_update_validates_before_any_write(docs: odm.Registry) -> None:
    Doc.create(k="qv", group="g")
    with pytest.raises(odm.ValidationError):
        Doc.query().update(n="many")
    with pytest.raises(odm.QueryError, match="at least one"):
        Doc.query().update()
    with pytest.raises(odm.QueryError, match="conditions in the query"):
        Doc.query().update(Doc.n == 1, n=2)
    assert stored("qv") == {"k": "qv", "group": "g"}


def test_async_update_and_query_update(target: Any) -> None:
    async def main() -> None:
        async with target.registry() as reg:
            reg.register(Doc, rebind=True)
            await reg.async_sync()
            try:
                d = await Doc.acreate(k="as", group="ag", where={"city": "Rome"})
                await d.aupdate(Doc.where.codes.append("x"), labels=odm.add("a"))
                assert await Doc.query(Doc.group == "ag").aupdate(tags=odm.append("q")) == 1
                got = (await Doc.aget("as")).to_dict()
                assert got == {"k": "as", "group": "ag", "where": {"city": "Rome", "codes": ["x"]},
                               "labels": {"a"}, "tags": ["q"]}
            finally:
                await Doc.query().adelete()

    asyncio.run(main())


def test_the_docs_example_runs() -> None:
    """docs/models.md, "Atomic updates": its example (on embedded SQLite) runs as printed."""
    from pathlib import Path

    text = (Path(__file__).parents[2] / "docs" / "models.md").read_text()
    start = text.index("```python", text.index("## Atomic updates")) + len("```python")
    exec(compile(text[start:text.index("```", start)], "docs/models.md", "exec"), {"__name__": "docs_example"})  # noqa: S102


# -- what each backend is sent (no server) ------------------------------------------------------------

def _actions(*given: Any) -> list[Any]:
    from odm.updates import UpdateAction

    return [UpdateAction(op, tuple(path.split(".")), Doc._fields["tags"], value) for op, path, value in given]


def test_mongodb_update_documents() -> None:
    from odm.backends.mongodb.repository import _pipeline

    acts = _actions(("append", "tags", ["$x"]), ("remove", "where.codes", ["a"]), ("unset", "where.street", None))
    assert _pipeline({"n": 1}, {}, [], acts) == [
        {"$set": {"n": {"$literal": 1},
                  "tags": {"$concatArrays": [{"$ifNull": ["$tags", []]}, {"$literal": ["$x"]}]},
                  "where.codes": {"$cond": [{"$isArray": "$where.codes"}, {"$filter": {
                      "input": "$where.codes", "cond": {"$not": [{"$in": ["$$this", {"$literal": ["a"]}]}]}}}, "$$REMOVE"]}}},
        {"$unset": ["where.street"]}]


def test_mongodb_set_add_sorts_boxed_elements() -> None:
    """``sortBy: {v: 1}`` over ``{v: element}`` is BSON order on every server (a scalar sortBy is
    not: SecantusDB sorts scalars with Python's ``<``, which Decimal128 does not support)."""
    from odm.backends.mongodb.repository import _pipeline

    union = {"$setUnion": [{"$ifNull": ["$labels", []]}, {"$literal": ["b", "a"]}]}
    assert _pipeline({}, {}, [], _actions(("add", "labels", ["b", "a"]))) == [{"$set": {"labels": {"$map": {
        "input": {"$sortArray": {"input": {"$map": {"input": union, "in": {"v": "$$this"}}}, "sortBy": {"v": 1}}},
        "in": "$$this.v"}}}}]


def test_postgres_action_sql() -> None:
    from odm.backends.sql.postgres import PostgresDialect

    params: list[Any] = []
    sql = PostgresDialect().update_doc_sql({}, {}, [], params, _actions(("append", "tags", ["x"]), ("unset", "where.street", None)))
    assert sql == ('(jsonb_set("doc", %s::text[], COALESCE(("doc" #> %s::text[]), \'[]\'::jsonb) || %s) #- %s::text[])')
    assert [p if isinstance(p, list) else p.obj for p in params] == [["tags"], ["tags"], '["x"]', ["where", "street"]]


def test_dynamodb_clauses() -> None:
    from odm.backends.dynamodb.actions import clauses
    from odm.backends.dynamodb.planner.compiler import ATOM, Context

    ctx = Context()
    acts = _actions(("append", "tags", ["x"]), ("remove", "where.codes", ["a"]))
    out = clauses(ctx, acts, {"where": {"M": {"codes": {"L": [{"S": "a"}, {"S": "b"}]}}}}, {1})
    assert out.sets == ["#0 = list_append(if_not_exists(#0, :0), :1)", "#1.#2 = :3"]
    assert out.guards == [("#1.#2 = :2", ATOM)]  # the write holds only while the list is as read
    assert ctx.values[":3"] == {"L": [{"S": "b"}]}


def test_float_and_decimal_increments_keep_every_digit(reg: odm.Registry) -> None:
    """A Float increment is the IEEE sum Python computes (SQLite's JSON text of a REAL once kept 15
    digits: 0.1 + 0.2 was stored as 0.3); a Decimal increment is exact within the backend's declared
    digits (it was rounded to 28 on SQLite)."""
    from .models import User

    def plus(a: float, b: float) -> float:
        if reg.backend.features.float_increments_in_decimal:  # DynamoDB: decimal arithmetic, declared
            return float(Decimal(repr(a)) + Decimal(repr(b)))
        return a + b

    user = User.create(email="inc@x.io", score=0.1, balance=Decimal("74000000000000000000000000"))
    user.update(score=odm.inc(0.2))
    assert user.score == plus(0.1, 0.2) == User.get("inc@x.io").score  # 0.30000000000000004 (IEEE)
    amount = Decimal("0.99999999")
    user.update(balance=odm.inc(amount))
    assert user.balance == User.get("inc@x.io").balance == Decimal("74000000000000000000000000.99999999")
    assert User.query(User.email == "inc@x.io").update(score=odm.inc(1e-17), balance=odm.inc(Decimal("1E-8"))) == 1
    got = User.get("inc@x.io")
    assert got.score == plus(plus(0.1, 0.2), 1e-17) and got.balance == Decimal("74000000000000000000000001.00000000")
