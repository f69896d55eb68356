"""Attribute names are never path syntax: each name addresses exactly its attribute, or is refused.

One corpus on every backend (see odm/attributes.py and docs/models.md, "Attribute names"):
accepted names are stored, read, filtered, ordered, updated, removed and deleted by,
each touching only its own attribute; refused names raise before anything is written.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import odm
from odm import Filter, fields

#: Names every backend must address exactly. Confusable neighbours sit side by side
#: (NFC/NFD, one space/two, "x$"/"x"), so an alias between any two is caught.
ACCEPTED = [
    "x", "x$", "a'b", "a''b", "a[0]", "a]b", "a b", "a  b", " lead", "trail ", "é", "e\u0301", "𝄞",
    "\u2028", "\u0085", "\u007f", "\ufeff", "#0", ":v", "a->b", "a->>'b'", "a}b", "a*b", "%", "_", "?",
    "id", "Id", "a,b", "x'); DROP TABLE t; --", "a/b", "a=b", "a|b", "a-b", "__proto__", "$x".replace("$", "¤"),
    "x" * 255, "é" * 127,
]
#: Names refused on every backend, each with a word of the reason the error gives.
REFUSED = {
    "": "empty", "a\x00b": "NUL", "a.b": "'.'", ".": "'.'", "$x": "'\\$'", "$": "'\\$'", 'a"b': "syntax",
    "a\\b": "syntax", "a\\": "syntax", "a\x08": "control", "\x01ctl": "control", "\n": "control",
    "x" * 256: "255 bytes", "é" * 128: "255 bytes", "_id": "reserved", "a\ud800": "Unicode",
}


@pytest.fixture
def repo(target: Any) -> Iterator[odm.Repository]:
    backend = odm.Backend(target.name, target.registry().backend)
    repo = backend.define_repository("names", {"name": "attr_names", "hashKey": "email"})
    yield repo
    repo.delete_all()
    backend.shutdown()


def emails(items: list[dict[str, Any]]) -> list[str]:
    return sorted(d["email"] for d in items)


def test_sqlite_backslash_names_from_the_issue_never_alias(repo: odm.Repository) -> None:
    repo.save({"email": "1", "a": "v"})
    for data in ({"email": "2", "a\\b": "v"}, {"email": "3", "a\x08": "v"}):
        with pytest.raises(odm.ValidationError, match="repository 'names'"):
            repo.save(data)
    with pytest.raises(odm.ValidationError):
        repo.save({"a\\b": None}, {"email": "1"})
    for bad in ({"a\\b": "v"}, {"a\x08": "v"}):
        with pytest.raises(odm.QueryError, match="repository 'names'"):
            repo.get_all(bad)
        with pytest.raises(odm.QueryError):
            repo.delete_all(bad)
    assert repo.get_all() == [{"email": "1", "a": "v"}]


def test_every_accepted_name_addresses_exactly_its_attribute(repo: odm.Repository) -> None:
    for i, name in enumerate(ACCEPTED):
        repo.save({"email": f"n{i:02d}", name: "v", "rank": i})
    everyone = {f"n{i:02d}" for i in range(len(ACCEPTED))}
    for i, name in enumerate(ACCEPTED):
        own = f"n{i:02d}"
        assert emails(repo.get_all({name: "v"})) == [own], name
        assert set(repo.get_one({"email": own})) == {"email", name, "rank"}, name
        assert emails(repo.get_all(Filter().match_any(name, ["v", "w"]))) == [own], name
        assert emails(repo.get_all(Filter().match_pattern(name, "v%"))) == [own], name
        assert set(emails(repo.get_all({name: None}))) == everyone - {own}, name
        assert repo.save({name: "w"}, {name: "v"})[name] == "w"
        assert repo.get_one({name: "w"})["email"] == own
        assert name not in repo.save({name: None}, {"email": own}), name
        assert name not in repo.get_one({"email": own}), name
    assert all(set(d) == {"email", "rank"} for d in repo.get_all())
    # Every other name is refused, and touches none of the items above.
    for name in REFUSED:
        with pytest.raises(odm.ValidationError):
            repo.save({name: "v"}, {"email": "n00"})
        with pytest.raises(odm.QueryError):
            repo.get_all({name: None})
    assert all(set(d) == {"email", "rank"} for d in repo.get_all())
    # delete_all by an accepted name deletes exactly its own item.
    for i, name in enumerate(ACCEPTED[:8]):
        repo.save({name: "z"}, {"email": f"n{i:02d}"})
        assert repo.delete_all({name: "z"}) == 1
    assert len(repo.get_all()) == len(ACCEPTED) - 8


def test_order_by_an_accepted_name(repo: odm.Repository) -> None:
    if not repo.repo.backend.features.supports_arbitrary_order:
        pytest.skip("this backend orders only by a range key")
    for name in ("a'b", "e\u0301", "a[0]", "𝄞"):
        repo.delete_all()
        for rank, email in enumerate(["b", "c", "a"]):
            repo.save({"email": email, name: rank, "é": 10 - rank})
        assert [d["email"] for d in repo.get_all(order=name, sorting="desc")] == ["a", "c", "b"], name
    for name in ("a.b", "a\\b", "$x"):
        with pytest.raises(odm.QueryError):
            repo.get_all(order=name)


@pytest.mark.parametrize("name", list(REFUSED), ids=[repr(n)[:20] for n in REFUSED])
def test_refused_names_change_nothing_on_every_backend(repo: odm.Repository, name: str) -> None:
    reason = REFUSED[name]
    repo.save({"email": "1", "a": "v"})
    before = repo.get_all()
    with pytest.raises(odm.ValidationError, match=reason):
        repo.save({"email": "2", name: "v"})
    with pytest.raises(odm.ValidationError, match=reason):
        repo.save({name: "v"}, {"email": "1"})
    with pytest.raises(odm.ValidationError, match=reason):
        repo.save({name: None}, {"email": "1"})
    calls = [lambda: repo.get_all({name: "v"}), lambda: repo.get_one({name: None}),
             lambda: repo.delete_all({name: "v"}), lambda: repo.delete_one({name: "v"})]
    if name:  # order="" is Go's zero value: no order
        calls.append(lambda: repo.get_all(order=name))
    for call in calls:
        with pytest.raises(odm.QueryError, match=reason):
            call()
    for build in (lambda: Filter().match(name, "v"), lambda: Filter().match_any(name, ["v"]),
                  lambda: Filter().match_pattern(name, "v"), lambda: Filter({name: "v"})):
        with pytest.raises(odm.QueryError, match=reason):
            build()
    # (An empty hashKey or ttlAttribute means "not set", as in the Go package.)
    definitions: list[dict[str, Any]] = [{"indexes": [name]}, {"GSI": {"ix": {"hashKey": name}}}]
    if name:
        definitions += [{"hashKey": name}, {"hashKey": "k", "rangeKey": name}, {"enableTtl": True, "ttlAttribute": name}]
    for definition in definitions:
        with pytest.raises(odm.ConfigError, match=reason):
            odm.golayer.definition_spec("bad", definition)
    assert repo.get_all() == before


def test_a_non_string_name_is_refused(repo: odm.Repository) -> None:
    with pytest.raises(odm.ValidationError, match="must be strings"):
        repo.save({"email": "1", 5: "v"})  # type: ignore[dict-item]
    with pytest.raises(odm.QueryError, match="must be strings"):
        repo.get_all({5: "v"})  # type: ignore[dict-item]
    assert repo.get_all() == []


#: Keys inside a dict value are data, matched with the value as a whole, never a path:
#: everything but '$'-leading, empty and NUL keys is stored and matched exactly.
NESTED_OK = ["a.b", 'q"q', "a\\b", "a\x08", "\x01c", "é", "e\u0301", "_id", "x$", " ", "𝄞"]
NESTED_REFUSED = {"$x": "'\\$'", "$where": "'\\$'", "": "empty", "a\x00": "NUL", "\udc00": "Unicode"}


def test_nested_keys_are_data_matched_whole(repo: odm.Repository) -> None:
    for i, key in enumerate(NESTED_OK):
        value = {key: i, "list": [{key: [key]}]}
        repo.save({"email": f"k{i}", "m": value})
        assert repo.get_one({"email": f"k{i}"})["m"] == value, key
        assert emails(repo.get_all({"m": value})) == [f"k{i}"], key
        assert emails(repo.get_all(Filter().match_any("m", [value, {key: -1}]))) == [f"k{i}"], key
        assert repo.save({"m": {key: "new"}}, {"m": value})["m"] == {key: "new"}, key
    for key, reason in NESTED_REFUSED.items():
        with pytest.raises(odm.ValidationError, match=reason):
            repo.save({"email": "bad", "m": {"ok": {key: 1}}})
        with pytest.raises(odm.QueryError, match=reason):
            repo.get_all({"m": {key: 1}})
    assert len(repo.get_all()) == len(NESTED_OK)


# -- models: data_key follows the same rule ------------------------------------------------


def named_model(names: list[str], table: str) -> type[odm.Model]:
    attrs: dict[str, Any] = {f"f{i}": fields.String(data_key=n) for i, n in enumerate(names)}
    attrs["email"] = fields.String(required=True)
    attrs["tags"] = fields.Dict()
    attrs["Meta"] = type("Meta", (), {"name": table, "hash_key": "email"})
    return type("Named", (odm.Model,), attrs)


def test_model_data_keys_address_exactly_their_attribute(make_registry: Any) -> None:
    names = ACCEPTED[:24]
    Named = named_model(names, "attr_named")
    make_registry(Named)
    for i in range(len(names)):
        Named.create(email=f"n{i}", **{f"f{i}": "v"})
    for i in range(len(names)):
        ref = getattr(Named, f"f{i}")
        assert [o.email for o in Named.query(ref == "v")] == [f"n{i}"]
        assert [o.email for o in Named.query(ref.in_(["v"]))] == [f"n{i}"]
        assert [o.email for o in Named.query(ref.startswith("v"))] == [f"n{i}"]
        item = Named.get(f"n{i}")
        item.update(**{f"f{i}": "w"})
        assert getattr(Named.get(f"n{i}"), f"f{i}") == "w"
        item.update(**{f"f{i}": None})
        assert getattr(Named.get(f"n{i}"), f"f{i}") is None
        assert Named.query(ref == "w").count() == 0
    assert Named.query().count() == len(names)
    # A value no backend stores the same way is refused, not written.
    for data in ({"f0": "\x00"}, {"tags": {"$set": 1}}, {"tags": {"k": "\udc00"}}):
        with pytest.raises(odm.ValidationError):
            Named.create(email="refused", **data)
    assert Named.query().count() == len(names)


@pytest.mark.parametrize("name", [n for n in REFUSED if n], ids=[repr(n)[:20] for n in REFUSED if n])
def test_model_data_key_refused_at_class_creation(name: str) -> None:
    # (data_key="" means "not set": the attribute's own name is used.)
    with pytest.raises(odm.ConfigError, match="data_key"):
        named_model([name], "never_created")


def test_embedded_data_key_follows_the_rule_but_may_be_id() -> None:
    class Inner(odm.EmbeddedModel):
        key = fields.String(data_key="_id")

    class Outer(odm.Model):
        inner = fields.Embedded(Inner)

    assert Outer.inner.key.path.parts == ("inner", "_id")
    with pytest.raises(odm.ConfigError, match=r"Outer2\.inner\.key .*'\.'"):
        class Dotted(odm.EmbeddedModel):
            key = fields.String(data_key="a.b")

        class Outer2(odm.Model):
            inner = fields.Embedded(Dotted)


def test_model_dict_keys_follow_the_nested_rule(make_registry: Any) -> None:
    Named = named_model(["plain"], "attr_named_dict")
    make_registry(Named)
    Named.create(email="1", tags={"a.b": "x", 'q"': "y"})
    assert Named.get("1").tags == {"a.b": "x", 'q"': "y"}
    assert Named.query(Named.tags == {"a.b": "x", 'q"': "y"}).count() == 1
    for key, reason in NESTED_REFUSED.items():
        with pytest.raises(odm.ValidationError, match=reason):
            Named.create(email="2", tags={key: "x"})
        with pytest.raises(odm.QueryError, match=reason):
            Named.query(Named.tags == {key: "x"}).count()
    assert Named.query().count() == 1
