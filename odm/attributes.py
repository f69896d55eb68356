"""Attribute names and text that every backend stores and addresses the same way.

One rule for every backend, so a model or a Go-layer dict means the same thing
everywhere (see docs/models.md, "Attribute names"): a name a backend would read
as syntax is refused before anything is written, instead of being accepted on
one backend and silently addressing another attribute on the next.

- MongoDB reads ``.`` as a path and a leading ``$`` as an operator.
- SQLite's JSON paths read ``"`` and ``\\`` (and the escapes a control character
  is stored as) differently from one SQLite version to the next.
- PostgreSQL (jsonb) and MongoDB (BSON keys) cannot hold NUL.
- DynamoDB refuses empty names and key attributes longer than 255 bytes.
- ``_id`` is MongoDB's primary key.
"""

from __future__ import annotations

import re
from typing import Any, Literal

#: The longest attribute name, in UTF-8 bytes (DynamoDB's limit for key attributes,
#: and any attribute can later become an index key).
MAX_NAME_BYTES = 255
_CONTROL = re.compile(r"[\x00-\x1f]")

#: ``attribute``: a top-level stored name; ``embedded``: a name inside an embedded model
#: (a path part, but ``_id`` is free there); ``key``: a key inside a dict value, which is
#: data matched as a whole and never read as a path.
Where = Literal["attribute", "embedded", "key"]


def text_problem(text: str) -> str | None:
    """Why a string cannot be stored on every backend (None when it can)."""
    if "\x00" in text:
        return "Text cannot contain a NUL character (U+0000): PostgreSQL and MongoDB cannot store it."
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "Text must be valid Unicode; it holds a lone surrogate (U+D800 to U+DFFF)."
    return None


def name_problem(name: Any, where: Where = "attribute") -> str | None:
    """Why ``name`` cannot be an attribute (or dict key) name on every backend (None when it can)."""
    if not isinstance(name, str):
        return f"Attribute names must be strings, not {type(name).__name__} ({name!r})."
    if not name:
        return "Attribute names cannot be empty (DynamoDB refuses them)."
    if "\x00" in name:
        return f"The name {name!r} contains a NUL character, which PostgreSQL and MongoDB cannot store."
    problem = text_problem(name)
    if problem:
        return f"The name {name!r} is not valid Unicode (it holds a lone surrogate)."
    if name.startswith("$"):
        return f"The name {name!r} starts with '$', which MongoDB reads as an operator."
    if where == "key":
        return None
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        return f"The name {name[:20]!r}... is longer than {MAX_NAME_BYTES} bytes (UTF-8), the most every backend can index."
    if "." in name:
        return f"The name {name!r} contains '.', which MongoDB reads as a path separator."
    if '"' in name or "\\" in name:
        return f"The name {name!r} contains '\"' or '\\', which SQLite's JSON paths read as syntax."
    if _CONTROL.search(name):
        return f"The name {name!r} contains a control character (U+0001 to U+001F), which SQLite's JSON paths cannot address exactly."
    if where == "attribute" and name == "_id":
        return "The name '_id' is reserved (it is MongoDB's primary key)."
    return None


__all__ = ["MAX_NAME_BYTES", "name_problem", "text_problem"]
