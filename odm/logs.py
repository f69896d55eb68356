"""Logging: the ``odm`` logger tree, what each backend logs, and whether values are shown.

The standard :mod:`logging` module, so an application configures it as it does any library's
(docs/logging.md). The tree:

- ``odm`` -- a :class:`logging.NullHandler`, so nothing is printed unless the application
  configures logging (and Python's last-resort handler never prints a WARNING of ours);
- ``odm.requests.<backend>`` (``sqlite``, ``postgres``, ``mongodb``, ``dynamodb``) -- DEBUG, one
  record per round trip to the server: operation, table, index (DynamoDB's), rows or items,
  consumed capacity (DynamoDB), duration in ms;
- ``odm.retries.<backend>`` -- WARNING, one record per retry (throttling, unprocessed batch
  items, a read re-run after a dropped connection) with the attempt number and the wait;
  INFO for a dead pooled connection replaced before anything was sent on it;
- ``odm.sync`` -- INFO, what ``registry.sync()`` does (odm/registry.py).

Why a record per round trip: that is where time is spent and capacity consumed, and it is the one
place every call passes, the per-model fast paths included. Cost when DEBUG is off: one
``Logger.isEnabledFor`` (a cached dict lookup) per request or per SQL session, nothing else: no
clock read, no formatting. The helpers below run only once a caller has seen the level enabled.

Values (filter values, documents, SQL parameters) are left out unless :func:`show_values` is on
(or the environment has ``ODM_LOG_VALUES=1`` when odm is imported): they are user data, often
personal. Secrets are never logged either way: records carry no connection details, and the
``odm`` loggers carry :data:`odm.redaction.SECRETS`, which masks every configured password and
key that reaches a message anyway.
"""

from __future__ import annotations

import logging
import os
import re
from time import perf_counter
from typing import Any

from .redaction import SECRETS

__all__ = ["REQUESTS", "RETRIES", "ROOT", "requests_logger", "retries_logger", "show_values", "showing_values"]

DEBUG = logging.DEBUG
WARNING = logging.WARNING

#: The root of the tree; its NullHandler keeps a library quiet until the application configures logging.
ROOT = logging.getLogger("odm")
if not any(isinstance(h, logging.NullHandler) for h in ROOT.handlers):
    ROOT.addHandler(logging.NullHandler())
REQUESTS = "odm.requests"
RETRIES = "odm.retries"

#: Longest text of the values one record shows (with show_values on); longer is cut, its length said.
VALUES_LIMIT = 500


def _env_on(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


_values = _env_on("ODM_LOG_VALUES")


def show_values(on: bool = True) -> None:
    """Show filter values, documents and SQL parameters in the DEBUG request records (off by default).

    For debugging only: the values are your users' data. ``ODM_LOG_VALUES=1`` in the environment
    turns it on when odm is imported.
    """
    global _values
    _values = bool(on)


def showing_values() -> bool:
    """Whether request records show values (:func:`show_values`)."""
    return _values


def _logger(name: str) -> logging.Logger:
    logger = logging.getLogger(name)
    if SECRETS not in logger.filters:
        logger.addFilter(SECRETS)  # a filter sees its own logger's records only: one on each
    return logger


def requests_logger(backend: str) -> logging.Logger:
    """``odm.requests.<backend>``: the DEBUG record of each round trip."""
    return _logger(f"{REQUESTS}.{backend}")


def retries_logger(backend: str) -> logging.Logger:
    """``odm.retries.<backend>``: a WARNING per retry."""
    return _logger(f"{RETRIES}.{backend}")


def shown(value: Any) -> str:
    """``repr(value)``, cut to :data:`VALUES_LIMIT` characters (its full length said)."""
    text = repr(value)
    if len(text) > VALUES_LIMIT:
        return f"{text[:VALUES_LIMIT]}... ({len(text)} characters)"
    return text


# -- the records -------------------------------------------------------------------------------
def record(logger: logging.Logger, backend: str, op: str, table: str | None, start: float, *,
            index: str | None = None, rows: int | None = None, capacity: float | None = None,
            statement: str | None = None, values: Any = None, error: BaseException | None = None) -> None:
    """Log one round trip at DEBUG (the caller has checked the level; ``start``: its perf_counter()).

    The message is one line; each part is also an attribute of the record (``odm_op``,
    ``odm_table``, ``odm_index``, ``odm_rows``, ``odm_capacity``, ``odm_ms``, ``odm_statement``,
    ``odm_error``; ``odm_values`` only with show_values on), for a structured formatter.
    """
    ms = (perf_counter() - start) * 1000.0
    parts = [backend, op, table or "-"]
    if index:
        parts.append(f"index={index}")
    if rows is not None:
        parts.append(f"rows={rows}")
    if capacity is not None:
        parts.append(f"capacity={capacity:g}")
    parts.append(f"{ms:.2f} ms")
    failed = None if error is None else _error_name(error)
    if failed:
        parts.append(f"failed: {failed}")
    extra: dict[str, Any] = {"odm_backend": backend, "odm_op": op, "odm_table": table, "odm_index": index,
                             "odm_rows": rows, "odm_capacity": capacity, "odm_ms": round(ms, 3),
                             "odm_statement": statement, "odm_error": failed}
    if _values and values is not None:
        text = shown(values)
        parts.append(f"values={text}")
        extra["odm_values"] = text
    logger.debug("%s", " ".join(parts), extra=extra)


def retry(logger: logging.Logger, backend: str, op: str, table: str | None, reason: str, attempt: int,
          attempts: int | None, wait: float) -> None:
    """Log at WARNING that a request is sent again: ``attempt`` is the one about to be made (2 for the
    first retry) out of at most ``attempts``, after waiting ``wait`` seconds."""
    if not logger.isEnabledFor(logging.WARNING):
        return
    most = f" of at most {attempts}" if attempts else ""
    logger.warning("%s %s %s: %s; attempt %d%s in %.3f s", backend, op, table or "-", reason, attempt, most, wait,
                   extra={"odm_backend": backend, "odm_op": op, "odm_table": table, "odm_reason": reason,
                          "odm_attempt": attempt, "odm_attempts": attempts, "odm_wait": round(wait, 4)})


def _error_name(error: BaseException) -> str:
    """What failed, without the message (which may quote values): a driver's error code or the class."""
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        if code:
            return str(code)
    return type(error).__name__


# -- what a request is, per backend ------------------------------------------------------------
_SQL_TABLE = re.compile(r'\b(?:FROM|INTO|UPDATE|TABLE(?: IF NOT EXISTS)?|ON)\s+("(?:[^"]|"")+"|[A-Za-z_][\w.]*)')


def sql_table(sql: str, percents: bool = False) -> str | None:
    """The first table a statement names (``"users"`` -> ``users``), or None; ``percents``: the
    statement doubles ``%`` (psycopg's placeholders)."""
    found = _SQL_TABLE.search(sql)
    if found is None:
        return None
    name = found.group(1)
    if not name.startswith('"'):
        return name
    name = name[1:-1].replace('""', '"')
    return name.replace("%%", "%") if percents else name


def sql_op(sql: str) -> str:
    """The statement's kind: ``select``, ``count``, ``insert``, ``update``, ``delete``, ``create``..."""
    head = sql.lstrip()[:6].upper()
    if head == "SELECT":
        return "count" if sql.startswith("SELECT COUNT(") else "select"
    word = sql.lstrip().split(None, 1)
    return word[0].lower() if word else "sql"


def sql_request_op(request: Any) -> str:
    """:func:`sql_op` of an Execute; a SELECT of one row is ``get`` (an item by key, or whether it exists)."""
    op = sql_op(request.sql)
    return "get" if op == "select" and getattr(request, "fetch", None) == "one" else op


def sql_rows(kind: str, request: Any, response: Any) -> int | None:
    """Rows returned or affected, where the response says (or the request: a one-row INSERT)."""
    if kind == "Execute":
        fetch = request.fetch
        if fetch == "one":
            return 0 if response is None else 1
        if fetch == "all":
            return len(response)
        if fetch == "rowcount":
            return int(response)
        return 1 if request.sql.startswith("INSERT") else None
    if kind in ("ExecuteMany", "Copy"):
        return len(request.rows)
    if kind == "Fetch":
        return len(response) if response is not None else None
    return None


def sql_request(logger: logging.Logger, backend: str, request: Any, response: Any, start: float,
                error: BaseException | None = None, stream_table: str | None = None, *, percents: bool = False) -> str | None:
    """Log a SQL request (odm.backends.sql.requests) at DEBUG; the table of a ``Stream`` (for its Fetches).
    ``percents``: the driver's statements double ``%`` (see ``sql_table``)."""
    kind = type(request).__name__
    sql = getattr(request, "sql", None)
    if kind == "Fetch":
        if error is None and not response:
            return stream_table  # the end of a stream: no rows, nothing to tell
        op, table, values = "fetch", stream_table, None
    elif kind == "Copy":
        op, table, values = "copy", request.table.strip('"'), request.rows
    elif sql is not None:
        table = sql_table(sql, percents)
        op = "query" if kind == "Stream" else sql_request_op(request)
        if kind == "ExecuteMany":
            op += "_many"
        if _values:
            values = request.rows if kind == "ExecuteMany" else [getattr(p, "obj", p) for p in request.params]
        else:
            values = None
    else:
        return stream_table  # Begin / Rollback: part of the statements around them
    rows = None if error is not None else sql_rows(kind, request, response)
    record(logger, backend, op, table, start, rows=rows, statement=sql, values=values or None, error=error)
    return table if kind == "Stream" else stream_table


#: DynamoDB calls that can return ConsumedCapacity (asked for while DEBUG is on). Not
#: TransactWriteItems: its ClientRequestToken makes a repeat with other parameters an error.
CAPACITY_OPS = frozenset({"get_item", "put_item", "update_item", "delete_item", "query", "scan", "batch_get_item",
                          "batch_write_item", "transact_get_items"})
#: The parts of a DynamoDB request that hold values (keys, items, expression values).
_DYNAMO_VALUES = ("Key", "Item", "ExpressionAttributeValues", "ExclusiveStartKey", "RequestItems", "TransactItems")
_DYNAMO_OPS = {"get_item": "get", "put_item": "put", "update_item": "update", "delete_item": "delete",
               "batch_get_item": "batch_get", "batch_write_item": "batch_write", "transact_get_items": "transaction_get",
               "transact_write_items": "transaction"}


def dynamodb_kwargs(op: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The request's parameters, asking for its consumed capacity where DynamoDB can tell it."""
    if op in CAPACITY_OPS and "ReturnConsumedCapacity" not in kwargs:
        return {**kwargs, "ReturnConsumedCapacity": "TOTAL"}
    return kwargs


def dynamodb_tables(kwargs: dict[str, Any]) -> str | None:
    table = kwargs.get("TableName")
    if table:
        return str(table)
    names = list(kwargs.get("RequestItems") or ())
    for action in kwargs.get("TransactItems") or ():
        for body in action.values():
            if isinstance(body, dict) and body.get("TableName") not in names:
                names.append(body["TableName"])
    return ",".join(names) or None


def dynamodb_request(logger: logging.Logger, op: str, kwargs: dict[str, Any], response: Any, start: float,
                     error: BaseException | None = None) -> None:
    """Log a DynamoDB call at DEBUG: its table(s), index, items returned or written, capacity."""
    rows: int | None = None
    capacity: float | None = None
    if isinstance(response, dict):
        if "Count" in response:
            rows = int(response["Count"])
        elif op == "get_item":
            rows = 1 if response.get("Item") else 0
        elif op == "batch_get_item":
            rows = sum(len(v) for v in (response.get("Responses") or {}).values())
        elif op == "batch_write_item":
            sent = sum(len(v) for v in (kwargs.get("RequestItems") or {}).values())
            rows = sent - sum(len(v) for v in (response.get("UnprocessedItems") or {}).values())
        elif op == "transact_get_items":
            rows = sum(1 for r in response.get("Responses") or () if r.get("Item"))
        elif op in ("put_item", "update_item", "delete_item"):
            rows = 1
        elif op == "transact_write_items":
            rows = len(kwargs.get("TransactItems") or ())
        used = response.get("ConsumedCapacity")
        if isinstance(used, dict):
            capacity = float(used.get("CapacityUnits", 0.0))
        elif isinstance(used, list) and used:
            capacity = sum(float(u.get("CapacityUnits", 0.0)) for u in used)
    values = {k: kwargs[k] for k in _DYNAMO_VALUES if k in kwargs} if _values else None
    record(logger, "dynamodb", _DYNAMO_OPS.get(op, op), dynamodb_tables(kwargs), start, index=kwargs.get("IndexName"),
            rows=rows, capacity=capacity, values=values or None, error=error)


_MONGO_OPS = {"find_one": "get", "find_one_and_update": "update", "insert_one": "insert", "insert_many": "insert_many",
              "replace_one": "put", "update_one": "update", "update_many": "update_many", "delete_one": "delete",
              "delete_many": "delete_many", "count_documents": "count", "estimated_document_count": "count",
              "find": "find", "aggregate": "aggregate", "bulk_write": "batch"}


def _mongo_rows(response: Any) -> int | None:
    if response is None:
        return 0
    if isinstance(response, tuple) and len(response) == 2 and isinstance(response[1], list):
        return len(response[1])  # a cursor's batch
    if isinstance(response, dict):
        return 1
    if isinstance(response, int) and not isinstance(response, bool):
        return response
    if not type(response).__module__.startswith("pymongo.results"):
        return None
    for name in ("deleted_count", "modified_count"):
        count = getattr(response, name, None)
        if isinstance(count, int):
            return count
    ids = getattr(response, "inserted_ids", None)
    if ids is not None:
        return len(ids)
    if getattr(response, "inserted_id", None) is not None:
        return 1
    return None


def mongodb_request(logger: logging.Logger, request: Any, response: Any, start: float,
                    error: BaseException | None = None) -> None:
    """Log a MongoDB request (odm.backends.mongodb.requests) at DEBUG: collection, method, documents."""
    kind = type(request).__name__
    if kind in ("More", "Close"):
        if kind == "Close" or (error is None and not response[1]):
            return
        op, values = "more", None
        owner = getattr(request.handle, "collection", None)
        collection = getattr(owner, "name", None)
    else:
        method, collection = request.method, request.collection
        op = _MONGO_OPS.get(method, method)
        values = None
        if _values:
            options = {k: v for k, v in request.kwargs.items() if k != "session"}
            values = [*request.args, options] if options else list(request.args)
    rows = None if error is not None else _mongo_rows(response)
    kwargs = getattr(request, "kwargs", None)
    hint = kwargs.get("hint") if isinstance(kwargs, dict) else None
    record(logger, "mongodb", op, collection, start, index=hint if isinstance(hint, str) else None, rows=rows,
           values=values, error=error)
