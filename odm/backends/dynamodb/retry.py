"""When a DynamoDB request is worth repeating, and how long to wait: one bounded policy.

botocore's own retries are turned off (its standard mode waits up to 20 s between attempts and
shares a retry quota that can run dry mid-operation), so every request goes through
:meth:`RetryPolicy.attempts` (an operation, see odm.ops: it yields the request and a :class:`Sleep`
between attempts): "slow down" answers are retried up to ``throttled_attempts`` times and
an unreachable server up to ``unreachable_attempts`` times, with capped exponential backoff and
full jitter; then the caller gets the last error. A request whose answer was lost (sent, then
the connection dropped) is sent again only when :func:`repeatable` says a second copy cannot
change the outcome: an ``ADD`` applied twice, or a conditional put refused by its own first
copy, would be silent corruption or a false conflict. Batch calls add their own loop over
unprocessed items that continues while each round makes progress. See docs/backends/dynamodb.md.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import botocore.exceptions as bexc

from ... import logs
from ...ops import Op
from ...ops import run as run_op

T = TypeVar("T")

_RETRIES = logs.retries_logger("dynamodb")


class Call:
    """A request of a DynamoDB operation: one low-level client call (``client.<op>(**kwargs)``)."""

    __slots__ = ("op", "kwargs")

    def __init__(self, op: str, kwargs: dict[str, Any]) -> None:
        self.op = op
        self.kwargs = kwargs

    def __repr__(self) -> str:
        return f"Call({self.op!r})"


class Sleep:
    """A request to wait (retry backoff): ``time.sleep`` in the sync driver, ``asyncio.sleep`` in the async one."""

    __slots__ = ("seconds",)

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __repr__(self) -> str:
        return f"Sleep({self.seconds:.3f})"

#: Error codes that mean "slow down".
THROTTLED = frozenset({"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded",
                       "LimitExceededException", "TransactionInProgressException"})
#: Server-side errors that say nothing about the request itself.
TRANSIENT = frozenset({"InternalServerError", "InternalFailure", "ServiceUnavailable", "RequestTimeout"})
#: Cancellation reasons of a transaction that a plain retry can clear (anything else, such as
#: ConditionalCheckFailed, is the caller's to interpret).
RETRYABLE_REASONS = frozenset({"None", "TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"})
#: The connection failed or dropped: nothing, or a request whose answer was lost, reached the server.
UNREACHABLE = (bexc.EndpointConnectionError, bexc.ConnectionClosedError, bexc.ConnectionError, bexc.ReadTimeoutError)
#: Of those, the ones where the request certainly never reached the server.
NOT_SENT = (bexc.EndpointConnectionError, bexc.ConnectTimeoutError)
#: Writes whose second copy can differ from the first: every one carries a condition or returns
#: the old item, or (UpdateItem) may ADD. TransactWriteItems is absent: its ClientRequestToken
#: makes a repeat the same request (DynamoDB keeps tokens for 10 minutes).
SINGLE_WRITES = frozenset({"update_item", "put_item", "delete_item"})


def may_have_landed(exc: BaseException | None) -> bool:
    """The request was sent and its connection dropped (or timed out) before the answer: it may have been applied."""
    if isinstance(exc, bexc.ReadTimeoutError):
        return True
    return isinstance(exc, UNREACHABLE) and not isinstance(exc, NOT_SENT)


def repeatable(op: str, request: Mapping[str, Any]) -> bool:
    """Whether a request whose answer was lost may be sent again without changing the outcome.

    Reads, batch writes (unconditional puts and deletes, no return values), control-plane
    calls and token-carrying transactions may. ``update_item`` never may (an ``ADD`` would
    apply twice); ``put_item``/``delete_item`` only without a condition and without returned
    values: otherwise the repeat is judged against the first copy's own result (a false
    "exists" or "changed", or a delete reporting nothing was there).
    """
    if op == "transact_write_items":
        return bool(request.get("ClientRequestToken"))
    if op == "update_item":
        return False
    if op in SINGLE_WRITES:
        return "ConditionExpression" not in request and request.get("ReturnValues", "NONE") == "NONE"
    return True


def error_code(exc: bexc.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def throttled(exc: BaseException) -> bool:
    """A "slow down" answer: a throttling code, a 5xx, or a transaction cancelled only by conflicts/throttling."""
    if not isinstance(exc, bexc.ClientError):
        return False
    code = error_code(exc)
    if code in THROTTLED or code in TRANSIENT:
        return True
    if code == "TransactionCanceledException":
        reasons = {str(r.get("Code", "None")) for r in exc.response.get("CancellationReasons", []) or []}
        return bool(reasons - {"None"}) and reasons <= RETRYABLE_REASONS
    return False


@dataclass(frozen=True)
class RetryPolicy:
    """Bounds on repeating one request. With the defaults a request that is always throttled gives
    up after 16 attempts (3.4 s of waiting on average, 6.8 s at most), one whose server is down
    after 4 (0.35 s of waiting at most, plus the connect timeout). At 50% throttling a request
    fails 16 times in a row once in 65,000."""

    throttled_attempts: int = 16
    unreachable_attempts: int = 4
    base: float = 0.05
    cap: float = 0.5

    def delay(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2**attempt)]."""
        return random.uniform(0, min(self.cap, self.base * (2 ** attempt)))

    def run(self, request: Callable[[], T], sleep: Callable[[float], Any] = time.sleep, *,
            repeat_unanswered: bool = True) -> T:
        """:meth:`attempts` driven by plain calls: ``request()`` is each attempt, ``sleep`` each wait."""
        def send(req: Any) -> Any:
            return sleep(req.seconds) if isinstance(req, Sleep) else request()

        return run_op(self.attempts(None, repeat_unanswered=repeat_unanswered), send)  # type: ignore[no-any-return]

    def attempts(self, request: Any, *, repeat_unanswered: bool = True) -> Op[Any]:
        """An operation: ``request`` until it succeeds or its kind of failure has used up its attempts
        (then re-raised); each wait is a :class:`Sleep`.

        When an earlier attempt may have reached the server (its connection dropped before the
        answer) that error is raised instead of the last one: a caller deciding what was written
        must not be told "never sent" because the last attempt could not connect. With
        ``repeat_unanswered=False`` (see :func:`repeatable`) such an attempt is the last one.
        """
        attempt = 0
        maybe_sent: BaseException | None = None
        while True:
            try:
                return (yield request)
            except UNREACHABLE as exc:
                failure: BaseException = exc
                if not isinstance(exc, NOT_SENT):
                    if not repeat_unanswered:
                        raise
                    maybe_sent = maybe_sent or exc
                if attempt + 1 >= self.unreachable_attempts:
                    if maybe_sent is not None and maybe_sent is not exc:
                        raise maybe_sent from exc
                    raise
            except bexc.ClientError as exc:
                failure = exc
                if not throttled(exc):
                    raise
                if not repeat_unanswered and error_code(exc) in TRANSIENT:
                    raise  # a 5xx says nothing of whether the write was applied: never send it twice
                if attempt + 1 >= self.throttled_attempts:
                    if maybe_sent is not None:
                        raise maybe_sent from exc
                    raise
            wait = self.delay(attempt)
            if _RETRIES.isEnabledFor(logs.WARNING):
                _log_retry(request, failure, attempt + 2, wait, self)
            yield Sleep(wait)
            attempt += 1


def _log_retry(request: Any, exc: BaseException, attempt: int, wait: float, policy: RetryPolicy) -> None:
    """A WARNING on ``odm.retries.dynamodb``: what is repeated, why, which attempt comes, after what wait."""
    op, kwargs = (request.op, request.kwargs) if isinstance(request, Call) else ("request", {})
    if isinstance(exc, bexc.ClientError):
        reason, most = f"throttled ({error_code(exc)})", policy.throttled_attempts
    else:
        reason, most = f"unreachable ({type(exc).__name__})", policy.unreachable_attempts
    logs.retry(_RETRIES, "dynamodb", op, logs.dynamodb_tables(kwargs), reason, attempt, most, wait)
