"""Polymorphic families (``Meta.polymorphic``, docs/models.md "Inheritance") on random data.

A base and three subclasses share one table: ``Gadget(Thing)``, ``Widget(Gadget)`` with its own
discriminator, and ``Doohickey(Thing)``, which stores ``w`` under the same name and type as
Widget does. Random items of every class are saved; random queries on every class of the
family (conditions on any member's fields, as a user may write ``Thing.query(Widget.w > 1)``)
must return the same items as the same classes as the reference, whose reading is: a class's
query holds the items of that class and its subclasses that match the condition on their stored
attributes. ``get_or_none`` through every class, ``count``, ``distinct`` and ``count_by`` alike.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

import odm
from odm import Model, fields

from .harness import Runner, expected_groups, record, report, same_counts, same_distinct, same_value, stat
from .known import Case
from .reference import MISSING, matches
from .strategies import Cond, decimals, ints, short

TABLE = "conf_things"
CLASSES = ("Thing", "Gadget", "Widget", "Doohickey")
#: Class -> the classes whose items its queries return (itself and its subclasses).
MEMBERS = {"Thing": CLASSES, "Gadget": ("Gadget", "Widget"), "Widget": ("Widget",), "Doohickey": ("Doohickey",)}
#: Class -> its fields beyond the key, with a strategy of values and the kind of condition they take.
OWN = {"Thing": {"n": ints, "s": short}, "Gadget": {"g": short, "d": decimals()}, "Widget": {"w": ints},
       "Doohickey": {"w": ints}}


def fields_of(name: str) -> dict[str, Any]:
    """Every field of a class (its own and inherited)."""
    chain = {"Thing": ["Thing"], "Gadget": ["Thing", "Gadget"], "Widget": ["Thing", "Gadget", "Widget"],
             "Doohickey": ["Thing", "Doohickey"]}[name]
    out: dict[str, Any] = {}
    for cls in chain:
        out.update(OWN[cls])
    return out


def build_family() -> dict[str, type[Model]]:
    class Thing(Model):
        pk = fields.String(required=True)
        sk = fields.Integer(required=True)
        n = fields.Integer()
        s = fields.String()

        class Meta:
            name = TABLE
            hash_key = "pk"
            range_key = "sk"
            polymorphic = True

    class Gadget(Thing):
        g = fields.String()
        d = fields.Decimal()

    class Widget(Gadget):
        w = fields.Integer()

        class Meta:
            discriminator = "wid"

    class Doohickey(Thing):
        w = fields.Integer()  # the same stored name and type as Widget.w

    return {"Thing": Thing, "Gadget": Gadget, "Widget": Widget, "Doohickey": Doohickey}


def doc_of(obj: Any) -> dict[str, Any]:
    """An instance as the reference sees it: its class and its present attributes."""
    out = {name: getattr(obj, name) for name in type(obj)._fields if getattr(obj, name) is not None}
    out["_class"] = type(obj).__name__
    return out


@st.composite
def family_rows(draw: Any) -> list[dict[str, Any]]:
    keys = draw(st.lists(st.tuples(st.sampled_from(["a", "b"]), st.integers(0, 3)), max_size=8, unique=True))
    out = []
    for pk, sk in keys:
        cls = draw(st.sampled_from(CLASSES))
        row: dict[str, Any] = {"_class": cls, "pk": pk, "sk": sk}
        for name, strategy in fields_of(cls).items():
            if draw(st.integers(0, 2)):
                row[name] = draw(strategy)
        out.append(row)
    return out


@dataclass(frozen=True)
class FamilyQuery:
    """``<on>.query(<where>)`` where the condition's field refs come from class ``refs``; reads of it."""

    on: str
    where: Cond | None
    refs: str
    group: str

    def build(self, family: dict[str, type[Model]]) -> Any:
        model = family[self.on]
        return model.query() if self.where is None else model.query(self.where.build(family[self.refs]))

    def __repr__(self) -> str:
        where = "" if self.where is None else repr(self.where).replace("Item.", f"{self.refs}.")
        return f"{self.on}.query({where}) [iter, count, distinct({self.group!r}), count_by({self.group!r})]"


@st.composite
def family_queries(draw: Any, pool: list[dict[str, Any]]) -> FamilyQuery:
    on = draw(st.sampled_from(CLASSES))
    refs = draw(st.sampled_from(CLASSES))
    names = ["pk", "sk", *fields_of(refs)]
    where = None
    for _ in range(draw(st.integers(0, 2))):
        name = draw(st.sampled_from(names))
        stored = [r[name] for r in pool if name in r]
        strategy = {"pk": st.sampled_from(["a", "b"]), "sk": st.integers(0, 3), **fields_of(refs)}[name]
        value = draw(st.sampled_from(stored)) if stored and draw(st.booleans()) else draw(strategy)
        op = draw(st.sampled_from(["==", "!=", "<", ">=", "exists", "not_exists"]))
        leaf = Cond("op", name, op, () if op.endswith("exists") else (value,))
        if where is not None:
            leaf = Cond(draw(st.sampled_from(["and", "or"])), children=(where, leaf))
        where = leaf
    group = draw(st.sampled_from(["pk", "sk", *fields_of(on)]))
    return FamilyQuery(on, where, refs, group)


class FamilyRunner:
    """One backend's family and the current data (``rows``, each with its class under ``_class``)."""

    def __init__(self, backend: str, features: Any, family: dict[str, type[Model]], ref: dict[str, type[Model]]) -> None:
        self.backend = backend
        self.runner = Runner(backend, features, family["Thing"], ref["Thing"])  # declared refusals
        self.family = family
        self.ref = ref
        self.docs: list[dict[str, Any]] = []
        self.rows: list[dict[str, Any]] = []
        self.complete = True

    def load(self, rows: list[dict[str, Any]]) -> None:
        self.family["Thing"].query().delete()
        self.rows, self.docs, self.complete = rows, [], True
        for row in rows:
            data = {k: v for k, v in row.items() if k != "_class"}
            expected = doc_of(self.ref[row["_class"]](**data))
            try:
                self.family[row["_class"]](**data).save()
            except odm.ODMError as exc:
                self.complete = False
                why = self.runner.declared_refusal(data)
                if isinstance(exc, odm.ValidationError) and why:
                    stat(self.backend, f"refused ({why})")
                else:
                    report(Case(self.backend, [expected], action="roundtrip"), "save of a family member failed", "saved",
                           exc, row, "save()")
                continue
            self.docs.append(expected)
            stat(self.backend, "family roundtrips")
            for cls in CLASSES:  # every class's get: the item as its own class, or None when not a member
                got = self.family[cls].get_or_none(row["pk"], row["sk"])  # type: ignore[attr-defined]
                want = expected if row["_class"] in MEMBERS[cls] else None
                have = None if got is None else doc_of(got)
                if (want is None) != (have is None) or (have is not None and not same_value(want, have)):
                    report(Case(self.backend, [expected], action="get"), f"{cls}.get_or_none", want, have, row, f"{cls}.get_or_none")

    def check(self, fq: FamilyQuery) -> None:
        stat(self.backend, "family queries")
        ref_query = fq.build(self.ref)
        node = None if fq.where is None else fq.where.build(self.ref[fq.refs])
        match = [d for d in self.docs if d["_class"] in MEMBERS[fq.on] and matches(node, d)]
        case = Case(self.backend, self.docs, ref_query.spec.where)
        data = self.rows if self.complete else None
        query = fq.build(self.family)

        def run(read: str, call: Callable[[], Any]) -> Any:
            try:
                return call()
            except odm.ODMError as exc:
                why = self.runner.refused_query(case.node) if isinstance(exc, odm.QueryError) else None
                if why:
                    stat(self.backend, f"refused ({why})")
                else:
                    report(case, f"{read} raised", "an answer", exc, self.rows, fq)
                return MISSING

        objs = run("iter", query.all)
        if objs is not MISSING:
            want = sorted((d["pk"], d["sk"], d["_class"]) for d in match)
            have = sorted((o.pk, o.sk, type(o).__name__) for o in objs)
            if want != have:
                report(case, "iter: items or classes", want, have, self.rows, fq)
            else:
                record(data, fq, "family iter", self.backend, have)
                by_key = {(d["pk"], d["sk"]): d for d in match}
                for obj in objs:
                    if not same_value(by_key[(obj.pk, obj.sk)], doc_of(obj)):
                        report(case, "iter: item values", by_key[(obj.pk, obj.sk)], doc_of(obj), self.rows, fq)
        n = run("count", query.count)
        if n is not MISSING and n != len(match):
            report(case, "count", len(match), n, self.rows, fq)
        groups, counts = expected_groups(ref_query, fq.group, match)
        got = run("distinct", lambda: query.distinct(fq.group))
        if got is not MISSING:
            if not same_distinct(groups, got):
                report(case, f"distinct({fq.group!r})", groups, got, self.rows, fq)
            else:
                record(data, fq, "family distinct", self.backend, got)
        by = run("count_by", lambda: query.count_by(fq.group))
        if by is not MISSING:
            have_counts = list(by.items())
            if not same_counts(counts, have_counts):
                report(case, f"count_by({fq.group!r})", counts, have_counts, self.rows, fq)
