"""Golden tests: the shared expression tree compiled by the SQL compiler's PostgreSQL (JSONB) dialect."""

from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal
from typing import Any

import pytest

pytest.importorskip("psycopg")

from psycopg.types.json import Jsonb  # noqa: E402

from odm import EmbeddedModel, Model, fields  # noqa: E402
from odm.backends.codec import Codec  # noqa: E402
from odm.backends.sql.compiler import SQLCompiler  # noqa: E402
from odm.backends.sql.postgres import PostgresDialect, normalise_like  # noqa: E402
from odm.expressions.nodes import Compare, Like, Node, Path  # noqa: E402
from odm.fields import SortKey  # noqa: E402


class Loc(EmbeddedModel):
    city = fields.String()


class Mood(enum.Enum):
    UP = "up"


class Level(enum.Enum):
    LOW = 1


class PgDoc(Model):
    pk = fields.String()
    n = fields.Integer()
    f = fields.Float()
    d = fields.Decimal()
    b = fields.Boolean()
    at = fields.DateTime()
    s = fields.String(data_key="S")
    mood = fields.Enum(Mood)
    level = fields.Enum(Level)
    tags = fields.List(fields.String())
    loc = fields.Embedded(Loc)

    class Meta:
        name = "pg_docs"
        hash_key = "pk"


class PgNum(Model):
    k = fields.Float()

    class Meta:
        name = "pg_nums"
        hash_key = "k"


def compile_(node: Node, model: type[Model] = PgDoc) -> tuple[str, list[Any]]:
    assert model._spec is not None
    comp = SQLCompiler(PostgresDialect(), model._spec, Codec())
    sql = comp.compile(node)
    return sql, [PostgresDialect().explain_param(p) for p in comp.params]


N = "(\"doc\"->>'n')::numeric"
S = "(\"doc\"->>'S') COLLATE \"C\""
TAGS = "(\"doc\"->'tags')"
X = "(\"doc\"->'x')"
X_TEXT = f"(CASE WHEN jsonb_typeof({X}) = 'string' THEN {X} #>> '{{}}' END) COLLATE \"C\""


@pytest.mark.parametrize(
    "node, sql, params",
    [
        (PgDoc.n == 3, f"{N} = %s", [Decimal(3)]),
        (PgDoc.n != 3, f"({N} = %s) IS NOT TRUE", [Decimal(3)]),
        (PgDoc.n < 3, f"{N} < %s", [Decimal(3)]),
        (PgDoc.n <= 3, f"{N} <= %s", [Decimal(3)]),
        (PgDoc.n > 3, f"{N} > %s", [Decimal(3)]),
        (PgDoc.n >= 3, f"{N} >= %s", [Decimal(3)]),
        (PgDoc.n.in_([1, 2]), f"{N} IN (%s, %s)", [Decimal(1), Decimal(2)]),
        (PgDoc.n.in_([]), "FALSE", []),
        (PgDoc.n.not_in([1]), f"({N} IN (%s)) IS NOT TRUE", [Decimal(1)]),
        (PgDoc.n.between(1, 5), f"{N} BETWEEN %s AND %s", [Decimal(1), Decimal(5)]),
        (PgDoc.n.exists(), f"{N} IS NOT NULL", []),
        (PgDoc.n == None, f"({N} IS NOT NULL) IS NOT TRUE", []),  # noqa: E711
        # Floats bind as exact numeric, never float8 (which would bypass numeric indexes).
        (PgDoc.f > 0.1, "(\"doc\"->>'f')::numeric > %s", [Decimal("0.1")]),
        (PgDoc.d > Decimal("1.5"), "(\"doc\"->>'d')::numeric > %s", [Decimal("1.5")]),
        (PgDoc.b == True, "(\"doc\"->>'b')::boolean = %s", [True]),  # noqa: E712
        (PgDoc.s == "x", f"{S} = %s", ["x"]),
        (PgDoc.s > "x", f"{S} > %s", ["x"]),
        (PgDoc.mood == Mood.UP, "(\"doc\"->>'mood') COLLATE \"C\" = %s", ["up"]),
        (PgDoc.level == Level.LOW, "(\"doc\"->'level') = %s", [1]),
        (PgDoc.at >= dt.datetime(2024, 1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=1))),
         "(\"doc\"->>'at') COLLATE \"C\" >= %s", ["2024-01-01T00:00:00.000000Z"]),
        (PgDoc.s.startswith("a%b_c\\"), f"{S} LIKE %s", ["a\\%b\\_c\\\\%"]),
        (PgDoc.s.contains("x"), f"strpos({S}, %s) > 0", ["x"]),
        (PgDoc.tags.contains("x"), f"{TAGS} @> %s", [["x"]]),
        (PgDoc.tags == ["a", "b"], f"{TAGS} = %s", [["a", "b"]]),
        (PgDoc.loc.city == "P", "(\"doc\"->'loc'->>'city') COLLATE \"C\" = %s", ["P"]),
        (PgDoc.loc == Loc(city="P"), "(\"doc\"->'loc') = %s", [{"city": "P"}]),
        (PgDoc.pk == "k", '"_hk" = %s', ["k"]),
        (PgDoc.pk.startswith("k"), '"_hk" LIKE %s', ["k%"]),
        ((PgDoc.n > 1) & (PgDoc.n < 5) | ~(PgDoc.s == "x"), f"(({N} > %s AND {N} < %s) OR ({S} = %s) IS NOT TRUE)",
         [Decimal(1), Decimal(5), "x"]),
        # Untyped paths (the Go layer) compare as jsonb; text predicates only match strings.
        (Compare("eq", Path(("x",)), {"k": 2}), f"{X} = %s", [{"k": 2}]),
        (Like(Path(("x",)), "a%b\\_"), f"{X_TEXT} LIKE %s", ["a%b\\_"]),
        (Like(Path(("S",), PgDoc.s.field), "50\\%"), f"{S} LIKE %s", ["50\\%"]),
    ],
)
def test_golden(node: Node, sql: str, params: list[Any]) -> None:
    assert compile_(node) == (sql, params)


def test_numeric_key_column_binds_exact_numbers() -> None:
    assert compile_(PgNum.k > 2.5, PgNum) == ('"_hk" > %s', [Decimal("2.5")])
    assert compile_(PgNum.k == 2, PgNum) == ('"_hk" = %s', [Decimal("2.0")])


def test_names_are_quoted_and_percent_escaped() -> None:
    sql, params = compile_(Like(Path(("it's 100%",)), "%"))
    assert "'it''s 100%%'" in sql and params == ["%"]
    assert PostgresDialect().quote('a"b%') == '"a""b%%"'


def test_order_puts_missing_first_ascending_and_last_descending() -> None:
    assert PgDoc._spec is not None
    comp = SQLCompiler(PostgresDialect(), PgDoc._spec, Codec())
    keys = (SortKey(Path(("n",), PgDoc.n.field), False), SortKey(Path(("S",), PgDoc.s.field), True))
    assert comp.order(keys) == f"{N} ASC NULLS FIRST, {S} DESC NULLS LAST"


def test_untyped_order_ranks_types_like_mongodb_and_orders_strings_bytewise() -> None:
    assert PgDoc._spec is not None
    comp = SQLCompiler(PostgresDialect(), PgDoc._spec, Codec())
    rank = (f"(CASE jsonb_typeof({X}) WHEN 'number' THEN 1 WHEN 'string' THEN 2 WHEN 'object' THEN 3 "
            f"WHEN 'array' THEN 4 WHEN 'boolean' THEN 5 ELSE 0 END)")
    other = f"(CASE WHEN jsonb_typeof({X}) IN ('number', 'boolean') THEN {X} END)"
    assert comp.order((SortKey(Path(("x",)), True),)) == (
        f"{rank} DESC NULLS LAST, {other} DESC NULLS LAST, {X_TEXT} DESC NULLS LAST")


def test_like_pattern_trailing_backslash_is_literal() -> None:
    assert normalise_like("a\\") == "a\\\\"
    assert normalise_like("a\\%\\\\") == "a\\%\\\\"


def test_update_doc_sql_sets_increments_and_unsets() -> None:
    dialect = PostgresDialect()
    params: list[Any] = []
    sql = dialect.update_doc_sql({"name": '"B"'}, {"age": 1, "score": 0.5}, ["old", "x%"], params)
    assert sql == ("(\"doc\" - 'old' - 'x%%') || %s || jsonb_build_object('age', COALESCE((\"doc\"->>'age')::numeric, 0) + %s::numeric, "
                   "'score', COALESCE((\"doc\"->>'score')::float8, 0) + %s::float8)")
    assert isinstance(params[0], Jsonb) and dialect.explain_param(params[0]) == {"name": "B"}
    assert params[1:] == [Decimal(1), 0.5] and type(params[2]) is float  # a Float adds as float8


def test_index_ddl_uses_the_compiler_operands() -> None:
    dialect = PostgresDialect()
    assert dialect.create_index_sql("t__ix", '"t"', [(N, PgDoc.n.field), (S, PgDoc.s.field)], True) == (
        f'CREATE UNIQUE INDEX "t__ix" ON "t" (({N}), ({S}))')
    assert dialect.create_index_sql("t__tags", '"t"', [(TAGS, PgDoc.tags.field)], False) == (
        f'CREATE INDEX "t__tags" ON "t" USING GIN (({TAGS}) jsonb_path_ops)')


def test_long_index_names_fit_postgres_limit_and_keep_unique_suffix() -> None:
    dialect = PostgresDialect()
    name = dialect.index_name("a" * 80 + "__ix_slug_uniq")
    assert len(name.encode()) <= 63 and name.endswith("_uniq")
    assert name == dialect.index_name("a" * 80 + "__ix_slug_uniq")
    assert name != dialect.index_name("a" * 81 + "__ix_slug_uniq")
    assert dialect.index_name("short__ix") == "short__ix"
