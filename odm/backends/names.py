"""Which table (collection) names a backend can hold, as data on each backend class.

A name the server would refuse, truncate or treat as its own is refused at
``register`` / ``define_repository`` with a ConfigError naming it and the rule,
instead of failing later with a driver error (or, on PostgreSQL, silently
truncating to 63 bytes). Each backend declares its own rule: a name that one
backend refuses may be fine on another (docs/configuration.md lists the
subset every backend accepts).
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class TableNameRule:
    """The constraints on a stored table name; ``summary`` states them in a sentence for errors."""

    summary: str
    #: Characters a name may not contain (NUL everywhere: no driver passes it through intact).
    forbidden: str = "\x00"
    #: When set, every character must match this character class (a regex, e.g. ``[A-Za-z0-9_.-]``).
    allowed: str | None = None
    min_length: int = 1
    #: Largest length in UTF-8 bytes (None: no limit the ODM knows of).
    max_bytes: int | None = None
    #: Prefixes the server keeps for itself (compared case-insensitively).
    reserved_prefixes: tuple[str, ...] = ()
    #: Whole names that are taken, compared case-insensitively (the ODM's own catalog table, for one).
    reserved: tuple[str, ...] = ()
    #: Characters a name may not start or end with.
    no_edges: str = ""
    #: Substrings a name may not contain.
    no_runs: tuple[str, ...] = ()

    def problem(self, name: str) -> str | None:
        """What is wrong with ``name`` in a few words, or None when the backend can hold it."""
        for char in self.forbidden:
            if char in name:
                return "it contains a NUL character" if char == "\x00" else f"it contains {char!r}"
        if len(name) < self.min_length:
            return f"it is shorter than {self.min_length} character{'s' if self.min_length > 1 else ''}"
        if self.allowed is not None:
            bad = re.sub(f"{self.allowed}+", "", name)
            if bad:
                return f"it contains {bad[0]!r}"
        size = len(name.encode("utf-8", "surrogatepass"))
        if self.max_bytes is not None and size > self.max_bytes:
            return f"it is {size} bytes long, over {self.max_bytes}"
        lowered = name.lower()
        for prefix in self.reserved_prefixes:
            if lowered.startswith(prefix.lower()):
                return f"names starting with {prefix!r} are reserved"
        if lowered in (r.lower() for r in self.reserved):
            return "it is reserved"
        for char in self.no_edges:
            if name.startswith(char) or name.endswith(char):
                return f"it starts or ends with {char!r}"
        for run in self.no_runs:
            if run in name:
                return f"it contains {run!r}"
        return None


#: What every rule at least refuses.
ANY = TableNameRule("a name must be non-empty and hold no NUL character")
