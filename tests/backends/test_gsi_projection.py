"""Queries served by a KEYS_ONLY/INCLUDE index when their ``only()`` fits it (issue 12, projections).

Where ``features.index_projections`` holds (DynamoDB) the request sent is recorded at the driver
(botocore's ``before-parameter-build`` event) to show which index served the query; every backend
must give the answers a whole-item read gives, so the same queries run on all of them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest

import odm
from odm import fields
from odm.backends.dynamodb.codec import DynamoCodec
from odm.backends.dynamodb.planner import plan_query
from odm.expressions.nodes import Like

from .models import Note


class Track(odm.Model):
    """Two narrow GSIs: KEYS_ONLY on (artist, year), INCLUDE title and notes on (genre, plays)."""

    id = fields.String(required=True)
    artist = fields.String()
    year = fields.Integer(required=True)
    genre = fields.String()
    plays = fields.Integer(required=True)
    title = fields.String()
    notes = fields.String(data_key="n")  # projected under its stored name
    mood = fields.String()

    class Meta:
        name = "gsi_proj_tracks"
        hash_key = "id"
        gsi = {"by_artist": {"hash_key": "artist", "range_key": "year", "projection": "KEYS_ONLY"},
               "by_genre": {"hash_key": "genre", "range_key": "plays", "projection": ["title", "notes"]}}


class Tally(odm.Model):
    """A version field always comes along with only(): an index must project it to serve one."""

    id = fields.String(required=True)
    group = fields.String()
    label = fields.String()
    v = fields.Integer()

    class Meta:
        name = "gsi_proj_tallies"
        hash_key = "id"
        version_field = "v"
        gsi = {"by_group": {"hash_key": "group", "projection": ["label"]}}


class Reading(odm.Model):
    """An LSI with projection KEYS_ONLY: (sensor, level) holds sensor, at and level."""

    sensor = fields.String(required=True)
    at = fields.Integer(required=True)
    level = fields.String(required=True)
    value = fields.Integer()

    class Meta:
        name = "gsi_proj_readings"
        hash_key = "sensor"
        range_key = "at"
        lsi = {"by_level": {"range_key": "level", "projection": "KEYS_ONLY"}}


ROWS = [
    Track(id=f"t{i}", artist="ann" if i % 3 == 0 else "bob", year=1990 + i, genre="rock" if i % 2 else "jazz",
          plays=i * 10, title=f"Song {i}", notes=None if i == 5 else f"n{i}", mood="up" if i % 4 else "down")
    for i in range(12)
]


class Sent:
    """The DynamoDB requests (operation, parameters) sent while recording."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.calls.append((model.name, dict(params)))

    def reads(self) -> list[tuple[str, str | None]]:
        """(operation, IndexName) of each read sent since the last call."""
        out = [(op, p.get("IndexName")) for op, p in self.calls if op in ("Query", "Scan", "GetItem")]
        self.calls.clear()
        return out


@pytest.fixture
def tracks(make_registry: Callable[..., odm.Registry]) -> Iterator[tuple[odm.Registry, Sent | None]]:
    reg = make_registry(Track, Tally, Reading)
    Track.insert_many([Track(**t.to_dict()) for t in ROWS])
    sent = None
    if reg.backend.features.index_projections:  # DynamoDB: what each read asked for, at the driver
        sent = Sent()
        reg.backend.client.meta.events.register("before-parameter-build.dynamodb", sent)  # type: ignore[attr-defined]
    yield reg, sent
    if sent is not None:
        reg.backend.client.meta.events.unregister("before-parameter-build.dynamodb", sent)  # type: ignore[attr-defined]


def whole(where: Callable[[Track], bool]) -> dict[str, Track]:
    """The full-table answer, filtered in Python."""
    return {t.id: t for t in Track.query().all() if where(t)}


def fields_of(items: list[Track], *names: str) -> dict[str, tuple[Any, ...]]:
    return {t.id: tuple(getattr(t, n) for n in names) for t in items}


def test_keys_only_index_serves_an_only_of_its_keys(tracks: tuple[odm.Registry, Sent | None]) -> None:
    _, sent = tracks
    expected = whole(lambda t: t.artist == "ann" and t.year >= 1993)
    if sent:
        sent.reads()
    got = Track.query(Track.artist == "ann", Track.year >= 1993).only(Track.year).all()
    if sent:
        assert sent.reads() == [("Query", "by_artist")]
    assert fields_of(got, "year") == {k: (t.year,) for k, t in expected.items()}
    assert len(got) == 3
    with pytest.raises(AttributeError, match=r"only\(") as info:
        got[0].title  # noqa: B018  # not fetched, as any partial instance
    assert "title" in str(info.value)
    # A field the index does not hold: the same question read where it is stored, same answer.
    titled = Track.query(Track.artist == "ann", Track.year >= 1993).only(Track.title).all()
    if sent:
        assert sent.reads() == [("Scan", None)]
    assert fields_of(titled, "title") == {k: (t.title,) for k, t in expected.items()}


def test_include_index_serves_filters_order_and_data_keys_it_holds(tracks: tuple[odm.Registry, Sent | None]) -> None:
    _, sent = tracks
    expected = whole(lambda t: t.genre == "rock" and t.plays > 20 and (t.title or "").startswith("Song"))
    if sent:
        sent.reads()
    query = Track.query(Track.genre == "rock", Track.plays > 20, Track.title.startswith("Song"))
    got = query.only(Track.title, Track.notes, Track.plays).order_by(-Track.plays).all()
    if sent:
        assert sent.reads() == [("Query", "by_genre")]
    assert [t.id for t in got] == sorted(expected, key=lambda k: -expected[k].plays)
    assert fields_of(got, "title", "notes", "plays") == {k: (t.title, t.notes, t.plays) for k, t in expected.items()}
    assert next(t for t in got if t.id == "t5").notes is None  # asked for, absent from the item
    # A filter on a field outside the projection: not the index (it would judge 'mood' missing).
    moody = query.filter(Track.mood == "up").only(Track.title).all()
    if sent:
        assert sent.reads() == [("Scan", None)]
    assert {t.id for t in moody} == {k for k, t in expected.items() if t.mood == "up"}
    # A LIKE DynamoDB cannot run is judged on the client, from what the index holds.
    liked = query.filter(Like(Track.title.path, "Song _")).only(Track.notes).all()
    if sent:
        assert sent.reads() == [("Query", "by_genre")]
    assert fields_of(liked, "notes") == {k: (t.notes,) for k, t in expected.items() if len(t.title or "") == 6}
    # Whole items (no only()): never from a narrow index.
    assert {t.id: t for t in query} == expected
    if sent:
        assert sent.reads() == [("Scan", None)]


def test_pages_on_a_narrow_index(tracks: tuple[odm.Registry, Sent | None]) -> None:
    _, sent = tracks
    expected = [t.id for t in sorted(whole(lambda t: t.genre == "jazz").values(), key=lambda t: t.plays)]
    query = Track.query(Track.genre == "jazz").order_by(Track.plays).only(Track.title)
    seen: list[str] = []
    cursor = None
    if sent:
        sent.reads()
    while True:
        page = query.page(2, cursor)
        seen += [t.id for t in page.items]
        assert all(t.title == f"Song {t.id[1:]}" for t in page.items)
        with pytest.raises(AttributeError, match=r"only\("):
            page.items[0].plays  # noqa: B018  # read for the cursor, still not the instance's
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == expected
    if sent:
        assert {r for r in sent.reads()} == {("Query", "by_genre")}
        # A cursor of the index's pages belongs to that query: on the table it is refused.
        first = query.page(2)
        with pytest.raises(odm.QueryError, match="cursor"):
            Track.query(Track.genre == "jazz").page(2, first.next_cursor)
        # Whole items in that order: only the narrow index orders by plays, and it cannot give them.
        with pytest.raises(odm.QueryError, match=r"only serves order_by.*whole items.*only\(\.\.\.\)"):
            Track.query(Track.genre == "jazz").order_by(Track.plays).page(2)


def test_count_delete_update_and_count_by_on_a_keys_only_index(tracks: tuple[odm.Registry, Sent | None]) -> None:
    _, sent = tracks
    ann = whole(lambda t: t.artist == "ann")
    if sent:
        sent.reads()
    assert Track.query(Track.artist == "ann", Track.year > 1992).count() == sum(t.year > 1992 for t in ann.values())
    if sent:
        assert sent.reads() == [("Query", "by_artist")]
    # count() filtering on a field outside the projection: counted where it is stored.
    assert Track.query(Track.artist == "ann", Track.mood == "up").count() == sum(t.mood == "up" for t in ann.values())
    if sent:
        assert sent.reads() == [("Scan", None)]
    assert Track.query(Track.artist == "ann").count_by(Track.year) == {t.year: 1 for t in ann.values()}
    if sent:
        assert sent.reads() == [("Query", "by_artist")]
    assert Track.query(Track.artist == "ann", Track.year < 1995).update(mood="odd") == 2
    assert {k for k, t in whole(lambda t: t.mood == "odd").items()} == {"t0", "t3"}
    assert Track.query(Track.artist == "ann", Track.year >= 1995).delete() == 2
    assert set(whole(lambda t: t.artist == "ann")) == {"t0", "t3"}


def test_get_only_reads_the_table(tracks: tuple[odm.Registry, Sent | None]) -> None:
    _, sent = tracks
    if sent:
        sent.reads()
    got = Track.get("t3", only=[Track.year])
    assert got.year == 1993
    if sent:
        assert sent.reads() == [("GetItem", None)]


def test_forced_index_with_what_it_does_not_hold_says_what_is_missing(tracks: tuple[odm.Registry, Sent | None]) -> None:
    reg, sent = tracks
    fits = Track.query(Track.artist == "bob").use_index("by_artist").only(Track.year).all()
    assert fields_of(fits, "year") == {k: (t.year,) for k, t in whole(lambda t: t.artist == "bob").items()}
    if not reg.backend.features.index_projections:
        # Elsewhere use_index is a hint and every field is in the index's table: the whole answer.
        got = Track.query(Track.artist == "bob", Track.mood == "up").use_index("by_artist").only(Track.title).all()
        assert {t.id for t in got} == set(whole(lambda t: t.artist == "bob" and t.mood == "up"))
        return
    assert sent is not None
    sent.reads()
    with pytest.raises(odm.QueryError) as info:
        Track.query(Track.artist == "bob").use_index("by_artist").only(Track.title).all()
    text = str(info.value)
    assert "use_index('by_artist')" in text and "'title' in only()" in text and "KEYS_ONLY" in text
    assert "add 'title' to the index's projection" in text and "drop 'title' from only()" in text
    with pytest.raises(odm.QueryError, match=r"'mood' in the filter.*without use_index"):
        Track.query(Track.genre == "rock", Track.mood == "up").use_index("by_genre").only(Track.title).all()
    with pytest.raises(odm.QueryError, match=r"whole items.*only\(\.\.\.\).*'ALL'"):
        Track.query(Track.genre == "rock").use_index("by_genre").all()
    with pytest.raises(odm.QueryError, match="'mood'"):
        Track.query(Track.genre == "rock", Track.mood == "up").use_index("by_genre").count()
    with pytest.raises(odm.QueryError, match=r"'mood' in count_by\(\)"):
        Track.query(Track.genre == "rock").use_index("by_genre").count_by(Track.mood)
    assert sent.reads() == []  # refused before any request
    # What fits still runs there: count, update and delete read only keys (and the filter's fields).
    assert Track.query(Track.genre == "rock", Track.title == "Song 3").use_index("by_genre").count() == 1
    assert sent.reads() == [("Query", "by_genre")]
    assert Track.query(Track.artist == "bob").use_index("by_artist").update(mood="x") == 8
    assert sent.reads()[0] == ("Query", "by_artist")


def test_the_version_field_must_be_projected(tracks: tuple[odm.Registry, Sent | None]) -> None:
    reg, sent = tracks
    Tally.insert_many([Tally(id="a", group="g", label="A"), Tally(id="b", group="g", label="B")])
    if sent:
        sent.reads()
    got = {t.id: (t.label, t.v) for t in Tally.query(Tally.group == "g").only(Tally.label)}
    assert got == {"a": ("A", 1), "b": ("B", 1)}
    if sent is None:
        return
    assert sent.reads() == [("Scan", None)]  # the index lacks 'v', which only() always reads
    with pytest.raises(odm.QueryError, match="'v' in only()"):
        Tally.query(Tally.group == "g").use_index("by_group").only(Tally.label).all()
    assert Tally.query(Tally.group == "g").use_index("by_group").count() == 2


def test_narrow_index_definitions(tracks: tuple[odm.Registry, Sent | None]) -> None:
    reg, _ = tracks
    if reg.backend.features.index_projections:
        described = reg.backend.client.describe_table(TableName=Track._bound().repo.table)["Table"]  # type: ignore[attr-defined]
        shapes = {g["IndexName"]: g["Projection"] for g in described["GlobalSecondaryIndexes"]}
        assert shapes["by_artist"] == {"ProjectionType": "KEYS_ONLY"}
        assert shapes["by_genre"]["ProjectionType"] == "INCLUDE"
        assert sorted(shapes["by_genre"]["NonKeyAttributes"]) == ["n", "title"]  # notes is stored as 'n'
    with pytest.raises(odm.ConfigError, match="top-level field names"):
        type("Bad", (odm.Model,), {"id": fields.String(), "g": fields.String(), "Meta": type("Meta", (), {
            "name": "gsi_proj_bad", "gsi": {"by_g": {"hash_key": "g", "projection": ["g.x"]}}})})


class Lease(odm.Model):
    """Never synced (no TTL table on the shared server): planned only, to show the expiry is read."""

    id = fields.String(required=True)
    pool = fields.String()
    holder = fields.String()
    until = fields.DateTime()

    class Meta:
        name = "gsi_proj_leases"
        hash_key = "id"
        ttl = {"attribute": "until", "seconds": 60}
        gsi = {"by_pool": {"hash_key": "pool", "projection": ["holder"]},
               "by_pool_until": {"hash_key": "pool", "projection": ["holder", "until"]}}


def test_the_expiry_attribute_must_be_projected_where_expired_items_are_filtered() -> None:
    spec, now = Lease._spec, Decimal(1_700_000_000)
    plan = plan_query(spec, DynamoCodec(), Lease.pool == "p", now=now, fetch=("id", "holder"))
    assert (plan.operation, plan.access.name) == ("Query", "by_pool_until")  # by_pool lacks 'until'
    plan = plan_query(spec, DynamoCodec(), Lease.pool == "p", fetch=("id", "holder"))  # no expiry check
    assert (plan.operation, plan.access.name) == ("Query", "by_pool")
    with pytest.raises(odm.QueryError, match=r"'until' in the expiry \(TTL\) check"):
        plan_query(spec, DynamoCodec(), Lease.pool == "p", index="by_pool", now=now, fetch=("id", "holder"))


def test_an_only_does_not_change_what_count_delete_and_update_act_on(tracks: tuple[odm.Registry, Sent | None]) -> None:
    query = Track.query(Track.artist == "bob", Track.year > 1995).only(Track.mood)  # mood: not in by_artist
    bob = whole(lambda t: t.artist == "bob" and t.year > 1995)
    assert query.count() == len(bob)
    assert query.update(title="x") == len(bob)
    assert query.delete() == len(bob)
    assert set(whole(lambda t: True)) == {t.id for t in ROWS} - set(bob)


def test_delete_under_only_frees_unique_values(make_registry: Callable[..., odm.Registry]) -> None:
    """A delete judges (and releases) unique values on whole items, whatever only() says."""
    make_registry(Note)
    Note.create(title="t", body="b", slug="s1")
    assert Note.query(Note.title == "t").only(Note.body).delete() == 1
    Note.create(title="u", body="b", slug="s1")  # the value is free again
    assert [n.title for n in Note.query()] == ["u"]


def test_a_keys_only_lsi(tracks: tuple[odm.Registry, Sent | None]) -> None:
    _, sent = tracks
    Reading.insert_many([Reading(sensor="s", at=i, level="hi" if i % 3 else "lo", value=i) for i in range(9)])
    if sent:
        sent.reads()
    got = Reading.query(Reading.sensor == "s", Reading.level == "lo").only(Reading.level).all()
    if sent:
        assert sent.reads() == [("Query", "by_level")]
    assert sorted((r.at, r.level) for r in got) == [(0, "lo"), (3, "lo"), (6, "lo")]
    with pytest.raises(AttributeError, match=r"only\("):
        got[0].value  # noqa: B018
    valued = Reading.query(Reading.sensor == "s", Reading.level == "lo").only(Reading.value).all()
    if sent:
        assert sent.reads() == [("Query", None)]  # the table's own key serves it, whole
    assert sorted(r.value for r in valued) == [0, 3, 6]
