"""Stored forms: how each field kind is written to, and read from, a backend.

The base codec writes JSON-compatible values (the SQL backends' documents);
backends override the ``enc_<kind>``/``dec_<kind>`` pairs that differ. Per model,
``model_plan`` composes these once into two generated functions (encode and decode,
see odm.compiled), so a read converts an item with no loop and no validation.
"""

from __future__ import annotations

import datetime as _dt
import decimal
import enum
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from .. import compiled
from ..attributes import name_problem, text_problem
from ..errors import QueryError, ValidationError
from ..fields import Field, canonical_decimal
from ..plain import value_problem

if TYPE_CHECKING:
    from ..schema import TableSpec

Fn = Callable[[Any], Any]
UTC = _dt.timezone.utc
_TWO63 = 2.0**63


def plain_number(value: Any) -> Any:
    """An untyped number as every backend reads it back: an int when integral, else an exact Decimal.

    DynamoDB's N and the SQL backends' JSON numbers carry no float/Decimal distinction, so an
    untyped value (a ``Dict()`` value, a Go-layer attribute) reads back by value alone. MongoDB
    keeps BSON's types; its codec applies this function to untyped values on read.
    """
    if isinstance(value, float):
        return int(value) if value.is_integer() else canonical_decimal(decimal.Decimal(repr(value)))
    if isinstance(value, decimal.Decimal):
        value = canonical_decimal(value)
        return int(value) if value.as_tuple().exponent == 0 else value
    return value


def iso_utc(value: _dt.datetime) -> str:
    """Fixed-width UTC ISO-8601 with microseconds, so string order is time order."""
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def parse_iso_utc(text: str) -> _dt.datetime:
    return _dt.datetime.fromisoformat(text[:-1] if text.endswith("Z") else text).replace(tzinfo=UTC)


# The generated encode/decode (odm.compiled) write these expressions in place of the calls.
# For a UTC datetime, isoformat ends with "+00:00": cutting it off is the naive form's text.
compiled.inlined(iso_utc, '{v}.isoformat(timespec="microseconds")[:-6] + "Z" if {v}.tzinfo is UTC else {fn}({v})')
#: parse_iso_utc of a str, inline (``{v}`` is a str).
PARSE_ISO_STR = 'fromiso({v}[:-1] if {v}.endswith("Z") else {v}).replace(tzinfo=UTC)'
compiled.inlined(parse_iso_utc, PARSE_ISO_STR)


def as_int(value: Any) -> int:
    return value if type(value) is int else int(value)


def as_float(value: Any) -> float:
    return value if type(value) is float else float(value)


def enum_value(value: enum.Enum) -> Any:
    return value.value


def read_decimal(value: Any) -> decimal.Decimal:
    """A stored Decimal, canonical on read too: server-side arithmetic (inc) may leave other
    digits (1.05 + 0.05 = 1.10)."""
    return canonical_decimal(value if isinstance(value, decimal.Decimal) else decimal.Decimal(str(value)))


compiled.inlined(as_int, "{v} if type({v}) is int else {fn}({v})")
compiled.inlined(as_float, "{v} if type({v}) is float else {fn}({v})")
compiled.inlined(enum_value, "{v}.value")
compiled.inlined(read_decimal, "canonical_decimal({v}) if type({v}) is Decimal else {fn}({v})")


def _owner(field: Field | None) -> tuple[str, str | None]:
    """The error key and model name a stored-form error names."""
    model = getattr(field, "model", None)
    name = getattr(model, "__name__", None) if model is not None and model is not dict else None
    return (getattr(field, "name", "") or "_schema"), name


def check_text(text: str, field: Field | None = None) -> str:
    """A string every backend stores as is, or a ValidationError before any request (NUL, lone surrogates)."""
    if "\x00" in text or not text.isascii():
        problem = text_problem(text)
        if problem:
            where, model = _owner(field)
            raise ValidationError({where: [problem]}, model)
    return text


def check_key(key: Any, field: Field | None = None) -> str:
    """A key inside a dict value (data, never a path): see odm.attributes."""
    problem = name_problem(key, "key")
    if problem:
        where, model = _owner(field)
        raise ValidationError({where: [f"A dict key cannot be stored: {problem}"]}, model)
    return key  # type: ignore[no-any-return]


def canonical(value: dict[str, Any]) -> dict[str, Any]:
    """A stored dict with its keys in one order (sorted by code point), whatever order it was built in.

    Python's ``==`` ignores key order; SQLite compares JSON text and MongoDB compares BSON
    documents field by field, in order. Storing (and querying with) one canonical order makes
    equality, ``in_`` and ``contains`` order-insensitive on every backend by construction,
    and keeps index use (see docs/decisions.md, "Dict equality").
    """
    return dict(sorted(value.items()))


def _nested(encode: Fn, field: Field) -> Fn:
    """An embedded model's encoder whose errors name the outer field (``{"address": {"city": ...}}``).

    ``encode`` writes the stored names in canonical order already (see ``field_encoder``).
    """
    where, model = _owner(field)

    def run(value: Any) -> Any:
        try:
            return encode(value)
        except ValidationError as exc:
            raise ValidationError({where: exc.messages}, model) from None

    run.__odm_nested__ = (encode, where, model)  # type: ignore[attr-defined]  # generated code inlines the try
    return run


def _plain(encode: Fn, field: Field) -> Fn:
    """An untyped value's encoder that first applies odm.plain's rule (one walk, errors name the field)."""

    def run(value: Any) -> Any:
        problem = value_problem(value)
        if problem:
            where, model = _owner(field)
            raise ValidationError({where: [problem]}, model)
        return encode(value)

    return run


def _each(fn: Fn) -> Fn:
    each = lambda v: [fn(x) for x in v]  # noqa: E731
    each.__odm_each__ = fn  # type: ignore[attr-defined]  # generated code writes the comprehension
    return each


def _each_value(fn: Fn, field: Field | None) -> Fn:
    return lambda v: canonical({check_key(k, field): fn(x) for k, x in v.items()})


class Codec:
    """JSON-compatible stored forms (used as is by the SQL backends)."""

    # -- per-kind encoders: return None for "store as is" --------------------------
    def enc_str(self, field: Field | None, ttl: bool) -> Fn | None:
        def check(value: str) -> str:
            # One C-speed test per string on the hot path; the full check only when it may fail.
            return value if value.isascii() and "\x00" not in value else check_text(value, field)

        return compiled.inlined(check, '{v} if {v}.isascii() and "\\x00" not in {v} else {fn}({v})')

    def enc_datetime(self, field: Field | None, ttl: bool) -> Fn | None:
        return iso_utc

    def dec_datetime(self, field: Field | None, ttl: bool) -> Fn | None:
        return parse_iso_utc

    def enc_date(self, field: Field | None, ttl: bool) -> Fn | None:
        return _dt.date.isoformat

    def dec_date(self, field: Field | None, ttl: bool) -> Fn | None:
        return _dt.date.fromisoformat

    def enc_uuid(self, field: Field | None, ttl: bool) -> Fn | None:
        return str

    def dec_uuid(self, field: Field | None, ttl: bool) -> Fn | None:
        return uuid.UUID

    def enc_bytes(self, field: Field | None, ttl: bool) -> Fn | None:
        # Lowercase hex: its text order is the bytes' unsigned order (base64's is not).
        return bytes.hex

    def dec_bytes(self, field: Field | None, ttl: bool) -> Fn | None:
        return bytes.fromhex

    def enc_decimal(self, field: Field | None, ttl: bool) -> Fn | None:
        return None

    def dec_decimal(self, field: Field | None, ttl: bool) -> Fn | None:
        return read_decimal

    def dec_float(self, field: Field | None, ttl: bool) -> Fn | None:
        return as_float

    def dec_int(self, field: Field | None, ttl: bool) -> Fn | None:
        return as_int

    def enc_set(self, field: Field | None, ttl: bool) -> Fn | None:
        inner = self.field_encoder(field.inner, False) if field is not None else None  # type: ignore[attr-defined]
        if inner is None:
            return lambda v: sorted(v)
        return lambda v: sorted(inner(x) for x in v)

    def dec_set(self, field: Field | None, ttl: bool) -> Fn | None:
        inner = self.field_decoder(field.inner, False) if field is not None else None  # type: ignore[attr-defined]
        if inner is None:
            return set
        return lambda v: {inner(x) for x in v}

    def dec_plain(self) -> Fn | None:
        """Untyped values (a ``Dict()`` value, a Go-layer document) as read; None: already plain.

        The JSON backends read numbers as int or exact Decimal already (see plain_number).
        """
        return None

    # -- composition -------------------------------------------------------------------
    def field_encoder(self, field: Field, ttl: bool) -> Fn | None:
        kind = field.kind
        method = getattr(self, "enc_" + kind, None)
        if method is not None:
            return method(field, ttl)  # type: ignore[no-any-return]
        if kind == "enum":
            return enum_value
        if kind == "list":
            item_enc = self.field_encoder(field.inner, False)  # type: ignore[attr-defined]
            return None if item_enc is None else _each(_nullable(item_enc, field.inner))  # type: ignore[attr-defined]
        if kind == "dict":
            values = field.values  # type: ignore[attr-defined]
            if values is None:  # plain data: the Go layer's value rule, so both layers store the same
                return _plain(_each_value(self.encode_any, field), field)
            return _each_value(_nullable(self.field_encoder(values, False) or (lambda v: v), values), field)
        if kind == "embedded":
            # Generated with the stored names in sorted order: the output is canonical() as built.
            enc, _ = self._field_plan(field.embedded, None)  # type: ignore[attr-defined]
            encode = compiled.encoder(self, field.embedded, tuple(sorted(enc, key=lambda step: step[1])))  # type: ignore[attr-defined]
            return _nested(encode, field)
        return None

    def field_decoder(self, field: Field, ttl: bool) -> Fn | None:
        kind = field.kind
        method = getattr(self, "dec_" + kind, None)
        if method is not None:
            return method(field, ttl)  # type: ignore[no-any-return]
        if kind == "enum":
            return field.enum  # type: ignore[attr-defined, no-any-return]
        if kind == "list":
            item_dec = self.field_decoder(field.inner, False)  # type: ignore[attr-defined]
            return None if item_dec is None else _each(_nullable(item_dec, field.inner))  # type: ignore[attr-defined]
        if kind == "dict":
            values = field.values  # type: ignore[attr-defined]
            if values is None:
                return self.dec_plain()
            value_dec = self.field_decoder(values, False)
            if value_dec is None:
                return None
            value_dec = _nullable(value_dec, values)
            return lambda v: {k: value_dec(x) for k, x in v.items()}
        if kind == "embedded":
            _, decode = self.model_plan(field.embedded, None)  # type: ignore[attr-defined]
            return decode
        return None

    def model_plan(self, model: type, spec: TableSpec | None) -> tuple[Callable[[Any], dict[str, Any]], Callable[[Mapping[str, Any]], Any]]:
        """One model's encode (instance -> stored dict) and decode (stored -> instance), generated
        once from the per-field functions (odm.compiled; ``general_plan`` is the same as loops)."""
        enc, dec = self._field_plan(model, spec)
        return compiled.encoder(self, model, enc), compiled.decoder(self, model, dec)

    def _field_plan(self, model: type, spec: TableSpec | None) -> tuple[Any, Any]:
        """Per field: (attribute name, stored name, encoder) and (..., decoder); None: as is."""
        ttl = spec.ttl_attribute if spec is not None else None
        fields = model._fields.values()  # type: ignore[attr-defined]
        enc = tuple((f.name, f.data_key or f.name, self.field_encoder(f, f.data_key == ttl)) for f in fields)
        dec = tuple((f.name, f.data_key or f.name, self.field_decoder(f, f.data_key == ttl)) for f in fields)
        return enc, dec

    def general_plan(self, model: type, spec: TableSpec | None) -> tuple[Callable[[Any], dict[str, Any]], Callable[[Mapping[str, Any]], Any]]:
        """``model_plan`` as loops over the per-field functions: the reference the generated
        functions follow (tests compare the two)."""
        enc, dec = self._field_plan(model, spec)
        new = object.__new__

        def encode(obj: Any) -> dict[str, Any]:
            d = obj.__dict__
            out = {}
            for name, key, fn in enc:
                v = d.get(name)
                if v is not None:
                    out[key] = v if fn is None else fn(v)
            return out

        def decode(doc: Mapping[str, Any]) -> Any:
            values = {}
            get = doc.get
            for name, key, fn in dec:
                v = get(key)
                values[name] = v if fn is None or v is None else fn(v)
            obj: Any = new(model)
            obj.__dict__ = values
            return obj

        return encode, decode

    # -- values without a declared field (queries on plain dicts, the Go layer) ---------
    def encode_any(self, value: Any) -> Any:
        """A value by its type; strings and dict keys are checked (see odm.attributes)."""
        if isinstance(value, str):
            return check_text(value)
        if isinstance(value, float):
            # An untyped number is a JSON number (docs/semantics.md): integral ones are stored as
            # ints, so every backend reads 3.0 back as 3; no negative zero (see fields.Float).
            if not value.is_integer():
                return value + 0.0
            if -_TWO63 <= value < _TWO63:
                return int(value)
            # Integral beyond 64 bits (1e20): the integer its spelling names, written out as a
            # Decimal, so every backend reads back that int (SQLite kept "1e+20", read as a Decimal).
            value = decimal.Decimal(repr(value))
        if isinstance(value, (int, bool)) or value is None:
            return value
        if isinstance(value, _dt.datetime):
            fn = self.enc_datetime(None, False)
        elif isinstance(value, _dt.date):
            fn = self.enc_date(None, False)
        elif isinstance(value, decimal.Decimal):
            value = canonical_decimal(value)
            fn = self.enc_decimal(None, False)
        elif isinstance(value, uuid.UUID):
            fn = self.enc_uuid(None, False)
        elif isinstance(value, (bytes, bytearray)):
            fn = self.enc_bytes(None, False)
        elif isinstance(value, enum.Enum):
            return self.encode_any(value.value)
        elif isinstance(value, Mapping):
            return canonical({check_key(k): self.encode_any(v) for k, v in value.items()})
        elif isinstance(value, (set, frozenset)):
            return sorted(self.encode_any(v) for v in value)
        elif isinstance(value, (list, tuple)):
            return [self.encode_any(v) for v in value]
        else:
            return value
        return value if fn is None else fn(value)

    def encode_value(self, value: Any, field: Field | None, ttl: bool = False) -> Any:
        """A query value in stored form: by its field when known, else by its type.

        A value no item can hold (a NUL in a string) is a QueryError: nothing stored
        could match it, on any backend.
        """
        try:
            if field is None or value is None:
                return self.encode_any(value)
            fn = self.field_encoder(field, ttl)
            return value if fn is None else fn(value)
        except ValidationError as exc:
            raise QueryError(f"A query value cannot be used: {exc}") from None


def _nullable(fn: Fn, field: Field) -> Fn:
    """``fn`` for an element field that allows None: None passes through unconverted."""
    if not field.allow_none:
        return fn
    return lambda v: None if v is None else fn(v)
