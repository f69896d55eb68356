"""Per-model functions generated as Python source: the per-object fast paths (issue 11).

Why: validating input and converting to and from a backend's stored form were loops over
per-field closures; per object, the loop, the closure frames and the general type tests
were most of the cost. Here, once per model (and per backend codec), one function is
generated with the fields unrolled, direct calls to the converters and inlined type tests
(``type(v) is str``) for the usual values; anything unusual takes the general path, the same
code as before, so results and errors are the same.

What is generated:

- :func:`validator` (used by ``BaseModel._validated``): input dict -> attribute values, or
  ``ValidationError`` with every error, as ``BaseModel._validated_general``;
- :func:`encoder` / :func:`decoder` (used by ``Codec.model_plan``): instance -> stored dict
  and stored dict -> instance, from the codec's per-field functions. A codec function may
  carry an equivalent expression (:func:`inlined`), which is then written in place of the call.

Safety: no text from a model (field names, data keys, messages, defaults) is written into
the source. Every such value is a constant in the function's namespace, named by a counter
(``c0``, ``c1``...); the source holds only those names and this module's own templates.

Debugging: every generated function has its source in ``fn.__odm_source__`` (``print(source(fn))``),
and the source is registered with ``linecache``, so tracebacks and ``pdb`` show its lines.
"""

from __future__ import annotations

import datetime as _dt
import decimal as _decimal
import itertools
import linecache
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from .errors import ValidationError
from .fields import (
    DECIMAL_MAX_EXPONENT,
    INT64_MAX,
    INT64_MIN,
    MISSING,
    Boolean,
    DateTime,
    Decimal,
    Embedded,
    Field,
    Float,
    Integer,
    Invalid,
    List,
    String,
    canonical_decimal,
)

if TYPE_CHECKING:
    from .backends.codec import Codec
    from .model import BaseModel

Fn = Callable[[Any], Any]
_counter = itertools.count()


def inlined(fn: Fn, template: str) -> Fn:
    """Mark ``fn`` as equivalent to ``template`` (with ``{v}``: the value, a plain name; ``{fn}``: fn).

    The template must give what ``fn(v)`` gives, errors included; it may call ``{fn}`` for
    the unusual cases and use the names every generated function has (``_Source.ns``: UTC,
    fromiso, Decimal, canonical_decimal...). Templates are this package's code, never model text.
    """
    fn.__odm_inline__ = template  # type: ignore[attr-defined]
    return fn


def source(fn: Any) -> str:
    """The generated source of a function made here (for debugging)."""
    return fn.__odm_source__  # type: ignore[no-any-return]


class _Source:
    """Lines of one generated module and the constants they name."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.ns: dict[str, Any] = {"ValidationError": ValidationError, "Invalid": Invalid, "UTC": _dt.timezone.utc,
                                   "fromiso": _dt.datetime.fromisoformat, "datetime": _dt.datetime,
                                   "Decimal": _decimal.Decimal, "ABSENT": _ABSENT, "osetattr": object.__setattr__,
                                   "new": object.__new__, "canonical_decimal": canonical_decimal}
        self._ids: dict[int, str] = {}

    def const(self, value: Any) -> str:
        """The name under which ``value`` is in the namespace (one name per object)."""
        name = self._ids.get(id(value))
        if name is None:
            name = self._ids[id(value)] = f"c{len(self._ids)}"
            self.ns[name] = value
        return name

    def add(self, indent: int, line: str) -> None:
        self.lines.append("    " * indent + line)

    def build(self, name: str, label: str) -> Any:
        text = "\n".join(self.lines) + "\n"
        filename = f"<odm.compiled {next(_counter)}: {label.replace('>', '')}>"
        exec(compile(text, filename, "exec"), self.ns)  # noqa: S102 - source made only from this module's templates
        linecache.cache[filename] = (len(text), None, text.splitlines(True), filename)
        fn = self.ns[name]
        fn.__odm_source__ = text
        return fn


class _Absent:
    def __repr__(self) -> str:
        return "<absent>"


_ABSENT = _Absent()


# -- validation ---------------------------------------------------------------------------------


def _plain_load(field: Field) -> bool:
    """Does ``field.load`` only convert (no validators, no load of its own)?"""
    return not field.validators and type(field).load is Field.load


def _fast_check(field: Field, src: _Source, raw: str) -> tuple[str, str] | None:
    """(condition, value) under which ``field.convert(raw)`` is known to return ``value``; None: no shortcut.

    Only the usual exact types: anything else goes to ``convert``, which decides.
    """
    kind, cls = field.kind, type(field)
    if kind == "str" and cls.convert is String.convert:
        return f"type({raw}) is str", raw
    if kind == "int" and cls.convert is Integer.convert:
        return f"type({raw}) is int and {INT64_MIN} <= {raw} <= {INT64_MAX}", raw
    if kind == "bool" and cls.convert is Boolean.convert:
        return f"{raw} is True or {raw} is False", raw
    if kind == "float" and cls.convert is Float.convert:
        # raw - raw is 0.0 exactly for finite floats (nan/inf give nan); + 0.0 turns -0.0 into 0.0, as convert does.
        return f"type({raw}) is float and {raw} - {raw} == 0.0", f"{raw} + 0.0"
    if kind == "datetime" and cls.convert is DateTime.convert:
        return f"type({raw}) is datetime and {raw}.tzinfo is UTC", raw
    if kind == "decimal" and cls.convert is Decimal.convert:
        # Already canonical (a non-zero last digit after the point) and in range: convert returns an equal Decimal.
        fast = src.const(_canonical_fraction)
        return f"type({raw}) is Decimal and {fast}({raw})", raw
    if kind == "list" and cls.convert is List.convert:
        inner: Field = field.inner  # type: ignore[attr-defined]
        if inner.kind == "str" and _plain_load(inner) and type(inner).convert is String.convert:
            # The same new list convert builds, when every item is a str (a None or other item: convert decides).
            return f"type({raw}) is list and len(_l := [x for x in {raw} if type(x) is str]) == len({raw})", "_l"
    return None


def _canonical_fraction(value: _decimal.Decimal) -> bool:
    """Is ``value`` finite, non-zero, in range and already canonical with a fraction (``12.34``)?

    Then ``Decimal.convert`` returns an equal Decimal (canonical_decimal leaves it as it is).
    """
    _sign, digits, exp = value.as_tuple()
    return (type(exp) is int and exp < 0 and digits[-1] != 0
            and -DECIMAL_MAX_EXPONENT <= exp + len(digits) - 1 <= DECIMAL_MAX_EXPONENT)


def validator(model: type[BaseModel]) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    """``model._validated_general`` as one generated function (a non-dict input goes to it unchanged)."""
    names, steps = model._load_plan()
    src = _Source()
    general = src.const(model._validated_general)
    src.add(0, "def validate(data):")
    src.add(1, f"if type(data) is not dict: return {general}(data)")
    src.add(1, "errors = {}")
    src.add(1, f"if not {src.const(names)}.issuperset(data):")
    src.add(2, "for key in data:")
    src.add(3, f"if key not in {src.const(names)}: errors[key] = ['Unknown field.']")
    out = []
    for i, (name, other_key, convert, field) in enumerate(steps):
        v, n = f"v{i}", src.const(name)
        out.append(f"{n}: {v}")
        src.add(1, f"raw = data.get({n}, ABSENT)")
        if other_key is not None:
            src.add(1, f"if raw is ABSENT: raw = data.get({src.const(other_key)}, ABSENT)")
        src.add(1, "if raw is ABSENT:")
        src.add(2, f"{v} = {_default(field, src)}")
        if field.required:
            src.add(2, f"if {v} is None: errors[{n}] = [{src.const(field.default_error_messages['required'])}]")
        fast = _fast_check(field, src, "raw") if convert is not None else None
        if fast is not None:
            src.add(1, f"elif {fast[0]}:")
            src.add(2, f"{v} = {fast[1]}")
        sub = _embedded_validator(field) if convert is not None else None
        if sub is not None:
            src.add(1, "elif type(raw) is dict:")
            src.add(2, "try:")
            src.add(3, f"{v} = new({src.const(field.embedded)})")  # type: ignore[attr-defined]
            src.add(3, f"osetattr({v}, '__dict__', {src.const(sub)}(raw))")
            src.add(2, "except Exception as exc:")  # as Embedded.convert: errors carrying messages are the field's
            src.add(3, "m = getattr(exc, 'messages', None)")
            src.add(3, "if m is None: raise")
            src.add(3, f"errors[{n}] = m; {v} = None")
        src.add(1, "else:")
        src.add(2, "try:")
        if convert is None:
            src.add(3, f"{v} = {src.const(field)}.load(raw)")
        else:
            src.add(3, f"{v} = {src.const(field)}.load(raw) if raw is None else {src.const(convert)}(raw)")
        src.add(2, "except Invalid as exc:")
        src.add(3, f"errors[{n}] = exc.messages; {v} = None")
    src.add(1, f"if errors: raise ValidationError(errors, {src.const(model.__name__)})")
    src.add(1, "return {" + ", ".join(out) + "}")
    return src.build("validate", f"{model.__name__} validate")  # type: ignore[no-any-return]


def _default(field: Field, src: _Source) -> str:
    """``field.get_default()`` as an expression."""
    default = field.default
    if default is MISSING:
        return "None"
    return f"{src.const(default)}()" if callable(default) else src.const(default)


def _embedded_validator(field: Field) -> Any:
    """The embedded model's generated validator, when ``Embedded.convert`` of a dict is exactly
    ``model._load(dict)`` built as object.__new__ + its validated values."""
    if not isinstance(field, Embedded) or type(field).convert is not Embedded.convert:
        return None
    from .model import BaseModel

    model = field.embedded
    if (model._load.__func__ is not BaseModel._load.__func__  # type: ignore[attr-defined]
            or model._validated.__func__ is not BaseModel._validated.__func__  # type: ignore[attr-defined]
            or model.__new__ is not object.__new__ or not _plain_setattr(model)):
        return None
    return model._validator()


def _plain_setattr(model: type) -> bool:
    """Is ``obj.__dict__ = values`` on this model object.__setattr__'s (BaseModel's passes it on)?"""
    from .model import BaseModel

    return model.__setattr__ in (BaseModel.__setattr__, object.__setattr__)  # type: ignore[comparison-overlap]


# -- stored forms -------------------------------------------------------------------------------


def _expr(fn: Fn, src: _Source, v: str, depth: int = 0) -> str:
    """An expression for ``fn(v)``: the function's inline template when it has one, else a call."""
    each = getattr(fn, "__odm_each__", None)
    if each is not None:  # [inner(x) for x in v]
        x = f"x{depth}"
        return f"[{_expr(each, src, x, depth + 1)} for {x} in {v}]"
    template = getattr(fn, "__odm_inline__", None)
    name = src.const(fn)
    if template is None:
        return f"{name}({v})"
    return "(" + template.format(v=v, fn=name) + ")"


def encoder(codec: Codec, model: type, fields: tuple[tuple[str, str, Fn | None], ...]) -> Callable[[Any], dict[str, Any]]:
    """Instance -> stored dict: each set (not None) attribute under its stored name, converted."""
    src = _Source()
    src.add(0, "def encode(obj):")
    src.add(1, "d = obj.__dict__")
    src.add(1, "out = {}")
    for name, key, fn in fields:
        src.add(1, f"v = d.get({src.const(name)})")
        nested = getattr(fn, "__odm_nested__", None)
        if nested is not None:  # an embedded model: its errors are the outer field's (codec._nested)
            encode, where, owner = nested
            src.add(1, "if v is not None:")
            src.add(2, f"try: out[{src.const(key)}] = {src.const(encode)}(v)")
            src.add(2, "except ValidationError as exc:")
            src.add(3, f"raise ValidationError({{{src.const(where)}: exc.messages}}, {src.const(owner)}) from None")
            continue
        src.add(1, f"if v is not None: out[{src.const(key)}] = {'v' if fn is None else _expr(fn, src, 'v')}")
    src.add(1, "return out")
    return src.build("encode", f"{type(codec).__name__} {model.__name__} encode")  # type: ignore[no-any-return]


def decoder(codec: Codec, model: type, fields: tuple[tuple[str, str, Fn | None], ...]) -> Callable[[Mapping[str, Any]], Any]:
    """Stored dict -> instance (no validation): each stored name read back, converted unless None."""
    src = _Source()
    src.add(0, "def decode(doc):")
    src.add(1, "get = doc.get")
    values = []
    for i, (_name, key, fn) in enumerate(fields):
        v = f"v{i}"
        values.append(f"{src.const(_name)}: {v}")
        src.add(1, f"{v} = get({src.const(key)})")
        if fn is not None:
            src.add(1, f"if {v} is not None: {v} = {_expr(fn, src, v)}")
    src.add(1, f"obj = new({src.const(model)})")
    values_dict = "{" + ", ".join(values) + "}"
    if _plain_setattr(model):
        src.add(1, f"osetattr(obj, '__dict__', {values_dict})")
    else:
        src.add(1, f"obj.__dict__ = {values_dict}")
    src.add(1, "return obj")
    return src.build("decode", f"{type(codec).__name__} {model.__name__} decode")  # type: ignore[no-any-return]
