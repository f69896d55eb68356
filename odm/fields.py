"""Field descriptors: validation on input, expression building on the class.

A field is a non-data descriptor: on an instance the value lives in the
instance ``__dict__`` (plain attribute speed); on the class, ``User.age``
returns a :class:`FieldRef` whose operators build expression nodes.

Validation is done here, field by field, with marshmallow's messages and
marshmallow validators; ``Model.schema()`` exposes an equivalent marshmallow
schema for HTTP payloads. Storage conversion lives in the backend codecs.
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import decimal as _decimal
import enum as _enum
import math
import uuid as _uuid
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, overload

import marshmallow
from marshmallow import fields as mm
from typing_extensions import TypeVar

from .errors import QueryError, shown_value
from .expressions.nodes import Between, Compare, Contains, Exists, In, Node, Not, Path, Prefix

if TYPE_CHECKING:
    from .model import EmbeddedModel
    from .updates import FieldAction

MISSING: Any = marshmallow.missing
UTC = _dt.timezone.utc


class Invalid(Exception):
    """Internal: one field's validation failure (a message list or a nested dict)."""

    def __init__(self, messages: list[str] | dict[Any, Any]) -> None:
        super().__init__(messages)
        self.messages = messages


# Typing (docs/models.md, "Typing"): each field class is generic in the value an instance holds.
# Its constructor overloads (typing only, in each class: a checker infers a class's parameter from
# a ``self`` annotation naming that class, not a base) give ``T`` with ``required=True`` or a default
# that is not None, ``T | None`` otherwise (the parameter's default): the bare ``age =
# fields.Integer()`` reads as ``int | None``, ``fields.Integer(default=0)`` as ``int``. An annotation
# such as ``age: fields.Integer[int]`` states it for the constructor too, and the bound refuses a
# wrong one (``fields.Integer[str]``). The parameters are covariant, so that
# ``age: fields.Integer[int | None] = fields.Integer(default=0)`` (a default, yet may be set to None)
# is accepted; ``__set__`` takes the declared type, so writes stay checked.
_T = TypeVar("_T", default=Any, covariant=True)
_StrT = TypeVar("_StrT", bound="str | None", default="str | None", covariant=True)
_IntT = TypeVar("_IntT", bound="int | None", default="int | None", covariant=True)
_FloatT = TypeVar("_FloatT", bound="float | None", default="float | None", covariant=True)
_BoolT = TypeVar("_BoolT", bound="bool | None", default="bool | None", covariant=True)
_DecT = TypeVar("_DecT", bound="_decimal.Decimal | None", default="_decimal.Decimal | None", covariant=True)
_DtT = TypeVar("_DtT", bound="_dt.datetime | None", default="_dt.datetime | None", covariant=True)
_DateT = TypeVar("_DateT", bound="_dt.date | None", default="_dt.date | None", covariant=True)
_UuidT = TypeVar("_UuidT", bound="_uuid.UUID | None", default="_uuid.UUID | None", covariant=True)
_BytesT = TypeVar("_BytesT", bound="bytes | None", default="bytes | None", covariant=True)
_EnumT = TypeVar("_EnumT", bound="_enum.Enum | None", default="_enum.Enum | None", covariant=True)
_ListT = TypeVar("_ListT", bound="Collection[Any] | None", default="list[Any] | None", covariant=True)
_SetT = TypeVar("_SetT", bound="set[Any] | None", default="set[Any] | None", covariant=True)
_DictT = TypeVar("_DictT", bound="dict[str, Any] | None", default="dict[str, Any] | None", covariant=True)
_EmbT = TypeVar("_EmbT", bound="EmbeddedModel | None", default="EmbeddedModel | None", covariant=True)

if TYPE_CHECKING:
    from typing import TypeAlias

    from typing_extensions import TypedDict, Unpack

    _V = TypeVar("_V")
    _E = TypeVar("_E", bound=_enum.Enum)
    _M = TypeVar("_M", bound=EmbeddedModel)
    #: A default: the value, or a callable that makes one (called for each instance).
    _Default: TypeAlias = "_V | Callable[[], _V]"
    _True: TypeAlias = Literal[True]
    _False: TypeAlias = Literal[False]

    class _Options(TypedDict, total=False):
        """The constructor options whose type is the same for every field class."""

        validate: Callable[[Any], Any] | Iterable[Callable[[Any], Any]] | None
        data_key: str | None


class Field(Generic[_T]):
    """Base field: ``required``, ``default``, ``allow_none``, ``validate``, ``data_key``.

    For type checkers ``Field[T]`` is a descriptor: ``Model.field`` is a :class:`FieldRef`, an
    instance's attribute is a ``T``. At run time it stays a non-data descriptor (the value lives
    in the instance ``__dict__``); the ``__set__`` below exists only for type checkers.
    """

    kind: ClassVar[str] = "any"
    #: Error codes and their messages (marshmallow's wording where it has one).
    default_error_messages: ClassVar[dict[str, str]] = {
        "required": "Missing data for required field.",
        "null": "Field may not be null.",
        "validator_failed": "Invalid value.",
        "invalid": "Invalid value.",
    }
    #: Whether the value can be a DynamoDB/SQL key attribute.
    key_capable: ClassVar[bool] = False

    name: str
    model: type

    def __init__(
        self,
        *,
        required: bool = False,
        default: Any = MISSING,
        allow_none: bool = False,
        validate: Callable[[Any], Any] | Iterable[Callable[[Any], Any]] | None = None,
        data_key: str | None = None,
    ) -> None:
        self.required = required
        # default=None on an optional field is the typed spelling of "no default" (docs/models.md, "Typing").
        self.default = MISSING if default is None and not required else default
        self.allow_none = allow_none
        if validate is None:
            self.validators: tuple[Callable[[Any], Any], ...] = ()
        elif callable(validate):
            self.validators = (validate,)
        else:
            self.validators = tuple(validate)
        self.data_key = data_key
        self.name = ""

    # -- descriptor --------------------------------------------------------------
    def __set_name__(self, owner: type, name: str) -> None:
        self.bind(owner, name)

    def bind(self, owner: type, name: str) -> None:
        self.name = name
        self.model = owner
        if not self.data_key:
            self.data_key = name

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> FieldRef: ...
    @overload
    def __get__(self, obj: object, owner: type | None = None) -> _T: ...
    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            # ``User.age``: one FieldRef per field and class, made on first use (refs are never
            # changed; a copy of the field bound to a subclass makes its own).
            model = owner or self.model
            ref = self.__dict__.get("_odm_ref")
            if ref is None or ref.model is not model:
                ref = self.__dict__["_odm_ref"] = FieldRef(model, (self,))
            return ref
        # Only reached when the value is not in the instance __dict__ (a non-data descriptor).
        d = obj.__dict__
        if "_odm_only" in d:  # a partial instance (Query.only): this field was not fetched
            raise AttributeError(f"{type(obj).__name__}.{self.name} was not fetched: the instance was read with "
                                 f"only({', '.join(sorted(d['_odm_only']))}); add '{self.name}' to only() or read it whole.")
        return d.get(self.name)

    if TYPE_CHECKING:
        # Typing only: checks ``user.age = "old"`` and gives dataclass_transform the constructor's
        # parameter type. Defined at run time it would make fields data descriptors (slower reads).
        def __set__(self, obj: object, value: _T) -> None: ...  # type: ignore[misc]  # covariant: see _T

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {getattr(self.model, '__name__', '?')}.{self.name}>"

    # -- validation --------------------------------------------------------------
    def fail(self, code: str, **kwargs: Any) -> Invalid:
        return Invalid([self.default_error_messages[code].format(**kwargs)])

    def get_default(self) -> Any:
        default = self.default
        if default is MISSING:
            return None
        return default() if callable(default) else default

    def load(self, value: Any) -> Any:
        """Validate and convert one input value; raises :class:`Invalid`."""
        if value is None:
            if self.allow_none or not self.required:
                return None
            raise self.fail("null")
        value = self.convert(value)
        for validator in self.validators:
            try:
                result = validator(value)
            except marshmallow.ValidationError as exc:
                msgs = exc.messages
                raise Invalid(msgs if isinstance(msgs, (list, dict)) else [str(msgs)]) from None
            if result is False:
                raise self.fail("validator_failed")
        return value

    def convert(self, value: Any) -> Any:
        return value

    def dump(self, value: Any) -> Any:
        """Plain Python form for ``to_dict`` (embedded models become dicts)."""
        return value

    # -- marshmallow -------------------------------------------------------------
    def mm_kwargs(self) -> dict[str, Any]:
        kw: dict[str, Any] = {"required": self.required, "allow_none": self.allow_none}
        if self.default is not MISSING:
            kw["load_default"] = self.default
        if self.validators:
            kw["validate"] = list(self.validators)
        if self.data_key and self.data_key != self.name:
            kw["data_key"] = self.data_key
        return kw

    def mm_field(self) -> mm.Field:
        return mm.Raw(**self.mm_kwargs())


class String(Field[_StrT]):
    kind = "str"
    key_capable = True
    default_error_messages = {**Field.default_error_messages, "invalid": "Not a valid string."}

    if TYPE_CHECKING:
        @overload
        def __init__(self: String[str], *, required: _True, default: _Default[str] | None = ...,
                     allow_none: _False = ..., **options: Unpack[_Options]) -> None: ...
        @overload
        def __init__(self: String[str], *, required: bool = ..., default: _Default[str],
                     allow_none: _False = ..., **options: Unpack[_Options]) -> None: ...
        @overload
        def __init__(self: String[str | None], *, required: bool = ..., default: _Default[str] | None = ...,
                     allow_none: bool = ..., **options: Unpack[_Options]) -> None: ...
        def __init__(self, *args: Any, **kwargs: Any) -> None: ...

    def convert(self, value: Any) -> Any:
        if isinstance(value, str):
            return value
        raise self.fail("invalid")

    def mm_field(self) -> mm.Field:
        return mm.String(**self.mm_kwargs())


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
#: Widest decimal exponent any backend stores (IEEE 754 decimal128, MongoDB's Decimal128).
#: Checked before any conversion, so hostile input such as "1e1000000" costs time linear in its length.
DECIMAL_MAX_EXPONENT = 6144


def decimal_in_range(value: _decimal.Decimal) -> bool:
    """Is a finite Decimal's magnitude one every backend can hold (exponent within decimal128's)?"""
    return value.is_zero() or -DECIMAL_MAX_EXPONENT <= value.adjusted() <= DECIMAL_MAX_EXPONENT


def canonical_decimal(value: _decimal.Decimal) -> _decimal.Decimal:
    """One spelling per number, the one every backend reads back (docs/semantics.md, "Numbers").

    DynamoDB drops trailing fractional zeros and PostgreSQL writes ``5.6E+9`` out as
    ``5600000000``; so every backend stores, and every read returns, that form: no trailing
    zeros after the point, no positive exponent, ``0`` for any zero. Exact at any length
    (``normalize()`` would round to the context's 28 digits).
    """
    sign, digits, exp = value.as_tuple()
    if not isinstance(exp, int):  # NaN/Infinity: refused elsewhere, left as is here
        return value
    if exp == 0:
        return value if digits != (0,) or not sign else _ZERO
    if not any(digits):
        return _ZERO
    if exp > 0:
        return _decimal.Decimal((sign, digits + (0,) * exp, 0))
    if digits[-1]:
        return value
    n = len(digits)
    while exp < 0 and digits[n - 1] == 0:
        n -= 1
        exp += 1
    return _decimal.Decimal((sign, digits[:n], exp))


_ZERO = _decimal.Decimal(0)


class Integer(Field[_IntT]):
    """A 64-bit signed integer (the range every backend can store and compare)."""

    kind = "int"
    key_capable = True
    default_error_messages = {
        **Field.default_error_messages,
        "invalid": "Not a valid integer.",
        "range": "Number out of range: integers must fit in 64 bits (-2**63 to 2**63 - 1).",
    }

    if TYPE_CHECKING:
        @overload
        def __init__(self: Integer[int], *, required: _True, default: _Default[int] | None = ...,
                     allow_none: _False = ..., **options: Unpack[_Options]) -> None: ...
        @overload
        def __init__(self: Integer[int], *, required: bool = ..., default: _Default[int],
                     allow_none: _False = ..., **options: Unpack[_Options]) -> None: ...
        @overload
        def __init__(self: Integer[int | None], *, required: bool = ..., default: _Default[int] | None = ...,
                     allow_none: bool = ..., **options: Unpack[_Options]) -> None: ...
        def __init__(self, *args: Any, **kwargs: Any) -> None: ...

    def convert(self, value: Any) -> Any:
        if type(value) is int:
            if INT64_MIN <= value <= INT64_MAX:
                return value
            raise self.fail("range")
        if isinstance(value, bool):
            raise self.fail("invalid")
        if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
            return self.convert(int(value))
        if isinstance(value, (str, _decimal.Decimal)):
            try:
                dec = _decimal.Decimal(value)
            except (ArithmeticError, ValueError):
                raise self.fail("invalid") from None
            if dec.is_finite() and dec == dec.to_integral_value():
                # int() of a huge exponent is quadratic: refuse out-of-range magnitudes first.
                if not dec.is_zero() and dec.adjusted() > 18:
                    raise self.fail("range")
                return self.convert(int(dec))
        raise self.fail("invalid")

    def mm_field(self) -> mm.Field:
        return mm.Integer(**self.mm_kwargs())


class Float(Field[_FloatT]):
    kind = "float"
    key_capable = True
    default_error_messages = {
        **Field.default_error_messages,
        "invalid": "Not a valid number.",
        "special": "Special numeric values (nan or infinity) are not permitted.",
    }

    if TYPE_CHECKING:
        @overload
        def __init__(self: Float[float], *, required: _True, default: _Default[float] | None = ...,
                     allow_none: _False = ..., **options: Unpack[_Options]) -> None: ...
        @overload
        def __init__(self: Float[float], *, required: bool = ..., default: _Default[float],
                     allow_none: _False = ..., **options: Unpack[_Options]) -> None: ...
        @overload
        def __init__(self: Float[float | None], *, required: bool = ..., default: _Default[float] | None = ...,
                     allow_none: bool = ..., **options: Unpack[_Options]) -> None: ...
        def __init__(self, *args: Any, **kwargs: Any) -> None: ...

    def convert(self, value: Any) -> Any:
        if isinstance(value, bool):
            raise self.fail("invalid")
        try:
            result = float(value)
        except (TypeError, ValueError, OverflowError):
            raise self.fail("invalid") from None
        if not math.isfinite(result):
            raise self.fail("special")
        return result + 0.0  # -0.0 becomes 0.0: PostgreSQL and DynamoDB have no negative zero

    def mm_field(self) -> mm.Field:
        return mm.Float(**self.mm_kwargs())


class Boolean(Field[_BoolT]):
    kind = "bool"
    default_error_messages = {**Field.default_error_messages, "invalid": "Not a valid boolean."}
    truthy = frozenset(mm.Boolean.truthy)
    falsy = frozenset(mm.Boolean.falsy)

    if TYPE_CHECKING:
        @overload
        def __init__(self: Boolean[bool], *, required: _True, default: _Default[bool] | None = ...,
                     allow_none: _False = ..., **options: Unpack[_Options]) -> None: ...
        @overload
        def __init__(self: Boolean[bool], *, required: bool = ..., default: _Default[bool],
                     allow_none: _False = ..., **options: Unpack[_Options]) -> None: ...
        @overload
        def __init__(self: Boolean[bool | None], *, required: bool = ..., default: _Default[bool] | None = ...,
                     allow_none: bool = ..., **options: Unpack[_Options]) -> None: ...
        def __init__(self, *args: Any, **kwargs: Any) -> None: ...

    def convert(self, value: Any) -> Any:
        if value is True or value is False:
            return value
        try:
            if value in self.truthy:
                return True
            if value in self.falsy:
                return False
        except TypeError:
            pass
        raise self.fail("invalid")

    def mm_field(self) -> mm.Field:
        return mm.Boolean(**self.mm_kwargs())


class Decimal(Field[_DecT]):
    kind = "decimal"
    key_capable = True
    default_error_messages = {
        **Field.default_error_messages,
        "invalid": "Not a valid number.",
        "special": "Special numeric values (nan or infinity) are not permitted.",
        "range": f"Number out of range: the exponent must be within -{DECIMAL_MAX_EXPONENT} to {DECIMAL_MAX_EXPONENT}.",
    }

    if TYPE_CHECKING:
        @overload
        def __init__(self: Decimal[_decimal.Decimal], *, required: _True, default: _Default[_decimal.Decimal] | None = ...,
                     allow_none: _False = ..., **options: Unpack[_Options]) -> None: ...
        @overload
        def __init__(self: Decimal[_decimal.Decimal], *, required: bool = ..., default: _Default[_decimal.Decimal],
                     allow_none: _False = ..., **options: Unpack[_Options]) -> None: ...
        @overload
        def __init__(self: Decimal[_decimal.Decimal | None], *, required: bool = ..., default: _Default[_decimal.Decimal] | None = ...,
                     allow_none: bool = ..., **options: Unpack[_Options]) -> None: ...
        def __init__(self, *args: Any, **kwargs: Any) -> None: ...

    def convert(self, value: Any) -> Any:
        if isinstance(value, bool):
            raise self.fail("invalid")
        try:
            result = _decimal.Decimal(str(value)) if isinstance(value, float) else _decimal.Decimal(value)
        except (TypeError, ValueError, ArithmeticError):
            raise self.fail("invalid") from None
        if not result.is_finite():
            raise self.fail("special")
        if not decimal_in_range(result):
            raise self.fail("range")
        return canonical_decimal(result)

    def mm_field(self) -> mm.Field:
        return mm.Decimal(**self.mm_kwargs())


class DateTime(Field[_DtT]):
    """A timezone-aware datetime, stored in UTC. Naive datetimes are refused.

    Input may also be an ISO-8601 string with an offset, or a number of epoch
    seconds (the Go package's TTL values). ``auto_now_add=True``: set to the current UTC time
    when an item is first written without a value (create, save, insert_many); ``auto_now=True``:
    set on every write, ``update()`` included (docs/models.md, "Timestamps").
    """

    kind = "datetime"
    key_capable = True
    default_error_messages = {
        **Field.default_error_messages,
        "invalid": "Not a valid datetime.",
        "naive": "Not a valid aware datetime; pass a timezone-aware value such as odm.utcnow().",
    }

    if TYPE_CHECKING:
        @overload
        def __init__(self: DateTime[_dt.datetime], *, required: _True, default: _Default[_dt.datetime] | None = ...,
                     allow_none: _False = ..., auto_now: bool = ..., auto_now_add: bool = ..., **options: Unpack[_Options]) -> None: ...
        @overload
        def __init__(self: DateTime[_dt.datetime], *, required: bool = ..., default: _Default[_dt.datetime],
                     allow_none: _False = ..., auto_now: bool = ..., auto_now_add: bool = ..., **options: Unpack[_Options]) -> None: ...
        @overload
        def __init__(self: DateTime[_dt.datetime | None], *, required: bool = ..., default: _Default[_dt.datetime] | None = ...,
                     allow_none: bool = ..., auto_now: bool = ..., auto_now_add: bool = ..., **options: Unpack[_Options]) -> None: ...

    def __init__(self, *, auto_now: bool = False, auto_now_add: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if auto_now or auto_now_add:
            from .errors import ConfigError

            given = "auto_now" if auto_now else "auto_now_add"
            if auto_now and auto_now_add:
                raise ConfigError("fields.DateTime takes auto_now or auto_now_add, not both: auto_now already "
                                  "sets the value on the first write too.")
            if self.required:
                raise ConfigError(f"fields.DateTime({given}=True) is filled in when the item is written, so it "
                                  f"cannot also be required=True (an instance is built before it is written).")
        self.auto_now = auto_now
        self.auto_now_add = auto_now_add

    def convert(self, value: Any) -> Any:
        if isinstance(value, _dt.datetime):
            if value.tzinfo is None or value.utcoffset() is None:
                raise self.fail("naive")
            if value.tzinfo is UTC:
                return value
            try:
                return value.astimezone(UTC)
            except OverflowError:  # e.g. year 1 at +01:00 is before datetime.min in UTC
                raise self.fail("invalid") from None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            try:
                return _dt.datetime.fromtimestamp(value, UTC)
            except (OverflowError, OSError, ValueError):
                raise self.fail("invalid") from None
        if isinstance(value, str):
            text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
            try:
                parsed = _dt.datetime.fromisoformat(text)
            except ValueError:
                raise self.fail("invalid") from None
            return self.convert(parsed)
        raise self.fail("invalid")

    def mm_field(self) -> mm.Field:
        return mm.AwareDateTime(default_timezone=UTC, **self.mm_kwargs())


class Date(Field[_DateT]):
    kind = "date"
    key_capable = True
    default_error_messages = {**Field.default_error_messages, "invalid": "Not a valid date."}

    if TYPE_CHECKING:
        @overload
        def __init__(self: Date[_dt.date], *, required: _True, default: _Default[_dt.date] | None = ...,
                     allow_none: _False = ..., **options: Unpack[_Options]) -> None: ...
        @overload
        def __init__(self: Date[_dt.date], *, required: bool = ..., default: _Default[_dt.date],
                     allow_none: _False = ..., **options: Unpack[_Options]) -> None: ...
        @overload
        def __init__(self: Date[_dt.date | None], *, required: bool = ..., default: _Default[_dt.date] | None = ...,
                     allow_none: bool = ..., **options: Unpack[_Options]) -> None: ...
        def __init__(self, *args: Any, **kwargs: Any) -> None: ...

    def convert(self, value: Any) -> Any:
        if isinstance(value, _dt.datetime):
            raise self.fail("invalid")
        if isinstance(value, _dt.date):
            return value
        if isinstance(value, str):
            try:
                return _dt.date.fromisoformat(value)
            except ValueError:
                pass
        raise self.fail("invalid")

    def mm_field(self) -> mm.Field:
        return mm.Date(**self.mm_kwargs())


class UUID(Field[_UuidT]):
    kind = "uuid"
    key_capable = True
    default_error_messages = {**Field.default_error_messages, "invalid": "Not a valid UUID."}

    if TYPE_CHECKING:
        @overload
        def __init__(self: UUID[_uuid.UUID], *, required: _True, default: _Default[_uuid.UUID] | None = ...,
                     allow_none: _False = ..., **options: Unpack[_Options]) -> None: ...
        @overload
        def __init__(self: UUID[_uuid.UUID], *, required: bool = ..., default: _Default[_uuid.UUID],
                     allow_none: _False = ..., **options: Unpack[_Options]) -> None: ...
        @overload
        def __init__(self: UUID[_uuid.UUID | None], *, required: bool = ..., default: _Default[_uuid.UUID] | None = ...,
                     allow_none: bool = ..., **options: Unpack[_Options]) -> None: ...
        def __init__(self, *args: Any, **kwargs: Any) -> None: ...

    def convert(self, value: Any) -> Any:
        if isinstance(value, _uuid.UUID):
            return value
        try:
            if isinstance(value, str):
                return _uuid.UUID(value)
            if isinstance(value, bytes) and len(value) == 16:
                return _uuid.UUID(bytes=value)
        except ValueError:
            pass
        raise self.fail("invalid")

    def mm_field(self) -> mm.Field:
        return mm.UUID(**self.mm_kwargs())


class Bytes(Field[_BytesT]):
    """Binary data; a base64 string is accepted on input (JSON payloads)."""

    kind = "bytes"
    key_capable = True
    default_error_messages = {**Field.default_error_messages, "invalid": "Not a valid bytes value."}

    if TYPE_CHECKING:
        @overload
        def __init__(self: Bytes[bytes], *, required: _True, default: _Default[bytes] | None = ...,
                     allow_none: _False = ..., **options: Unpack[_Options]) -> None: ...
        @overload
        def __init__(self: Bytes[bytes], *, required: bool = ..., default: _Default[bytes],
                     allow_none: _False = ..., **options: Unpack[_Options]) -> None: ...
        @overload
        def __init__(self: Bytes[bytes | None], *, required: bool = ..., default: _Default[bytes] | None = ...,
                     allow_none: bool = ..., **options: Unpack[_Options]) -> None: ...
        def __init__(self, *args: Any, **kwargs: Any) -> None: ...

    def convert(self, value: Any) -> Any:
        if isinstance(value, bytes):
            return value
        if isinstance(value, (bytearray, memoryview)):
            return bytes(value)
        if isinstance(value, str):
            try:
                return base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                pass
        raise self.fail("invalid")


class Enum(Field[_EnumT]):
    """A Python ``enum.Enum`` member, stored by value; input may be the member, its value or name."""

    kind = "enum"
    key_capable = True
    default_error_messages = {**Field.default_error_messages, "unknown": "Must be one of: {choices}."}

    if TYPE_CHECKING:
        @overload
        def __init__(self: Enum[_E], enum: type[_E], *, required: _True, default: _Default[_E] | None = ...,
                     allow_none: _False = ..., **options: Unpack[_Options]) -> None: ...
        @overload
        def __init__(self: Enum[_E], enum: type[_E], *, required: bool = ..., default: _Default[_E],
                     allow_none: _False = ..., **options: Unpack[_Options]) -> None: ...
        @overload
        def __init__(self: Enum[_E | None], enum: type[_E], *, required: bool = ..., default: _Default[_E] | None = ...,
                     allow_none: bool = ..., **options: Unpack[_Options]) -> None: ...

    def __init__(self, enum: type[_enum.Enum], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.enum = enum
        self._by_value = {m.value: m for m in enum}
        self._choices = ", ".join(str(m.value) for m in enum)

    def convert(self, value: Any) -> Any:
        if isinstance(value, self.enum):
            return value
        try:
            member = self._by_value.get(value)
        except TypeError:
            member = None
        if member is None and isinstance(value, str):
            member = self.enum.__members__.get(value)
        if member is None:
            raise self.fail("unknown", choices=self._choices)
        return member

    def mm_field(self) -> mm.Field:
        return mm.Enum(self.enum, by_value=True, **self.mm_kwargs())


class List(Field[_ListT]):
    kind = "list"
    default_error_messages = {**Field.default_error_messages, "invalid": "Not a valid list."}

    if TYPE_CHECKING:
        @overload
        def __init__(self: List[list[Any]], inner: Field[Any], *, required: _True, default: _Default[list[Any]] | None = ...,
                     allow_none: _False = ..., **options: Unpack[_Options]) -> None: ...
        @overload
        def __init__(self: List[list[Any]], inner: Field[Any], *, required: bool = ..., default: _Default[list[Any]],
                     allow_none: _False = ..., **options: Unpack[_Options]) -> None: ...
        @overload
        def __init__(self: List[list[Any] | None], inner: Field[Any], *, required: bool = ..., default: _Default[list[Any]] | None = ...,
                     allow_none: bool = ..., **options: Unpack[_Options]) -> None: ...

    def __init__(self, inner: Field, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.inner = inner

    def bind(self, owner: type, name: str) -> None:
        super().bind(owner, name)
        self.inner.bind(owner, name)

    def convert(self, value: Any) -> Any:
        if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
            raise self.fail("invalid")
        out = []
        errors: dict[int, Any] = {}
        load = self.inner.load
        nullable = self.inner.allow_none and self.kind == "list"  # a set never holds None (DynamoDB's SS/NS)
        for i, item in enumerate(value):
            if item is None and not nullable:  # marshmallow's List refuses it too
                errors[i] = [self.inner.default_error_messages["null"]]
                continue
            try:
                out.append(load(item))
            except Invalid as exc:
                errors[i] = exc.messages
        if errors:
            raise Invalid(errors)
        return out

    def dump(self, value: Any) -> Any:
        inner = self.inner.dump
        return [inner(v) for v in value]

    def mm_field(self) -> mm.Field:
        return mm.List(self.inner.mm_field(), **self.mm_kwargs())


class Set(List[_SetT]):
    """A set of strings, numbers or bytes (DynamoDB SS/NS/BS); stored as a sorted list elsewhere."""

    kind = "set"
    default_error_messages = {**Field.default_error_messages, "invalid": "Not a valid set."}

    if TYPE_CHECKING:
        @overload
        def __init__(self: Set[set[Any]], inner: Field[Any], *, required: _True, default: _Default[set[Any]] | None = ...,
                     allow_none: _False = ..., **options: Unpack[_Options]) -> None: ...
        @overload
        def __init__(self: Set[set[Any]], inner: Field[Any], *, required: bool = ..., default: _Default[set[Any]],
                     allow_none: _False = ..., **options: Unpack[_Options]) -> None: ...
        @overload
        def __init__(self: Set[set[Any] | None], inner: Field[Any], *, required: bool = ..., default: _Default[set[Any]] | None = ...,
                     allow_none: bool = ..., **options: Unpack[_Options]) -> None: ...
        def __init__(self, *args: Any, **kwargs: Any) -> None: ...

    def convert(self, value: Any) -> Any:
        return set(super().convert(value))

    def dump(self, value: Any) -> Any:
        return set(value)


class Dict(Field[_DictT]):
    """A mapping with string keys; ``values`` optionally validates each value."""

    kind = "dict"
    default_error_messages = {
        **Field.default_error_messages,
        "invalid": "Not a valid mapping type.",
        "key": "Keys must be strings.",
    }

    if TYPE_CHECKING:
        @overload
        def __init__(self: Dict[dict[str, Any]], values: Field[Any] | None = ...,
                     *, required: _True, default: _Default[dict[str, Any]] | None = ...,
                     allow_none: _False = ..., **options: Unpack[_Options]) -> None: ...
        @overload
        def __init__(self: Dict[dict[str, Any]], values: Field[Any] | None = ...,
                     *, required: bool = ..., default: _Default[dict[str, Any]],
                     allow_none: _False = ..., **options: Unpack[_Options]) -> None: ...
        @overload
        def __init__(self: Dict[dict[str, Any] | None], values: Field[Any] | None = ...,
                     *, required: bool = ..., default: _Default[dict[str, Any]] | None = ...,
                     allow_none: bool = ..., **options: Unpack[_Options]) -> None: ...

    def __init__(self, values: Field | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.values = values

    def bind(self, owner: type, name: str) -> None:
        super().bind(owner, name)
        if self.values is not None:
            self.values.bind(owner, name)

    def convert(self, value: Any) -> Any:
        if not isinstance(value, Mapping):
            raise self.fail("invalid")
        if self.values is None:
            problem = plain_data_problem(value)
            if problem:
                raise Invalid([problem])
            return dict(value)
        out: dict[str, Any] = {}
        errors: dict[str, Any] = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise self.fail("key")
            try:
                out[k] = self.values.load(v)
            except Invalid as exc:
                errors[k] = {"value": exc.messages}
        if errors:
            raise Invalid(errors)
        return out

    def mm_field(self) -> mm.Field:
        values = self.values.mm_field() if self.values is not None else None
        return mm.Dict(keys=mm.String(), values=values, **self.mm_kwargs())


class Embedded(Field[_EmbT]):
    """An embedded model (``EmbeddedModel`` subclass); a dict is accepted and validated."""

    kind = "embedded"
    default_error_messages = {**Field.default_error_messages, "type": "Invalid input type."}

    if TYPE_CHECKING:
        @overload
        def __init__(self: Embedded[_M], model: type[_M], *, required: _True, default: _Default[_M] | None = ...,
                     allow_none: _False = ..., **options: Unpack[_Options]) -> None: ...
        @overload
        def __init__(self: Embedded[_M], model: type[_M], *, required: bool = ..., default: _Default[_M],
                     allow_none: _False = ..., **options: Unpack[_Options]) -> None: ...
        @overload
        def __init__(self: Embedded[_M | None], model: type[_M], *, required: bool = ..., default: _Default[_M] | None = ...,
                     allow_none: bool = ..., **options: Unpack[_Options]) -> None: ...

    def __init__(self, model: type[EmbeddedModel], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.embedded = model

    def convert(self, value: Any) -> Any:
        if isinstance(value, self.embedded):
            return value
        if not isinstance(value, Mapping):
            raise self.fail("type")
        try:
            return self.embedded._load(value)
        except Exception as exc:
            messages = getattr(exc, "messages", None)
            if messages is None:
                raise
            raise Invalid(messages) from None

    def dump(self, value: Any) -> Any:
        return value.to_dict()

    def mm_field(self) -> mm.Field:
        return mm.Nested(self.embedded.schema_class(), **self.mm_kwargs())


def plain_data_problem(value: Any, depth: int = 0) -> str | None:
    """Why ``value`` is not storable as plain data on every backend (None when it is)."""
    if depth > 64:
        return "Nested too deeply (more than 64 levels)."
    if isinstance(value, _decimal.Decimal):
        if not value.is_finite():
            return Decimal.default_error_messages["special"]
        return None if decimal_in_range(value) else Decimal.default_error_messages["range"]
    if value is None or isinstance(value, (str, bool, _dt.date, _uuid.UUID, bytes)):
        return None
    if isinstance(value, int):
        return None if INT64_MIN <= value <= INT64_MAX else Integer.default_error_messages["range"]
    if isinstance(value, float):
        return None if math.isfinite(value) else Float.default_error_messages["special"]
    if isinstance(value, Mapping):
        for k, v in value.items():
            if not isinstance(k, str):
                return Dict.default_error_messages["key"]
            problem = plain_data_problem(v, depth + 1)
            if problem:
                return problem
        return None
    if isinstance(value, (list, tuple, set, frozenset)):
        for v in value:
            problem = plain_data_problem(v, depth + 1)
            if problem:
                return problem
        return None
    if isinstance(value, _enum.Enum):
        return plain_data_problem(value.value, depth + 1)
    return f"Values of type {type(value).__name__} cannot be stored; use strings, numbers, booleans, lists and dicts."


# -- query building --------------------------------------------------------------


class SortKey:
    """One ``order_by`` term: a path and a direction."""

    __slots__ = ("path", "descending")

    def __init__(self, path: Path, descending: bool) -> None:
        self.path = path
        self.descending = descending

    def __repr__(self) -> str:
        return ("-" if self.descending else "+") + self.path.dotted

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SortKey) and (self.path, self.descending) == (other.path, other.descending)

    def __hash__(self) -> int:
        return hash((self.path, self.descending))


class FieldRef:
    """``User.age`` or ``User.address.city``: builds expression nodes from operators."""

    __slots__ = ("model", "fields", "path")

    def __init__(self, model: type, fields: tuple[Field, ...]) -> None:
        self.model = model
        self.fields = fields
        self.path = Path(tuple(f.data_key or f.name for f in fields), fields[-1])

    @property
    def field(self) -> Field:
        return self.fields[-1]

    @property
    def label(self) -> str:
        return f"{self.model.__name__}." + ".".join(f.name for f in self.fields)

    def __repr__(self) -> str:
        return f"<FieldRef {self.label}>"

    def __getattr__(self, name: str) -> FieldRef:
        last = self.fields[-1]
        if isinstance(last, Embedded):
            sub = last.embedded._fields.get(name)
            if sub is not None:
                return FieldRef(self.model, (*self.fields, sub))
            known = ", ".join(last.embedded._fields)
            raise QueryError(f"{self.label} has no field '{name}'; its fields are: {known}.")
        if name.startswith("_"):
            raise AttributeError(name)
        raise QueryError(f"{self.label} is not an embedded model, so it has no sub-field '{name}'.")

    def _value(self, value: Any, field: Field | None = None) -> Any:
        field = field or self.field
        if value is None:
            return None
        try:
            return field.convert(value)
        except Invalid as exc:
            raise QueryError(f"Cannot compare {self.label} with {shown_value(value)}: {_flatten(exc.messages)}") from None

    def _cmp(self, op: str, value: Any) -> Node:
        if value is None:
            raise QueryError(f"{self.label} cannot be compared with None using an ordering operator.")
        return Compare(op, self.path, self._value(value))

    def __eq__(self, value: Any) -> Node:  # type: ignore[override]
        if value is None:
            return Not(Exists(self.path))
        path = self.path
        try:  # _value, inlined: ``Model.query(name=v)`` builds one of these per call
            converted = path.field.convert(value)
        except Invalid as exc:
            raise QueryError(f"Cannot compare {self.label} with {shown_value(value)}: {_flatten(exc.messages)}") from None
        return Compare("eq", path, converted)

    def __ne__(self, value: Any) -> Node:  # type: ignore[override]
        return ~self.__eq__(value)

    def __lt__(self, value: Any) -> Node:
        return self._cmp("lt", value)

    def __le__(self, value: Any) -> Node:
        return self._cmp("le", value)

    def __gt__(self, value: Any) -> Node:
        return self._cmp("gt", value)

    def __ge__(self, value: Any) -> Node:
        return self._cmp("ge", value)

    __hash__ = None  # type: ignore[assignment]

    def in_(self, values: Iterable[Any]) -> Node:
        if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, Iterable):
            raise QueryError(f"{self.label}.in_() takes a list of values, not {values!r}.")
        values = tuple(values)
        if any(v is None for v in values):
            raise QueryError(f"{self.label}.in_() cannot hold None; combine with | (field == None) instead.")
        return In(self.path, tuple(self._value(v) for v in values))

    def not_in(self, values: Iterable[Any]) -> Node:
        return ~self.in_(values)

    def between(self, low: Any, high: Any) -> Node:
        if low is None or high is None:
            raise QueryError(f"{self.label}.between() needs two values, not None.")
        return Between(self.path, self._value(low), self._value(high))

    def startswith(self, prefix: str) -> Node:
        if not isinstance(self.field, String) or not isinstance(prefix, str):
            raise QueryError(f"{self.label}.startswith() needs a String field and a string prefix.")
        return Prefix(self.path, prefix)

    def contains(self, value: Any) -> Node:
        field = self.field
        if isinstance(field, List):
            return Contains(self.path, self._value(value, field.inner), True)
        if isinstance(field, String) and isinstance(value, str):
            return Contains(self.path, value, False)
        raise QueryError(
            f"{self.label}.contains() needs a List or Set field (element) or a String field with a string (substring)."
        )

    # -- update actions (positional arguments of update(); see odm.updates) ---------------
    def _action(self, op: str, arg: Any = None) -> FieldAction:
        from .updates import Elements, FieldAction

        if op in ("append", "remove", "add", "discard"):
            Elements(op, arg)  # refuses an empty call, as odm.append() does
        return FieldAction(self, op, arg)

    def set(self, value: Any) -> FieldAction:
        """Set this path (inside an embedded model too) to ``value``."""
        return self._action("set", value)

    def unset(self) -> FieldAction:
        """Remove this path's attribute."""
        return self._action("unset")

    def inc(self, amount: Any = 1) -> FieldAction:
        """Atomically add ``amount`` to this numeric path (a missing value counts as 0)."""
        return self._action("inc", amount)

    def append(self, *values: Any) -> FieldAction:
        """Atomically append ``values`` to this List path."""
        return self._action("append", values)

    def remove(self, *values: Any) -> FieldAction:
        """Atomically remove every occurrence of ``values`` from this List path."""
        return self._action("remove", values)

    def add(self, *values: Any) -> FieldAction:
        """Atomically add ``values`` to this Set path."""
        return self._action("add", values)

    def discard(self, *values: Any) -> FieldAction:
        """Atomically take ``values`` out of this Set path."""
        return self._action("discard", values)

    def exists(self) -> Node:
        return Exists(self.path)

    def not_exists(self) -> Node:
        return Not(Exists(self.path))

    def __neg__(self) -> SortKey:
        return SortKey(self.path, True)

    def __pos__(self) -> SortKey:
        return SortKey(self.path, False)

    def asc(self) -> SortKey:
        return SortKey(self.path, False)

    def desc(self) -> SortKey:
        return SortKey(self.path, True)


def _flatten(messages: Any) -> str:
    if isinstance(messages, dict):
        return " ".join(f"{k}: {_flatten(v)}" for k, v in messages.items())
    if isinstance(messages, list):
        return " ".join(_flatten(m) for m in messages)
    return str(messages)


__all__ = [
    "Boolean", "Bytes", "Date", "DateTime", "Decimal", "Dict", "Embedded", "Enum", "Field",
    "FieldRef", "Float", "Integer", "List", "Set", "SortKey", "String", "UUID",
]
