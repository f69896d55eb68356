"""The per-model fast plans (odm/backends/sql/fast.py) give what the operations give (issue 11).

Every scenario runs twice on the same table, once with the backend's fast paths on and once off
(``Backend.fast_paths``: each call then runs its operation), and the outcomes must be the same:
the values returned, the errors (type and message) and what is stored afterwards. A backend
without fast plans runs the general path both times. Timestamps are compared by being set.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

import odm
from odm import Index, Model, fields
from odm.backends.base import Backend


class Quick(Model):
    k = fields.String(required=True)
    n = fields.Integer()
    small = fields.Integer(validate=lambda v: 0 <= v <= 9)
    tag = fields.String()
    slug = fields.String()
    price = fields.Decimal()
    version = fields.Integer()
    created = fields.DateTime(auto_now_add=True)
    changed = fields.DateTime(auto_now=True)

    class Meta:
        name = "fast_quick"
        hash_key = "k"
        version_field = "version"
        indexes = ["tag", "n", Index("slug", unique=True)]


class Plain(Model):
    k = fields.String(required=True)
    n = fields.Integer()
    tag = fields.String()
    slug = fields.String()
    label = fields.String(data_key="lbl")

    class Meta:
        name = "fast_plain"
        hash_key = "k"
        indexes = ["tag", Index("slug", unique=True)]


def outcome(call: Callable[[], Any]) -> Any:
    """What a call gives: its value (instances as dicts, timestamps as 'set'), or its error."""
    try:
        value = call()
    except odm.ODMError as exc:
        return ("error", type(exc).__name__, str(exc))
    return shown(value)


def shown(value: Any) -> Any:
    if isinstance(value, list):
        return sorted((shown(v) for v in value), key=repr)
    if isinstance(value, Model):
        return {k: ("set" if isinstance(v, dt.datetime) else v) for k, v in value.to_dict().items()}
    return value


def scenario(model: type[Any]) -> list[Any]:
    """Single-item calls of every kind, the good and the refused; then the table's contents."""
    out: list[Any] = []
    run = out.append
    run(outcome(lambda: model.create(k="a", n=1, tag="t", slug="s-a")))
    run(outcome(lambda: model.create(k="b", n=2, tag="t", slug="s-b")))
    run(outcome(lambda: model.create(k="a", n=3)))  # DuplicateKey on the key
    run(outcome(lambda: model.create(k="c", slug="s-a")))  # DuplicateKey on the unique index
    run(outcome(lambda: model.create(k="d", n="x")))  # ValidationError, nothing written
    run(outcome(lambda: model.create(k="d", bogus=1)))
    run(outcome(lambda: model.create(n=4)))  # the key is required
    run(outcome(lambda: model.create(k="caf\u00e9", n=5)))  # non-ASCII key: the codec's full check
    run(outcome(lambda: model.create(k="nul\x00", n=5)))
    run(outcome(lambda: model.get("a")))
    run(outcome(lambda: model.get("nobody")))
    run(outcome(lambda: model.get_or_none("nobody")))
    run(outcome(lambda: model.get("caf\u00e9")))
    run(outcome(lambda: model.get(7)))  # not a string: Binding.key's error
    run(outcome(lambda: model.get(None)))
    run(outcome(lambda: model.get("a", "b")))  # no range key
    run(outcome(lambda: model.get("a", only=["n"])))
    a = model.get("a")
    b = model.get("b")
    run(outcome(lambda: a.update(n=10)))
    run(outcome(lambda: a.update(tag=None)))  # removes the attribute
    run(outcome(lambda: a.update(n=2**63)))  # out of range: the general checks' error
    run(outcome(lambda: a.update(n=True)))
    run(outcome(lambda: a.update(n=12.0)))  # converted to 12
    run(outcome(lambda: a.update(tag="caf\u00e9", n=11)))
    run(outcome(lambda: a.update(tag="x\x00")))
    if "label" in model._fields:
        run(outcome(lambda: a.update(label="L")))  # stored under its data key
        run(outcome(lambda: list(model.query(label="L"))))
    run(outcome(lambda: a.update(n="x")))  # ValidationError, nothing written
    run(outcome(lambda: a.update(k="z")))  # a key field
    run(outcome(lambda: a.update(nope=1)))
    run(outcome(lambda: a.update()))
    run(outcome(lambda: b.update(slug="s-a")))  # the unique index
    run(outcome(lambda: a.update(n=odm.inc(5))))  # the general path (guarded increment)
    if "small" in model._fields:
        run(outcome(lambda: a.update(small=12)))  # a validator
        run(outcome(lambda: a.update(price="1.50")))
    gone = model.get("b")
    model.get("b").delete()
    run(outcome(lambda: gone.update(n=1)))  # NotFound (or ConcurrentModification with a version)
    run(outcome(lambda: list(model.query(tag="t"))))
    run(outcome(lambda: list(model.query(n=15))))
    run(outcome(lambda: list(model.query(n="15"))))  # not an integer: the compiler's error
    run(outcome(lambda: list(model.query(tag=None))))
    run(outcome(lambda: list(model.query(k="a"))))  # the key column
    run(outcome(lambda: list(model.query(slug="s-a"))))
    run(outcome(lambda: model.insert_many([{"k": "m1", "n": 1, "tag": "m"}, {"k": "m2", "n": 2, "slug": "s-m"}])))
    run(outcome(lambda: model.insert_many({"k": f"g{i}", "tag": "g"} for i in range(3))))  # a generator
    run(outcome(lambda: model.insert_many([{"k": "m3"}, {"k": "m1"}])))  # a clash: nothing written
    run(outcome(lambda: model.insert_many([{"k": "m4"}, {"k": "m4"}])))
    run(outcome(lambda: model.insert_many([{"k": "m5", "slug": "s-m"}])))  # the unique index
    run(outcome(lambda: model.insert_many([{"k": "m6"}, {"k": "m7", "n": "x"}])))  # invalid: nothing written
    run(outcome(lambda: model.insert_many([{"k": "m8"}, model(k="m9", n=9)])))  # an instance: the operation
    run(outcome(lambda: model.insert_many([])))
    run(outcome(lambda: model.query().count()))
    run(outcome(lambda: list(model.query())))
    return out


@pytest.mark.parametrize("model", [Plain, Quick], ids=["plain", "version-auto-now"])
def test_fast_and_general_paths_give_the_same_results_and_errors(make_registry: Any, monkeypatch: pytest.MonkeyPatch,
                                                                  model: type[Any]) -> None:
    make_registry(model)
    fast = scenario(model)
    model.query().delete()
    monkeypatch.setattr(Backend, "fast_paths", False)
    general = scenario(model)
    assert fast == general
    assert fast[0] != fast[2] and fast[2][1] == "DuplicateKey"  # the scenario did reach its cases


def test_the_fast_plan_runs_no_operation(make_registry: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where a backend has a fast plan, the usual calls do not go through run/iterate at all."""
    reg = make_registry(Plain)
    if Plain._fast_plan() is None:
        pytest.skip("this backend has no fast plans")
    item = Plain.create(k="a", n=1, tag="t")

    def refused(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("an operation ran")

    monkeypatch.setattr(type(reg.backend), "run", refused)
    monkeypatch.setattr(type(reg.backend), "iterate", refused)
    assert Plain.create(k="b", n=2, tag="t").n == 2
    assert Plain.get("a").n == 1
    assert Plain.get_or_none("zz") is None
    assert item.update(n=5).n == 5
    assert sorted(p.k for p in Plain.query(tag="t")) == ["a", "b"]
    with pytest.raises(AssertionError):
        item.update(n=odm.inc(1))  # an increment is not a plain statement: its operation runs


def test_calls_inside_a_transaction_join_it(make_registry: Any) -> None:
    reg = make_registry(Plain)
    if not reg.backend.features.transactions:
        pytest.skip("no transactions on this backend")
    item = Plain.create(k="a", n=1, tag="t")
    with pytest.raises(RuntimeError), reg.transaction():
        Plain.create(k="b", n=2, tag="t")
        item.update(n=9)
        if reg.backend.features.reads_see_own_writes_in_transaction:
            assert Plain.get("b").n == 2  # reads join the transaction too
            assert len(list(Plain.query(tag="t"))) == 2
        raise RuntimeError("roll back")
    assert Plain.get_or_none("b") is None
    assert Plain.get("a").n == 1


def test_a_closed_registry_refuses_the_calls(make_registry: Any) -> None:
    reg = make_registry(Plain)
    item = Plain.create(k="a", n=1)
    Plain.query().delete()  # a server keeps its tables: nothing left behind once the registry is closed
    reg.close()
    for call in (lambda: Plain.get("a"), lambda: Plain.create(k="b"), lambda: item.update(n=2),
                 lambda: list(Plain.query(tag="t"))):
        with pytest.raises(odm.ConfigError, match="closed"):
            call()


class Hooked(Model):
    k = fields.String(required=True)
    n = fields.Integer()

    class Meta:
        name = "fast_hooked"
        hash_key = "k"

    def pre_save(self) -> None:
        HOOKS_SEEN.append("pre_save")

    def post_update(self, changes: dict[str, Any]) -> None:
        HOOKS_SEEN.append("post_update")


HOOKS_SEEN: list[str] = []


def test_hooks_run_on_the_general_path(make_registry: Any) -> None:
    make_registry(Hooked)
    HOOKS_SEEN.clear()
    item = Hooked.create(k="a", n=1)
    item.update(n=2)
    assert HOOKS_SEEN == ["pre_save", "post_update"]
    assert Hooked.get("a").n == 2


def test_a_model_bound_again_uses_its_new_binding(make_registry: Any) -> None:
    first = make_registry(Plain)
    Plain.create(k="a", n=1)
    plan = Plain._fast_plan()
    make_registry(Plain, rebind=True)
    first.close()  # the old binding is closed: calls go to the new one
    assert Plain.get("a").n == 1
    assert Plain.create(k="b", n=2).n == 2
    if plan is not None:
        assert Plain._fast_plan() is not plan and Plain._fast_plan().binding is Plain._odm_binding
