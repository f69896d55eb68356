"""DynamoDB rewrites of what it refuses to compare: golden request text, no server (issue 9, items 1-3)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from odm.backends.dynamodb.codec import DynamoCodec
from odm.backends.dynamodb.planner import Plan, plan_query

from ..backends.models import Event, User

CODEC = DynamoCodec()
LARGEST = "9." + "9" * 37 + "E+125"


def plan(model: Any, node: Any) -> Plan:
    return plan_query(model._spec, CODEC, node)


def values(p: Plan) -> list[Any]:
    return list(p.attributes.get("ExpressionAttributeValues", {}).values())


def test_boolean_ordering_becomes_equality_or_in() -> None:
    p = plan(User, User.active < True)
    assert p.filter == "#0 = :0" and values(p) == [{"BOOL": False}]
    p = plan(User, User.active <= True)
    assert p.filter == "#0 IN (:0, :1)" and values(p) == [{"BOOL": False}, {"BOOL": True}]
    assert plan(User, User.active.between(True, False)).operation == "None"
    assert plan(User, User.active > True).operation == "None"


def test_empty_key_values_need_no_request() -> None:
    assert plan(User, User.email == "").operation == "None"
    assert plan(Event, (Event.stream == "") & (Event.seq == 1)).operation == "None"
    assert plan(User, User.email != "").filter is None  # matches everything: a plain Scan
    p = plan(Event, (Event.stream == "s") & (Event.kind > ""))
    assert p.operation == "Query" and p.filter == "attribute_exists(#1) AND NOT attribute_type(#1, :1)"
    p = plan(User, User.email.in_(["", "a@x.io"]))
    assert p.operation == "Query" and p.key_condition == "#0 = :0"


def test_numbers_beyond_the_range_become_the_nearest_storable_bound() -> None:
    p = plan(User, User.score > 1e-200)
    assert p.filter == "#0 >= :0" and values(p) == [{"N": "1E-130"}]
    p = plan(User, User.score < 1e300)
    assert p.filter == "#0 <= :0" and values(p) == [{"N": LARGEST}]
    p = plan(User, User.score > -1e-200)
    assert p.filter == "#0 >= :0" and values(p) == [{"N": "0"}]
    p = plan(User, User.score < 1e-200)
    assert p.filter == "#0 <= :0" and values(p) == [{"N": "0"}]
    p = plan(User, User.score >= -1e300)
    assert values(p) == [{"N": "-" + LARGEST}]
    for node in (User.score == 1e300, User.score > 1e300, User.score < -1e300, User.score.in_([1e300])):
        assert plan(User, node).operation == "None"
    # 39+ digits: rounded to 38 toward the side that keeps the answer.
    p = plan(User, User.balance > Decimal("1.23456789012345678901234567890123456789"))
    assert p.filter == "#0 >= :0" and values(p) == [{"N": "1.2345678901234567890123456789012345679"}]
    p = plan(User, User.balance <= Decimal("-1.23456789012345678901234567890123456789"))
    assert p.filter == "#0 <= :0" and values(p) == [{"N": "-1.2345678901234567890123456789012345679"}]
    p = plan(User, User.balance.between(Decimal("1E-200"), Decimal("2E+300")))
    assert p.filter == "#0 BETWEEN :0 AND :1" and values(p) == [{"N": "1E-130"}, {"N": LARGEST}]
