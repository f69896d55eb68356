"""microkubes-odm: declare models once, run them on MongoDB, DynamoDB, PostgreSQL or SQLite."""

from . import fields, logs
from .backends.base import Action, Page
from .errors import (
    BackendUnavailable,
    ConcurrentModification,
    ConditionFailed,
    ConfigError,
    DuplicateKey,
    NotFound,
    ODMError,
    QueryError,
    SchemaMismatch,
    ValidationError,
)
from .golayer import Backend, BackendSupport, Filter, Repository
from .model import EmbeddedModel, Model, new_id, utcnow
from .query import Query
from .registry import Registry
from .schema import Index
from .transaction import Transaction
from .updates import add, append, discard, inc, remove, unset

__version__ = "0.1.0"

__all__ = [
    "Action", "Backend", "BackendSupport", "BackendUnavailable", "ConcurrentModification",
    "ConditionFailed", "ConfigError", "DuplicateKey", "EmbeddedModel", "Filter", "Index", "Model",
    "NotFound", "ODMError", "Page", "Query", "QueryError", "Registry", "Repository", "SchemaMismatch",
    "Transaction", "ValidationError", "add", "append", "discard", "fields", "inc", "logs", "new_id", "remove", "unset",
    "utcnow",
]
