"""TTL (expired items are absent everywhere) and idempotent sync / schema checks."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest

import odm
from odm import Index, Model, fields

from .models import Session

UTC = dt.timezone.utc


def test_ttl_default_is_now_plus_seconds(reg: odm.Registry) -> None:
    before = odm.utcnow()
    s = Session.create(token="a")
    assert s.expires_at is not None
    assert before + dt.timedelta(seconds=3590) < s.expires_at < odm.utcnow() + dt.timedelta(seconds=3610)
    assert Session.get("a").expires_at == s.expires_at


def test_expired_items_are_absent_for_every_operation(reg: odm.Registry) -> None:
    past = odm.utcnow() - dt.timedelta(seconds=5)
    Session.create(token="old", user="u", expires_at=past)
    Session.create(token="live", user="u")
    assert Session.get_or_none("old") is None
    assert [s.token for s in Session.query(Session.user == "u")] == ["live"]
    assert Session.query().count() == 1
    assert Session.batch_get(["old", "live"])[0].token == "live" and len(Session.batch_get(["old", "live"])) == 1
    fresh = Session.create(token="old", user="again")  # insert over an expired item succeeds
    assert Session.get("old").user == "again" and fresh.expires_at > odm.utcnow()


def test_epoch_number_accepted_for_ttl(reg: odm.Registry) -> None:
    at = int((odm.utcnow() + dt.timedelta(hours=1)).timestamp())
    s = Session.create(token="e", expires_at=at)
    assert Session.get("e").expires_at == dt.datetime.fromtimestamp(at, UTC) == s.expires_at


def test_sync_is_idempotent(make_registry: Callable[..., odm.Registry]) -> None:
    class Thing(Model):
        key = fields.String()
        size = fields.Integer()
        expires = fields.DateTime()

        class Meta:
            name = "suite_sync_things"
            hash_key = "key"
            indexes = ["size"]
            ttl = {"attribute": "expires", "seconds": 60}

    reg = make_registry(Thing, sync=False)
    actions = reg.sync()
    assert actions and all(str(a) for a in actions)
    assert reg.sync() == []
    Thing.create(key="k", size=1)
    again = make_registry(Thing, sync=False, rebind=True)  # a second service starting
    assert again.sync() == []
    assert Thing.get("k").size == 1


def test_sync_adds_new_indexes(make_registry: Callable[..., odm.Registry]) -> None:
    class V1(Model):
        key = fields.String()
        a = fields.Integer()

        class Meta:
            name = "suite_sync_grow"
            hash_key = "key"

    reg = make_registry(V1)
    V1.create(key="k", a=1)

    class V2(Model):
        key = fields.String()
        a = fields.Integer()

        class Meta:
            name = "suite_sync_grow"
            hash_key = "key"
            indexes = [Index("a")]

    reg2 = make_registry(V2, sync=False)
    actions = reg2.sync()
    assert any("a" in str(x) for x in actions)
    assert V2.get("k").a == 1
    assert reg is not reg2


def test_sync_refuses_a_different_key_schema(make_registry: Callable[..., odm.Registry]) -> None:
    class First(Model):
        key = fields.String()

        class Meta:
            name = "suite_sync_keys"
            hash_key = "key"

    reg = make_registry(First)
    First.create(key="keep")

    class Second(Model):
        other = fields.String()

        class Meta:
            name = "suite_sync_keys"
            hash_key = "other"

    with pytest.raises(odm.SchemaMismatch, match="suite_sync_keys"):
        make_registry(Second)
    # Nothing changed: the data is still there.
    assert First.get("keep").key == "keep"
    del reg
