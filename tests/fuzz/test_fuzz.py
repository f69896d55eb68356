"""Property-based fuzzing of everything a user can hand the ODM.

Whatever the input (model data, Go-layer dicts and filters, query arguments, config dicts,
page cursors), the only exceptions that may escape are ``odm.ODMError`` subclasses, and a
call that fails leaves the stored data exactly as it was. Bounded: a fixed number of examples
per backend (under a minute for the whole file in ``make test``); ``ODM_FUZZ_EXAMPLES`` (default 3)
multiplies them for a longer local run and ``ODM_FUZZ_RANDOM=1`` draws new examples each run
(``make test`` replays a fixed set). Each failure hypothesis finds is shrunk and printed.
"""

from __future__ import annotations

import datetime as dt
import decimal
import os
import string
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import odm

from ..backends.models import ALL, Note, User

SCALE = float(os.environ.get("ODM_FUZZ_EXAMPLES", "3"))
#: ``make test`` replays the same examples every run (a CI result never depends on luck);
#: ODM_FUZZ_RANDOM=1 explores new ones, as a longer local or nightly run should.
RANDOM = os.environ.get("ODM_FUZZ_RANDOM", "") not in ("", "0")
SERVER_BACKENDS = {"postgres", "mongodb", "dynamodb"}
#: Examples run and non-odm exceptions seen, per test (reported in docs/reliability.md).
STATS: dict[str, int] = {"examples": 0, "succeeded": 0, "odm_errors": 0}


def examples(target: Any, local: int, server: int) -> int:
    return max(1, int((server if target.name in SERVER_BACKENDS else local) * SCALE))


def fuzz_settings(n: int) -> settings:
    return settings(max_examples=n, deadline=None, database=None, derandomize=not RANDOM,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                           HealthCheck.data_too_large, HealthCheck.filter_too_much])


# -- hostile values ---------------------------------------------------------------------------
hostile_text = st.one_of(
    st.text(max_size=12),
    st.text(alphabet=st.sampled_from(list("\x00\\'\"$.[]{}%_*?`;\x08\n\t é\u0301\U0001f600\ud800")), max_size=8),
    st.sampled_from(["", "$gt", "$where", "a.b", "a[0]", "' OR 1=1 --", "\\", "\x00", "__proto__", "id", "_id",
                     "1e1000000", "NaN", "-0", "9" * 400, "x" * 5000]),
)
hostile_numbers = st.one_of(
    st.integers(), st.integers(min_value=-(2**64), max_value=2**64), st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.sampled_from([decimal.Decimal("sNaN"), decimal.Decimal("1e999999"), decimal.Decimal("-1e-999999"),
                     decimal.Decimal("1.000000000000000000000000000000000000001"), 2**63, -(2**63) - 1, 10**400]),
)
hostile_scalars = st.one_of(
    st.none(), st.booleans(), hostile_numbers, hostile_text, st.binary(max_size=16),
    st.datetimes(), st.datetimes(timezones=st.just(dt.timezone.utc)), st.dates(), st.times(), st.uuids(),
    st.sampled_from([dt.datetime(1, 1, 1), dt.datetime(1, 1, 1, tzinfo=dt.timezone.utc), dt.datetime.max,
                     dt.timedelta(1), object(), type, ..., 1j, bytearray(b"x"), memoryview(b"y"), range(3)]),
)
hostile_values = st.recursive(
    hostile_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.tuples(inner, inner), st.frozensets(st.one_of(st.integers(), st.text(max_size=3)), max_size=3),
        st.sets(st.one_of(st.integers(), st.text(max_size=3)), max_size=3),
        st.dictionaries(st.one_of(hostile_text, st.integers(), st.none()), inner, max_size=4),
    ),
    max_leaves=8,
)
#: Values of the right type for most fields, with hostile content: these reach the server.
plausible_values = st.one_of(
    hostile_text, st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=False, allow_infinity=False),
    st.decimals(allow_nan=False, allow_infinity=False, min_value=-(10**30), max_value=10**30), st.booleans(),
    st.lists(hostile_text, max_size=3), st.datetimes(timezones=st.just(dt.timezone.utc)),
    st.fixed_dictionaries({"city": hostile_text}, optional={"street": hostile_text}), st.sampled_from(["red", "blue"]),
)
attribute_names = st.one_of(hostile_text, st.integers(), st.none(), st.tuples(st.text(max_size=2)))


def only_odm_errors(call: Callable[[], Any]) -> BaseException | None:
    """Run ``call``; return the odm error it raised (None if it succeeded); anything else fails."""
    STATS["examples"] += 1
    try:
        call()
    except odm.ODMError as exc:
        STATS["odm_errors"] += 1
        return exc
    STATS["succeeded"] += 1
    return None


# -- fixtures -----------------------------------------------------------------------------------
@pytest.fixture
def models(make_registry: Callable[..., odm.Registry]) -> odm.Registry:
    return make_registry(*ALL)


GO_DEFINITION: dict[str, Any] = {"name": "fuzz_go", "hashKey": "email", "indexes": ["name"],
                                 "enableTtl": False, "GSI": {"name": {}}}


@pytest.fixture
def go_repo(target: Any) -> Iterator[odm.Repository]:
    reg = target.registry()
    backend = odm.Backend(target.name, reg.backend)
    repo = backend.define_repository("fuzz_go", GO_DEFINITION)
    yield repo
    repo.delete_all()
    backend.shutdown()


def user_snapshot() -> list[dict[str, Any]]:
    return sorted((u.to_dict() for u in User.query()), key=lambda d: d["email"])


def go_snapshot(repo: odm.Repository) -> list[Any]:
    return sorted((sorted(d.items(), key=repr) for d in repo.get_all()), key=repr)


#: User data mostly of the right types (so it reaches the server), sometimes anything at all.
USER_VALUES = {
    "name": hostile_text, "age": st.integers(-(2**63), 2**63 - 1), "score": st.floats(allow_nan=False, allow_infinity=False),
    "active": st.booleans(), "tags": st.lists(hostile_text, max_size=3), "address": st.fixed_dictionaries({"city": hostile_text}),
    "balance": st.decimals(allow_nan=False, allow_infinity=False), "created_at": st.datetimes(timezones=st.just(dt.timezone.utc)),
    "color": st.sampled_from(["red", "blue"]),
}
user_data = st.one_of(st.fixed_dictionaries({}, optional=USER_VALUES),
                      st.dictionaries(st.sampled_from(list(USER_VALUES)), st.one_of(plausible_values, hostile_values), max_size=4))


# -- model input (no backend) -----------------------------------------------------------------------
USER_FIELDS = list(User._fields)


@given(st.dictionaries(st.one_of(st.sampled_from(USER_FIELDS), hostile_text), hostile_values, max_size=6))
@fuzz_settings(int(400 * SCALE))
def test_model_input_raises_only_validation_errors(data: dict[str, Any]) -> None:
    def build() -> None:
        user = User(**{str(k): v for k, v in data.items()})
        User.from_dict(user.to_dict())

    exc = only_odm_errors(build)
    assert exc is None or isinstance(exc, odm.ValidationError)


@given(st.sampled_from(["==", "!=", "<", "<=", ">", ">=", "in_", "not_in", "between", "startswith", "contains"]),
       st.sampled_from([*USER_FIELDS, "address.city"]), hostile_values, hostile_values)
@fuzz_settings(int(400 * SCALE))
def test_query_expressions_raise_only_query_errors(op: str, name: str, value: Any, other: Any) -> None:
    def build() -> None:
        ref: Any = User
        for part in name.split("."):
            ref = getattr(ref, part)
        if op in ("in_", "not_in", "startswith", "contains"):
            getattr(ref, op)(value)
        elif op == "between":
            ref.between(value, other)
        else:
            eval(f"ref {op} value", {"ref": ref, "value": value})

    exc = only_odm_errors(build)
    assert exc is None or isinstance(exc, odm.QueryError)


# -- model writes and queries on every backend ------------------------------------------------------
@pytest.mark.slow
def test_model_writes_fail_cleanly(target: Any, models: odm.Registry) -> None:
    User.create(email="base@x", name="Base", age=1)

    @given(st.sampled_from(["create", "save", "update", "insert_many", "save_condition"]),
           user_data, hostile_text)
    @fuzz_settings(examples(target, 120, 40))
    def run(action: str, data: dict[str, Any], email: str) -> None:
        before = user_snapshot()

        def call() -> None:
            if action == "create":
                User.create(**{"email": email, **data})
            elif action == "save":
                User(**{"email": email, **data}).save()
            elif action == "update":
                User.get("base@x").update(**{k: v for k, v in data.items() if k != "email"})
            elif action == "insert_many":
                User.insert_many([{"email": email, **data}, {"email": email + "2", "name": "n"}])
            else:
                User(**{"email": "base@x", **{k: v for k, v in data.items() if k != "email"}}).save(
                    condition=User.age == data.get("age"))

        exc = only_odm_errors(call)
        if exc is not None and not isinstance(exc, odm.DuplicateKey):
            assert user_snapshot() == before, f"{action} failed with {exc!r} but changed stored data"
        for user in User.query():
            if user.email != "base@x":
                user.delete()

    run()


@pytest.mark.slow
def test_query_arguments_fail_cleanly(target: Any, models: odm.Registry) -> None:
    User.insert_many([User(email=f"u{i}@x", name=f"n{i % 3}", age=i) for i in range(5)])
    before = user_snapshot()

    @given(st.sampled_from(USER_FIELDS), st.one_of(plausible_values, hostile_values), st.one_of(st.none(), hostile_numbers, hostile_text),
           st.one_of(st.none(), hostile_numbers, hostile_text), st.one_of(hostile_numbers, hostile_text, st.none()))
    @fuzz_settings(examples(target, 150, 40))
    def run(name: str, value: Any, limit: Any, offset: Any, size: Any) -> None:
        def call() -> None:
            q = User.query(**{name: value})
            q.count()
            list(q.limit(limit).offset(offset))
            q.page(size=size)

        only_odm_errors(call)

    run()
    assert user_snapshot() == before


@pytest.mark.slow
def test_page_cursors_fail_cleanly(target: Any, models: odm.Registry) -> None:
    Note.insert_many([Note(title=f"t{i}") for i in range(5)])
    real = Note.query().page(size=2).next_cursor
    assert real is not None

    @given(st.one_of(hostile_text, hostile_values,
                     st.builds(lambda i, s: real[:i] + s + real[i + len(s):], st.integers(0, len(real)), st.text(string.printable, max_size=3))))
    @fuzz_settings(examples(target, 150, 40))
    def run(cursor: Any) -> None:
        exc = only_odm_errors(lambda: Note.query().page(size=2, cursor=cursor))
        assert exc is None or isinstance(exc, odm.QueryError)

    run()


# -- the Go-style layer on every backend ---------------------------------------------------------------
@pytest.mark.slow
def test_go_layer_saves_and_filters_fail_cleanly(target: Any, go_repo: odm.Repository) -> None:
    go_repo.save({"email": "base@x", "name": "Base", "age": 1})

    @given(st.sampled_from(["save", "update", "get_all", "get_one", "delete_all", "match_any", "pattern", "order"]),
           st.dictionaries(attribute_names, st.one_of(plausible_values, hostile_values), max_size=3), hostile_values, hostile_values)
    @fuzz_settings(examples(target, 150, 40))
    def run(action: str, data: dict[Any, Any], value: Any, other: Any) -> None:
        before = go_snapshot(go_repo)

        def call() -> None:
            if action == "save":
                go_repo.save({"email": f"k{uuid.uuid4().hex[:6]}", **data})
            elif action == "update":
                go_repo.save({k: v for k, v in data.items() if k != "email"}, {"email": "base@x"})
            elif action == "get_all":
                go_repo.get_all(data)
            elif action == "get_one":
                go_repo.get_one(data)
            elif action == "delete_all":
                go_repo.delete_all({**data, "email": "nobody"})
            elif action == "match_any":
                go_repo.get_all(odm.Filter().match_any(next(iter(data), "name"), value))
            elif action == "pattern":
                go_repo.get_all(odm.Filter().match_pattern(next(iter(data), "name"), value))
            else:
                go_repo.get_all({}, order=value, sorting=other, limit=value, offset=other)

        exc = only_odm_errors(call)
        if exc is not None:
            assert go_snapshot(go_repo) == before, f"{action} failed with {exc!r} but changed stored data"
        for doc in go_repo.get_all():
            if doc["email"] != "base@x":
                go_repo.delete_one({"email": doc["email"]})

    run()


# -- config dicts -------------------------------------------------------------------------------------
config_values = st.one_of(hostile_scalars, st.lists(hostile_scalars, max_size=2), st.dictionaries(hostile_text, hostile_scalars, max_size=2))


db_info = st.one_of(hostile_values, st.dictionaries(
    st.one_of(st.sampled_from(["path", "Path", "file", "host", "endpoint", "awsRegion", "awsregion", "poolSize",
                               "database", "uri", "dsn", "user", "pass"]), hostile_text), config_values, max_size=3))
db_name = st.one_of(st.sampled_from(["sqlite", "SQLite", "postgres", "mongodb", "dynamodb", "mongo"]), hostile_scalars)
database = st.fixed_dictionaries({"dbName": db_name}, optional={"dbInfo": db_info, "cursorSecret": hostile_scalars})
configs = st.one_of(hostile_values, st.fixed_dictionaries({"database": st.one_of(hostile_values, database)}))


@given(configs)
@fuzz_settings(int(300 * SCALE))
def test_config_dicts_raise_only_config_errors(tmp_path_factory: pytest.TempPathFactory, cfg: Any) -> None:
    # Only configs that stay local: no real server is named, and SQLite paths stay in a temporary folder.
    db = cfg.get("database") if isinstance(cfg, dict) else None
    info = db.get("dbInfo") if isinstance(db, dict) else None
    if isinstance(info, dict):
        for key in ("path", "Path", "file"):
            if key in info:
                info[key] = ":memory:" if not isinstance(info[key], str) or not info[key] else str(tmp_path_factory.mktemp("cfg") / "x.db")
        for key in ("host", "endpoint", "uri", "dsn"):
            info.pop(key, None)

    def build() -> None:
        reg = odm.Registry.from_dict(cfg)
        reg.close()

    exc = only_odm_errors(build)
    assert exc is None or isinstance(exc, odm.ConfigError)
