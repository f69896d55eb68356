"""Operations written once, run by a sync or an async driver (docs/async.md).

An operation is a generator: it *yields* a request (a backend's own small request object,
or :class:`Emit` to hand results to a stream) and is *sent* the driver's response; it
*returns* its result. Everything an operation decides (which index, which condition, how to
page, what to retry, how to translate an error) lives in the generator, free of I/O. A
runner only sends requests: :func:`run` with a sync driver, :func:`arun` with an awaitable
one. A driver exception is thrown back into the generator at the ``yield``, so the operation
translates it exactly as it would a sync call's.

Operations compose with ``yield from``: a model's ``save`` is an operation that yields from
its repository's ``put``, which yields from the backend's retrying ``call``.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Generator, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

#: An operation returning ``T``: yields requests, is sent responses.
Op = Generator[Any, Any, T]


class Emit:
    """Yielded by a streaming operation (``find``): items for the consumer; its response is None."""

    __slots__ = ("items",)

    def __init__(self, items: list[Any]) -> None:
        self.items = items


_START: Any = object()


def intercept(op: Op[T], kind: type, handle: Callable[[Any], None], first: Any = _START) -> Op[T]:
    """Inside another operation: run ``op``, handing each request of type ``kind`` to ``handle``
    (its response is None) and passing every other request on; ``op``'s result. ``first`` is a
    request already taken from ``op``, for a caller that had to look at it."""
    try:
        request = next(op) if first is _START else first
        while True:
            if isinstance(request, kind):
                handle(request)
                request = op.send(None)
                continue
            try:
                response = yield request
            except BaseException as exc:
                request = op.throw(exc)
            else:
                request = op.send(response)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    finally:
        op.close()


def consume(op: Op[Any], on_batch: Callable[[list[Any]], Any]) -> Op[None]:
    """Inside another operation: run a streaming operation, handing each batch it emits to
    ``on_batch`` as it comes (so a reduction never holds every item at once)."""
    yield from intercept(op, Emit, lambda emit: on_batch(emit.items))


def collect(op: Op[Any]) -> Op[list[Any]]:
    """Inside another operation: every item a streaming operation emits, as a list."""
    out: list[Any] = []
    yield from consume(op, out.extend)
    return out


def run(op: Op[T], send: Callable[[Any], Any]) -> T:
    """Drive ``op`` with a sync ``send(request) -> response``; its return value."""
    try:
        request = op.send(None)
        while True:
            try:
                response = send(request)
            except BaseException as exc:  # the operation decides what a driver error means
                request = op.throw(exc)
            else:
                request = op.send(response)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    except BaseException:
        op.close()
        raise


async def arun(op: Op[T], send: Callable[[Any], Awaitable[Any]]) -> T:
    """Drive ``op`` with an async ``send``; a cancellation is thrown into the operation too."""
    try:
        request = next(op)
        while True:
            try:
                response = await send(request)
            except BaseException as exc:
                request = op.throw(exc)
            else:
                request = op.send(response)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    finally:
        op.close()


def stream(op: Op[Any], send: Callable[[Any], Any]) -> Iterator[Any]:
    """The items a streaming operation emits, fetched as they are consumed (sync)."""
    try:
        request = next(op)
        while True:
            if isinstance(request, Emit):
                yield from request.items
                request = op.send(None)
                continue
            try:
                response = send(request)
            except BaseException as exc:
                request = op.throw(exc)
            else:
                request = op.send(response)
    except StopIteration:
        return
    finally:
        op.close()  # a consumer that stops early closes the operation (its cursor, its connection)


async def astream(op: Op[Any], send: Callable[[Any], Awaitable[Any]]) -> AsyncGenerator[Any, None]:
    """The items a streaming operation emits (async); closing the iterator closes the operation."""
    try:
        request = next(op)
        while True:
            if isinstance(request, Emit):
                for item in request.items:
                    yield item
                request = op.send(None)
                continue
            try:
                response = await send(request)
            except BaseException as exc:
                request = op.throw(exc)
            else:
                request = op.send(response)
    except StopIteration:
        return
    finally:
        op.close()


__all__ = ["Emit", "Op", "arun", "astream", "collect", "consume", "intercept", "run", "stream"]
