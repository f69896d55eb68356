"""registry.transaction() / atransaction() on every backend (docs/transactions.md).

Each test reads the backend's capabilities from its features (and, for MongoDB, whether the
server runs transactions at all, probed at runtime), never its name.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

import odm
from odm import EmbeddedModel, Model, fields

from .models import Account, Event, Note, Session, User


class Spot(EmbeddedModel):
    city = fields.String(required=True)
    visits = fields.Integer()


class Tally(Model):
    """Versioned, stamped, with lists, sets, an embedded model and an attribute name that needs quoting."""

    k = fields.String(required=True)
    tags = fields.List(fields.String(), data_key="it's #0 :v")
    labels = fields.Set(fields.String())
    n = fields.Integer()
    spot = fields.Embedded(Spot)
    note = fields.String()
    version = fields.Integer()
    created = fields.DateTime(auto_now_add=True)
    updated = fields.DateTime(auto_now=True)

    class Meta:
        name = "suite_tx_tally"
        hash_key = "k"
        version_field = "version"


def features(reg: odm.Registry) -> Any:
    return reg.backend.features


def require_transactions(reg: odm.Registry) -> None:
    """Skip where the server cannot run transactions; the refusal itself must name the limit."""
    if not features(reg).transactions:
        pytest.skip("no transactions on this backend (features.transactions)")
    try:
        reg.backend.transaction_state(False)
    except odm.QueryError as exc:
        assert "transaction" in str(exc)
        pytest.skip(f"the server has no transactions: {exc}")


def run_async(reg: odm.Registry, body: Any) -> None:
    """``body()`` on an event loop of its own; the items it left are removed and the registry closed there."""
    async def main() -> None:
        try:
            await body()
        finally:
            for model in reg.models:
                await model.query().adelete()
            await reg.aclose()

    asyncio.run(main())


def emails() -> list[str]:
    return sorted(u.email for u in User.query())


def test_commit_groups_writes_across_models(reg: odm.Registry) -> None:
    require_transactions(reg)
    User.create(email="old@x", age=1)
    with reg.transaction() as tx:
        tx.create(User, email="a@x", age=30)
        Note.create(title="n1", slug="s1")
        Event.create(stream="s", seq=1, kind="k")
        old = User.get("old@x")
        tx.update(old, age=2)
        assert old.age == 2  # computed or read back, on every backend
        Note.insert_many([Note(title="n2", slug="s2"), Note(title="n3", slug="s3")])
    assert emails() == ["a@x", "old@x"]
    assert User.get("old@x").age == 2
    assert sorted(n.slug for n in Note.query()) == ["s1", "s2", "s3"]
    assert Event.get("s", 1).kind == "k"


def test_exception_in_block_rolls_back_and_propagates(reg: odm.Registry) -> None:
    require_transactions(reg)
    keep = User.create(email="keep@x", age=1)
    gone = User.create(email="gone@x")
    with pytest.raises(RuntimeError, match="boom"):
        with reg.transaction():
            User.create(email="new@x")
            keep.update(age=99)
            gone.delete()
            Note.create(title="t", slug="s")
            raise RuntimeError("boom")
    assert emails() == ["gone@x", "keep@x"]
    assert User.get("keep@x").age == 1
    assert Note.query().count() == 0


def test_failed_condition_in_the_middle_writes_nothing(reg: odm.Registry) -> None:
    require_transactions(reg)
    User.create(email="b@x", age=1)
    target = User.get("b@x")
    with pytest.raises(odm.ConditionFailed) as caught:
        with reg.transaction():
            User.create(email="first@x")
            target.update(User.age == 50, age=2)  # the stored age is 1: refused
            User.create(email="last@x")
    assert emails() == ["b@x"]
    assert User.get("b@x").age == 1
    if not features(reg).reads_see_own_writes_in_transaction:
        # Checked at the end of the block: the error says which operation and which item.
        assert caught.value.index == 2  # type: ignore[attr-defined]
        assert caught.value.key == ("b@x",)  # type: ignore[attr-defined]
        assert "#2" in str(caught.value) and "'b@x'" in str(caught.value)


def test_versioned_save_conflict_names_the_operation(reg: odm.Registry) -> None:
    require_transactions(reg)
    acc = Account.create(owner="o1", balance=5)
    stale = Account.get("o1")
    acc.balance = 6
    acc.save()
    with pytest.raises(odm.ConditionFailed) as caught:
        with reg.transaction():
            Account.create(owner="o2", balance=1)
            stale.balance = 100
            stale.save()
    assert Account.get("o1").balance == 6
    assert Account.get_or_none("o2") is None
    if hasattr(caught.value, "index"):
        assert caught.value.index == 2  # type: ignore[attr-defined]
        assert caught.value.key == ("o1",)  # type: ignore[attr-defined]


def test_duplicate_create_in_block_writes_nothing(reg: odm.Registry) -> None:
    require_transactions(reg)
    User.create(email="dup@x")
    with pytest.raises(odm.DuplicateKey):
        with reg.transaction():
            User.create(email="fresh@x")
            User.create(email="dup@x")
    assert emails() == ["dup@x"]


def test_error_caught_inside_the_block(reg: odm.Registry) -> None:
    """A DuplicateKey caught in the block: SQL undoes that operation alone; MongoDB aborts the block."""
    require_transactions(reg)
    if not features(reg).reads_see_own_writes_in_transaction:
        pytest.skip("writes are sent at the end of the block: no error inside it to catch")
    User.create(email="dup@x")
    survives = features(reg).transaction_survives_errors
    try:
        with reg.transaction():
            User.create(email="before@x")
            with pytest.raises(odm.DuplicateKey):
                User.create(email="dup@x")
            if survives:
                User.create(email="after@x")
    except odm.QueryError as exc:
        assert not survives and "aborted" in str(exc)
        assert emails() == ["dup@x"]
    else:
        assert survives
        assert emails() == ["after@x", "before@x", "dup@x"]


def test_reads_inside_the_block(reg: odm.Registry) -> None:
    require_transactions(reg)
    with reg.transaction():
        User.create(email="r@x", age=3)
        if features(reg).reads_see_own_writes_in_transaction:
            assert User.get("r@x").age == 3
            assert [u.email for u in User.query()] == ["r@x"]
            assert User.query().count() == 1
        else:  # the writes are sent at the end of the block
            assert User.get_or_none("r@x") is None
    assert User.get("r@x").age == 3


def test_snapshot_reads(reg: odm.Registry) -> None:
    """``snapshot=True``: a change committed by another thread during the block is not seen in it."""
    require_transactions(reg)
    if not features(reg).snapshot_transactions:
        with pytest.raises(odm.QueryError, match="snapshot"):
            with reg.transaction(snapshot=True):
                pass
        return
    User.create(email="snap@x", age=1)
    done = threading.Event()

    def writer() -> None:
        User.get("snap@x").update(age=2)  # SQLite: waits for the block's lock
        done.set()

    thread = threading.Thread(target=writer)
    with reg.transaction(snapshot=True):
        assert User.get("snap@x").age == 1
        thread.start()
        done.wait(3)  # whether or not the writer could commit meanwhile, the block reads its snapshot
        assert User.get("snap@x").age == 1
        assert User.query(User.age == 1).count() == 1
    thread.join(60)
    assert User.get("snap@x").age == 2


def test_nested_blocks(reg: odm.Registry) -> None:
    require_transactions(reg)
    if not features(reg).nested_transactions:
        with reg.transaction():
            User.create(email="outer@x")
            with pytest.raises(odm.QueryError, match="[Nn]ested"):
                with reg.transaction():
                    pass
        assert emails() == ["outer@x"]
        return
    with reg.transaction():
        User.create(email="outer@x")
        with pytest.raises(KeyError):
            with reg.transaction():
                User.create(email="inner-undone@x")
                raise KeyError("inner")
        with reg.transaction():
            User.create(email="inner-kept@x")
    assert emails() == ["inner-kept@x", "outer@x"]
    with pytest.raises(KeyError):
        with reg.transaction():
            with reg.transaction():
                User.create(email="inner-then-outer-fails@x")
            raise KeyError("outer")
    assert emails() == ["inner-kept@x", "outer@x"]


def test_concurrent_transactions_on_one_key(reg: odm.Registry) -> None:
    """Read-modify-write of one versioned item from threads: no update lost; a loser fails cleanly."""
    require_transactions(reg)
    Account.create(owner="shared", balance=0)
    workers = 4
    barrier = threading.Barrier(workers)
    outcomes: list[str] = []
    errors: list[BaseException] = []

    def work() -> None:
        barrier.wait()
        try:
            with reg.transaction():
                acc = Account.get("shared")
                acc.balance = (acc.balance or 0) + 10
                acc.save()
                Account.create(owner=f"log-{threading.get_ident()}")
            outcomes.append("ok")
        except odm.ODMError as exc:  # ConditionFailed (a version moved) or the server's conflict
            errors.append(exc)
            outcomes.append("failed")

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    won = outcomes.count("ok")
    assert won >= 1 and len(outcomes) == workers
    assert Account.get("shared").balance == 10 * won
    assert Account.query().count() == 1 + won  # a failed block's other write is gone too
    for exc in errors:
        assert isinstance(exc, (odm.ConditionFailed, odm.BackendUnavailable, odm.ODMError)) and str(exc)


def test_other_threads_are_not_joined(reg: odm.Registry) -> None:
    require_transactions(reg)
    done = threading.Event()

    def outside() -> None:
        User.create(email="thread@x")  # on SQLite this waits for the block's lock
        done.set()

    thread = threading.Thread(target=outside)
    with pytest.raises(RuntimeError):
        with reg.transaction():
            User.create(email="inside@x")
            thread.start()
            raise RuntimeError("roll back")
    thread.join(60)
    assert done.is_set()
    assert emails() == ["thread@x"]


def test_async_transaction(reg: odm.Registry) -> None:
    require_transactions(reg)

    async def main() -> None:
        await User.acreate(email="u@x", age=1)
        async with reg.atransaction() as tx:
            await tx.acreate(User, email="a@x")
            await Note.acreate(title="t", slug="s")
            user = await User.aget("u@x")
            await tx.aupdate(user, age=5)
            assert user.age == 5
        assert [u.email async for u in User.query()] in (["a@x", "u@x"], ["u@x", "a@x"])
        assert (await User.aget("u@x")).age == 5
        with pytest.raises(KeyError):
            async with reg.atransaction():
                await User.acreate(email="gone@x")
                await (await User.aget("u@x")).adelete()
                raise KeyError("x")
        assert sorted([u.email async for u in User.query()]) == ["a@x", "u@x"]

    run_async(reg, main)


def test_async_tasks_started_in_the_block_are_not_joined(reg: odm.Registry) -> None:
    require_transactions(reg)

    async def main() -> None:
        task = None
        with pytest.raises(KeyError):
            async with reg.atransaction():
                await User.acreate(email="inside@x")
                task = asyncio.ensure_future(User.acreate(email="task@x"))  # inherits the context
                raise KeyError("x")
        assert task is not None
        await task
        assert sorted([u.email async for u in User.query()]) == ["task@x"]

    run_async(reg, main)


def test_mixed_styles_are_refused(reg: odm.Registry) -> None:
    require_transactions(reg)

    async def main() -> None:
        with pytest.raises(odm.ConfigError, match="awaitable"):
            async with reg.atransaction():
                User.create(email="sync@x")
        with pytest.raises(odm.ConfigError):
            with reg.atransaction():
                pass
        assert [u.email async for u in User.query()] == []

    run_async(reg, main)


def test_transaction_limit_is_checked_before_sending(reg: odm.Registry) -> None:
    require_transactions(reg)
    limit = features(reg).max_transaction_items
    if limit is None:
        pytest.skip("no limit on a transaction's size (features.max_transaction_items)")
    with pytest.raises(odm.QueryError, match=str(limit)) as caught:
        with reg.transaction():
            for n in range(limit + 1):
                Event.create(stream="limit", seq=n)
    assert f"#{limit + 1}" in str(caught.value)
    assert Event.query(stream="limit").count() == 0
    with pytest.raises(odm.QueryError, match="at most once") as caught:
        with reg.transaction():
            User.create(email="twice@x")
            User.insert_many([User(email="twice@x", age=2)])  # insert_many is not folded into a write
    assert "#1 (create)" in str(caught.value) and "#2 (insert_many)" in str(caught.value)
    assert emails() == []


def test_explicit_operations_check_the_model(reg: odm.Registry, make_registry: Any) -> None:
    require_transactions(reg)
    tx = reg.transaction()
    with pytest.raises(odm.QueryError, match="not open"):
        tx.create(User, email="early@x")
    User.create(email="del@x")
    with tx:
        tx.create(User, email="e@x")
        tx.save(User(email="s@x"))
        tx.delete(tx.get(User, "del@x"))
        tx.insert_many(Note, [Note(title="n")])
    assert emails() == ["e@x", "s@x"]
    assert Note.query().count() == 1
    with pytest.raises(odm.QueryError, match="one block"):
        with tx:
            pass


def test_refused_where_the_server_has_no_transactions(reg: odm.Registry) -> None:
    """Where the backend has transactions in general but this server does not, the refusal says why."""
    if not features(reg).transactions:
        with pytest.raises(odm.QueryError, match="no transactions"):
            with reg.transaction():
                pass
        return
    try:
        reg.backend.transaction_state(False)
    except odm.QueryError:
        with pytest.raises(odm.QueryError, match="replica set|transactions"):
            with reg.transaction():
                User.create(email="never@x")
        assert emails() == []
    else:
        pytest.skip("this server runs transactions")


def test_mongodb_standalone_server_refuses_transactions(_targets: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A server that is not a replica set (its ``hello`` names no set) is refused with the limit named.

    The test server runs transactions, so its ``hello`` answer is replaced by a standalone's.
    """
    pymongo = pytest.importorskip("pymongo")
    reg = _targets("mongodb").registry()
    try:
        reg.register(User, rebind=True)
        real = pymongo.database.Database.command

        def command(self: Any, name: Any, *args: Any, **kwargs: Any) -> Any:
            if name == "hello":
                return {"isWritablePrimary": True, "maxWireVersion": 21}
            return real(self, name, *args, **kwargs)

        monkeypatch.setattr(pymongo.database.Database, "command", command)
        with pytest.raises(odm.QueryError, match="replica set") as caught:
            with reg.transaction():
                User.create(email="never@x")
        assert "standalone" in str(caught.value)
        monkeypatch.undo()
        assert User.get_or_none("never@x") is None
    finally:
        reg.close()


def test_the_docs_example_runs() -> None:
    """docs/transactions.md's first example, as written (on the embedded SQLite)."""
    from pathlib import Path

    text = (Path(__file__).parents[2] / "docs" / "transactions.md").read_text()
    start = text.index("```python\n") + len("```python\n")
    code = text[start:text.index("```", start)]
    namespace: dict[str, Any] = {"__name__": "docs_transactions"}
    exec(compile(code, "docs/transactions.md", "exec"), namespace)  # noqa: S102 - our own docs
    namespace["registry"].close()


def test_get_many_reads_items_of_several_models(reg: odm.Registry) -> None:
    require_transactions(reg)
    User.create(email="g@x", age=4)
    Event.create(stream="g", seq=2, kind="k")
    with reg.transaction() as tx:
        user, missing, event = tx.get_many((User, "g@x"), (User, "nobody@x"), (Event, "g", 2))
        assert user.age == 4 and missing is None and event.kind == "k"
        with pytest.raises(odm.QueryError, match="tuples"):
            tx.get_many(User)  # type: ignore[arg-type]
    limit = features(reg).max_transaction_items
    if limit is not None:
        with pytest.raises(odm.QueryError, match=str(limit)):
            with reg.transaction() as tx:
                tx.get_many(*[(User, f"{n}@x") for n in range(limit + 1)])

    async def main() -> None:
        async with reg.atransaction() as atx:
            found = await atx.aget_many((Event, "g", 2), (User, "g@x"))
            assert [type(f).__name__ for f in found] == ["Event", "User"]

    run_async(reg, main)




# -- update actions and several writes of one item in a block (issue 12, section 6) ----------------

HOSTILE = ["it's", 'say "hi"', "$where", "a.b.c", '{"json": 1}', "'); DROP TABLE x; --", "%s %%", "\\", "é☃𝄞",
           "#0", ":v"]


@pytest.fixture
def treg(make_registry: Any) -> odm.Registry:
    reg = make_registry(Tally, User, Note, Session)
    require_transactions(reg)
    return reg


def shown(obj: Tally) -> dict[str, Any]:
    """What a user sees of a Tally (the embedded model as a dict)."""
    out = obj.to_dict()
    out.pop("_id", None)
    return out


def same_as_stored(obj: Tally) -> None:
    """The instance after its block holds exactly what was stored (version, stamps and all)."""
    assert shown(obj) == shown(Tally.get(obj.k))


def test_update_actions_in_a_block(treg: odm.Registry) -> None:
    a = Tally.create(k="a", tags=["x", "y", "x"], labels={"p", "q"}, n=1, spot=Spot(city="Rome", visits=1), note="n")
    b = Tally.create(k="b", tags=["t"], labels={"p"})
    stamp = a.updated
    with treg.transaction():
        a.update(Tally.spot.city.set("Paris"), Tally.spot.visits.inc(2), tags=odm.append(*HOSTILE),
                 labels=odm.add("r"), n=odm.inc(5), note=odm.unset())
        b.update(Tally.tags.remove("t"), labels=odm.discard("p", "zz"))
        # Inside the block the instances already hold what the block stores.
        assert a.tags == ["x", "y", "x", *HOSTILE] and a.labels == {"p", "q", "r"} and a.n == 6
        assert (a.spot.city, a.spot.visits, a.note, a.version) == ("Paris", 3, None, 2)
        assert (b.tags, b.labels, b.version) == ([], set(), 2)
    assert a.updated is not None and stamp is not None and a.updated >= stamp
    same_as_stored(a)
    same_as_stored(b)
    # A block that fails writes none of its actions.
    with pytest.raises(RuntimeError):
        with treg.transaction():
            Tally.get("a").update(tags=odm.append("never"), n=odm.inc(100))
            raise RuntimeError("no")
    stale = Tally.get("b")
    b.update(note="moved")  # outside a block: version 3
    with pytest.raises(odm.ConditionFailed):  # the stale version: refused in the call or at the end of the block
        with treg.transaction():
            a.update(tags=odm.append("lost"), labels=odm.add("lost"))
            stale.update(labels=odm.add("lost"))
    got = Tally.get("a")
    assert (got.tags, got.n, got.version) == (["x", "y", "x", *HOSTILE], 6, 2)
    assert Tally.get("b").labels == set()


def test_several_writes_of_one_item_give_the_final_state(treg: odm.Registry) -> None:
    """Create, update (values and actions), save, update again: one item, as Django's atomic would leave it."""
    with treg.transaction():
        t = Tally.create(k="f", tags=["a"], n=1)
        t.update(tags=odm.append("b", *HOSTILE), n=odm.inc(2), labels=odm.add("x", "$y"))
        t.update(spot=Spot(city="Oslo"))
        t.update(Tally.spot.visits.inc(1), Tally.spot.city.set("it's.$"))
        t.note = "saved"
        t.save()
        t.update(Tally.tags.remove("a", "\\"), labels=odm.discard("x"), note=odm.unset())
        assert t.version == 6
    got = Tally.get("f")
    assert got.tags == ["b", *[v for v in HOSTILE if v != "\\"]] and got.labels == {"$y"} and got.n == 3
    assert (got.spot.city, got.spot.visits, got.note, got.version) == ("it's.$", 1, None, 6)
    assert got.created is not None and got.updated is not None
    same_as_stored(t)


def test_create_then_delete_and_delete_then_create(treg: odm.Registry) -> None:
    with treg.transaction():
        gone = Tally.create(k="gone", n=1)
        gone.update(n=odm.inc(1))
        gone.delete()
        old = Tally.create(k="re", n=1)
    assert Tally.get_or_none("gone") is None
    with treg.transaction():
        old.delete()
        new = Tally.create(k="re", n=2, tags=["new"])
    same_as_stored(new)
    assert Tally.get("re").version == 1
    # Creating a key that is taken fails even when the block deletes it again: nothing is written.
    Tally.create(k="taken", n=5)
    with pytest.raises(odm.DuplicateKey):
        with treg.transaction():
            Tally.create(k="side")
            Tally.create(k="taken", n=1)
            Tally(k="taken").delete()
    assert Tally.get("taken").n == 5 and Tally.get_or_none("side") is None


def test_a_later_write_is_judged_against_the_blocks_item(treg: odm.Registry) -> None:
    x = User.create(email="x@x", age=1)
    with pytest.raises(odm.NotFound):
        with treg.transaction():
            x.delete()
            x.update(age=2)
    assert User.get("x@x").age == 1
    with pytest.raises(odm.ConditionFailed):
        with treg.transaction():
            c = User.create(email="c@x", age=1)
            c.update(User.age == 2, name="no")
    assert User.get_or_none("c@x") is None
    with pytest.raises(odm.DuplicateKey):
        with treg.transaction():
            User.create(email="d@x")
            User.create(email="d@x")
    assert User.get_or_none("d@x") is None
    # The refusal is explained from the item the block made, as outside a block from the stored one.
    with pytest.raises(odm.ValidationError, match="out of range"):
        with treg.transaction():
            User.create(email="big@x", age=2**63 - 2).update(age=odm.inc(5))
    with pytest.raises(odm.ConcurrentModification, match="version 1 was expected, the stored version is 2"):
        with treg.transaction():
            t = Tally.create(k="st", n=1)
            stale = Tally(**t.to_dict())
            t.update(n=2)
            stale.update(n=3)
    assert User.get_or_none("big@x") is None and Tally.get_or_none("st") is None
    with treg.transaction():
        c = User.create(email="c@x", age=1)
        c.update(User.age == 1, age=odm.inc(1))
        if features(treg).transaction_survives_errors:  # a refusal caught in the block undoes that call alone
            with pytest.raises(odm.ConditionFailed):
                c.update(User.age == 1, age=99)
            c.update(tags=odm.append("kept"))
    got = User.get("c@x")
    assert got.age == 2 and (got.tags == ["kept"] or not features(treg).transaction_survives_errors)


def test_two_updates_of_a_stored_item(treg: odm.Registry) -> None:
    """Where the block's writes wait for its end, two updates of an item it did not create are refused by name."""
    u = Tally.create(k="uu", n=1)
    if features(treg).reads_see_own_writes_in_transaction:
        with treg.transaction():
            u.update(n=odm.inc(1))
            u.update(tags=odm.append("z"))
        assert (Tally.get("uu").n, Tally.get("uu").tags, Tally.get("uu").version) == (2, ["z"], 3)
        return
    with pytest.raises(odm.QueryError) as caught:
        with treg.transaction():
            u.update(n=odm.inc(1))
            u.update(tags=odm.append("z"))
    message = str(caught.value)
    assert "#2 (update)" in message and "#1 (update)" in message and "one update() call" in message
    assert "'uu'" in message
    assert (Tally.get("uu").n, Tally.get("uu").version) == (1, 1)
    with treg.transaction():  # what the message advises
        Tally.get("uu").update(n=odm.inc(1), tags=odm.append("z"))
    assert (Tally.get("uu").n, Tally.get("uu").tags, Tally.get("uu").version) == (2, ["z"], 2)


def test_folded_writes_move_unique_values(treg: odm.Registry) -> None:
    with treg.transaction():
        n = Note.create(title="t", slug="s1")
        n.update(slug="s2")
        m = Note.create(title="m", slug="s3")
        m.delete()
    assert [x.slug for x in Note.query()] == ["s2"]
    Note.create(title="other", slug="s1")  # s1 was given back, s3 never kept
    Note.create(title="again", slug="s3")
    with pytest.raises(odm.DuplicateKey):
        Note.create(title="x", slug="s2")
    with pytest.raises(odm.DuplicateKey):  # the block's first value is held by another item: nothing is written
        with treg.transaction():
            k = Note.create(title="k", slug="s1")
            k.update(slug="s4")
    assert sorted(x.slug for x in Note.query()) == ["s1", "s2", "s3"]
    for second in ("create", "update"):  # two items of the block cannot take one value
        with pytest.raises(odm.DuplicateKey):
            with treg.transaction():
                Note.create(title="a", slug="s5")
                if second == "create":
                    Note.create(title="b", slug="s5")
                else:
                    Note.create(title="b", slug="s6").update(slug="s5")
        assert sorted(x.slug for x in Note.query()) == ["s1", "s2", "s3"]


def test_concurrent_appends_in_blocks_lose_nothing(treg: odm.Registry) -> None:
    """6 threads, each a block adding to one list or set: every block lands whole or fails with an ODMError.

    A list appended to (plain, then versioned), then a set added to (computed from a read where
    the backend cannot add natively): never a silent overwrite of another block's value.
    """
    User.create(email="list@x", tags=[])
    Tally.create(k="shared", tags=[])
    shared = Note.create(title="shared", labels=set())
    workers = 6
    cases: list[tuple[Any, str, str, Any]] = [(User, "list@x", "tags", odm.append), (Tally, "shared", "tags", odm.append),
                                              (Note, shared.id, "labels", odm.add)]
    for model, key, name, action in cases:
        barrier = threading.Barrier(workers)
        results: dict[int, BaseException | None] = {}

        def work(i: int, model: Any = model, key: str = key, name: str = name, action: Any = action,
                 barrier: threading.Barrier = barrier, results: dict[int, BaseException | None] = results) -> None:
            barrier.wait()
            try:
                with treg.transaction():
                    model.get(key).update(**{name: action(f"w{i}", "it's $x.y")})
                    Note.create(title=f"log-{name}-{model.__name__}-{i}")
                results[i] = None
            except odm.ODMError as exc:
                results[i] = exc

        threads = [threading.Thread(target=work, args=(i,)) for i in range(workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        won = sorted(i for i, e in results.items() if e is None)
        assert len(results) == workers and won
        values = list(getattr(model.get(key), name))
        assert sorted(v for v in values if v.startswith("w")) == sorted(f"w{i}" for i in won)
        assert values.count("it's $x.y") == (len(won) if isinstance(values, list) and name == "tags" else 1)
        logged = sorted(n.title for n in Note.query() if n.title.startswith(f"log-{name}-{model.__name__}-"))
        assert logged == sorted(f"log-{name}-{model.__name__}-{i}" for i in won)  # a failed block wrote nothing
        for error in results.values():  # a version or value moved (MongoDB's WriteConflict is a
            # ConcurrentModification too), or DynamoDB's conflicts outlasted the retries
            assert error is None or isinstance(error, (odm.ConditionFailed, odm.BackendUnavailable)), repr(error)
        if model is Tally:
            assert Tally.get(key).version == 1 + len(won)


def test_async_block_folds_and_runs_actions(treg: odm.Registry) -> None:
    async def main() -> None:
        await Tally.acreate(k="pre", tags=["p"])
        async with treg.atransaction():
            t = await Tally.acreate(k="as", n=1)
            await t.aupdate(n=odm.inc(1), tags=odm.append("a"))
            pre = await Tally.aget("pre")
            await pre.aupdate(tags=odm.append("q"), labels=odm.add("l"))
        got = await Tally.aget("as")
        assert (got.n, got.tags, got.version) == (2, ["a"], 2) and shown(got) == shown(t)
        assert shown(await Tally.aget("pre")) == shown(pre) and pre.tags == ["p", "q"]

    run_async(treg, main)


def test_bad_input_in_a_block_changes_nothing(treg: odm.Registry) -> None:
    """A refused call (bad value, overlapping paths) collects nothing; where the block survives errors it goes on."""
    survives = features(treg).transaction_survives_errors
    try:
        with treg.transaction():
            t = Tally.create(k="v", tags=["ok"])
            with pytest.raises(odm.ValidationError):
                t.update(tags=odm.append("fine", "nul\x00here"), n=odm.inc(1))
            with pytest.raises(odm.QueryError, match="overlap"):
                t.update(Tally.spot.city.set("x"), spot=Spot(city="y"))
            if survives:
                t.update(tags=odm.append("after"))
    except odm.QueryError as exc:
        assert not survives and "aborted" in str(exc)
        assert Tally.get_or_none("v") is None
        return
    got = Tally.get("v")
    assert (got.tags, got.n, got.version) == (["ok", "after"] if survives else ["ok"], None, 2 if survives else 1)
    same_as_stored(t)


def test_hostile_names_in_maps_in_a_block(treg: odm.Registry) -> None:
    """Map keys with dots, quotes and placeholder look-alikes are data: stored as given, in a fold or not."""
    extra = {"a.b": "it's", "q'\"": "$where", "#0": ":v", "x.y.z": {"it's.$": "a.b"}}
    before = Note.create(title="pre", slug="pre")
    with treg.transaction():
        made = Note.create(title="made", slug="made")
        made.update(extra=extra, labels=odm.add(*HOSTILE))
        before.update(extra=extra)
        with pytest.raises(odm.ValidationError):
            made.update(extra={"nul\x00": 1})
    for key in (made.id, before.id):
        assert Note.get(key).extra == extra
    assert Note.get(made.id).labels == set(HOSTILE)


def test_expiring_items_fold_too(treg: odm.Registry) -> None:
    with treg.transaction():
        s = Session.create(token="t1", user="a")
        s.update(user="b")
        gone = Session.create(token="t2", user="x")
        gone.delete()
    got = Session.get("t1")
    assert got.user == "b" and got.expires_at == s.expires_at is not None
    assert Session.get_or_none("t2") is None


@pytest.mark.parametrize("write", ["save", "update"])
def test_a_stale_versioned_write_in_a_block_is_concurrent_modification(treg: odm.Registry, write: str) -> None:
    """The same error as outside a block, whether the backend judges it at the call (SQL, MongoDB)
    or at the end of the block (DynamoDB, from the stored item returned with the cancellation)."""
    Tally.create(k="stale", n=1)
    mine, theirs = Tally.get("stale"), Tally.get("stale")
    theirs.update(n=2)  # version 2 stored; mine still holds 1
    with pytest.raises(odm.ConcurrentModification, match="version 1 was expected"):
        with treg.transaction():
            Note.create(title="beside the stale write")
            if write == "save":
                mine.n = 3
                mine.save()
            else:
                mine.update(n=3)
    assert Tally.get("stale").n == 2 and Tally.get("stale").version == 2
    assert not any(n.title == "beside the stale write" for n in Note.query())  # nothing of the block


class Renamed(Model):
    """A version field stored under another name (data_key)."""

    k = fields.String(required=True)
    n = fields.Integer()
    version = fields.Integer(data_key="_v")

    class Meta:
        name = "suite_tx_renamed_version"
        hash_key = "k"
        version_field = "version"


def test_a_stale_version_stored_under_a_data_key_and_saved_twice_in_a_block(make_registry: Any) -> None:
    """Two saves of a stale instance (folded into one action on DynamoDB, which keeps the first's
    condition) are ConcurrentModification naming the version the block expected."""
    reg = make_registry(Renamed)
    require_transactions(reg)
    Renamed.create(k="r", n=1)
    mine, theirs = Renamed.get("r"), Renamed.get("r")
    theirs.update(n=2)
    with pytest.raises(odm.ConcurrentModification, match="version 1 was expected"):
        with reg.transaction():
            mine.n = 3
            mine.save()
            mine.n = 4
            mine.save()
    stored = Renamed.get("r")
    assert (stored.n, stored.version) == (2, 2)
