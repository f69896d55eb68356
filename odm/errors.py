"""The ODMError tree: every error the public API raises.

Messages are full sentences that name the offending thing and say what to do.
Driver exceptions are translated at the repository boundary and chained as
``__cause__`` so the original stays available for debugging.
"""

from __future__ import annotations

import decimal
from typing import Any


class ODMError(Exception):
    """Base of every error raised by ``odm``."""


class ConfigError(ODMError):
    """A model's Meta, a config file, or a registry call is wrong."""


class ValidationError(ODMError):
    """Model data failed validation; ``messages`` has marshmallow's shape.

    ``messages`` maps field names to lists of messages (or, for embedded
    models, to nested dicts of the same shape).
    """

    def __init__(self, messages: dict[str, Any] | str, model: str | None = None) -> None:
        if isinstance(messages, str):
            messages = {"_schema": [messages]}
        self.messages: dict[str, Any] = messages
        self.model = model
        super().__init__(self._summary())

    def _summary(self) -> str:
        prefix = f"Invalid {self.model}: " if self.model else "Invalid data: "
        parts = []
        for key, msgs in self.messages.items():
            if isinstance(msgs, dict):
                parts.append(f"{key}: {msgs}")
            else:
                parts.append(f"{key}: {' '.join(str(m) for m in msgs)}")
        return prefix + "; ".join(parts)


class NotFound(ODMError):
    """No item matches the key or filter."""


class DuplicateKey(ODMError):
    """An insert met an existing primary key or unique index value."""


class ConditionFailed(ODMError):
    """A conditional write found the stored item not matching its condition."""


class ConcurrentModification(ConditionFailed):
    """A versioned save found a different version stored: someone else wrote first."""


class QueryError(ODMError):
    """A query is malformed or the backend cannot run it as asked."""


class SchemaMismatch(ODMError):
    """An existing table or collection conflicts with the model's definition."""


class BackendUnavailable(ODMError):
    """The backend could not be reached after the driver's own retries."""



def shown_number(value: object, room: int = 40) -> str:
    """A number as an error message shows it: whole when short, else its order of magnitude and how
    many digits it has (a refused 9E+6144 would otherwise fill the message with 6,145 digits)."""
    text = str(value)
    if len(text) <= room:
        return text
    try:
        approx = format(decimal.Decimal(text), ".3E")
    except decimal.InvalidOperation:
        return text[:room] + "..."
    return f"{approx} ({sum(c.isdigit() for c in text)} digits)"


def shown_value(value: object, room: int = 80) -> str:
    """A value's repr for an error message, cut to ``room`` characters (a query compared with a
    megabyte string would otherwise put the megabyte in the message)."""
    text = repr(value)
    return text if len(text) <= room else f"{text[:room]}... ({len(text)} characters)"
