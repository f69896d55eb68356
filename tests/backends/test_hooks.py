"""Lifecycle hooks and auto timestamps on every backend (docs/models.md, "Hooks", "Timestamps").

The hooks record what they saw, including whether the item was stored at that moment (read
through the store itself), so the order pre hook -> validation -> write -> post hook is checked
against the database, not assumed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import odm
from odm import Model, fields

#: What the hooks saw, in order: (hook, name, detail...).
EVENTS: list[tuple[Any, ...]] = []


class Refused(Exception):
    """Raised by a hook asked to refuse (the item's note says so)."""


class Audited(Model):
    name = fields.String(required=True)
    note = fields.String()
    count = fields.Integer(default=0)
    version = fields.Integer()
    created_at = fields.DateTime(auto_now_add=True)
    updated_at = fields.DateTime(auto_now=True)

    class Meta:
        name = "suite_hooks_audited"
        hash_key = "name"
        version_field = "version"

    def _stored(self) -> bool:
        return Audited.get_or_none(self.name) is not None

    def pre_save(self) -> None:
        EVENTS.append(("pre_save", self.name, self.version, self._stored()))
        if self.note == "refuse":
            raise Refused(self.name)
        if self.note == "invalid":
            self.count = "seven"  # type: ignore[assignment]  # validated after the hook
        if self.note is not None:
            self.note = self.note.strip()  # a hook may change attributes; the change is written

    def post_save(self) -> None:
        EVENTS.append(("post_save", self.name, self.version, self._stored()))
        if self.note == "post-fail":
            raise Refused(self.name)

    def pre_update(self, changes: dict[str, Any]) -> None:
        EVENTS.append(("pre_update", self.name, sorted(changes)))
        if changes.get("note") == "refuse":
            raise Refused(self.name)
        if "count" in changes:
            changes["note"] = "counted"  # the hook may add (or drop) changes

    def post_update(self, changes: dict[str, Any]) -> None:
        EVENTS.append(("post_update", self.name, sorted(changes), self.note))

    def pre_delete(self) -> None:
        EVENTS.append(("pre_delete", self.name, self._stored()))
        if self.note == "keep":
            raise Refused(self.name)

    def post_delete(self) -> None:
        EVENTS.append(("post_delete", self.name, self._stored()))


class AsyncAudited(Model):
    """The same kind of hooks written as ``async def``: awaited by the async API only."""

    name = fields.String(required=True)
    note = fields.String()
    updated_at = fields.DateTime(auto_now=True)

    class Meta:
        name = "suite_hooks_async"
        hash_key = "name"

    async def pre_save(self) -> None:
        await asyncio.sleep(0)
        EVENTS.append(("apre_save", self.name, await AsyncAudited.aget_or_none(self.name) is not None))
        if self.note == "refuse":
            raise Refused(self.name)

    async def post_save(self) -> None:
        EVENTS.append(("apost_save", self.name, await AsyncAudited.aget_or_none(self.name) is not None))

    async def pre_delete(self) -> None:
        EVENTS.append(("apre_delete", self.name))

    def post_delete(self) -> None:  # sync and async hooks mix
        EVENTS.append(("post_delete", self.name))


class Entry(Model):
    """An audit record, written by ``Journal``'s hooks."""

    action = fields.String(required=True)
    key = fields.String(required=True)

    class Meta:
        name = "suite_hooks_entries"


class Journal(Model):
    """Auditing: each write leaves an ``Entry``, written by the post hooks through the ODM itself."""

    name = fields.String(required=True)
    title = fields.String()

    class Meta:
        name = "suite_hooks_journal"
        hash_key = "name"

    def post_save(self) -> None:
        Entry.create(action="save", key=self.name)

    def post_update(self, changes: dict[str, Any]) -> None:
        Entry.create(action="update:" + ",".join(sorted(changes)), key=self.name)

    def post_delete(self) -> None:
        Entry.create(action="delete", key=self.name)


@pytest.fixture
def events() -> Iterator[list[tuple[Any, ...]]]:
    EVENTS.clear()
    yield EVENTS
    EVENTS.clear()


@pytest.fixture
def hreg(make_registry: Callable[..., odm.Registry], events: list[Any]) -> odm.Registry:
    return make_registry(Audited, AsyncAudited, Journal, Entry)


def _utc(value: Any) -> bool:
    return isinstance(value, dt.datetime) and value.utcoffset() == dt.timedelta(0)


def test_hooks_run_in_order_around_each_write(hreg: odm.Registry, events: list[Any]) -> None:
    a = Audited.create(name="a", note=" hi ")
    assert events == [("pre_save", "a", None, False), ("post_save", "a", 1, True)]
    assert Audited.get("a").note == "hi"  # the pre hook's change was written
    events.clear()
    a.note = "again"
    a.save()
    assert events == [("pre_save", "a", 1, True), ("post_save", "a", 2, True)]
    events.clear()
    a.update(count=odm.inc(2))
    assert events[0] == ("pre_update", "a", ["count"])  # the caller's changes, before the auto_now stamp
    assert events[1] == ("post_update", "a", ["count", "note", "updated_at"], "counted")
    assert (a.count, a.version) == (2, 3)
    assert Audited.get("a").note == "counted"
    events.clear()
    a.delete()
    assert events == [("pre_delete", "a", True), ("post_delete", "a", False)]


def test_post_hooks_may_write_audit_records(hreg: odm.Registry) -> None:
    j = Journal.create(name="j", title="a")
    j.update(title="b")
    j.delete()
    Journal.insert_many([Journal(name="k"), Journal(name="l")])
    assert sorted((e.action, e.key) for e in Entry.query()) == [
        ("delete", "j"), ("save", "j"), ("save", "k"), ("save", "l"), ("update:title", "j")]


def test_a_pre_hook_that_raises_writes_nothing(hreg: odm.Registry, events: list[Any]) -> None:
    with pytest.raises(Refused):
        Audited.create(name="r", note="refuse")
    assert Audited.get_or_none("r") is None
    assert [e[0] for e in events] == ["pre_save"]  # no post hook
    a = Audited.create(name="s", note="ok")
    stored = Audited.get("s")
    a.note = "refuse"
    with pytest.raises(Refused):
        a.save()
    assert Audited.get("s") == stored and a.version == 1 and a.updated_at == stored.updated_at
    with pytest.raises(Refused):
        a.update(note="refuse")
    assert Audited.get("s") == stored
    keep = Audited.create(name="k", note="keep")
    with pytest.raises(Refused):
        keep.delete()
    assert Audited.get_or_none("k") is not None
    assert "post_update" not in [e[0] for e in events] and "post_delete" not in [e[0] for e in events]


def test_what_a_pre_hook_changes_is_validated(hreg: odm.Registry, events: list[Any]) -> None:
    with pytest.raises(odm.ValidationError) as info:
        Audited.create(name="v", note="invalid")
    assert info.value.messages == {"count": ["Not a valid integer."]}
    assert Audited.get_or_none("v") is None
    assert [e[0] for e in events] == ["pre_save"]


def test_a_post_hook_error_propagates_and_the_write_stays(hreg: odm.Registry, events: list[Any]) -> None:
    with pytest.raises(Refused):
        Audited.create(name="p", note="post-fail")
    got = Audited.get("p")
    assert got.note == "post-fail" and got.version == 1
    assert events[-1] == ("post_save", "p", 1, True)
    # A versioned save is a conditional write (a transaction on SQL): committed before the hook.
    got.count = 5
    with pytest.raises(Refused):
        got.save()
    assert Audited.get("p") == got and got.version == 2


def test_a_refused_write_runs_no_post_hook_and_keeps_the_instance(hreg: odm.Registry, events: list[Any]) -> None:
    Audited.create(name="d")
    with pytest.raises(odm.DuplicateKey):
        Audited.create(name="d")
    stale = Audited.get("d")
    Audited.get("d").save()
    events.clear()
    before = stale.updated_at
    with pytest.raises(odm.ConcurrentModification):
        stale.save()
    assert [e[0] for e in events] == ["pre_save"]
    assert stale.version == 1 and stale.updated_at == before  # version and stamp put back
    with pytest.raises(odm.ConditionFailed):
        Audited.get("d").save(condition=Audited.note == "other")
    assert "post_save" not in [e[0] for e in events]


def test_insert_many_runs_every_pre_hook_before_the_write(hreg: odm.Registry, events: list[Any]) -> None:
    items = Audited.insert_many([Audited(name="m1"), {"name": "m2", "note": " x "}, Audited(name="m3")])
    assert [e[:2] for e in events] == [("pre_save", "m1"), ("pre_save", "m2"), ("pre_save", "m3"),
                                       ("post_save", "m1"), ("post_save", "m2"), ("post_save", "m3")]
    assert not any(e[3] for e in events[:3]) and all(e[3] for e in events[3:])
    assert items[1].note == "x" and Audited.get("m2").note == "x"
    assert all(Audited.get(o.name) == o for o in items)  # the instances hold what was stored


def test_insert_many_with_a_failing_item(hreg: odm.Registry, events: list[Any]) -> None:
    # A pre hook refusing the second item: no item is written, no post hook runs.
    with pytest.raises(Refused):
        Audited.insert_many([Audited(name="f1"), Audited(name="f2", note="refuse"), Audited(name="f3")])
    assert Audited.query().count() == 0
    assert [e[:2] for e in events] == [("pre_save", "f1"), ("pre_save", "f2")]
    events.clear()
    # An item a pre hook makes invalid: every pre hook ran, then validation refused, nothing written.
    with pytest.raises(odm.ValidationError):
        Audited.insert_many([Audited(name="g1"), Audited(name="g2", note="invalid")])
    assert Audited.query().count() == 0 and [e[0] for e in events] == ["pre_save", "pre_save"]
    events.clear()
    # A clash with a stored item: the write fails, so no post hook runs (.written says what was stored).
    Audited.create(name="h2", note="first")
    events.clear()
    with pytest.raises(odm.DuplicateKey):
        Audited.insert_many([Audited(name="h1"), Audited(name="h2", note="second")])
    assert [e[0] for e in events] == ["pre_save", "pre_save"]
    assert Audited.get("h2").note == "first"


def test_auto_now_values_equal_the_stored_ones(hreg: odm.Registry, events: list[Any]) -> None:
    a = Audited.create(name="t")
    assert _utc(a.created_at) and _utc(a.updated_at) and a.created_at == a.updated_at
    stored = Audited.get("t")
    assert (stored.created_at, stored.updated_at) == (a.created_at, a.updated_at)  # every microsecond
    created = a.created_at
    past = dt.datetime(2001, 2, 3, tzinfo=dt.timezone.utc)
    a.updated_at = past
    a.save()  # auto_now is set on every write, over any value
    assert a.updated_at > past and a.created_at == created
    assert Audited.get("t").updated_at == a.updated_at
    a.update(updated_at=past, count=1)  # update() too
    assert a.updated_at > past and a.updated_at == Audited.get("t").updated_at and a.created_at == created
    assert Audited.query(Audited.name == "t").update(updated_at=past, count=2) == 1  # Query.update too
    stored = Audited.get("t")
    assert stored.updated_at > past and stored.created_at == created and stored.count == 2
    # auto_now_add keeps a value that is given; insert_many stamps every item.
    given = dt.datetime(2020, 1, 1, 12, 0, 0, 123456, tzinfo=dt.timezone.utc)
    b = Audited.create(name="u", created_at=given)
    assert b.created_at == given and Audited.get("u").created_at == given
    many = Audited.insert_many([Audited(name=f"w{i}") for i in range(3)] + [{"name": "w3", "created_at": given}])
    assert all(_utc(o.updated_at) and o == Audited.get(o.name) for o in many)
    assert many[3].created_at == given and many[0].created_at == many[0].updated_at
    # A failed save puts the stamp back.
    c = Audited(name="u")
    with pytest.raises(odm.ConcurrentModification):
        c.save()
    assert c.updated_at is None and c.created_at is None


def test_auto_now_changes_helper_for_partial_updates(hreg: odm.Registry) -> None:
    now = odm.utcnow()
    assert Audited._auto_now_changes(now) == {"updated_at": now}
    assert _utc(Audited._auto_now_changes()["updated_at"])
    assert AsyncAudited._auto_now_changes(now) == {"updated_at": now}


def test_sync_api_refuses_async_hooks_before_writing(hreg: odm.Registry, events: list[Any]) -> None:
    with pytest.raises(odm.ConfigError, match="AsyncAudited.pre_save is an async def hook"):
        AsyncAudited.create(name="x")
    with pytest.raises(odm.ConfigError):
        AsyncAudited.insert_many([AsyncAudited(name="y")])
    assert AsyncAudited.query().count() == 0 and events == []


def _run_async(target: Any, body: Callable[[], Any]) -> None:
    async def main() -> None:
        async with target.registry() as reg:
            reg.register(Audited, AsyncAudited, rebind=True)
            await reg.async_sync()
            try:
                await body()
            finally:
                await Audited.query().adelete()
                await AsyncAudited.query().adelete()

    asyncio.run(main())


def test_hooks_under_the_async_api(target: Any, events: list[Any]) -> None:
    async def body() -> None:
        a = await Audited.acreate(name="a", note=" hi ")
        a.note = "x"
        await a.asave()
        await a.aupdate(count=odm.inc(1))
        assert a.note == "counted" and (await Audited.aget("a")).updated_at == a.updated_at
        await a.adelete()
        with pytest.raises(Refused):
            await Audited.acreate(name="r", note="refuse")
        with pytest.raises(Refused):
            await Audited.ainsert_many([Audited(name="i1"), Audited(name="i2", note="refuse")])
        assert await Audited.query().acount() == 0
        await Audited.ainsert_many([Audited(name="i1"), Audited(name="i2")])
        assert [e[0] for e in events] == [
            "pre_save", "post_save", "pre_save", "post_save", "pre_update", "post_update", "pre_delete", "post_delete",
            "pre_save", "pre_save", "pre_save", "pre_save", "pre_save", "post_save", "post_save"]
        assert events[0][3] is False and events[1][3] is True

    _run_async(target, body)


def test_async_def_hooks_are_awaited(target: Any, events: list[Any]) -> None:
    async def body() -> None:
        x = await AsyncAudited.acreate(name="x")
        assert events == [("apre_save", "x", False), ("apost_save", "x", True)]
        assert (await AsyncAudited.aget("x")).updated_at == x.updated_at
        with pytest.raises(Refused):
            await AsyncAudited.acreate(name="r", note="refuse")
        assert await AsyncAudited.aget_or_none("r") is None
        events.clear()
        await AsyncAudited.ainsert_many([AsyncAudited(name="y"), AsyncAudited(name="z")])
        assert events == [("apre_save", "y", False), ("apre_save", "z", False),
                          ("apost_save", "y", True), ("apost_save", "z", True)]
        events.clear()
        await x.adelete()
        assert events == [("apre_delete", "x"), ("post_delete", "x")]
        assert await AsyncAudited.aget_or_none("x") is None

    _run_async(target, body)
