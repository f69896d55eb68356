"""The compiler base every backend subclasses (SQLAlchemy-style visit_<name>)."""

from __future__ import annotations

from typing import Any, ClassVar

from ..errors import QueryError
from .nodes import Node

_DESCRIPTIONS = {
    "compare": "comparison",
    "between": ".between()",
    "in": ".in_()",
    "exists": ".exists()",
    "prefix": ".startswith()",
    "contains": ".contains()",
    "like": "match_pattern()",
}


class Compiler:
    """Visits one expression tree; anything a subclass does not handle is one clear error."""

    backend_name: ClassVar[str] = "this backend"

    def compile(self, node: Node) -> Any:
        method = getattr(self, "visit_" + node.visit_name, None)
        if method is None:
            raise self.unsupported(node)
        return method(node)

    def unsupported(self, node: Node, hint: str = "") -> QueryError:
        what = _DESCRIPTIONS.get(node.visit_name, node.visit_name)
        msg = f"The {self.backend_name} backend cannot compile {what} ({node!r})."
        return QueryError(msg + (" " + hint if hint else ""))
