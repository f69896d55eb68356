"""insert_many treats an expired TTL item as absent, as create does (docs/models.md, TTL).

On DynamoDB the put's condition (absent, or expired at the call's start) is built once per call
(bench_bulk, issue 11), so it is checked here across more than one transaction of 100.
"""

from __future__ import annotations

import datetime as dt

import pytest

import odm

from .models import Session


def test_insert_many_replaces_expired_items_and_refuses_live_ones(reg: odm.Registry) -> None:
    past = odm.utcnow() - dt.timedelta(seconds=5)
    expired = [f"old-{i:03d}" for i in range(0, 150, 7)]  # spread over two DynamoDB transactions
    for token in expired:
        Session.create(token=token, user="gone", expires_at=past)
    Session.create(token="live", user="kept")
    Session.insert_many([Session(token=f"old-{i:03d}", user="new") for i in range(150)])
    assert {s.token: s.user for s in Session.query()} == {"live": "kept", **{f"old-{i:03d}": "new" for i in range(150)}}
    with pytest.raises(odm.DuplicateKey) as exc:
        Session.insert_many([Session(token="live", user="again")])
    assert exc.value.failed == [("live",)]  # type: ignore[attr-defined]
    assert Session.get("live").user == "kept"
