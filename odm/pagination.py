"""Keyset (cursor) pagination over the shared expression tree.

A page cursor holds the sort values of the last item returned; the next page
is "items after those values" in the query's total order (its ``order_by``
plus the primary key as a tie-breaker), so pages stay stable when items are
inserted concurrently. The cursor is signed with the registry's secret (see
:class:`Cursors`) so a tampered, foreign or forged cursor is refused with a
clear error instead of silently returning the wrong page.
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import decimal
import hashlib
import hmac
import json
import secrets
import uuid
from typing import TYPE_CHECKING, Any

from .errors import QueryError
from .expressions.nodes import And, Compare, Exists, Node, Not, Or, Path
from .fields import SortKey
from .ops import Op, collect

if TYPE_CHECKING:
    from .backends.base import QuerySpec, Repository
    from .schema import TableSpec

_MISSING = {"$missing": 1}
#: Separates derived keys from any other use of the same secret.
_PERSON = b"odm-cursor-v2"


def invalid_cursor() -> QueryError:
    return QueryError("The page cursor is invalid: it was altered, made with another cursor secret, or belongs to a "
                      "different query; start again with cursor=None.")


class Cursors:
    """Signs page cursors and checks them, with a secret key.

    The key comes from the configured cursor secret, or is random for this
    registry when none is set: then only this process accepts its cursors (set
    ``cursorSecret`` when several processes serve the same pages). The secret
    is never kept as given, shown in a repr or put in a message.
    """

    __slots__ = ("_key",)

    def __init__(self, secret: bytes | None = None) -> None:
        material = secret if secret is not None else secrets.token_bytes(32)
        self._key = hashlib.blake2b(material, digest_size=32, person=_PERSON).digest()

    def _mac(self, fp: str, body: str) -> bytes:
        return hashlib.blake2b(f"{fp}.{body}".encode(), key=self._key, digest_size=16).hexdigest().encode()

    def sign(self, payload: Any, fp: str) -> str:
        """``payload`` (JSON data) as an opaque cursor bound to the query fingerprint ``fp``."""
        body = base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode().rstrip("=")
        return f"{body}.{self._mac(fp, body).decode()}"

    def unsign(self, cursor: Any, fp: str) -> Any:
        """The payload of a cursor this key signed for the same query, or a QueryError (never another error)."""
        if not isinstance(cursor, str):
            raise QueryError(f"page(cursor=...) takes the next_cursor string of a previous page, or None; "
                             f"not {type(cursor).__name__}.")
        body, dot, mac = cursor.rpartition(".")
        if not dot or not cursor.isascii() or not hmac.compare_digest(mac.encode(), self._mac(fp, body)):
            raise invalid_cursor()
        try:
            return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        except (binascii.Error, ValueError, RecursionError) as exc:
            raise invalid_cursor() from exc

    def __repr__(self) -> str:
        return "<Cursors (key hidden)>"


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
    """A cursor value back as Python; a malformed tag raises ValueError/TypeError/ArithmeticError."""
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


def _as_field_value(key: SortKey, raw: Any) -> Any:
    """The cursor's tagged value as the field's Python value (e.g. an Enum member), or a QueryError."""
    try:
        value = _untag(raw)
        field = key.path.field
        if value is None or field is None:
            return value
        return field.convert(value)
    except Exception as exc:  # whatever a malformed value raises (ValueError, InvalidOperation, TypeError...)
        raise invalid_cursor() from exc


def fingerprint(name: str, *parts: Any) -> str:
    return hashlib.blake2b(repr((name, *parts)).encode(), digest_size=8).hexdigest()


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


def keyset_page_op(repo: Repository, query: QuerySpec, size: int,
                   cursor: str | None) -> Op[tuple[list[dict[str, Any]], str | None]]:
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise QueryError(f"page(size=...) must be a positive integer, not {size!r}.")
    order = full_order(repo.spec, query.order)
    fp = fingerprint(repo.spec.name, query.where, order)
    where = query.where
    offset = query.offset
    cursors: Cursors = repo.backend.cursors
    if cursor is not None:
        payload = cursors.unsign(cursor, fp)
        if not isinstance(payload, list) or len(payload) != len(order):
            raise invalid_cursor()
        cond = after(order, [_as_field_value(k, v) for k, v in zip(order, payload, strict=True)])
        if cond is None:
            return [], None
        where = cond if where is None else And.of(where, cond)
        offset = 0
    only = query.only
    if only is not None:  # the cursor is built from the last item's order values: fetch them too
        only = tuple(dict.fromkeys([*only, *(k.path.parts[0] for k in order)]))
    docs = yield from collect(repo.find_op(query.but(where=where, order=order, limit=size + 1, offset=offset, only=only)))
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
    return docs, cursors.sign(last, fp)
