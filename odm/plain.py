"""Plain values: what a Go-layer dict (or an untyped Dict field) can hold on every backend.

One rule, checked before any request, so a value is either stored and compared the
same way on SQLite, PostgreSQL, MongoDB and DynamoDB, or refused with a sentence
naming the problem (see docs/go-layer.md, "Values"). The backends' own limits meet
in the middle: integers fit in 64 bits (SQLite, BSON), other numbers have at most
34 significant digits (Decimal128) and a magnitude DynamoDB can hold, text holds
no NUL (PostgreSQL, BSON) and is valid Unicode, a set holds one kind of value
(DynamoDB's SS/NS/BS).
"""

from __future__ import annotations

import datetime as _dt
import decimal
import enum
import math
import uuid
from collections.abc import Mapping
from typing import Any

from .attributes import name_problem, text_problem
from .errors import shown_number

INT_MIN, INT_MAX = -(2**63), 2**63 - 1
#: Significant digits of a Decimal (MongoDB's Decimal128 holds 34, DynamoDB 38).
MAX_DIGITS = 34
#: Decimal exponents DynamoDB holds: magnitudes from 1e-130 up to below 1e126.
MIN_ADJUSTED, MAX_ADJUSTED = -130, 125
MAX_DEPTH = 64
_UTC = _dt.timezone.utc

TYPES = "strings, numbers, booleans, None, lists, dicts, sets, datetimes, dates, Decimals, UUIDs and bytes"


def _number_problem(value: decimal.Decimal | float) -> str | None:
    if isinstance(value, float):
        if not math.isfinite(value):
            return f"The number {value!r} cannot be stored; only finite numbers can."
        if value == 0:
            return None
        value = decimal.Decimal(repr(value))
    elif not value.is_finite():
        return f"The number {value} cannot be stored; only finite numbers can."
    elif value.is_zero():
        return None
    else:
        digits = len("".join(map(str, value.as_tuple().digits)).strip("0")) or 1
        if digits > MAX_DIGITS:
            return (f"The number {shown_number(value)} has {digits} significant digits; at most {MAX_DIGITS} can be "
                    "stored on every backend.")
    if not MIN_ADJUSTED <= value.adjusted() <= MAX_ADJUSTED:
        return (f"The number {shown_number(value)} is out of range; magnitudes from 1e-130 to below 1e126 can be "
                "stored on every backend.")
    return None


def _set_problem(value: set[Any] | frozenset[Any], depth: int) -> str | None:
    if not value:
        return "An empty set cannot be stored (DynamoDB has no empty set); use None or an empty list."
    kinds = {"text" if isinstance(v, str) else "bytes" if isinstance(v, (bytes, bytearray))
             else "number" if isinstance(v, (int, float, decimal.Decimal)) and not isinstance(v, bool) else "other"
             for v in value}
    if len(kinds) != 1 or "other" in kinds:
        return "A set must hold only strings, only numbers or only bytes."
    for item in value:
        problem = value_problem(item, depth + 1)
        if problem:
            return problem
    return None


def value_problem(value: Any, depth: int = 0) -> str | None:
    """Why ``value`` cannot be stored or compared as plain data on every backend (None when it can)."""
    if depth > MAX_DEPTH:
        return f"The value is nested too deeply (more than {MAX_DEPTH} levels)."
    if value is None or isinstance(value, (bool, uuid.UUID, bytes, bytearray)):
        return None
    if isinstance(value, str):
        return text_problem(value)
    if isinstance(value, int):
        if INT_MIN <= value <= INT_MAX:
            return None
        return "Integers must fit in 64 bits (-2**63 to 2**63 - 1); store a larger one as a Decimal or a string."
    if isinstance(value, (float, decimal.Decimal)):
        return _number_problem(value)
    if isinstance(value, _dt.datetime):
        try:
            value.astimezone(_UTC)
        except (ValueError, OverflowError):
            return f"The datetime {value!r} cannot be converted to UTC (a naive datetime is local time)."
        return None
    if isinstance(value, _dt.date):
        return None
    if isinstance(value, enum.Enum):
        return value_problem(value.value, depth + 1)
    if isinstance(value, Mapping):
        for key, item in value.items():
            problem = name_problem(key, "key")
            if problem is None:
                problem = value_problem(item, depth + 1)
            if problem:
                return f"In key {key!r}: {problem}" if isinstance(key, str) and depth < 8 else problem
        return None
    if isinstance(value, (list, tuple)):
        for item in value:
            problem = value_problem(item, depth + 1)
            if problem:
                return problem
        return None
    if isinstance(value, (set, frozenset)):
        return _set_problem(value, depth)
    return f"Values of type {type(value).__name__} cannot be stored; use {TYPES}."


__all__ = ["INT_MAX", "INT_MIN", "MAX_DIGITS", "value_problem"]
