"""A datetime keeps every microsecond and compares exactly, on every backend (issue 9, item 7).

MongoDB's BSON dates hold milliseconds: datetimes are ISO strings there, as elsewhere, and the
TTL attribute (a BSON date, for the TTL index) carries its sub-millisecond remainder beside it.
The instants below differ only below the millisecond, so a backend that keeps milliseconds
merges them and answers every assertion differently.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import odm
from odm import Model, fields

from .models import Session

UTC = dt.timezone.utc


class Tick(Model):
    """A datetime range key, so every backend (DynamoDB too) can order and page by it."""

    stream = fields.String(required=True)
    at = fields.DateTime(required=True)
    n = fields.Integer()

    class Meta:
        name = "suite_ticks"
        hash_key = "stream"
        range_key = "at"


def _instants(base: dt.datetime) -> list[dt.datetime]:
    """Four instants in one millisecond and one at the next, in time order."""
    return [base.replace(microsecond=m) for m in (100, 101, 200, 999, 1000)]


def _all_pages(query: Any, size: int) -> list[Any]:
    out, cursor = [], None
    while True:
        page = query.page(size, cursor)
        out += page.items
        cursor = page.next_cursor
        if cursor is None:
            return out


def test_datetimes_read_back_and_compare_at_the_microsecond(make_registry: Callable[..., odm.Registry]) -> None:
    make_registry(Tick)
    times = _instants(dt.datetime(2031, 7, 1, 12, 0, 0, tzinfo=UTC))
    for i, at in enumerate(times):
        Tick.create(stream="s", at=at, n=i)
    assert [t.at for t in Tick.query(Tick.stream == "s").order_by(Tick.at)] == times
    assert Tick.get("s", times[1]).n == 1 and Tick.get_or_none("s", times[1] + dt.timedelta(microseconds=1)) is None
    s = Tick.stream == "s"
    assert [t.n for t in Tick.query(s, Tick.at == times[2])] == [2]
    assert [t.n for t in Tick.query(s, Tick.at < times[2]).order_by(Tick.at)] == [0, 1]
    assert [t.n for t in Tick.query(s, Tick.at <= times[2]).order_by(Tick.at)] == [0, 1, 2]
    assert [t.n for t in Tick.query(s, Tick.at > times[2]).order_by(Tick.at)] == [3, 4]
    assert [t.n for t in Tick.query(s, Tick.at >= times[3]).order_by(Tick.at)] == [3, 4]
    assert [t.n for t in Tick.query(s, Tick.at.between(times[1], times[3])).order_by(Tick.at)] == [1, 2, 3]
    assert [t.n for t in Tick.query(s).order_by(-Tick.at)] == [4, 3, 2, 1, 0]
    # Page cursors carry the exact value: every item once, in order, one per page.
    assert [t.n for t in _all_pages(Tick.query(s).order_by(Tick.at), 1)] == [0, 1, 2, 3, 4]
    assert [t.n for t in _all_pages(Tick.query(s).order_by(-Tick.at), 2)] == [4, 3, 2, 1, 0]


def test_written_instance_equals_what_is_read(make_registry: Callable[..., odm.Registry]) -> None:
    make_registry(Tick)
    at = dt.datetime(2031, 7, 1, 12, 0, 0, 123456, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    made = Tick.create(stream="w", at=at)
    got = Tick.get("w", at)
    assert got.at == made.at == at and got.at.tzinfo == UTC


def test_ttl_attribute_keeps_microseconds_and_compares_exactly(reg: odm.Registry) -> None:
    # Session's TTL attribute: a BSON date under MongoDB's TTL index, epoch seconds on DynamoDB.
    base = (odm.utcnow() + dt.timedelta(days=1)).replace(microsecond=0)
    times = _instants(base)
    for i, at in enumerate(times):
        Session.create(token=f"t{i}", user="u", expires_at=at)
    assert [Session.get(f"t{i}").expires_at for i in range(5)] == times
    assert sorted(s.token for s in Session.query(Session.expires_at == times[2])) == ["t2"]
    assert sorted(s.token for s in Session.query(Session.expires_at < times[2])) == ["t0", "t1"]
    assert sorted(s.token for s in Session.query(Session.expires_at <= times[1])) == ["t0", "t1"]
    assert sorted(s.token for s in Session.query(Session.expires_at > times[3])) == ["t4"]
    assert sorted(s.token for s in Session.query(Session.expires_at >= times[3])) == ["t3", "t4"]
    assert sorted(s.token for s in Session.query(Session.expires_at.between(times[1], times[3]))) == ["t1", "t2", "t3"]
    assert sorted(s.token for s in Session.query(Session.expires_at.in_([times[0], times[3]]))) == ["t0", "t3"]
    assert sorted(s.token for s in Session.query(~(Session.expires_at == times[0]))) == ["t1", "t2", "t3", "t4"]
    if reg.backend.features.supports_arbitrary_order:
        assert [s.token for s in Session.query().order_by(-Session.expires_at)] == ["t4", "t3", "t2", "t1", "t0"]
        assert [s.token for s in _all_pages(Session.query().order_by(Session.expires_at), 1)] == \
            ["t0", "t1", "t2", "t3", "t4"]
    # An update moves the remainder too, and a whole millisecond clears it.
    Session.get("t1").update(expires_at=times[3])
    Session.get("t3").update(expires_at=times[4])
    assert Session.get("t1").expires_at == times[3] and Session.get("t3").expires_at == times[4]
    assert sorted(s.token for s in Session.query(Session.expires_at == times[3])) == ["t1"]
    # A condition on the TTL attribute is exact too.
    s0 = Session.get("t0")
    s0.user = "v"
    s0.save(condition=Session.expires_at == times[0])
    assert Session.get("t0").user == "v"
