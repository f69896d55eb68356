"""The generated per-model functions (odm.compiled) against the general loops they replace.

Differential: on random and edge inputs, valid and invalid, the generated validator gives the
same values or the same ValidationError (messages and model) as ``_validated_general``, and each
codec's generated encode/decode the same stored forms and instances as ``Codec.general_plan``.
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import json
import random
import uuid
from typing import Any

import pytest

from odm import EmbeddedModel, Model, ValidationError, compiled, fields
from odm.backends.codec import Codec
from odm.backends.dynamodb.codec import DynamoCodec
from odm.backends.mongodb.codec import MongoCodec
from odm.backends.sql.jsonfast import dumps

UTC = dt.timezone.utc
#: A stored name as odd as the backends allow (no '"', '\\' or newline: SQLite's JSON paths refuse them).
ODD = "we'ird key with ''' {x} ) #"
#: Odder still, for validation alone (an embedded model defined on its own is not checked for storage).
ODDER = "q'\"\\\n\"\"\" {v} \\x00 ) #"


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Address(EmbeddedModel):
    street = fields.String(required=True)
    zip = fields.String(data_key="postal code")
    floor = fields.Integer()


class Everything(Model):
    name = fields.String(required=True)
    quoted = fields.String(data_key=ODD)
    count = fields.Integer(default=0)
    ratio = fields.Float(allow_none=True)
    price = fields.Decimal()
    flag = fields.Boolean()
    when = fields.DateTime()
    day = fields.Date()
    ref = fields.UUID()
    blob = fields.Bytes()
    colour = fields.Enum(Colour)
    tags = fields.List(fields.String())
    maybe = fields.List(fields.String(allow_none=True))
    nums = fields.Set(fields.Integer())
    plain = fields.Dict()
    scores = fields.Dict(values=fields.Float())
    short = fields.String(validate=lambda v: len(v) < 5)
    address = fields.Embedded(Address)
    places = fields.List(fields.Embedded(Address))
    expires = fields.DateTime()

    class Meta:
        name = "compiled_everything"
        ttl_attribute = "expires"


VALUES: dict[str, list[Any]] = {
    "name": ["a", "", "é", 5, None, b"x", ["a"]],
    "quoted": ["x", "nul\x00", 1.5, None],
    "count": [0, -1, 2**63 - 1, 2**63, -(2**63) - 1, True, 3.0, 3.5, "12", "1e3", decimal.Decimal("7"), None, "x"],
    "ratio": [1.5, -0.0, float("nan"), float("inf"), 2, "3.25", True, None, "x", decimal.Decimal("0.1")],
    "price": [decimal.Decimal("12.34"), decimal.Decimal("12.340"), decimal.Decimal("-0"), decimal.Decimal("5E+3"),
              decimal.Decimal("NaN"), decimal.Decimal("1E-7000"), decimal.Decimal("0.00"), 1.1, 3, "2.50", "abc", True,
              None, decimal.Decimal("-1.5"), decimal.Decimal("1" * 40 + ".5")],
    "flag": [True, False, 1, 0, "yes", "nope", None, [], 2],
    "when": [dt.datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC), dt.datetime(2026, 1, 2), "2026-01-02T03:04:05Z",
             "2026-01-02T03:04:05+02:00", "2026-01-02", 1.7e9, "garbage", None,
             dt.datetime(2026, 1, 2, tzinfo=dt.timezone(dt.timedelta(hours=5)))],
    "day": [dt.date(2026, 1, 2), "2026-01-02", dt.datetime(2026, 1, 2, tzinfo=UTC), "x", None],
    "ref": [uuid.UUID(int=5), str(uuid.UUID(int=7)), b"0123456789abcdef", "nope", None],
    "blob": [b"\x00\x01", bytearray(b"ab"), "YWJj", "not base64!", None],
    "colour": [Colour.RED, "blue", "RED", "green", None, 3],
    "tags": [["a", "b"], [], ["a", 1], ["a", None], "ab", ("a", "b"), None, {"a": 1}, ["ok", "nul\x00"]],
    "maybe": [["a", None], [None], [1]],
    "nums": [{1, 2}, [3, 3], [True], set(), None, "x"],
    "plain": [{"a": 1, "b": [1, 2.5]}, {1: 2}, {"x": float("nan")}, [], None, {"a": {"b": object()}}],
    "scores": [{"a": 1.5}, {"a": "x"}, {}, None, {"z": 1, "a": 2}],
    "short": ["abc", "toolong", 3, None],
    "address": [{"street": "s", "postal code": "N1"}, {"street": "s", "zip": "N1", "floor": 2}, {"zip": "x"},
                {"street": 5, "floor": "high"}, {"street": "s", "extra": 1}, Address(street="t"), "x", None, []],
    "places": [[{"street": "a"}, {"street": "b", "floor": 1}], [{"zip": 1}], [None], None],
    "expires": [dt.datetime(2030, 1, 1, 0, 0, 0, 123456, tzinfo=UTC), None],
}


def _outcome(fn: Any, data: Any) -> Any:
    try:
        return ("ok", fn(data))
    except ValidationError as exc:
        return ("error", exc.messages, exc.model, str(exc))


def _random_input(rng: random.Random) -> dict[str, Any]:
    data: dict[str, Any] = {"id": "fixed"}  # the default id is random: the same on both paths
    for name, choices in VALUES.items():
        if rng.random() < 0.75:
            key = ODD if name == "quoted" and rng.random() < 0.5 else name
            data[key] = rng.choice(choices)
    if rng.random() < 0.1:
        data["unknown"] = 1
    return data


def test_generated_validator_matches_general_on_random_inputs() -> None:
    rng = random.Random(11)
    for _ in range(2000):
        data = _random_input(rng)
        assert _outcome(Everything._validated, data) == _outcome(Everything._validated_general, data), data


@pytest.mark.parametrize("name", list(VALUES))
def test_generated_validator_matches_general_per_value(name: str) -> None:
    for value in VALUES[name]:
        data = {"id": "i", "name": "n", name: value}
        assert _outcome(Everything._validated, data) == _outcome(Everything._validated_general, data), data


def test_every_error_is_collected_with_its_key() -> None:
    data = {"id": "i", "count": "x", "flag": "nope", "address": {"floor": "high"}, "bogus": 1}
    with pytest.raises(ValidationError) as caught:
        Everything(**data)
    assert caught.value.messages == {
        "bogus": ["Unknown field."], "name": ["Missing data for required field."], "count": ["Not a valid integer."],
        "flag": ["Not a valid boolean."],
        "address": {"street": ["Missing data for required field."], "floor": ["Not a valid integer."]}}
    assert _outcome(Everything._validated, data) == _outcome(Everything._validated_general, data)


def test_non_dict_input_takes_the_general_path() -> None:
    from types import MappingProxyType

    data = MappingProxyType({"id": "i", "name": "n", "count": "4"})
    assert Everything._validated(data) == Everything._validated_general(data)


def test_quoted_data_key_is_a_constant_not_source() -> None:
    """A data key full of quotes, backslashes and newlines reads, writes and errs under its own name."""
    obj = Everything.from_dict({"name": "n", ODD: "v"})
    assert obj.quoted == "v"
    for codec in (Codec(), MongoCodec(), DynamoCodec()):
        encode, decode = codec.model_plan(Everything, Everything._spec)
        stored = encode(obj)
        assert stored[ODD] == "v"
        assert decode(stored) == obj
        assert ODD not in compiled.source(encode) and repr(ODD) not in compiled.source(encode)
    with pytest.raises(ValidationError) as caught:
        Everything.from_dict({"name": "n", ODD: 5})
    assert caught.value.messages == {"quoted": ["Not a valid string."]}
    assert "we'ird" not in compiled.source(Everything._validator())


def test_odd_data_key_in_validation() -> None:
    class Odd(EmbeddedModel):
        value = fields.Integer(required=True, data_key=ODDER)

    assert Odd.from_dict({"value": 3}).value == 3
    for data in ({"value": "x", ODDER: 1}, {}, {ODDER: 1, "value": 2, ODDER + "!": 0}):
        assert _outcome(Odd._validated, data) == _outcome(Odd._validated_general, data)
    assert "\\" not in compiled.source(Odd._validator()) and "'\"" not in compiled.source(Odd._validator())


def _valid_objects(rng: random.Random, n: int) -> list[Everything]:
    """Random valid objects: random input without the fields it got wrong."""
    out = []
    while len(out) < n:
        data = _random_input(rng)
        data["name"] = "n"
        try:
            Everything._validated(data)
        except ValidationError as exc:
            data = {k: v for k, v in data.items() if k not in exc.messages and not (k == ODD and "quoted" in exc.messages)}
        out.append(Everything(**data))
    return out


@pytest.mark.parametrize("codec", [Codec(), MongoCodec(), DynamoCodec()], ids=["sql", "mongodb", "dynamodb"])
def test_generated_codec_matches_general_plan(codec: Codec) -> None:
    rng = random.Random(7)
    fast_enc, fast_dec = codec.model_plan(Everything, Everything._spec)
    slow_enc, slow_dec = codec.general_plan(Everything, Everything._spec)
    for obj in _valid_objects(rng, 400):
        fast, slow = _outcome(fast_enc, obj), _outcome(slow_enc, obj)
        assert fast == slow, obj
        if fast[0] != "ok":
            continue
        stored = fast[1]
        assert list(stored) == list(slow[1])  # same key order: same JSON text / BSON document
        if type(codec) is Codec:
            assert dumps(stored) == dumps(slow[1])
            stored = json.loads(dumps(stored), parse_float=decimal.Decimal)
        back, ref = fast_dec(stored), slow_dec(stored)
        assert back.__dict__ == ref.__dict__ and list(back.__dict__) == list(ref.__dict__)


def test_embedded_stored_form_is_canonical() -> None:
    codec = Codec()
    obj = Everything(name="n", address={"street": "s", "zip": "z", "floor": 1})
    stored = codec.model_plan(Everything, None)[0](obj)
    assert list(stored["address"]) == ["floor", "postal code", "street"]


def test_encode_errors_name_the_outer_field() -> None:
    obj = Everything(name="n", address={"street": "ok"})
    obj.address.street = "nul\x00"
    fast_enc, _ = Codec().model_plan(Everything, None)
    slow_enc, _ = Codec().general_plan(Everything, None)
    assert _outcome(fast_enc, obj) == _outcome(slow_enc, obj)
    assert _outcome(fast_enc, obj)[1] == {"address": {"street": [_outcome(fast_enc, obj)[1]["address"]["street"][0]]}}


def test_decode_of_unusual_stored_values_matches() -> None:
    """Stored forms other than the ones written today (numbers as text, BSON dates) read back as before."""
    for codec in (Codec(), MongoCodec(), DynamoCodec()):
        fast_dec = codec.model_plan(Everything, Everything._spec)[1]
        slow_dec = codec.general_plan(Everything, Everything._spec)[1]
        for doc in ({"name": "n", "count": "5", "ratio": 2, "when": "2026-01-02T03:04:05.000001Z"},
                    {"name": "n", "count": 5.0, "ratio": "2.5", "price": "1.50"},
                    {"name": "n", "when": dt.datetime(2026, 1, 2, tzinfo=UTC), "expires": decimal.Decimal("1.5")}):
            try:
                ref: Any = slow_dec(doc).__dict__
            except Exception as exc:  # noqa: BLE001 - the same failure is what is compared
                with pytest.raises(type(exc)):
                    fast_dec(doc)
                continue
            assert fast_dec(doc).__dict__ == ref


def test_generated_source_is_available_for_debugging() -> None:
    text = compiled.source(Everything._validator())
    assert text.startswith("def validate(data):")
    compile(text, "<check>", "exec")


def test_new_id_is_a_uuid4_text() -> None:
    from odm.model import new_id

    ids = {new_id() for _ in range(200)}
    assert len(ids) == 200
    for text in ids:
        value = uuid.UUID(text)
        assert str(value) == text and value.version == 4 and value.variant == uuid.RFC_4122


@pytest.mark.parametrize("text", ['{"a":1.50,"b":[1,2]}', ' {"a":1} ', '{"a":1} x', "", "[1,", '"x"', "1e400", "NaN",
                                  '{"a":"\x01"}', "[]", b'{"a":1}', "  "])
def test_loads_matches_the_json_module(text: Any) -> None:
    from odm.backends.sql.jsonfast import loads_exact, loads_plain

    for fast, reference in ((loads_exact, json.JSONDecoder(parse_float=decimal.Decimal).decode),
                            (loads_plain, json.JSONDecoder().decode)):
        try:
            expected: Any = ("ok", reference(text))
        except Exception as exc:  # noqa: BLE001 - the same failure is what is compared
            expected = ("error", type(exc), str(exc))
        try:
            got: Any = ("ok", fast(text))
        except Exception as exc:  # noqa: BLE001
            got = ("error", type(exc), str(exc))
        assert got == expected or (expected[0] == "ok" and repr(got) == repr(expected))
