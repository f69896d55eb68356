"""DynamoDB stored forms and the AttributeValue wire format.

Per field kind (``Codec`` hooks): floats become their shortest decimal, numbers
are checked against DynamoDB's 38 significant digits and its range before any
request, datetimes are fixed-width UTC ISO strings (so string order is time
order), except the TTL attribute, which is epoch seconds as a Number (DynamoDB's
TTL needs that), bytes stay bytes (type B) and Set fields are real sets
(SS/NS/BS), an empty one an empty list. ``to_av``/``from_av`` convert whole items
to and from the low-level client's AttributeValue maps.
"""

from __future__ import annotations

import datetime as _dt
import decimal
import math
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from ... import compiled
from ...errors import ValidationError, shown_number
from ...fields import Field
from ..codec import PARSE_ISO_STR, Codec, Fn, iso_utc, parse_iso_utc

UTC = _dt.timezone.utc
EPOCH = _dt.datetime(1970, 1, 1, tzinfo=UTC)
MAX_DIGITS = 38
#: Decimal exponents DynamoDB's N holds: magnitudes from 1E-130 up to below 1E+126 (and zero).
MIN_ADJUSTED, MAX_ADJUSTED = -130, 125
#: DynamoDB's item size limit (names and values, UTF-8), in bytes.
MAX_ITEM_BYTES = 400 * 1024
_MICRO = Decimal("0.000001")


def owner_name(field: Field | None) -> str | None:
    model = getattr(field, "model", None)
    return getattr(model, "__name__", None) if model is not None and model is not dict else None


def significant_digits(value: Decimal) -> int:
    """Significant digits of a finite Decimal, without normalize() (it rounds to the context's 28 digits)."""
    return len("".join(map(str, value.as_tuple().digits)).strip("0")) or 1


def in_range(value: Decimal) -> bool:
    """Is a finite Decimal's magnitude one DynamoDB stores (zero, or 1E-130 up to below 1E+126)?"""
    return value.is_zero() or MIN_ADJUSTED <= value.adjusted() <= MAX_ADJUSTED


def storable(value: Decimal) -> bool:
    """Can DynamoDB store (and so compare with) this number exactly?"""
    return value.is_finite() and in_range(value) and significant_digits(value) <= MAX_DIGITS


def check_decimal(value: Decimal, where: str, model: str | None) -> Decimal:
    """Refuse, before any request, what DynamoDB cannot store: NaN/Infinity, more than 38 digits, out of range."""
    if not value.is_finite():
        raise ValidationError({where: [f"DynamoDB cannot store {value}; only finite numbers are allowed."]}, model)
    digits = significant_digits(value)
    if digits > MAX_DIGITS:
        raise ValidationError({where: [f"DynamoDB numbers hold at most {MAX_DIGITS} significant digits; "
                                       f"{shown_number(value)} has {digits}."]}, model)
    if not in_range(value):
        raise ValidationError({where: [f"DynamoDB stores numbers of magnitude 1E-130 up to below 1E+126 (and 0); "
                                       f"{shown_number(value)} is out of that range."]}, model)
    return value


def float_decimal(value: float) -> Decimal:
    """The decimal DynamoDB stores for a finite float: its shortest repr.

    The floats just below 1e126 print as ``1e+126``, which DynamoDB refuses although their
    exact value is in range: those are stored as their exact value cut to 38 digits toward
    zero, which reads back as the same float.
    """
    text = Decimal(repr(value))
    if not text.is_zero() and text.adjusted() > MAX_ADJUSTED:
        exact = Decimal(value)
        if exact.adjusted() <= MAX_ADJUSTED:
            return decimal.Context(prec=MAX_DIGITS, rounding=decimal.ROUND_DOWN).plus(exact)
    return text


def float_to_decimal(value: float, where: str = "_schema", model: str | None = None) -> Decimal:
    if not math.isfinite(value):
        raise ValidationError({where: [f"DynamoDB cannot store the float {value!r}; only finite numbers are allowed."]}, model)
    return check_decimal(float_decimal(value), where, model)


def epoch_of(value: _dt.datetime) -> Decimal:
    """Exact epoch seconds (microseconds kept) of an aware datetime."""
    delta = value - EPOCH
    whole = Decimal(delta.days * 86400 + delta.seconds)
    return whole if not delta.microseconds else whole + Decimal(delta.microseconds) * _MICRO


def from_epoch(value: Any) -> _dt.datetime:
    if isinstance(value, str):  # the seed stored TTL values as strings
        try:
            value = Decimal(value)
        except decimal.InvalidOperation:
            return parse_iso_utc(value)
    if isinstance(value, Decimal):
        whole = int(value)
        micros = int(((value - whole) * 1_000_000).to_integral_value())
        return EPOCH + _dt.timedelta(seconds=whole, microseconds=micros)
    # A float keeps epoch seconds to ~1e-7 s, and fromtimestamp rounds to the microsecond.
    return _dt.datetime.fromtimestamp(value, UTC)


def read_datetime(value: Any) -> _dt.datetime:
    """A stored datetime other than the TTL attribute: an ISO string (or epoch seconds, as the TTL's)."""
    return parse_iso_utc(value) if isinstance(value, str) else from_epoch(value)


compiled.inlined(read_datetime, f"({PARSE_ISO_STR}) if type({{v}}) is str else {{fn}}({{v}})")


class DynamoCodec(Codec):
    """Stored forms for DynamoDB (see the module docstring)."""

    def enc_datetime(self, field: Field | None, ttl: bool) -> Fn | None:
        return epoch_of if ttl else iso_utc

    def dec_datetime(self, field: Field | None, ttl: bool) -> Fn | None:
        if ttl:
            return from_epoch
        return read_datetime

    def enc_bytes(self, field: Field | None, ttl: bool) -> Fn | None:
        return None

    def dec_bytes(self, field: Field | None, ttl: bool) -> Fn | None:
        return bytes

    def enc_float(self, field: Field | None, ttl: bool) -> Fn | None:
        where, model = (getattr(field, "name", "_schema") or "_schema"), owner_name(field)
        return lambda v: float_to_decimal(float(v), where, model)

    def enc_decimal(self, field: Field | None, ttl: bool) -> Fn | None:
        where, model = (getattr(field, "name", "_schema") or "_schema"), owner_name(field)
        return lambda v: check_decimal(v, where, model)

    def enc_set(self, field: Field | None, ttl: bool) -> Fn | None:
        # DynamoDB has no empty set: an empty Set is stored as an empty list (L), so it reads
        # back as set() and matches == set() and exists(), as on every backend (docs/models.md).
        inner = self.field_encoder(field.inner, False) if field is not None else None  # type: ignore[attr-defined]
        if inner is None:
            return lambda v: set(v) if v else []
        return lambda v: {inner(x) for x in v} if v else []

    def dec_set(self, field: Field | None, ttl: bool) -> Fn | None:
        inner = self.field_decoder(field.inner, False) if field is not None else None  # type: ignore[attr-defined]
        if inner is None:
            return set
        return lambda v: {inner(x) for x in v}

    def encode_any(self, value: Any) -> Any:
        if isinstance(value, (set, frozenset)):
            return {self.encode_any(v) for v in value} or None
        if isinstance(value, (bytes, bytearray)):
            return bytes(value)
        return super().encode_any(value)


# -- the AttributeValue wire format ------------------------------------------------------------


def number_text(value: Any) -> str:
    if isinstance(value, float):
        value = float_to_decimal(value)
    if isinstance(value, Decimal):
        return str(check_decimal(value, "_schema", None))
    return str(value)


def to_av(value: Any) -> dict[str, Any]:
    """One Python value in stored form as an AttributeValue (None inside maps/lists is NULL)."""
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, (int, float, Decimal)):
        return {"N": number_text(value)}
    if value is None:
        return {"NULL": True}
    if isinstance(value, Mapping):
        return {"M": {str(k): to_av(v) for k, v in value.items() if not _empty_set(v)}}
    if isinstance(value, (list, tuple)):
        return {"L": [to_av(v) for v in value]}
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"B": bytes(value)}
    if isinstance(value, (set, frozenset)):
        return _set_av(value)
    raise ValidationError({"_schema": [f"DynamoDB cannot store a value of type {type(value).__name__} ({value!r})."]})


def _empty_set(value: Any) -> bool:
    return isinstance(value, (set, frozenset)) and not value


def _set_av(value: set[Any] | frozenset[Any]) -> dict[str, Any]:
    if all(isinstance(v, str) for v in value):
        return {"SS": sorted(value)}
    if all(isinstance(v, (bytes, bytearray)) for v in value):
        return {"BS": sorted(bytes(v) for v in value)}
    if all(isinstance(v, (int, float, Decimal)) and not isinstance(v, bool) for v in value):
        return {"NS": [number_text(v) for v in value]}
    raise ValidationError({"_schema": ["A DynamoDB set holds only strings, only numbers or only bytes."]})


def item_to_av(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A stored document as an item: None-valued and empty-set attributes are not stored."""
    return {k: to_av(v) for k, v in doc.items() if v is not None and not _empty_set(v)}


def _number(text: str, exact: bool) -> Any:
    if "." not in text and "e" not in text and "E" not in text:
        return int(text)
    return Decimal(text) if exact else float(text)


def from_av(av: Mapping[str, Any], exact: bool = False) -> Any:
    (tag, value), = av.items()
    if tag == "S":
        return value
    if tag == "N":
        return _number(value, exact)
    if tag == "M":
        return {k: from_av(v, exact) for k, v in value.items()}
    if tag == "L":
        return [from_av(v, exact) for v in value]
    if tag == "BOOL":
        return value
    if tag == "NULL":
        return None
    if tag == "B":
        return bytes(value)
    if tag == "SS":
        return set(value)
    if tag == "NS":
        return {_number(v, exact) for v in value}
    if tag == "BS":
        return {bytes(v) for v in value}
    raise ValidationError({"_schema": [f"Unknown DynamoDB attribute type {tag!r}."]})


def item_from_av(item: Mapping[str, Any], exact: bool = False) -> dict[str, Any]:
    return {k: from_av(v, exact) for k, v in item.items()}


def av_size(av: Mapping[str, Any]) -> int:
    """DynamoDB's size accounting for one AttributeValue (documented rules, rounded up)."""
    (tag, value), = av.items()
    if tag == "S":
        return len(value.encode("utf-8"))
    if tag == "N":
        return (len(value.lstrip("-").replace(".", "")) + 1) // 2 + 1
    if tag == "B":
        return len(value)
    if tag in ("BOOL", "NULL"):
        return 1
    if tag == "SS":
        return sum(len(v.encode("utf-8")) for v in value)
    if tag == "NS":
        return sum((len(v.lstrip("-").replace(".", "")) + 1) // 2 + 1 for v in value)
    if tag == "BS":
        return sum(len(v) for v in value)
    if tag == "M":
        return 3 + sum(len(k.encode("utf-8")) + av_size(v) + 1 for k, v in value.items())
    return 3 + sum(av_size(v) + 1 for v in value)


def item_size(item: Mapping[str, Any]) -> int:
    return sum(len(k.encode("utf-8")) + av_size(v) for k, v in item.items())


KEY_TYPES: dict[str, str] = {"str": "S", "uuid": "S", "date": "S", "datetime": "S", "int": "N", "float": "N",
                             "decimal": "N", "bytes": "B"}


def attribute_type(field: Field | None, default: str | None = "S") -> str | None:
    """The DynamoDB key type (S, N, B) of a key-capable field; ``default`` when unknown."""
    kind = getattr(field, "kind", None)
    if kind == "enum":
        members = list(field.enum)  # type: ignore[union-attr]
        return "N" if members and all(isinstance(m.value, (int, float)) and not isinstance(m.value, bool)
                                      for m in members) else "S"
    if kind == "datetime":
        return "S"
    return KEY_TYPES.get(kind, default) if kind is not None else default


def av_type(av: Mapping[str, Any]) -> str:
    return next(iter(av))


Serializer = Callable[[Any], dict[str, Any]]
