"""Running one case on one backend and judging the answer against the reference.

A disagreement names the backend, the data and the query. Outside collect mode it fails
at once (hypothesis then shrinks it); with ``ODM_CONFORMANCE_COLLECT=1`` every one is kept
and written to ``ODM_CONFORMANCE_REPORT`` so a long run can count them all.
"""

from __future__ import annotations

import decimal
import json
import math
import os
from collections import Counter
from collections.abc import Callable
from typing import Any

import odm

from .known import Case, all_values, known, node_values
from .model import INDEX_STRING_FIELDS
from .reference import MISSING, equal, lookup, matches, ordered, same_sort_values, sort_values
from .updates import Refused, UpdateCase, apply, attrs, check, validation_refusal

SCALE = float(os.environ.get("ODM_CONFORMANCE_SCALE", "1"))
COLLECT = os.environ.get("ODM_CONFORMANCE_COLLECT") == "1"
REPORT = os.environ.get("ODM_CONFORMANCE_REPORT", "")

#: Per backend: counters for the terminal summary (see conftest.py).
STATS: dict[str, Counter[str]] = {}
#: Disagreements not explained by a known difference (collect mode).
FOUND: list[dict[str, str]] = []
#: Cross-backend answers: (data, query, read) -> {backend: canonical answer}.
ANSWERS: dict[tuple[str, str, str], dict[str, str]] = {}


class Disagreement(AssertionError):
    pass


def stat(backend: str, name: str, n: int = 1) -> None:
    STATS.setdefault(backend, Counter())[name] += n


def same_value(a: Any, b: Any) -> bool:
    """Equal with types: Decimal stays Decimal, sets stay sets, floats keep their sign, datetimes stay UTC."""
    if isinstance(a, (set, frozenset)) and isinstance(b, (set, frozenset)):
        return a == b
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if isinstance(a, decimal.Decimal):  # all its digits: 1.10 stays 1.10
        return a.as_tuple() == b.as_tuple()
    if hasattr(a, "utcoffset") and hasattr(a, "tzinfo"):
        return bool(a == b) and b.utcoffset() is not None and not b.utcoffset()
    return bool(a == b)


def significant_digits(value: decimal.Decimal) -> int:
    return len("".join(map(str, value.as_tuple().digits)).rstrip("0")) or 1


def expected_groups(ref_query: Any, group: Any, match: list[dict[str, Any]]) -> tuple[list[Any], list[tuple[Any, int]]]:
    """``distinct(group)`` and ``count_by(group)`` (as item pairs) as the reference computes them over ``match``."""
    path = ref_query._group_path(group)
    present = [v for v in (lookup(d, path) for d in match) if v is not MISSING]
    groups: list[Any] = []
    for value in present:
        if not any(equal(g, value) for g in groups):
            groups.append(value)
    groups.sort()
    counts: list[tuple[Any, int]] = [(g, sum(1 for v in present if equal(v, g))) for g in groups]
    if len(present) < len(match):
        counts.append((None, len(match) - len(present)))
    return groups, counts


def same_distinct(expected: list[Any], got: list[Any]) -> bool:
    return len(got) == len(expected) and all(same_value(a, b) for a, b in zip(expected, got, strict=False))


def same_counts(expected: list[tuple[Any, int]], got: list[tuple[Any, int]]) -> bool:
    return len(got) == len(expected) and all(same_value(a[0], b[0]) and a[1] == b[1]
                                             for a, b in zip(expected, got, strict=False))


def report(case: Case, what: str, expected: Any, actual: Any, data: Any, query: Any) -> None:
    """A disagreement: counted as known when a KNOWN_DIFFERENCES entry covers it, else failed or collected."""
    items = known(case)
    if items:
        for item in items:
            stat(case.backend, f"known#{item}")
        return
    stat(case.backend, "disagreements")
    entry = {"backend": case.backend, "what": what, "data": repr(data), "query": repr(query),
             "expected": repr(expected), "actual": repr(actual)}
    if COLLECT:
        FOUND.append(entry)
        return
    raise Disagreement("\n".join(f"{k}: {v}" for k, v in entry.items()))


def write_report() -> None:
    if REPORT:
        os.makedirs(os.path.dirname(os.path.abspath(REPORT)), exist_ok=True)
        with open(REPORT, "w", encoding="utf-8") as out:
            json.dump({"stats": {k: dict(v) for k, v in STATS.items()}, "disagreements": FOUND}, out, indent=1, default=repr)


def assert_none_collected(backend: str, before: int) -> None:
    """In collect mode, fail the test if it collected disagreements (from ``FOUND[before:]``)."""
    found = [d for d in FOUND[before:] if d["backend"] == backend]
    assert not found, f"{len(found)} disagreements on {backend} (see {REPORT or 'the summary'}); first: {found[0]}"


def record(data: Any, query: Any, read: str, backend: str, answer: Any) -> None:
    if data is None:  # this backend did not hold all of the data
        return
    ANSWERS.setdefault((repr(data), repr(query), read), {})[backend] = repr(answer)


class Runner:
    """One backend's model class, the reference model class and the current data."""

    def __init__(self, backend: str, features: Any, model: type[odm.Model], ref_model: type[odm.Model]) -> None:
        self.backend = backend
        self.features = features
        self.model = model
        self.ref_model = ref_model
        self.rows: list[dict[str, Any]] = []
        self.docs: list[dict[str, Any]] = []
        self.load_failed = False

    @property
    def data_key(self) -> Any:
        return None if self.load_failed else self.rows

    def too_many_digits(self, values: Any) -> bool:
        most = self.features.max_decimal_digits
        return most is not None and any(isinstance(v, decimal.Decimal) and significant_digits(v) > most for v in values)

    def declared_refusal(self, row: dict[str, Any]) -> str | None:
        """Why this backend may refuse to store ``row``, by what its features declare (None: it must store it)."""
        low, high = self.features.min_number, self.features.max_number
        numbers = [v for v in row.values() if isinstance(v, (float, decimal.Decimal))]
        if any(v != 0 and not low <= abs(v) <= high for v in numbers):
            return "number range"
        if self.too_many_digits(all_values(row)):
            return "decimal digits"
        if not self.features.empty_string_index_keys and any(row.get(k) == "" for k in INDEX_STRING_FIELDS):
            return "empty index key"
        return None

    def refused_query(self, node: Any) -> str | None:
        """Why this backend may refuse a query or condition with these values, by its features."""
        return "decimal digits" if self.too_many_digits(v for _, v in node_values(node)) else None

    # -- data -------------------------------------------------------------------------------
    def load(self, rows: list[dict[str, Any]], doc_of: Callable[[Any], dict[str, Any]]) -> None:
        """Replace the stored data with ``rows``; every valid instance must save and read back equal."""
        self.model.query().delete()
        self.rows, self.docs, self.load_failed = rows, [], False
        self.values: dict[tuple[str, int], dict[str, Any]] = {}  # attribute values by key, for updates
        for row in rows:
            expected = doc_of(self.ref_model(**row))
            case = Case(self.backend, [expected], action="roundtrip")
            try:
                self.model(**row).save()
            except Exception as exc:  # noqa: BLE001 - a raw driver error escaping is a disagreement too
                self.load_failed = True
                why = self.declared_refusal(row)
                if isinstance(exc, odm.ValidationError) and why:
                    stat(self.backend, f"refused ({why})")
                    continue
                report(case, "save of a valid instance failed", "saved", exc, row, "save()")
                continue
            self.docs.append(expected)
            self.values[(row["pk"], row["sk"])] = attrs(self.ref_model(**row))
            got = self.model.get_or_none(row["pk"], row["sk"])
            actual = None if got is None else doc_of(got)
            stat(self.backend, "roundtrips")
            if actual is None or not same_value(expected, actual):
                report(case, "read back differs from what was saved", expected, actual, row, "save(); get()")

    # -- queries ----------------------------------------------------------------------------
    def check(self, qcase: Any, doc_of: Callable[[Any], dict[str, Any]]) -> None:
        ref_query = qcase.build(self.ref_model)
        node, order = ref_query.spec.where, ref_query.spec.order
        case = Case(self.backend, self.docs, node, order)
        match = [d for d in self.docs if matches(node, d)]
        by_key = {(d["pk"], d["sk"]): d for d in self.docs}
        keys = {(d["pk"], d["sk"]) for d in match}
        expected_sorted = ordered(match, order)
        stat(self.backend, "queries")
        try:
            query = qcase.build(self.model)
        except odm.QueryError as exc:
            report(case, "query refused while building", "a query", exc, self.rows, qcase)
            return

        def run(read: str, call: Callable[[], Any]) -> Any:
            try:
                return call()
            except odm.QueryError as exc:
                if order and not self.features.supports_arbitrary_order:
                    stat(self.backend, "refused (order)")
                    return MISSING
                why = self.refused_query(node)
                if why:
                    stat(self.backend, f"refused ({why})")
                    return MISSING
                report(case, f"{read} raised", "an answer", exc, self.rows, qcase)
            except odm.ODMError as exc:
                report(case, f"{read} raised", "an answer", exc, self.rows, qcase)
            return MISSING

        def judge(read: str, objs: list[Any], windowed: bool, start: int, stop: int | None) -> None:
            got = [doc_of(o) for o in objs]
            got_keys = [(d["pk"], d["sk"]) for d in got]
            if len(set(got_keys)) != len(got_keys) or not set(got_keys) <= keys:
                report(case, f"{read}: wrong items", sorted(keys), got_keys, self.rows, qcase)
                return
            if order:
                want = [sort_values(d, order) for d in expected_sorted[start:stop]]
                have = [sort_values(by_key[k], order) for k in got_keys]
                if len(want) != len(have) or not all(same_sort_values(a, b) for a, b in zip(want, have, strict=True)):
                    report(case, f"{read}: wrong order or window", want, have, self.rows, qcase)
                    return
                record(self.data_key, qcase, read, self.backend, have)
            else:
                n = len(match[start:stop])
                if len(got_keys) != n or (not windowed and set(got_keys) != keys):
                    report(case, f"{read}: wrong items", sorted(keys) if not windowed else f"{n} of {sorted(keys)}", got_keys, self.rows, qcase)
                    return
                record(self.data_key, qcase, read, self.backend, sorted(got_keys) if not windowed else n)

        windowed = query.limit(qcase.limit).offset(qcase.offset) if (qcase.limit or qcase.offset) else query
        stop = None if qcase.limit is None else qcase.offset + qcase.limit
        objs = run("iter", lambda: list(windowed))
        if objs is not MISSING:
            judge("iter", objs, bool(qcase.limit or qcase.offset), qcase.offset, stop)
        if qcase.page_size:
            def pages() -> list[Any]:
                out: list[Any] = []
                cursor = None
                for _ in range(len(self.docs) + 2):
                    page = query.offset(qcase.offset).page(size=qcase.page_size, cursor=cursor)
                    out.extend(page.items)
                    cursor = page.next_cursor
                    if cursor is None:
                        return out
                raise AssertionError("page() never returned a last page")

            objs = run("pages", pages)
            if objs is not MISSING:
                judge("pages", objs, bool(qcase.offset), qcase.offset, None)
        if "count" in qcase.reads:
            n = run("count", query.count)
            if n is not MISSING:
                if n != len(match):
                    report(case, "count", len(match), n, self.rows, qcase)
                else:
                    record(self.data_key, qcase, "count", self.backend, n)
        if "exists" in qcase.reads:
            e = run("exists", query.exists)
            if e is not MISSING:
                if e != bool(match):
                    report(case, "exists", bool(match), e, self.rows, qcase)
                else:
                    record(self.data_key, qcase, "exists", self.backend, e)
        if "distinct" in qcase.reads or "count_by" in qcase.reads:
            self.check_groups(qcase, query, ref_query, match, case, run)
        if "first" in qcase.reads:
            first = run("first", lambda: query.offset(qcase.offset).first())
            if first is not MISSING:
                judge("first", [] if first is None else [first], True, qcase.offset, qcase.offset + 1)

    def check_groups(self, qcase: Any, query: Any, ref_query: Any, match: list[dict[str, Any]], case: Case,
                     run: Callable[[str, Callable[[], Any]], Any]) -> None:
        """``distinct`` and ``count_by`` of ``qcase.group`` over the (unwindowed) matches."""
        groups, counts = expected_groups(ref_query, qcase.group, match)
        if "distinct" in qcase.reads:
            got = run("distinct", lambda: query.distinct(qcase.group))
            if got is not MISSING:
                if not same_distinct(groups, got):
                    report(case, f"distinct({qcase.group!r})", groups, got, self.rows, qcase)
                else:
                    record(self.data_key, qcase, "distinct", self.backend, got)
        if "count_by" in qcase.reads:
            got = run("count_by", lambda: query.count_by(qcase.group))
            if got is not MISSING:
                have = list(got.items())
                if not same_counts(counts, have):
                    report(case, f"count_by({qcase.group!r})", counts, have, self.rows, qcase)
                else:
                    record(self.data_key, qcase, "count_by", self.backend, have)

    def get(self, pk: str, sk: int, doc_of: Callable[[Any], dict[str, Any]]) -> None:
        """``get_or_none`` by key: the stored item, or None (also for a key no item can have, such as "")."""
        want = next((d for d in self.docs if (d["pk"], d["sk"]) == (pk, sk)), None)
        case = Case(self.backend, self.docs, self.ref_model.pk == pk, action="get")  # type: ignore[attr-defined]
        query = f"Item.get_or_none({pk!r}, {sk!r})"
        stat(self.backend, "gets")
        try:
            got = self.model.get_or_none(pk, sk)  # type: ignore[attr-defined]
        except odm.ODMError as exc:
            report(case, "get_or_none raised", want, exc, self.rows, query)
            return
        have = None if got is None else doc_of(got)
        if (have is None) != (want is None) or (have is not None and not same_value(want, have)):
            report(case, "get_or_none", want, have, self.rows, query)

    # -- conditional writes --------------------------------------------------------------------
    def conditional_save(self, row: dict[str, Any], cond: Any, doc_of: Callable[[Any], dict[str, Any]]) -> None:
        key = (row["pk"], row["sk"])
        old = next((d for d in self.docs if (d["pk"], d["sk"]) == key), None)
        ref_node = cond.build(self.ref_model)
        new = doc_of(self.ref_model(**row))
        holds = matches(ref_node, old if old is not None else {})
        case = Case(self.backend, [*([old] if old else []), new], ref_node, action="condition")
        query = f"Item(**data).save(condition={cond!r}) over {'the stored item' if old else 'no stored item'}"
        stat(self.backend, "conditional writes")
        try:
            self.model(**row).save(condition=cond.build(self.model))
            outcome = "saved"
        except odm.ConditionFailed:
            outcome = "ConditionFailed"
        except Exception as exc:  # noqa: BLE001 - a raw driver error escaping is a disagreement too
            outcome = repr(exc)
        want = "saved" if holds else "ConditionFailed"
        why = self.declared_refusal(row) if outcome.startswith("ValidationError") else (
            self.refused_query(ref_node) if outcome.startswith("QueryError") else None)
        if why:
            stat(self.backend, f"refused ({why})")
            return
        if outcome != want:
            report(case, "conditional save", want, outcome, [old, row], query)
        else:
            record([old, row], query, "condition", self.backend, outcome)
        got = self.model.get_or_none(*key)
        after = None if got is None else doc_of(got)
        expected = new if outcome == "saved" else old
        if (after is None) != (expected is None) or (after is not None and not same_value(expected, after)):
            report(case, f"stored item after a conditional save that {outcome}", expected, after, [old, row], query)
        if outcome == "saved":
            self.docs = [d for d in self.docs if (d["pk"], d["sk"]) != key] + [new]
            self.values[key] = attrs(self.ref_model(**row))

    # -- atomic updates --------------------------------------------------------------------------
    def expect_update(self, ucase: UpdateCase, doc_of: Callable[[Any], dict[str, Any]]) -> tuple[Any, dict[Any, dict[str, Any]]]:
        """The reference's outcome (an error name, "updated" or a count) and the new values of each changed item."""
        refused = validation_refusal(ucase.acts)
        changed: dict[Any, dict[str, Any]] = {}
        if ucase.key is not None:
            current = self.values.get(ucase.key)
            if refused or current is None:
                return refused or "NotFound", changed
            try:
                check(ucase.acts, current, self.features.max_number)
            except Refused as exc:
                return exc.kind, changed
            changed[ucase.key] = apply(ucase.acts, current)
            return "updated", changed
        node = None if ucase.where is None else ucase.where.build(self.ref_model)
        for doc in self.docs:
            key = (doc["pk"], doc["sk"])
            if not matches(node, doc):
                continue
            try:
                check(ucase.acts, self.values[key], self.features.max_number)
            except Refused:
                continue  # left alone and not counted
            changed[key] = apply(ucase.acts, self.values[key])
        return refused or len(changed), ({} if refused else changed)

    def update(self, ucase: UpdateCase, doc_of: Callable[[Any], dict[str, Any]]) -> None:
        """``instance.update(...)`` or ``Query(...).update(...)``: the outcome and every stored item after it."""
        stat(self.backend, "updates")
        want, changed = self.expect_update(ucase, doc_of)
        node = None if ucase.where is None else ucase.where.build(self.ref_model)
        touched = [d for d in self.docs if ((d["pk"], d["sk"]) == ucase.key if ucase.key is not None else matches(node, d))]
        case = Case(self.backend, touched, node, action="update", acts=ucase.acts)
        data = [self.values[(d["pk"], d["sk"])] for d in self.docs]
        expected = {(d["pk"], d["sk"]): d for d in self.docs}
        for key, values in changed.items():
            expected[key] = doc_of(self.ref_model(**values))
        refreshed = None
        try:
            if ucase.key is not None:
                obj = self.model.get_or_none(*ucase.key) or self.model(pk=ucase.key[0], sk=ucase.key[1])  # type: ignore[attr-defined]
                refreshed = ucase.call(self.model, obj)
                outcome: Any = "updated"
            else:
                query = self.model.query() if ucase.where is None else self.model.query(ucase.where.build(self.model))
                outcome = ucase.call(self.model, query)
        except odm.ODMError as exc:
            outcome = type(exc).__name__
        except Exception as exc:  # noqa: BLE001 - a raw driver error escaping is a disagreement too
            outcome = f"raw {exc!r}"
        why = None
        if outcome in ("ValidationError", "QueryError") and outcome != want:
            why = next((w for w in (self.declared_refusal(v) for v in changed.values()) if w), None) or \
                self.declared_action_refusal(ucase) or self.refused_query(node)
        if why:
            stat(self.backend, f"refused ({why})")
        elif outcome != want:
            report(case, "update outcome", want, outcome, data, ucase)
        else:
            record(data, ucase, "update", self.backend, outcome)
            stat(self.backend, "items updated" if isinstance(outcome, int) or outcome == "updated" else f"updates refused ({outcome})",
                 outcome if isinstance(outcome, int) else 1)
        stored = {(o.pk, o.sk): o for o in self.model.query()}  # type: ignore[attr-defined]
        got = {key: doc_of(o) for key, o in stored.items()}
        if why:  # a declared refusal: each item is as it was, or (one item at a time) updated
            ok = got.keys() == expected.keys() and all(
                same_value(got[k], expected[k]) or any(same_value(got[k], d) for d in self.docs if (d["pk"], d["sk"]) == k)
                for k in got)
        else:
            ok = got.keys() == expected.keys() and all(same_value(got[k], expected[k]) for k in got)
            if ok and refreshed is not None and ucase.key is not None and not same_value(expected[ucase.key], doc_of(refreshed)):
                report(case, "the instance refreshed by update()", expected[ucase.key], doc_of(refreshed), data, ucase)
        if not ok:
            diff = sorted(k for k in got.keys() | expected.keys() if k not in got or k not in expected or not same_value(got[k], expected[k]))
            report(case, "stored items after the update", {k: expected.get(k) for k in diff}, {k: got.get(k) for k in diff}, data, ucase)
        elif not why:
            record(data, ucase, "stored after update", self.backend, sorted(got.items()))
        # Go on from the reference's items (each as updated where the backend updated it).
        for key, values in changed.items():
            if key in got and same_value(got[key], expected[key]):
                self.values[key] = values
        self.docs = [doc_of(self.ref_model(**v)) for v in self.values.values()]
        if not ok:  # put them back on the backend too, so one disagreement does not cascade
            self.model.query().delete()
            for key, values in list(self.values.items()):
                try:
                    self.model(**values).save()
                except Exception:  # noqa: BLE001 - not storable here (a known difference): leave it out
                    del self.values[key]
            self.docs = [doc_of(self.ref_model(**v)) for v in self.values.values()]

    def declared_action_refusal(self, ucase: UpdateCase) -> str | None:
        """Why this backend may refuse the update's own values (an amount or element beyond its limits)."""
        values = [v for act in ucase.acts for v in all_values(list(act.args))]
        low, high = self.features.min_number, self.features.max_number
        if any(isinstance(v, (float, decimal.Decimal)) and v != 0 and not low <= abs(v) <= high for v in values):
            return "number range"
        if self.too_many_digits(values):
            return "decimal digits"
        if not self.features.empty_string_index_keys and any(
                act.path in INDEX_STRING_FIELDS and act.op == "set" and act.args[0] == "" for act in ucase.acts):
            return "empty index key"
        return None
