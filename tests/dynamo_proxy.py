"""A loopback HTTP proxy between boto3 and DynamoDB Local that answers as a throttled DynamoDB would.

Standard library only. For a configurable share of data-plane requests it answers HTTP 400
``ProvisionedThroughputExceededException`` (DynamoDB's JSON error shape) without forwarding;
it trims ``BatchWriteItem``/``BatchGetItem`` requests, forwarding only part and returning the rest
as ``UnprocessedItems``/``UnprocessedKeys`` (so those items are really not written or read); it
can cancel ``TransactWriteItems`` with ``TransactionConflict``; and it can forward a request and
close the connection before the answer (the write lands, the client cannot know). Decisions come from a seeded
random generator, so a run is repeatable. DynamoDB Local does not check SigV4 signatures, so a
forwarded request whose body was trimmed is still accepted.
"""

from __future__ import annotations

import http.client
import json
import random
import threading
import urllib.parse
import zlib
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PREFIX = "com.amazonaws.dynamodb.v20120810#"
DATA_PLANE = frozenset({"GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan", "BatchGetItem",
                        "BatchWriteItem", "TransactWriteItems", "TransactGetItems"})
#: Headers recomputed for a rewritten body, or hop-by-hop.
_DROP = {"content-length", "x-amz-crc32", "connection", "transfer-encoding", "keep-alive"}


class DynamoFaultProxy:
    """``with DynamoFaultProxy(upstream, throttle=0.4, trim=0.5) as proxy: ... proxy.endpoint``."""

    def __init__(self, upstream: str, *, throttle: float = 0.0, trim: float = 0.0, conflict: float = 0.0,
                 drop: float = 0.0, seed: int = 8, only: frozenset[str] = DATA_PLANE) -> None:
        parsed = urllib.parse.urlsplit(upstream)
        self.upstream = (parsed.hostname or "127.0.0.1", parsed.port or 80)
        self.throttle, self.trim, self.conflict, self.drop = throttle, trim, conflict, drop
        self.only = only  # the operations faults apply to
        self.drop_next: set[str] = set()  # operations whose next request is forwarded and its answer dropped
        #: operation -> a callable run once, before the next such request is forwarded (another
        #: writer acting between the client's read and its write).
        self.before_next: dict[str, Callable[[], Any]] = {}
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        #: (operation, outcome) -> count; outcome is "forwarded", "throttled", "trimmed", "conflict"
        #: or "dropped".
        self.counts: Counter[tuple[str, str]] = Counter()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.server.block_on_close = False
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="dynamo-fault-proxy", daemon=True)

    def __enter__(self) -> DynamoFaultProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)

    def set(self, *, throttle: float | None = None, trim: float | None = None, conflict: float | None = None,
            drop: float | None = None, only: frozenset[str] | None = None) -> None:
        with self.lock:
            if drop is not None:
                self.drop = drop
            if only is not None:
                self.only = only
            if throttle is not None:
                self.throttle = throttle
            if trim is not None:
                self.trim = trim
            if conflict is not None:
                self.conflict = conflict

    def requests(self, outcome: str | None = None) -> int:
        return sum(n for (_, out), n in self.counts.items() if outcome is None or out == outcome)

    # -- decisions (under the lock: one generator, repeatable for a single-threaded client) ----
    def decide(self, op: str, body: dict[str, Any]) -> tuple[str, Any]:
        with self.lock:
            if op in self.drop_next:
                self.drop_next.discard(op)
                return "dropped", None
            if op not in self.only:
                return "forwarded", None
            if self.rng.random() < self.throttle:
                return "throttled", None
            if self.drop and self.rng.random() < self.drop:
                return "dropped", None  # forwarded, then the connection closes before the answer
            if op == "TransactWriteItems" and self.rng.random() < self.conflict:
                return "conflict", self.rng.randrange(len(body.get("TransactItems", [])) or 1)
            if op in ("BatchWriteItem", "BatchGetItem") and self.rng.random() < self.trim:
                entries = _entries(op, body)
                if len(entries) > 1:
                    keep = self.rng.sample(range(len(entries)), self.rng.randint(1, len(entries) - 1))
                    return "trimmed", set(keep)
            return "forwarded", None

    def record(self, op: str, outcome: str) -> None:
        with self.lock:
            self.counts[(op, outcome)] += 1


def _entries(op: str, body: dict[str, Any]) -> list[tuple[str, Any]]:
    """(table, request) for BatchWriteItem, (table, key) for BatchGetItem, in request order."""
    out: list[tuple[str, Any]] = []
    for table, value in body.get("RequestItems", {}).items():
        for entry in (value if op == "BatchWriteItem" else value.get("Keys", [])):
            out.append((table, entry))
    return out


def _split(op: str, body: dict[str, Any], keep: set[int]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The RequestItems to forward and the ones to hand back as unprocessed."""
    sent: dict[str, Any] = {}
    held: dict[str, Any] = {}
    for i, (table, entry) in enumerate(_entries(op, body)):
        side = sent if i in keep else held
        if op == "BatchWriteItem":
            side.setdefault(table, []).append(entry)
        else:
            spec = side.setdefault(table, {k: v for k, v in body["RequestItems"][table].items() if k != "Keys"})
            spec.setdefault("Keys", []).append(entry)
    return sent, held


def _handler(proxy: DynamoFaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as botocore's pool expects
        upstream: http.client.HTTPConnection | None = None

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def finish(self) -> None:
            if self.upstream is not None:
                self.upstream.close()
            super().finish()

        def reply(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
            self.send_response(status)
            for name, value in headers:
                if name.lower() not in _DROP:
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("x-amz-crc32", str(zlib.crc32(body) & 0xFFFFFFFF))
            self.end_headers()
            self.wfile.write(body)

        def error(self, code: str, message: str, **extra: Any) -> None:
            body = json.dumps({"__type": PREFIX + code, "message": message, **extra}).encode()
            self.reply(400, [("Content-Type", "application/x-amz-json-1.0"), ("x-amzn-ErrorType", code)], body)

        def forward(self, raw: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
            for attempt in range(2):  # a keep-alive connection the server closed is reopened once
                if self.upstream is None:
                    self.upstream = http.client.HTTPConnection(*proxy.upstream, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _DROP}
                headers["Content-Length"] = str(len(raw))
                try:
                    self.upstream.request("POST", self.path, body=raw, headers=headers)
                    resp = self.upstream.getresponse()
                    return resp.status, resp.getheaders(), resp.read()
                except (http.client.HTTPException, OSError):
                    self.upstream.close()
                    self.upstream = None
                    if attempt:
                        raise
            raise AssertionError("unreachable")

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            op = (self.headers.get("X-Amz-Target") or ".").split(".", 1)[1]
            body = json.loads(raw or b"{}")
            with proxy.lock:
                hook = proxy.before_next.pop(op, None)
            if hook is not None:
                hook()
            outcome, detail = proxy.decide(op, body)
            proxy.record(op, outcome)
            if outcome == "throttled":
                self.error("ProvisionedThroughputExceededException",
                           "The level of configured provisioned throughput for the table was exceeded. "
                           "Consider increasing your provisioning level with the UpdateTable API.")
                return
            if outcome == "conflict":
                reasons = [{"Code": "None"} for _ in body.get("TransactItems", [])] or [{"Code": "None"}]
                reasons[detail] = {"Code": "TransactionConflict",
                                   "Message": "Transaction is ongoing for the item"}
                codes = ", ".join(r["Code"] for r in reasons)
                self.error("TransactionCanceledException",
                           f"Transaction cancelled, please refer cancellation reasons for specific reasons [{codes}]",
                           CancellationReasons=reasons)
                return
            held: dict[str, Any] = {}
            if outcome == "trimmed":
                sent, held = _split(op, body, detail)
                raw = json.dumps({**body, "RequestItems": sent}).encode()
            try:
                status, headers, answer = self.forward(raw)
            except (http.client.HTTPException, OSError):
                self.close_connection = True  # the client sees a dropped connection, as with the server gone
                return
            if outcome == "dropped":
                self.close_connection = True  # the server applied it; the client never hears back
                return
            if held and status == 200:
                data = json.loads(answer)
                field = "UnprocessedItems" if op == "BatchWriteItem" else "UnprocessedKeys"
                merged = data.get(field) or {}
                for table, value in held.items():
                    if op == "BatchWriteItem":
                        merged.setdefault(table, []).extend(value)
                    elif table in merged:
                        merged[table]["Keys"].extend(value["Keys"])
                    else:
                        merged[table] = value
                data[field] = merged
                answer = json.dumps(data).encode()
            self.reply(status, headers, answer)

    return Handler
