"""DynamoDB planner and compiler golden tests: no server, exact request text."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

import odm
from odm import Model, fields
from odm.backends.dynamodb.codec import DynamoCodec, epoch_of, from_epoch, item_from_av, item_to_av
from odm.backends.dynamodb.planner import Plan, plan_query
from odm.backends.dynamodb.planner.compiler import Context, compile_condition, like_exact
from odm.expressions.nodes import Exists, Not
from odm.golayer import Filter, definition_spec
from odm.schema import TableSpec

from ..backends.models import Event, Session, User

CODEC = DynamoCodec()
UTC = dt.timezone.utc


def plan(model: Any, node: Any = None, order: tuple[Any, ...] = (), index: str | None = None,
         now: Decimal | None = None) -> Plan:
    spec: TableSpec = model if isinstance(model, TableSpec) else model._spec
    return plan_query(spec, CODEC, node, order, index, now)


def request(p: Plan) -> dict[str, Any]:
    return {k: v for k, v in p.request("t").items() if k != "TableName"}


def test_scan_with_placeholders_for_every_name_and_value() -> None:
    p = plan(User, User.age > 3)
    assert p.operation == "Scan" and p.access.name is None
    assert request(p) == {"FilterExpression": "#0 > :0", "ExpressionAttributeNames": {"#0": "age"},
                          "ExpressionAttributeValues": {":0": {"N": "3"}}}


def test_a_repeated_name_reuses_its_placeholder() -> None:
    assert request(plan(User, (User.age > 3) & (User.age < 9)))["FilterExpression"] == "#0 > :0 AND #0 < :1"


def test_only_needed_parentheses_are_written() -> None:
    # DynamoDB rejects redundant parentheses.
    p = plan(User, ~((User.age > 3) | (User.name == "x")))
    assert p.filter == "NOT (#0 > :0 OR #1 = :1)"
    p = plan(User, ((User.age > 3) | (User.name == "x")) & (User.score < 2.5))
    assert p.filter == "(#0 > :0 OR #1 = :1) AND #2 < :2"
    assert p.attributes["ExpressionAttributeValues"][":2"] == {"N": "2.5"}


def test_nested_paths_reserved_words_dots_and_dashes_are_placeholders() -> None:
    p = plan(User, User.address.city == "Paris")
    assert (p.filter, p.attributes["ExpressionAttributeNames"]) == ("#0.#1 = :0", {"#0": "address", "#1": "city"})
    go = definition_spec("go", {"name": "go", "hashKey": "email"})
    p = plan(go, Filter().match("a-b c", 1).match("size", "x").node())
    assert p.filter == "#0 = :0 AND #1 = :1"
    assert p.attributes["ExpressionAttributeNames"] == {"#0": "a-b c", "#1": "size"}


def test_exists_means_present_and_not_null_and_none_is_its_negation() -> None:
    assert plan(User, User.score.exists()).filter == "attribute_exists(#0) AND NOT attribute_type(#0, :0)"
    assert plan(User, User.score == None).filter == "NOT (attribute_exists(#0) AND NOT attribute_type(#0, :0))"  # noqa: E711
    assert plan(User, User.email.exists()).filter == "attribute_exists(#0)"


def test_empty_in_and_inverted_between_match_nothing() -> None:
    false = "attribute_exists(#0) AND attribute_not_exists(#0)"
    nothing = plan(User, User.age.in_([]))  # decided without a request
    assert nothing.operation == "None" and nothing.filter is None
    assert plan(User, User.age.in_([]) | (User.age == 3)).filter == "#0 = :0"
    assert plan(User, ~User.age.in_([]) & (User.age == 3)).filter == "#0 = :0"
    assert plan(User, User.age.between(9, 3)).filter == false
    assert plan(User, User.age.between(3, 9)).filter == "#0 BETWEEN :0 AND :1"


def test_in_is_split_at_100_operands() -> None:
    text = plan(User, User.age.in_(range(150))).filter
    assert text is not None and text.count(" IN (") == 2 and " OR " in text and ":149" in text


def test_contains_and_startswith() -> None:
    p = plan(User, User.tags.contains("dev") & User.name.contains("o") & User.name.startswith("A"))
    assert p.filter == "contains(#0, :0) AND contains(#1, :1) AND begins_with(#1, :2)"


def test_query_on_table_hash_and_range_key() -> None:
    p = plan(Event, (Event.stream == "s") & (Event.seq > 2) & (Event.kind == "k"))
    assert p.operation == "Query"
    # The LSI by_kind serves "kind = k" as a key condition too; both score the same, the table wins ties.
    assert p.access.name is None and p.key_condition == "#0 = :0 AND #1 > :1" and p.filter == "#2 = :2"


def test_lsi_chosen_when_its_range_key_is_constrained() -> None:
    p = plan(Event, (Event.stream == "s") & (Event.kind == "k"))
    assert (p.operation, p.access.name, p.access.kind) == ("Query", "by_kind", "LSI")
    assert p.key_condition == "#0 = :0 AND #1 = :1" and p.filter is None


def test_gsi_is_used_only_when_it_cannot_drop_items() -> None:
    # by_name (name, age) holds only items with an age: it serves name == x only with a condition on age.
    p = plan(User, User.name == "Ann")
    assert (p.operation, p.access.name) == ("Query", "ix_name")
    p = plan(User, (User.name == "Ann") & (User.age > 3))
    assert (p.access.name, p.key_condition) == ("by_name", "#0 = :0 AND #1 > :1")
    p = plan(User, (User.name == "Ann") & User.age.exists())
    assert p.access.name == "by_name" and p.key_condition == "#0 = :0"


def test_descending_range_order_and_order_errors_name_the_index() -> None:
    p = plan(Event, Event.stream == "s", (-Event.seq,))
    assert p.operation == "Query" and request(p)["ScanIndexForward"] is False
    with pytest.raises(odm.QueryError, match="GSI index 'by_name'.*equality condition on 'name'"):
        plan(User, None, (-User.age,))
    with pytest.raises(odm.QueryError, match="No table key or index has 'score'"):
        plan(User, User.name == "x", (User.score.asc(),))
    with pytest.raises(odm.QueryError, match="range key"):
        plan(Event, None, (Event.seq.asc(),))


def test_use_index_forces_the_index() -> None:
    p = plan(User, User.name == "Ann", index="by_name")
    assert (p.operation, p.access.name, p.key_condition) == ("Query", "by_name", "#0 = :0")
    p = plan(User, User.age > 3, index="by_name")
    assert (p.operation, p.access.name) == ("Scan", "by_name")
    with pytest.raises(odm.QueryError, match="no such index"):
        plan(User, None, index="nope")


class Strict(Model):
    key = fields.String()
    size = fields.Integer()

    class Meta:
        name = "unit_strict"
        hash_key = "key"
        allow_scan = False
        gsi = {"by_size": {"hash_key": "size"}}


def test_allow_scan_false_refuses_a_scan_and_says_what_would_serve() -> None:
    with pytest.raises(odm.QueryError, match="allow_scan = False.*GSI 'by_size': hash key 'size'"):
        plan(Strict, Strict.size > 3)
    assert plan(Strict, Strict.size == 3).access.name == "by_size"


def test_ttl_liveness_filter_is_added_to_every_read() -> None:
    p = plan(Session, Session.user == "u", now=Decimal("1700000000.5"))
    assert p.filter == "#0 = :0 AND (attribute_not_exists(#1) OR #1 > :1 OR #1 > :2)"
    assert p.attributes["ExpressionAttributeValues"][":1"] == {"N": "1700000000.5"}
    assert p.attributes["ExpressionAttributeValues"][":2"] == {"S": "2023-11-14T22:13:20.500000Z"}


def test_like_prefix_runs_on_the_server_and_other_patterns_finish_on_the_client() -> None:
    go = definition_spec("go", {"name": "go", "hashKey": "email"})
    assert like_exact("ab%") == ("prefix", "ab") and like_exact("a\\%b") == ("eq", "a%b") and like_exact("_b") is None
    p = plan(go, Filter().match_pattern("email", "ab%").node())
    assert p.filter == "begins_with(#0, :0)" and p.residual is None
    p = plan(go, Filter().match_pattern("email", "x\\_y%z").node())
    assert p.filter == "begins_with(#0, :0)" and p.attributes["ExpressionAttributeValues"][":0"] == {"S": "x_y"}
    assert p.residual is not None


def test_write_conditions_compile_to_condition_expressions() -> None:
    spec = User._spec
    assert spec is not None
    ctx = Context()
    assert compile_condition(spec, CODEC, ctx, Not(Exists(spec.hash_key)))[0] == "NOT attribute_exists(#0)"
    ctx = Context()
    assert compile_condition(spec, CODEC, ctx, (User.age < 30) & (User.name == "x"))[0] == "#0 < :0 AND #1 = :1"
    with pytest.raises(odm.QueryError, match="match_pattern"):
        go = definition_spec("go", {"name": "go", "hashKey": "email"})
        compile_condition(go, CODEC, Context(), Filter().match_pattern("email", "%x").node())  # type: ignore[arg-type]


# -- stored forms -------------------------------------------------------------------------------------


def test_stored_forms_round_trip() -> None:
    doc = {"f": Decimal("9.25"), "s": {"a", "b"}, "n": {1, 2}, "b": b"\x00\xff", "e": "", "m": {"x": [1, {"y": None}]},
           "none": None, "empty": set()}
    item = item_to_av(doc)
    assert item["f"] == {"N": "9.25"} and item["s"] == {"SS": ["a", "b"]} and sorted(item["n"]["NS"]) == ["1", "2"]
    assert item["b"] == {"B": b"\x00\xff"} and item["e"] == {"S": ""} and "none" not in item and "empty" not in item
    assert item["m"] == {"M": {"x": {"L": [{"N": "1"}, {"M": {"y": {"NULL": True}}}]}}}
    back = item_from_av(item, exact=True)
    assert back == {k: v for k, v in doc.items() if k not in ("none", "empty")}


def test_codec_refuses_decimals_over_38_digits_naming_model_and_field() -> None:
    enc = CODEC.field_encoder(User._fields["balance"], False)
    assert enc is not None
    with pytest.raises(odm.ValidationError, match="User.*balance.*38") as info:
        enc(Decimal("1" * 39))
    assert "balance" in info.value.messages
    assert CODEC.field_encoder(User._fields["score"], False)(0.1) == Decimal("0.1")  # type: ignore[misc]


def test_ttl_is_epoch_seconds_and_other_datetimes_are_fixed_width_iso() -> None:
    when = dt.datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    field = Session._fields["expires_at"]
    assert CODEC.field_encoder(field, True)(when) == epoch_of(when) == Decimal("1893553445.678901")  # type: ignore[misc]
    assert from_epoch(Decimal("1893553445.678901")) == when == from_epoch(1893553445.678901)
    assert CODEC.field_encoder(field, False)(when) == "2030-01-02T03:04:05.678901Z"  # type: ignore[misc]
