"""MongoDB stored forms: BSON dates, Decimal128, Binary; the rest as the base codec.

DateTimes are BSON dates (UTC, millisecond precision: BSON's own), so the
TTL index and other MongoDB tools see real dates. Decimals are Decimal128
(34 significant digits, refused beyond that before any request). Bytes are
BSON Binary (subtype 0, which pymongo reads back as ``bytes``). UUIDs and
Dates stay ISO strings and Sets sorted lists, as on every backend.
"""

from __future__ import annotations

import datetime as _dt
import decimal
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from bson.codec_options import CodecOptions, TypeDecoder, TypeEncoder, TypeRegistry
from bson.decimal128 import Decimal128

from ...errors import ValidationError
from ...fields import Field
from ..codec import Codec, Fn

if TYPE_CHECKING:
    from ...schema import TableSpec

UTC = _dt.timezone.utc
MAX_DECIMAL_DIGITS = 34


def to_decimal128(value: decimal.Decimal, field: Field | None = None) -> Decimal128:
    """Exactly, or a ValidationError naming the field and Decimal128's limit."""
    try:
        return Decimal128(value)  # raises Inexact rather than rounding
    except (decimal.Inexact, decimal.Overflow, decimal.Underflow, decimal.InvalidOperation):
        name = field.name if field is not None and field.name else "value"
        model = getattr(getattr(field, "model", None), "__name__", None)
        raise ValidationError({name: [f"MongoDB stores decimals as Decimal128, which holds at most "
                                      f"{MAX_DECIMAL_DIGITS} significant digits; {value} does not fit."]}, model) from None


def to_bson_date(value: _dt.datetime) -> _dt.datetime:
    # A naive datetime is local time, as in the base codec's iso_utc.
    return value if value.tzinfo is UTC else value.astimezone(UTC)


class _DecimalCodec(TypeEncoder, TypeDecoder):  # type: ignore[misc]
    """Decimal128 reads back as ``decimal.Decimal`` everywhere (the Go layer's dicts too)."""

    python_type = decimal.Decimal
    bson_type = Decimal128

    def transform_python(self, value: Any) -> Any:
        return to_decimal128(value)

    def transform_bson(self, value: Any) -> Any:
        return value.to_decimal()


CODEC_OPTIONS: CodecOptions[dict[str, Any]] = CodecOptions(
    tz_aware=True, tzinfo=UTC, type_registry=TypeRegistry([_DecimalCodec()]))


def _to_millis(value: _dt.datetime) -> _dt.datetime:
    return value.replace(microsecond=value.microsecond - value.microsecond % 1000)


class MongoCodec(Codec):
    def model_plan(self, model: type, spec: TableSpec | None) -> tuple[Callable[[Any], dict[str, Any]], Callable[[Mapping[str, Any]], Any]]:
        """As the base plan, but a written instance keeps what a BSON date keeps (milliseconds).

        So ``create()``/``save()`` leave the instance equal to what ``get()`` returns, as
        on the other backends; finer digits would otherwise vanish only on reload.
        """
        encode, decode = super().model_plan(model, spec)
        names = tuple(f.name for f in model._fields.values() if f.kind == "datetime")  # type: ignore[attr-defined]
        if not names:
            return encode, decode

        def encode_ms(obj: Any) -> dict[str, Any]:
            values = obj.__dict__
            for name in names:
                value = values.get(name)
                if isinstance(value, _dt.datetime) and value.microsecond % 1000:
                    values[name] = _to_millis(value)
            return encode(obj)

        return encode_ms, decode

    def enc_datetime(self, field: Field | None, ttl: bool) -> Fn | None:
        return to_bson_date

    def dec_datetime(self, field: Field | None, ttl: bool) -> Fn | None:
        # Read with tz_aware=True, tzinfo=UTC: already the right type (strings are legacy data).
        return lambda v: v if isinstance(v, _dt.datetime) else _dt.datetime.fromisoformat(str(v).replace("Z", "+00:00"))

    def enc_bytes(self, field: Field | None, ttl: bool) -> Fn | None:
        return None  # pymongo writes bytes as Binary subtype 0 and reads it back as bytes

    def dec_bytes(self, field: Field | None, ttl: bool) -> Fn | None:
        return None

    def enc_decimal(self, field: Field | None, ttl: bool) -> Fn | None:
        return lambda v: to_decimal128(v, field)

    def dec_decimal(self, field: Field | None, ttl: bool) -> Fn | None:
        return lambda v: v if isinstance(v, decimal.Decimal) else (
            v.to_decimal() if isinstance(v, Decimal128) else decimal.Decimal(str(v)))
