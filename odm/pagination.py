"""Keyset (cursor) pagination over the shared expression tree.

A page cursor holds the sort values of the last item returned; the next page
is "items after those values" in the query's total order (its ``order_by``
plus the primary key as a tie-breaker), so pages stay stable when items are
inserted concurrently. The cursor is signed so a tampered or foreign cursor is
refused with a clear error instead of silently returning the wrong page.
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import decimal
import hashlib
import hmac
import json
import uuid
from typing import TYPE_CHECKING, Any

from .errors import QueryError
from .expressions.nodes import And, Compare, Exists, Node, Not, Or, Path
from .fields import SortKey

if TYPE_CHECKING:
    from .backends.base import QuerySpec, Repository
    from .schema import TableSpec

_MISSING = {"$missing": 1}
_SIGNING_KEY = b"microkubes-odm cursor v1"


def full_order(spec: TableSpec, order: tuple[SortKey, ...]) -> tuple[SortKey, ...]:
    """The query's order plus the key fields, so the order is total."""
    present = {k.path for k in order}
    return order + tuple(SortKey(p, False) for p in spec.key_paths if p not in present)


def value_at(doc: Any, path: Path) -> Any:
    cur = doc
    for part in path.parts:
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur


def _tag(value: Any) -> Any:
    if value is None:
        return _MISSING
    if isinstance(value, _dt.datetime):
        return {"$dt": value.isoformat()}
    if isinstance(value, _dt.date):
        return {"$date": value.isoformat()}
    if isinstance(value, decimal.Decimal):
        return {"$dec": str(value)}
    if isinstance(value, (bytes, bytearray)):
        return {"$b": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, uuid.UUID):
        return {"$uuid": str(value)}
    if hasattr(value, "value") and hasattr(type(value), "__members__"):
        return _tag(value.value)
    return value


def _untag(value: Any) -> Any:
    if isinstance(value, dict):
        if "$missing" in value:
            return None
        if "$dt" in value:
            return _dt.datetime.fromisoformat(value["$dt"])
        if "$date" in value:
            return _dt.date.fromisoformat(value["$date"])
        if "$dec" in value:
            return decimal.Decimal(value["$dec"])
        if "$b" in value:
            return base64.b64decode(value["$b"])
        if "$uuid" in value:
            return uuid.UUID(value["$uuid"])
    return value


def _as_field_value(key: SortKey, value: Any) -> Any:
    """The cursor's plain value as the field's Python value (e.g. an Enum member)."""
    field = key.path.field
    if value is None or field is None:
        return value
    try:
        return field.convert(value)
    except Exception:
        raise QueryError("The page cursor is invalid for this query; start again with cursor=None.") from None


def fingerprint(name: str, *parts: Any) -> str:
    return hashlib.blake2b(repr((name, *parts)).encode(), digest_size=8).hexdigest()


def sign(payload: Any, fp: str) -> str:
    body = base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode().rstrip("=")
    mac = hmac.new(_SIGNING_KEY, (fp + body).encode(), hashlib.blake2b).hexdigest()[:16]
    return f"{body}.{mac}"


def unsign(cursor: str, fp: str) -> Any:
    """The payload of a cursor made by :func:`sign` for the same query, or a QueryError."""
    bad = QueryError("The page cursor is invalid: it was altered, or it belongs to a different query; "
                     "start again with cursor=None.")
    if not isinstance(cursor, str) or "." not in cursor:
        raise bad
    body, mac = cursor.rsplit(".", 1)
    expected = hmac.new(_SIGNING_KEY, (fp + body).encode(), hashlib.blake2b).hexdigest()[:16]
    if not hmac.compare_digest(mac, expected):
        raise bad
    try:
        return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except (binascii.Error, ValueError):
        raise bad from None


def after(order: tuple[SortKey, ...], values: list[Any]) -> Node | None:
    """Items strictly after ``values`` in ``order`` (missing sorts first ascending)."""
    disjuncts: list[Node] = []
    equal: list[Node] = []
    for key, value in zip(order, values, strict=True):
        path = key.path
        if key.descending:
            beyond: Node | None = None if value is None else Or.of(Compare("lt", path, value), Not(Exists(path)))
        else:
            beyond = Exists(path) if value is None else Compare("gt", path, value)
        if beyond is not None:
            disjuncts.append(And.of(*equal, beyond))
        equal.append(Not(Exists(path)) if value is None else Compare("eq", path, value))
    if not disjuncts:
        return None
    return Or.of(*disjuncts)


def keyset_page(repo: Repository, query: QuerySpec, size: int, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise QueryError(f"page(size=...) must be a positive integer, not {size!r}.")
    order = full_order(repo.spec, query.order)
    fp = fingerprint(repo.spec.name, query.where, order)
    where = query.where
    offset = query.offset
    if cursor is not None:
        payload = unsign(cursor, fp)
        if not isinstance(payload, list) or len(payload) != len(order):
            raise QueryError("The page cursor is invalid for this query; start again with cursor=None.")
        cond = after(order, [_as_field_value(k, _untag(v)) for k, v in zip(order, payload, strict=True)])
        if cond is None:
            return [], None
        where = cond if where is None else And.of(where, cond)
        offset = 0
    docs = list(repo.find(query.but(where=where, order=order, limit=size + 1, offset=offset)))
    if len(docs) <= size:
        return docs, None
    docs = docs[:size]
    codec = repo.codec
    last = []
    for key in order:
        raw = value_at(docs[-1], key.path)
        field = key.path.field
        if raw is not None and field is not None:
            dec = codec.field_decoder(field, key.path.parts[0] == repo.spec.ttl_attribute)
            raw = dec(raw) if dec else raw
        last.append(_tag(raw))
    return docs, sign(last, fp)
