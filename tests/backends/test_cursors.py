"""Page cursors are signed with a secret: foreign, forged, tampered or malformed ones are QueryError.

Every backend: the keyset backends (SQL, MongoDB) and DynamoDB's key cursors
share one signer (``odm.pagination.Cursors``), so each payload below is tried
on each backend, whatever shape its own cursors have.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import odm
from odm.pagination import Cursors

from .models import Event

SECRET = "a-shared-cursor-secret-for-tests"


class Recording(Cursors):
    """The backend's signer, also remembering the query fingerprints it signed for (to forge with the right key)."""

    __slots__ = ("fps",)

    def __init__(self, secret: bytes) -> None:
        super().__init__(secret)
        self.fps: list[str] = []

    def sign(self, payload: Any, fp: str) -> str:
        self.fps.append(fp)
        return super().sign(payload, fp)


def _events(make_registry: Callable[..., odm.Registry], **kwargs: Any) -> odm.Registry:
    reg = make_registry(Event, **kwargs)
    Event.insert_many([Event(stream="p", seq=i) for i in range(6)])
    return reg


def query() -> odm.Query[Event]:
    return Event.query(Event.stream == "p").order_by(Event.seq)


def test_cursor_from_another_registrys_secret_is_refused(make_registry: Callable[..., odm.Registry]) -> None:
    _events(make_registry)
    cursor = query().page(size=2).next_cursor
    assert cursor is not None
    make_registry(Event, rebind=True)  # another process: its own random secret
    with pytest.raises(odm.QueryError, match="another cursor secret"):
        query().page(size=2, cursor=cursor)
    assert [e.seq for e in query().page(size=2).items] == [0, 1]  # a fresh start still works


def test_shared_secret_from_the_environment_is_accepted_across_registries(
        make_registry: Callable[..., odm.Registry], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ODM_CURSOR_SECRET", SECRET)
    _events(make_registry)
    cursor = query().page(size=2).next_cursor
    make_registry(Event, rebind=True)  # a second process with the same ODM_CURSOR_SECRET
    assert [e.seq for e in query().page(size=2, cursor=cursor).items] == [2, 3]
    with pytest.raises(odm.QueryError, match="cursor"):  # still bound to its own query
        Event.query(Event.stream == "q").order_by(Event.seq).page(size=2, cursor=cursor)


# Payloads a holder of the secret could sign: each backend must refuse every one with QueryError.
TAMPERED: list[Any] = [
    [{"$dt": "x"}, "p"], [{"$dec": "abc"}, "p"], [{"$date": 5}, "p"], [{"$uuid": "zz"}, "p"], [{"$b": 7}, "p"],
    ["not-a-number", "p"], [{"$dt": "x"}], [], "text", 5, None, {"k": 1}, {"k": {}}, {"k": []},
    {"k": {"stream": {"S": 5}}}, {"k": {"stream": {"B": "!!not base64!!"}, "seq": {"N": "1"}}},
    {"k": {"nope": {"S": "x"}}}, {"k": {"stream": {"X": "p"}}}, {"k": {"stream": {"S": "p", "N": "1"}}},
    [{"$missing": 1}, {"$dt": "2024-13-45"}], [[1, 2], "p"],
]


@pytest.mark.parametrize("payload", TAMPERED, ids=[repr(p)[:40] for p in TAMPERED])
def test_tampered_payload_signed_with_the_right_key_is_query_error(make_registry: Callable[..., odm.Registry],
                                                                    payload: Any) -> None:
    reg = _events(make_registry)
    signer = reg.backend.cursors = Recording(SECRET.encode())
    genuine = query().page(size=2).next_cursor
    fp = signer.fps[-1]
    assert genuine is not None
    # The forger is real: re-signing the genuine payload gives a cursor that works.
    body = genuine.rsplit(".", 1)[0]
    import base64
    import json

    original = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    assert [e.seq for e in query().page(size=2, cursor=signer.sign(original, fp)).items] == [2, 3]
    with pytest.raises(odm.QueryError, match="cursor"):
        query().page(size=2, cursor=signer.sign(payload, fp))


@pytest.mark.parametrize("cursor", ["abc.é", "é", "", ".", "abc", "abc.def", "a" * 10_000 + ".x", "\x00.\x00"])
def test_malformed_cursor_strings_are_query_error(make_registry: Callable[..., odm.Registry], cursor: str) -> None:
    _events(make_registry)
    with pytest.raises(odm.QueryError, match="cursor"):
        query().page(size=2, cursor=cursor)


@pytest.mark.parametrize("cursor", [5, b"abc.def", ["x"], {"k": 1}, 1.5, True])
def test_non_string_cursors_are_query_error(make_registry: Callable[..., odm.Registry], cursor: Any) -> None:
    _events(make_registry)
    with pytest.raises(odm.QueryError, match="next_cursor string"):
        query().page(size=2, cursor=cursor)


def test_cursor_secret_never_shows(make_registry: Callable[..., odm.Registry], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ODM_CURSOR_SECRET", SECRET)
    reg = _events(make_registry)
    shown = " ".join([repr(reg), repr(reg.backend), repr(reg.backend.cursors), str(query().page(size=2).next_cursor)])
    try:
        query().page(size=2, cursor="abc.def")
    except odm.QueryError as exc:
        shown += str(exc)
    assert SECRET not in shown and SECRET.encode().hex() not in shown
