"""MongoDB stored forms: Decimal128, Binary, the TTL attribute as a BSON date; the rest as the base codec.

DateTimes are fixed-width UTC ISO strings with microseconds, as on every
other backend, so they read back and compare (==, <, order, page cursors)
exactly at the microsecond; a BSON date would keep only milliseconds. The
TTL attribute alone stays a BSON date, which MongoDB's TTL index needs: the
repository stores its sub-millisecond remainder beside it (``TTL_MICROS``)
and puts it back on read, and the compiler compares the pair (see
repository.py and compiler.py). Decimals are Decimal128
(34 significant digits, refused beyond that before any request). Bytes are
BSON Binary (subtype 0, which pymongo reads back as ``bytes``). UUIDs and
Dates stay ISO strings and Sets sorted lists, as on every backend, in the
BSON order an update's ``$sortArray`` keeps (see ``set_order``): Decimals by
number (``Decimal128`` has no Python order of its own), bytes by length first.
"""

from __future__ import annotations

import datetime as _dt
import decimal
from typing import Any

from bson.codec_options import CodecOptions, TypeDecoder, TypeEncoder, TypeRegistry
from bson.decimal128 import Decimal128

from ... import compiled
from ...errors import ValidationError, shown_number
from ...fields import Field, canonical_decimal
from ..codec import PARSE_ISO_STR, Codec, Fn, iso_utc, parse_iso_utc, plain_number

UTC = _dt.timezone.utc
MAX_DECIMAL_DIGITS = 34
_WIDE = decimal.Context(prec=40)


def to_decimal128(value: decimal.Decimal, field: Field | None = None) -> Decimal128:
    """Exactly, or a ValidationError naming the field and Decimal128's limit.

    A finite value of at most 34 digits with an exponent Decimal128 holds as it is is packed here
    (1.5 us against ``Decimal128(value)``'s 3.4 us); anything else goes through pymongo, which
    clamps the exponent where it can and refuses what does not fit.
    """
    sign, digits, exponent = value.as_tuple()
    if type(exponent) is int and len(digits) <= MAX_DECIMAL_DIGITS and -6176 <= exponent <= 6111:
        coefficient = abs(int(value.scaleb(-exponent, _WIDE)))  # the digits as an int (exact: 34 < 40)
        high = (sign << 63) | ((exponent + 6176) << 49) | (coefficient >> 64)
        return Decimal128.from_bid((coefficient & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "little") + high.to_bytes(8, "little"))
    try:
        return Decimal128(value)  # raises Inexact rather than rounding
    except (decimal.Inexact, decimal.Overflow, decimal.Underflow, decimal.InvalidOperation):
        name = field.name if field is not None and field.name else "value"
        model = getattr(getattr(field, "model", None), "__name__", None)
        raise ValidationError({name: [f"MongoDB stores decimals as Decimal128, which holds at most "
                                      f"{MAX_DECIMAL_DIGITS} significant digits; {shown_number(value)} does not fit."]}, model) from None


def to_bson_date(value: _dt.datetime) -> _dt.datetime:
    # A naive datetime is local time, as in the base codec's iso_utc.
    return value if value.tzinfo is UTC else value.astimezone(UTC)


#: The hidden attribute holding the TTL attribute's microseconds below the millisecond.
TTL_MICROS = "_odm_ttl_us"


def split_micros(value: _dt.datetime) -> tuple[_dt.datetime, int]:
    """What a BSON date keeps (pymongo floors to the millisecond) and the microseconds it drops."""
    value = to_bson_date(value)
    rest = value.microsecond % 1000
    return value.replace(microsecond=value.microsecond - rest), rest


def join_micros(value: Any, rest: Any) -> Any:
    """The TTL attribute as written: its BSON date plus the stored remainder."""
    if isinstance(value, _dt.datetime) and isinstance(rest, int) and 0 < rest < 1000:
        return value.replace(microsecond=value.microsecond - value.microsecond % 1000 + rest)
    return value


_COEFFICIENT = (1 << 49) - 1  # the high word's part of a Decimal128 coefficient (the usual encoding)
_LARGE_FORM = 0x3 << 61  # the other encoding (also NaN and Infinity): pymongo's reading, rare
_MAX_COEFFICIENT = 10**34 - 1


def decimal_of(value: Decimal128) -> decimal.Decimal:
    """``value.to_decimal()`` in under a third of its time (about 1.3 us against 4.6 us).

    pymongo builds a digit tuple under a local context; the text ``[-]<coefficient>E<exponent>``
    names the same number exactly, and ``Decimal`` parses text quickly. Every read of a MongoDB
    Decimal goes through here (the codec's type decoder), so it counted per object.
    """
    bid = value.bid
    low = int.from_bytes(bid[:8], "little")
    high = int.from_bytes(bid[8:], "little")
    if high & _LARGE_FORM == _LARGE_FORM:
        return value.to_decimal()
    coefficient = ((high & _COEFFICIENT) << 64) | low
    if coefficient > _MAX_COEFFICIENT:  # non-canonical: Decimal128 reads it as 0
        return value.to_decimal()
    return decimal.Decimal(f"{'-' if high >> 63 else ''}{coefficient}E{((high >> 49) & 0x3FFF) - 6176}")


class _DecimalCodec(TypeEncoder, TypeDecoder):  # type: ignore[misc]
    """Decimal128 reads back as ``decimal.Decimal`` everywhere (the Go layer's dicts too)."""

    python_type = decimal.Decimal
    bson_type = Decimal128

    def transform_python(self, value: Any) -> Any:
        return to_decimal128(value)

    def transform_bson(self, value: Any) -> Any:
        return canonical_decimal(decimal_of(value))


CODEC_OPTIONS: CodecOptions[dict[str, Any]] = CodecOptions(
    tz_aware=True, tzinfo=UTC, type_registry=TypeRegistry([_DecimalCodec()]))


def set_order(value: Any) -> Any:
    """A stored Set element's sort key, in BSON order (the one ``$sortArray`` keeps when an update adds):
    a Decimal128 by its number, bytes (BinData) by length and then content, the rest as Python orders them."""
    if type(value) is Decimal128:
        return decimal_of(value)
    if isinstance(value, (bytes, bytearray)):
        return len(value), bytes(value)
    return value


def sorted_set(values: Any) -> list[Any]:
    return sorted(values, key=set_order)


class MongoCodec(Codec):
    def enc_set(self, field: Field | None, ttl: bool) -> Fn | None:
        inner = self.field_encoder(field.inner, False) if field is not None else None  # type: ignore[attr-defined]
        if inner is None:
            return sorted_set
        return lambda v: sorted_set(inner(x) for x in v)

    def encode_any(self, value: Any) -> Any:
        if isinstance(value, (set, frozenset)):
            return sorted_set(self.encode_any(v) for v in value)
        return super().encode_any(value)

    def enc_datetime(self, field: Field | None, ttl: bool) -> Fn | None:
        # The TTL attribute keeps every digit here; the repository splits it into date + remainder.
        return to_bson_date if ttl else iso_utc

    def dec_datetime(self, field: Field | None, ttl: bool) -> Fn | None:
        return read_datetime

    def enc_bytes(self, field: Field | None, ttl: bool) -> Fn | None:
        return None  # pymongo writes bytes as Binary subtype 0 and reads it back as bytes

    def dec_bytes(self, field: Field | None, ttl: bool) -> Fn | None:
        return None

    def enc_decimal(self, field: Field | None, ttl: bool) -> Fn | None:
        return lambda v: to_decimal128(v, field)

    def dec_plain(self) -> Fn | None:
        return plain_numbers

    def dec_decimal(self, field: Field | None, ttl: bool) -> Fn | None:
        return lambda v: canonical_decimal(v if isinstance(v, decimal.Decimal) else (
            decimal_of(v) if isinstance(v, Decimal128) else decimal.Decimal(str(v))))


def read_datetime(value: Any) -> _dt.datetime:
    """A stored datetime: BSON dates are read tz-aware UTC; a BSON date in another field than the
    TTL attribute was written when every datetime was one (milliseconds), and reads back as it is."""
    return value if isinstance(value, _dt.datetime) else parse_iso_utc(str(value))


compiled.inlined(read_datetime, f"({PARSE_ISO_STR}) if type({{v}}) is str else {{fn}}({{v}})")


def plain_numbers(value: Any) -> Any:
    """BSON doubles and Decimal128s in an untyped value read back as every backend's do (plain_number)."""
    if isinstance(value, dict):
        return {k: plain_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain_numbers(v) for v in value]
    if isinstance(value, (float, decimal.Decimal)):
        return plain_number(value)
    return value
