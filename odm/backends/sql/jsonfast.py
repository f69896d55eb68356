"""The SQL backends' JSON text: C-speed encoding that keeps Decimals exact.

Writing goes through orjson first (about a tenth of the json module's time per row, issue 11),
with each Decimal handed over as its exact text (``orjson.Fragment``). Anything orjson refuses or
would write differently (an integer beyond 64 bits, a lone surrogate, a subclass of str or int,
a datetime) raises there and the document is written by the json module as below. The values
stored never depend on which writer ran: Decimals are the same characters, and a float differs
at most in how its exponent is spelt (``1e-7`` from orjson, ``1e-07`` from the json module),
which SQLite and PostgreSQL read as the same number.

The json module cannot write a Decimal as a number. A Decimal whose text is also the
text of a float (``12.34``) or an int (``5``) is handed to the C encoder as that float or
int, which writes the very same characters; any other Decimal (more digits than a float
holds, an exponent) makes the whole document go through the exact pure-Python writer.
Either way the text is the one the exact writer gives, so reads (``parse_float=Decimal``)
get the same number back. Reading reuses one decoder instead of building one per call.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import orjson

#: Digits an integral number may have to go through int() (CPython limits int/str conversions to 4300).
_INT_DIGITS = 4000


def _int_or_decimal(text: str) -> Any:
    return int(text) if len(text) <= _INT_DIGITS else Decimal(text)


class _Inexact(Exception):
    """A Decimal the C encoder cannot write exactly: use the exact writer."""


def _number(value: Any) -> Any:
    """The JSON encoder's ``default``: an int or float that the C encoder writes as ``str(value)``."""
    if isinstance(value, Decimal):
        text = str(value)
        if text.isdigit() or (text[:1] == "-" and text[1:].isdigit()):
            if len(text) > _INT_DIGITS:  # int() refuses it (CPython's int/str limit): the exact writer
                raise _Inexact
            number: Any = int(text)
            if str(number) == text:  # not "-0"
                return number
        elif text[-1:].isdigit() and (number := float(text)).__repr__() == text:  # not NaN, Infinity
            return number
        raise _Inexact
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


#: The C encoder of ``json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False,
#: default=_number)``, made once: ``JSONEncoder.encode`` makes one per call. No circular-reference
#: markers: a stored document is a tree built by a codec (validated values nest at most 64 deep).
_c_encode = json.encoder.c_make_encoder(  # type: ignore[attr-defined]
    None, _number, json.encoder.encode_basestring, None, ":", ",", False, False, False) \
    if json.encoder.c_make_encoder is not None else None  # type: ignore[attr-defined]
_py_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=_number).encode


def _encode(doc: Any) -> str:
    if _c_encode is None or isinstance(doc, str):
        return _py_encode(doc)  # type: ignore[no-any-return]
    return "".join(_c_encode(doc, 0))


def _decimal_text(value: Decimal) -> str:
    """A Decimal as an exact JSON number (finite: validation refuses NaN and infinities)."""
    text = str(value)
    return text if value == value.to_integral_value() or "E" not in text else format(value, "f")


def _fragment(value: Any) -> Any:
    """orjson's ``default``: a Decimal as its exact text; anything else goes to the json writer."""
    if type(value) is Decimal and value.is_finite():
        return orjson.Fragment(_decimal_text(value))
    raise TypeError


#: Subclasses, datetimes and dataclasses come to ``_fragment`` (and so to the json writer)
#: instead of orjson's own formats, which the json module would not write.
_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_SUBCLASS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def _dump_exact(value: Any, out: list[str]) -> None:
    """JSON with Decimals written as exact numbers (the json module cannot)."""
    if isinstance(value, dict):
        out.append("{")
        for i, (k, v) in enumerate(value.items()):
            if i:
                out.append(",")
            out.append(json.dumps(k, ensure_ascii=False))
            out.append(":")
            _dump_exact(v, out)
        out.append("}")
    elif isinstance(value, (list, tuple)):
        out.append("[")
        for i, v in enumerate(value):
            if i:
                out.append(",")
            _dump_exact(v, out)
        out.append("]")
    elif isinstance(value, Decimal):
        out.append(_decimal_text(value))
    else:
        out.append(json.dumps(value, ensure_ascii=False, allow_nan=False))


def dumps(doc: Any) -> str:
    """A stored document as compact JSON text, Decimals as exact numbers."""
    try:
        return orjson.dumps(doc, default=_fragment, option=_ORJSON_OPTIONS).decode()
    except TypeError:  # orjson.JSONEncodeError too: the json writer decides, as it always did
        pass
    try:
        return _encode(doc)
    except _Inexact:
        out: list[str] = []
        _dump_exact(doc, out)
        return "".join(out)


def _loads(decoder: json.JSONDecoder, big: json.JSONDecoder) -> Callable[[str], Any]:
    """``decoder.decode`` calling its C scanner directly for text with no surrounding whitespace
    (what the backends store); any other text, and any error, goes through ``decode`` as before.
    ``big`` reads a text holding an integer too long for int() (a Decimal of thousands of digits),
    as a Decimal."""
    scan, decode = decoder.scan_once, decoder.decode  # type: ignore[attr-defined]

    def loads(text: str) -> Any:
        try:
            if type(text) is not str:
                return decode(text)
            try:
                value, end = scan(text, 0)
            except StopIteration:
                return decode(text)  # raises decode's JSONDecodeError (or skips leading whitespace)
            return value if end == len(text) else decode(text)
        except ValueError:  # int()'s digit limit, or malformed text (which big refuses alike)
            return big.decode(text)

    return loads


#: JSON text to Python, numbers with a fraction or exponent as exact Decimals.
loads_exact = _loads(json.JSONDecoder(parse_float=Decimal),
                     json.JSONDecoder(parse_float=Decimal, parse_int=_int_or_decimal))

#: JSON text to Python (models without Decimal fields).
loads_plain = _loads(json.JSONDecoder(), json.JSONDecoder(parse_int=_int_or_decimal))
