"""Round trips of single-item operations on MongoDB and DynamoDB (issue 11, target 2).

Counted at the driver, not in the ODM: MongoDB with pymongo's command monitoring on a client
built for the test, DynamoDB with botocore's ``before-call`` event (one per API call sent, a
repeat included). A single-item read or write is one command / one call; ``insert_many`` sends
its transactions and nothing else. A count that grows fails here, so a round trip cannot come
back silently.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import pymongo
import pytest
from pymongo import monitoring

import odm

from .models import Account, Event, Note, Session, User

pytestmark = pytest.mark.usefixtures("target")

#: pymongo's own handshake/monitoring commands, not requests of an operation.
HOUSEKEEPING = frozenset({"hello", "ismaster", "isMaster", "ping", "endSessions", "buildInfo"})


class Commands(monitoring.CommandListener):
    """The commands a MongoDB client sends, by name."""

    def __init__(self, seen: list[str]) -> None:
        self.seen = seen

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name not in HOUSEKEEPING:
            self.seen.append(event.command_name)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


class Recorder:
    """What one block of code sent: ``with rec: ...`` then ``rec.calls`` (names, in order)."""

    def __init__(self, log: list[str]) -> None:
        self.log = log
        self.calls: list[str] = []

    def __enter__(self) -> Recorder:
        self.log.clear()
        return self

    def __exit__(self, *exc: object) -> None:
        self.calls = list(self.log)


@pytest.fixture
def sent(target: Any, make_registry: Callable[..., odm.Registry]) -> Iterator[Callable[[], Recorder]]:
    """Register the suite's models on a backend whose driver calls are recorded."""
    if target.name not in ("mongodb", "dynamodb"):
        pytest.skip("MongoDB and DynamoDB round trips (the SQL backends count statements elsewhere)")
    reg = make_registry()
    backend: Any = reg.backend
    log: list[str] = []
    if target.name == "mongodb":
        old = backend.client
        backend.client = pymongo.MongoClient(backend._target, event_listeners=[Commands(log)], **backend._options)
        backend.db = backend.client.get_database(backend.db.name)
        backend._collections = {}
        old.close()
    else:
        backend.client.meta.events.register("before-call.dynamodb", lambda model, **_: log.append(model.name))
    reg.register(User, Note, Event, Account, Session)
    reg.sync()
    yield lambda: Recorder(log)


def _single(calls: list[str]) -> str:
    assert len(calls) == 1, calls
    return calls[0]


def test_get(sent: Callable[[], Recorder]) -> None:
    User.create(email="a@x.io", name="A")
    with sent() as rec:
        assert User.get("a@x.io").name == "A"
    _single(rec.calls)
    with sent() as rec:
        assert User.get_or_none("nobody@x.io") is None
    _single(rec.calls)
    with sent() as rec:
        assert Event.get_or_none("s", 1) is None
    _single(rec.calls)


def test_create(sent: Callable[[], Recorder]) -> None:
    with sent() as rec:
        User.create(email="a@x.io", name="A")
    _single(rec.calls)
    with sent() as rec, pytest.raises(odm.DuplicateKey):
        User.create(email="a@x.io", name="B")
    _single(rec.calls)
    with sent() as rec:
        Event.create(stream="s", seq=1, kind="k")
    _single(rec.calls)


def test_save(sent: Callable[[], Recorder]) -> None:
    user = User(email="a@x.io", name="A")
    with sent() as rec:
        user.save()
    _single(rec.calls)
    user.name = "B"
    with sent() as rec:
        user.save(condition=User.name == "A")
    _single(rec.calls)
    account = Account.create(owner="o", balance=1)  # a version field: save is conditioned on it
    account.balance = 2
    with sent() as rec:
        account.save()
    _single(rec.calls)


def test_update(sent: Callable[[], Recorder], target: Any) -> None:
    """One findAndModify / UpdateItem(ALL_NEW): the write and the stored item it leaves, together."""
    user = User.create(email="a@x.io", name="A", age=1)
    with sent() as rec:
        user.update(name="B")
    _single(rec.calls)
    assert (user.name, user.age) == ("B", 1)
    with sent() as rec:
        user.update(age=odm.inc(2), name=None)
    _single(rec.calls)
    assert (user.name, user.age) == (None, 3)
    with sent() as rec:
        user.update(condition=User.age == 3, name="C")
    _single(rec.calls)
    account = Account.create(owner="o", balance=1)
    with sent() as rec:
        account.update(balance=odm.inc(5))
    _single(rec.calls)
    assert (account.balance, account.version) == (6, 2)


def test_ttl_model(sent: Callable[[], Recorder]) -> None:
    """Expired items are absent to every operation, with no extra round trip for it."""
    gone = Session.create(token="old", user="u", expires_at=odm.utcnow() - dt.timedelta(seconds=5))
    with sent() as rec:
        assert Session.get_or_none("old") is None
    _single(rec.calls)
    with sent() as rec:
        Session.create(token="old", user="v")  # replaces the expired item
    _single(rec.calls)
    with sent() as rec, pytest.raises(odm.DuplicateKey):
        Session.create(token="old", user="w")  # a live item: refused
    _single(rec.calls)
    live = Session.get("old")
    assert live.user == "v" and gone.user == "u"
    with sent() as rec:
        live.update(user="x")
    _single(rec.calls)
    with sent() as rec:
        live.save()
    _single(rec.calls)
    with sent() as rec:
        live.delete()
    _single(rec.calls)


def test_update_returns_the_servers_item(sent: Callable[[], Recorder]) -> None:
    """One round trip, yet the instance is the stored item: another writer's change shows too."""
    user = User.create(email="a@x.io", name="A", age=1)
    User.get("a@x.io").update(age=odm.inc(10), score=1.5)  # another instance, as another writer would
    with sent() as rec:
        user.update(age=odm.inc(1))
    _single(rec.calls)
    assert (user.age, user.score, user.name) == (12, 1.5, "A")


def test_delete(sent: Callable[[], Recorder]) -> None:
    user = User.create(email="a@x.io", name="A")
    with sent() as rec:
        user.delete()
    _single(rec.calls)
    with sent() as rec:
        user.delete()  # already gone: still one
    _single(rec.calls)
    event = Event.create(stream="s", seq=1, kind="k")
    with sent() as rec:
        event.delete(condition=Event.kind == "k")
    _single(rec.calls)


def test_unique_index_writes(sent: Callable[[], Recorder], target: Any) -> None:
    """A model with a unique index: MongoDB's index enforces it, one command; DynamoDB writes the
    item and its guard items in one TransactWriteItems (reading the stored item first where the
    guards it holds must be released: save, update of the unique field, delete)."""
    with sent() as rec:
        note = Note.create(title="t", slug="s1")
    assert rec.calls == (["insert"] if target.name == "mongodb" else ["TransactWriteItems"])
    with sent() as rec:
        note.update(count=odm.inc(1))  # not the unique field: a plain update
    _single(rec.calls)
    # DynamoDB: the guards a stored item holds are known only by reading it, so these are one
    # read and one transaction (and, for update, the item read back: a transaction returns none).
    mongo = target.name == "mongodb"
    guarded = ["GetItem", "TransactWriteItems"]
    note.slug = "s2"
    with sent() as rec:
        note.save()
    assert rec.calls == (["update"] if mongo else guarded)
    with sent() as rec:
        note.update(slug="s3")
    assert rec.calls == (["findAndModify"] if mongo else [*guarded, "GetItem"])
    with sent() as rec:
        note.delete()
    assert rec.calls == (["delete"] if mongo else guarded)


def test_insert_many(sent: Callable[[], Recorder], target: Any) -> None:
    """Only writes: no read before, none after, also when a key is taken."""
    users = [User(email=f"u{i}@x.io", name="new") for i in range(30)]
    with sent() as rec:
        User.insert_many(users)
    writes = {"mongodb": ["insert"], "dynamodb": ["TransactWriteItems"]}[target.name]
    assert rec.calls == writes
    more = [User(email=f"v{i}@x.io", name="new") for i in range(5)] + [User(email="u3@x.io", name="new")]
    with sent() as rec, pytest.raises(odm.DuplicateKey) as exc:
        User.insert_many(more)
    assert [k[0] for k in exc.value.failed] == ["u3@x.io"]  # type: ignore[attr-defined]
    assert sorted(k[0] for k in exc.value.written) == sorted(f"v{i}@x.io" for i in range(5))  # type: ignore[attr-defined]
    # DynamoDB: the cancelled transaction names the refused item; the rest go again, once.
    assert rec.calls == {"mongodb": ["insert"], "dynamodb": ["TransactWriteItems"] * 2}[target.name]
