"""The SQL dialect strategy: what differs between SQLite (JSON1) and PostgreSQL (JSONB).

The shared compiler and repository ask the dialect for every piece of SQL that
is not common to both, peewee-style, instead of testing the vendor name.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from ...errors import QueryError
from ...fields import Field
from ...updates import UpdateAction


class Dialect:
    name: ClassVar[str] = "sql"
    #: The driver's placeholder.
    ph: ClassVar[str] = "?"
    OPERATORS: ClassVar[dict[str, str]] = {"eq": "=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}
    #: SQL type of a key column by field kind (None: untyped).
    KEY_TYPES: ClassVar[dict[str, str]] = {}
    DOC_TYPE: ClassVar[str] = "TEXT"
    EXP_TYPE: ClassVar[str] = "REAL"
    #: Whether ORDER BY needs NULLS FIRST/LAST to put missing values first ascending.
    explicit_nulls_order: ClassVar[bool] = False

    def quote(self, name: str) -> str:
        if "\x00" in name:
            raise QueryError(f"The name {name!r} contains a NUL character and cannot be used.")
        return '"' + name.replace('"', '""') + '"'

    def literal(self, text: str) -> str:
        return "'" + text.replace("'", "''") + "'"

    # -- operands and parameters ---------------------------------------------------
    def json_operand(self, parts: Sequence[str], field: Field | None) -> str:
        raise NotImplementedError

    def json_param(self, value: Any, field: Field | None) -> Any:
        return value

    def column_param(self, value: Any) -> Any:
        return value

    def set_params(self, sets: dict[str, str]) -> list[Any]:
        """The parameters ``update_doc_sql`` binds for ``sets`` (stored name -> the value's JSON text), in order."""
        return list(sets.values())

    # Exact numbers where the dialect's JSON numbers are doubles (SQLite): Decimal fields already
    # compile exactly through json_operand/json_param; these serve untyped paths compared with a
    # Decimal and Decimal key columns (stored as a double or as text). None: already exact.
    def exact_number_operand(self, parts: Sequence[str]) -> str | None:
        """An operand giving the exact order of the number at a path (NULL for non-numbers)."""
        return None

    def exact_number_param(self, value: Any) -> Any:
        """A query value bound against ``exact_number_operand`` or ``exact_column_operand``."""
        return value

    def exact_column_operand(self, column: str) -> str | None:
        """An operand ordering a Decimal key column exactly (its equality needs none)."""
        return None

    def number_prefilter(self, parts: Sequence[str], field: Field | None, low: Any, high: Any) -> tuple[str, list[Any]] | None:
        """A cheap test every number at a path within [low, high] passes (None bounds are open), put
        before an exact but costly comparison so a scan makes few costly calls; None: not needed."""
        return None

    def exact_contains_sql(self, parts: Sequence[str], ph: str) -> str | None:
        """Is a number (bound by ``exact_number_param``) an element of the array at a path, exactly?"""
        return None

    def explain_param(self, param: Any) -> Any:
        """A bound parameter as plain data for ``explain()`` (drivers may wrap values)."""
        return param

    def type_guard(self, parts: Sequence[str], value: Any) -> str | None:
        """Extra SQL that makes an untyped equality also compare JSON types (None: already typed)."""
        return None

    def key_type(self, kind: str) -> str:
        return self.KEY_TYPES.get(kind, "")

    # -- predicates ------------------------------------------------------------------
    def not_sql(self, inner: str) -> str:
        # NULL (a missing attribute) must become "true" under NOT: two-valued logic.
        return f"({inner}) IS NOT TRUE"

    def prefix_sql(self, operand: str, ph: str) -> str:
        raise NotImplementedError

    def prefix_param(self, prefix: str) -> Any:
        return prefix

    def like_sql(self, operand: str, ph: str) -> str:
        raise NotImplementedError

    def like_param(self, pattern: str) -> Any:
        return pattern

    def contains_list_sql(self, parts: Sequence[str], ph: str) -> str:
        raise NotImplementedError

    def contains_list_param(self, value: Any) -> Any:
        return value

    def contains_str_sql(self, operand: str, ph: str) -> str:
        raise NotImplementedError

    def order_term(self, operand: str, descending: bool) -> str:
        direction = "DESC" if descending else "ASC"
        if self.explicit_nulls_order:
            return f"{operand} {direction} NULLS {'LAST' if descending else 'FIRST'}"
        return f"{operand} {direction}"

    def json_order_term(self, parts: Sequence[str], descending: bool) -> str:
        """ORDER BY terms for an untyped attribute, in the order of docs/go-layer.md ("Order").

        Missing or null, then numbers, strings (by code point), objects, arrays and booleans;
        within numbers, strings and booleans by value. Objects and arrays are not compared
        with each other (no two backends compare them alike): they tie, and the key decides.
        """
        rank, value = self.json_rank(parts)
        return ", ".join(self.order_term(term, descending) for term in (rank, value))

    def json_rank(self, parts: Sequence[str]) -> tuple[str, str]:
        """SQL for the JSON type's rank (0-5) and the value compared within numbers, strings and booleans."""
        raise NotImplementedError

    # -- documents and writes ------------------------------------------------------------
    def dumps_param(self, text: str) -> Any:
        """The parameter for a whole document given as JSON text."""
        return text

    def doc_select(self, only: Sequence[str] | None = None) -> str:
        """The selected document: whole, or (``only()``) a JSON object of just those top-level
        attributes, each copied as JSON (exact numbers; a missing one as null)."""
        if only is None:
            return '"doc"'
        return self.project_sql(only)

    def project_sql(self, only: Sequence[str]) -> str:
        return '"doc"'  # a dialect that cannot build the object reads whole documents (the decode trims)

    def json_text(self, parts: Sequence[str]) -> tuple[str, bool]:
        """SQL giving the JSON text of the value at ``parts`` exactly as stored (NULL when missing),
        so numbers keep every digit; and whether that text is the value twice in an array
        (``[v, v]``: SQLite before 3.38 has only ``json_extract(doc, p, p)`` for it)."""
        raise NotImplementedError

    def empty_row(self, key_columns: Sequence[str], table: str = "") -> str:
        """A one-row relation with an empty document, to evaluate a condition on a missing item."""
        cols = ", ".join(f"NULL AS {c}" for c in key_columns)
        return f"(SELECT '{{}}' AS \"doc\", {cols}) AS t"

    # -- schema ------------------------------------------------------------------------
    def index_name(self, name: str) -> str:
        """The index name as the database will store it (PostgreSQL truncates at 63 bytes)."""
        return name

    def create_index_sql(self, name: str, table: str, operands: Sequence[tuple[str, Field | None]], unique: bool) -> str:
        """DDL for an index whose expressions are exactly the compiler's operands (so queries use it)."""
        exprs = ", ".join(op for op, _ in operands)
        return f"CREATE {'UNIQUE ' if unique else ''}INDEX {self.quote(name)} ON {table} ({exprs})"

    def update_doc_sql(self, sets: dict[str, str], incs: dict[str, Any], unsets: Sequence[str],
                       params: list[Any], actions: Sequence[UpdateAction] = ()) -> str:
        """The new value of "doc" after top-level sets (JSON text), increments, removals and ``actions``.

        Actions never overlap (odm.updates.check_overlaps), so each reads its path from the row's
        "doc" and writes into the expression built so far.
        """
        raise NotImplementedError
