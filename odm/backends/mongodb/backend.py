"""The MongoDB backend: a pymongo client built from ``uri`` or host/database/user/pass."""

from __future__ import annotations

import re
import urllib.parse
from typing import Any

import pymongo
from bson.errors import BSONError, InvalidDocument
from pymongo.errors import (
    ConfigurationError,
    ConnectionFailure,
    DocumentTooLarge,
    DuplicateKeyError,
    InvalidOperation,
    OperationFailure,
    PyMongoError,
)

from ...config import redact_url
from ...errors import BackendUnavailable, ConfigError, DuplicateKey, ODMError, QueryError, ValidationError
from ...redaction import mask_secrets
from ..base import Backend, Features, require
from ..names import TableNameRule
from .codec import CODEC_OPTIONS, MAX_DECIMAL_DIGITS, MongoCodec
from .repository import MongoRepository
from .sync import SCHEMA_COLLECTION

#: Server error codes meaning "who you are was refused", reported as BackendUnavailable.
AUTH_CODES = {13, 18}
#: The server no longer knows a cursor (CursorNotFound).
CURSOR_NOT_FOUND = 43
#: Longest "<database>.<collection>" namespace, in bytes (MongoDB 4.4 and later).
MAX_NAMESPACE_BYTES = 255


class MongoFeatures(Features):
    # insert_many is unordered: items without a conflict are written, the others are reported.
    atomic_insert_many = False
    max_decimal_digits = MAX_DECIMAL_DIGITS  # 34, Decimal128's


class MongoBackend(Backend):
    """One ``MongoClient`` (its own pool and retries) per backend; one database."""

    name = "mongodb"
    features = MongoFeatures
    repository_class = MongoRepository
    codec = MongoCodec()
    info_keys = {"uri": "text", "host": "text", "database": "text", "user": "text", "username": "text", "pass": "text",
                 "password": "text", "authSource": "text", "timeout": "seconds", "batchSize": "count"}
    #: The seed's one dbInfo also carries DynamoDB's keys (docs/configuration.md).
    shared_info_keys = frozenset({"credentials", "endpoint", "awsRegion", "awsSecretKeyId", "awsSecretAccessKey",
                                  "awsSessionToken"})
    table_names = TableNameRule(
        "a MongoDB collection name is non-empty, holds no '$' or NUL, does not start or end with '.', holds no '..', "
        "does not start with 'system.' (the server's own) and is not '_odm_schema' (the ODM's catalog)",
        forbidden="\x00$", no_edges=".", no_runs=("..",), reserved_prefixes=("system.",), reserved=(SCHEMA_COLLECTION,))

    def __init__(self, info: dict[str, Any]) -> None:
        super().__init__(info)
        try:
            timeout_ms = max(1, int(float(info.get("timeout", 5)) * 1000))
            self.batch_size = int(info.get("batchSize", 500))
        except (TypeError, ValueError):
            raise ConfigError("The mongodb backend's dbInfo keys 'timeout' (seconds) and 'batchSize' must be numbers.") from None
        options: dict[str, Any] = {
            "tz_aware": True, "tzinfo": CODEC_OPTIONS.tzinfo, "type_registry": CODEC_OPTIONS.type_registry,
            "serverSelectionTimeoutMS": timeout_ms, "connectTimeoutMS": timeout_ms, "appname": "microkubes-odm",
        }
        uri = info.get("uri")
        self._secrets: list[str] = []
        try:
            if uri:
                if not isinstance(uri, str):
                    raise ConfigError("The mongodb backend's dbInfo key 'uri' must be a string.")
                match = re.match(r"^mongodb(?:\+srv)?://(?:([^@/]*)@)?([^/?]*)", uri)
                if match is None:
                    raise ConfigError(f"The mongodb backend's dbInfo 'uri' must start with mongodb:// or "
                                      f"mongodb+srv://, not {redact_url(uri)!r}.")
                if match.group(1) and ":" in match.group(1):
                    raw = match.group(1).split(":", 1)[1]
                    self._secrets += [raw, urllib.parse.unquote(raw)]
                hosts = match.group(2)
                self.client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(uri, **options)
                database = info.get("database") or self.client.get_default_database(default="odm").name
            else:
                hosts = str(require(info, "host", "mongodb"))
                database = info.get("database") or "odm"
                user = info.get("user") or info.get("username")
                password = info.get("pass", info.get("password"))
                if password:
                    self._secrets.append(str(password))
                if user:
                    options.update(username=user, password=password,
                                   authSource=info.get("authSource") or database)
                self.client = pymongo.MongoClient([h.strip() for h in hosts.split(",")], **options)
        except ConfigError:
            raise
        except (PyMongoError, TypeError, ValueError) as exc:
            raise ConfigError(f"The mongodb backend's dbInfo is not usable: {self.safe(str(exc))}.") from None
        if not isinstance(database, str) or not database:
            raise ConfigError("The mongodb backend's dbInfo key 'database' must be a non-empty string.")
        self.label = f"{hosts}/{database}"
        self.db = self.client.get_database(database)
        self._closed = False

    # -- errors ----------------------------------------------------------------------------
    def safe(self, text: str) -> str:
        """Text with any password removed (the host stays: it is what the reader needs)."""
        return mask_secrets(text, self._secrets)

    def _reason(self, exc: BaseException) -> str:
        text = str(exc).split(", Timeout:")[0].split(", full error:")[0].strip()
        return self.safe(text or type(exc).__name__)

    def translate(self, exc: BaseException, collection: str) -> ODMError | None:
        """A driver exception as the public error (None: not a driver error, let it through)."""
        if isinstance(exc, DuplicateKeyError):
            return DuplicateKey(f"A key or unique index value already exists in '{collection}': {self._reason(exc)}.")
        if isinstance(exc, ConnectionFailure):
            return BackendUnavailable(f"Cannot reach MongoDB at {self.label}: {self._reason(exc)}.")
        if isinstance(exc, InvalidOperation) and self._closed:
            return BackendUnavailable(f"The MongoDB backend for {self.label} has been closed.")
        if isinstance(exc, OperationFailure) and exc.code == CURSOR_NOT_FOUND:
            # The server restarted or failed over between two batches (or the cursor idled out):
            # the stream is cut as by a lost connection, and running the query again works.
            return BackendUnavailable(f"MongoDB at {self.label} lost the query's cursor on '{collection}' (the server "
                                      "restarted or failed over, or the cursor idled out): run the query again.")
        if isinstance(exc, OperationFailure) and exc.code in AUTH_CODES:
            return BackendUnavailable(f"MongoDB at {self.label} refused the credentials or the operation "
                                      f"({exc.code}: {self._reason(exc)}); check user, pass and authSource.")
        if isinstance(exc, DocumentTooLarge):
            return ValidationError({"_schema": [f"The document is over MongoDB's 16 MB document limit: "
                                                f"{self._reason(exc)}."]}, collection)
        if isinstance(exc, OverflowError):  # pymongo: "MongoDB can only handle up to 8-byte ints"
            return ValidationError({"_schema": [f"MongoDB cannot store this number: {exc}."]}, collection)
        if isinstance(exc, (InvalidDocument, BSONError)):
            return ValidationError({"_schema": [f"MongoDB cannot store this value: {self._reason(exc)}."]}, collection)
        if isinstance(exc, OperationFailure):
            return QueryError(f"MongoDB refused the operation on '{collection}' ({exc.code}): {self._reason(exc)}.")
        if isinstance(exc, ConfigurationError):
            return ConfigError(f"MongoDB configuration error for {self.label}: {self._reason(exc)}.")
        if isinstance(exc, PyMongoError):
            return QueryError(f"MongoDB error on '{collection}': {self._reason(exc)}.")
        return None

    def check_table_name(self, name: str) -> None:
        super().check_table_name(name)
        size = len(f"{self.db.name}.{name}".encode("utf-8", "surrogatepass"))
        if size > MAX_NAMESPACE_BYTES:
            raise ConfigError(f"The table name {name!r} cannot be used on mongodb: with its database the namespace "
                              f"'{self.db.name}.<name>' is {size} bytes, over MongoDB's {MAX_NAMESPACE_BYTES}.")

    def ping(self) -> None:
        """The server's ``ping`` command (waits at most ``timeout`` seconds for a server)."""
        try:
            self.db.command("ping")
        except Exception as exc:
            translated = self.translate(exc, self.label)
            if translated is None:
                raise
            raise translated from exc

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.client.close()

    def __repr__(self) -> str:
        return f"<MongoBackend {self.label}>"
