"""Golden tests: the shared expression tree compiled by the SQL compiler's SQLite dialect."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from odm import EmbeddedModel, Model, fields
from odm.backends.codec import Codec
from odm.backends.sql.compiler import SQLCompiler
from odm.backends.sql.sqlite import SQLiteDialect, like_to_glob
from odm.expressions.nodes import Like, Node, Path


class Loc(EmbeddedModel):
    city = fields.String()


class Doc(Model):
    pk = fields.String()
    n = fields.Integer()
    f = fields.Float()
    d = fields.Decimal()
    at = fields.DateTime()
    s = fields.String(data_key="S")
    tags = fields.List(fields.String())
    loc = fields.Embedded(Loc)

    class Meta:
        name = "docs"
        hash_key = "pk"


def compile_(node: Node) -> tuple[str, list[Any]]:
    assert Doc._spec is not None
    comp = SQLCompiler(SQLiteDialect(), Doc._spec, Codec())
    return comp.compile(node), comp.params


N = "json_extract(\"doc\", '$.\"n\"')"
S = "json_extract(\"doc\", '$.\"S\"')"


@pytest.mark.parametrize(
    "node, sql, params",
    [
        (Doc.n == 3, f"{N} = ?", [3]),
        (Doc.n != 3, f"({N} = ?) IS NOT TRUE", [3]),
        (Doc.n < 3, f"{N} < ?", [3]),
        (Doc.n <= 3, f"{N} <= ?", [3]),
        (Doc.n > 3, f"{N} > ?", [3]),
        (Doc.n >= 3, f"{N} >= ?", [3]),
        (Doc.n.in_([1, 2]), f"{N} IN (?, ?)", [1, 2]),
        (Doc.n.in_([]), "FALSE", []),
        (Doc.n.not_in([1]), f"({N} IN (?)) IS NOT TRUE", [1]),
        (Doc.n.between(1, 5), f"{N} BETWEEN ? AND ?", [1, 5]),
        (Doc.n.exists(), f"{N} IS NOT NULL", []),
        (Doc.n == None, f"({N} IS NOT NULL) IS NOT TRUE", []),  # noqa: E711
        (Doc.s.startswith("a*b"), f"{S} GLOB ?", ["a[*]b*"]),
        (Doc.s.contains("x"), f"(typeof({S}) = 'text' AND instr({S}, ?) > 0)", ["x"]),
        (Doc.tags.contains("x"), "(json_type(\"doc\", '$.\"tags\"') = 'array' AND EXISTS (SELECT 1 FROM "
                                 "json_each(\"doc\", '$.\"tags\"') WHERE json_each.value = ?))", ["x"]),
        (Doc.loc.city == "P", "json_extract(\"doc\", '$.\"loc\".\"city\"') = ?", ["P"]),
        (Doc.pk == "k", '"_hk" = ?', ["k"]),
        ((Doc.n > 1) & (Doc.n < 5) | ~(Doc.s == "x"), f"(({N} > ? AND {N} < ?) OR ({S} = ?) IS NOT TRUE)", [1, 5, "x"]),
        (Doc.at >= dt.datetime(2024, 1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=1))),
         "json_extract(\"doc\", '$.\"at\"') >= ?", ["2024-01-01T00:00:00.000000Z"]),
        # Decimals: a cheap double pre-test, then the exact order key (odm_dec) of the stored text.
        (Doc.d > Decimal("1.5"), "(json_extract(\"doc\", '$.\"d\"') >= ? AND odm_dec((\"doc\" -> '$.\"d\"')) > ?)",
         [1.5 - (1.5 * 2.0 ** -40 + 5e-324), "35000015"]),
        (Like(Path(("s",)), "a%b\\_"), "(typeof(json_extract(\"doc\", '$.\"s\"')) = 'text' AND "
                                       "json_extract(\"doc\", '$.\"s\"') GLOB ?)", ["a*b_"]),
    ],
)
def test_golden(node: Node, sql: str, params: list[Any]) -> None:
    assert compile_(node) == (sql, params)


def test_names_are_quoted_not_interpolated() -> None:
    sql, params = compile_(Like(Path(("it's",)), "%"))
    assert "'$.\"it''s\"'" in sql and params == ["*"]


def test_like_to_glob_escapes_glob_syntax() -> None:
    assert like_to_glob("[a]*?%_\\%\\\\") == "[[]a][*][?]*?%\\"
