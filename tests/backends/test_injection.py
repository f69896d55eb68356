"""No injection: a user value is only ever a literal, on every backend.

Every payload below is stored as the value of one item; then each is used as a query value
through every operator that takes one (models and the Go layer). A value that became SQL,
a Mongo operator, DynamoDB expression syntax, a JSON path or a LIKE wildcard would widen or
narrow the answer; the test compares each answer with the one literal reading gives. The
number of checks run is printed (docs/reliability.md quotes it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import odm
from odm import Model, fields

PAYLOADS = [
    "' OR '1'='1", "' OR 1=1 --", "\"; DROP TABLE x; --", "') OR ('a'='a", "1; SELECT pg_sleep(0)", "' UNION SELECT 1 --",
    "%", "_", "%%", "a%", "\\%", "\\", "\\\\", "\\'", "'", "\"", "''", "`", "$", "$gt", "$ne", "$where", "$regex",
    "$.a", "$[0]", "$.\"x\"", "a.b", "a[0]", "[*]", "{", "}", "{\"$gt\": \"\"}", "{\"$ne\": null}", "null", "true", "0",
    ":v0", "#n0", "attribute_exists(k)", "size(v) > 0", "begins_with(v, :v)", "v = v", "AND", "OR NOT", "()", "(",
    ")", "*", ".*", "^", "|", "||", "&&", "/*", "*/", "--", ";", "\t", "\n", "\r\n", " ", "\u00e9", "e\u0301",
    "\U0001f600", "\u202e", "x" * 300, "%_\\%_", "ab%cd", "a_c", "abc", "ABC", "a'b\"c\\d", "$$", "{{v}}", "?", ":1",
    "%(x)s", "%s", "{0}", "@@version", "0x41", "1e5", "-1", "NaN",
]


class Inj(Model):
    k = fields.Integer(required=True)
    v = fields.String()
    tags = fields.List(fields.String())

    class Meta:
        name = "suite_injection"
        hash_key = "k"


def literal_like(pattern: str, value: str) -> bool:
    """A reference reading of the Go layer's LIKE: % any run, _ one char, backslash escapes."""
    import re

    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if c == "%" else "." if c == "_" else re.escape(c))
        i += 1
    return re.fullmatch("".join(out), value, re.DOTALL) is not None


def test_values_are_literals_everywhere(target: Any, make_registry: Callable[..., odm.Registry]) -> None:
    make_registry(Inj)
    Inj.insert_many([Inj(k=i, v=p, tags=[p, "t"]) for i, p in enumerate(PAYLOADS)])
    stored = dict(enumerate(PAYLOADS))
    checks = 0

    def keys(q: Any) -> set[int]:
        return {x.k for x in q}

    for p in PAYLOADS:
        same = {k for k, v in stored.items() if v == p}
        assert keys(Inj.query(Inj.v == p)) == same, p
        assert keys(Inj.query(Inj.v != p)) == set(stored) - same, p
        assert keys(Inj.query(Inj.v.in_([p, "\x01none"]))) == same, p
        assert keys(Inj.query(Inj.v.startswith(p))) == {k for k, v in stored.items() if v.startswith(p)}, p
        assert keys(Inj.query(Inj.v.contains(p))) == {k for k, v in stored.items() if p in v}, p
        assert keys(Inj.query(Inj.tags.contains(p))) == same | ({k for k in stored} if p == "t" else set()), p
        assert keys(Inj.query(Inj.v > p)) == {k for k, v in stored.items() if v > p}, p
        assert Inj.query(v=p).count() == len(same), p
        checks += 8
    print(f"\n{target.name}: {checks} model injection checks, none changed a query's meaning")
    assert checks == 8 * len(PAYLOADS)


def test_go_layer_values_and_patterns_are_literals(target: Any) -> None:
    reg = target.registry()
    backend = odm.Backend(target.name, reg.backend)
    repo = backend.define_repository("inj", {"name": "suite_go_injection", "hashKey": "k"})
    try:
        for i, p in enumerate(PAYLOADS):
            repo.save({"k": f"k{i:03d}", "v": p})
        stored = {f"k{i:03d}": p for i, p in enumerate(PAYLOADS)}
        checks = 0
        for p in PAYLOADS:
            got = {d["k"] for d in repo.get_all({"v": p})}
            assert got == {k for k, v in stored.items() if v == p}, p
            got = {d["k"] for d in repo.get_all(odm.Filter().match_any("v", [p]))}
            assert got == {k for k, v in stored.items() if v == p}, p
            got = {d["k"] for d in repo.get_all(odm.Filter().match_pattern("v", p))}
            assert got == {k for k, v in stored.items() if literal_like(p, v)}, p
            checks += 3
        with pytest.raises(odm.QueryError, match="starts with"):  # a '$' key is never data nor an operator
            repo.get_all({"v": {"$ne": None}})
        assert len(repo.get_all()) == len(PAYLOADS)
        print(f"\n{target.name}: {checks} Go-layer injection checks, none changed a query's meaning")
    finally:
        repo.delete_all()
        backend.shutdown()
        reg.close()


@pytest.mark.parametrize("payload", ["x' OR '1'='1", "$gt", "a.b", "#n0", ":v0", "\\"])
def test_payloads_round_trip_unchanged(payload: str, target: Any, make_registry: Callable[..., odm.Registry]) -> None:
    make_registry(Inj)
    Inj.create(k=1, v=payload, tags=[payload])
    got = Inj.get(1)
    assert got.v == payload and got.tags == [payload]
    got.update(v=payload + payload)
    assert Inj.get(1).v == payload + payload
