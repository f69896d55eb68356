"""The seed's JSON config (``{"database": {"dbName": ..., "dbInfo": {...}}}``) and env overrides.

Every error names the file (or "<dict>") and the key; secrets are never shown.
"""

from __future__ import annotations

import importlib
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ConfigError

if TYPE_CHECKING:
    from .backends.base import Backend

#: dbName -> (module, class, extra to install or None for the standard library).
BACKENDS: dict[str, tuple[str, str, str | None]] = {
    "sqlite": ("odm.backends.sql.sqlite", "SQLiteBackend", None),
    "postgres": ("odm.backends.sql.postgres", "PostgresBackend", "postgres"),
    "mongodb": ("odm.backends.mongodb.backend", "MongoBackend", "mongodb"),
    "dynamodb": ("odm.backends.dynamodb.backend", "DynamoBackend", "dynamodb"),
}
ALIASES = {"postgresql": "postgres", "mongo": "mongodb", "dynamo": "dynamodb"}
SECRET_KEYS = {"pass", "password", "passwd", "awssecretaccesskey", "awssessiontoken", "awssecretkeyid", "secret", "token"}


def canonical_name(name: Any, source: str) -> str:
    if not isinstance(name, str):
        raise ConfigError(f"{source}: database.dbName must be a string naming the backend, not {name!r}.")
    key = ALIASES.get(name.lower(), name.lower())
    if key not in BACKENDS:
        known = ", ".join([*BACKENDS, *ALIASES])
        raise ConfigError(f"{source}: database.dbName {name!r} is not a known backend; use one of: {known}.")
    return key


def redact(info: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of dbInfo safe to print: secrets masked, passwords in URIs/DSNs masked."""
    out: dict[str, Any] = {}
    for key, value in info.items():
        if str(key).lower() in SECRET_KEYS:
            out[key] = "***"
        elif isinstance(value, str) and key in ("uri", "dsn", "url"):
            out[key] = redact_url(value)
        else:
            out[key] = value
    return out


def redact_url(text: str) -> str:
    """Mask the password of a URI (``scheme://user:pass@host``) or a libpq DSN (``password=...``)."""
    scheme = re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", text)
    at = text.rfind("@")
    if scheme and at > scheme.end():  # the userinfo ends at the last "@" (a password may hold "/" or "@")
        userinfo = text[scheme.end():at]
        user = userinfo.split(":", 1)[0]
        text = text[:scheme.end()] + (f"{user}:***" if ":" in userinfo else user) + text[at:]
    text = re.sub(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", r"\1***", text, flags=re.IGNORECASE)
    return re.sub(r"([?&]password=)[^&]*", r"\1***", text, flags=re.IGNORECASE)


def parse(cfg: Any, source: str) -> tuple[str, dict[str, Any]]:
    """``(dbName, dbInfo)`` from a parsed config, with ODM_DB_NAME / ODM_DB_INFO applied."""
    if not isinstance(cfg, Mapping):
        raise ConfigError(f"{source}: the config must be a JSON object with a 'database' key.")
    database = cfg.get("database")
    env_name = os.environ.get("ODM_DB_NAME")
    env_info = os.environ.get("ODM_DB_INFO")
    if database is None and env_name is None:
        raise ConfigError(f"{source}: the key 'database' is missing (expected {{\"database\": {{\"dbName\": ..., \"dbInfo\": {{...}}}}}}).")
    if database is not None and not isinstance(database, Mapping):
        raise ConfigError(f"{source}: the key 'database' must be an object.")
    database = database or {}
    name = env_name if env_name is not None else database.get("dbName")
    if name is None:
        raise ConfigError(f"{source}: the key 'database.dbName' is missing.")
    info = database.get("dbInfo", {})
    if not isinstance(info, Mapping):
        raise ConfigError(f"{source}: the key 'database.dbInfo' must be an object.")
    info = dict(info)
    if env_info is not None:
        try:
            override = json.loads(env_info)
        except ValueError as exc:
            raise ConfigError(f"The environment variable ODM_DB_INFO is not valid JSON ({exc}).") from None
        if not isinstance(override, dict):
            raise ConfigError("The environment variable ODM_DB_INFO must hold a JSON object.")
        info.update(override)
    return canonical_name(name, source), info


def load_file(path: str | os.PathLike[str]) -> tuple[str, dict[str, Any]]:
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{source}: the config file does not exist.") from None
    except OSError as exc:
        raise ConfigError(f"{source}: the config file cannot be read ({exc.strerror}).") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{source}: the config file is not UTF-8 text.") from None
    try:
        cfg = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"{source}: not valid JSON ({exc}).") from None
    return parse(cfg, source)


def backend_class(name: str, source: str = "<arguments>") -> type[Backend]:
    key = canonical_name(name, source)
    module_name, class_name, extra = BACKENDS[key]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        missing = getattr(exc, "name", None) or str(exc)
        if extra is None or (missing and missing.startswith("odm")):
            raise
        raise ConfigError(f"The {key} backend needs its driver ({missing}); install it with "
                          f"pip install 'microkubes-odm[{extra}]'.") from exc
    return getattr(module, class_name)  # type: ignore[no-any-return]


def build_backend(name: str, info: Mapping[str, Any], source: str = "<arguments>") -> Backend:
    cls = backend_class(name, source)
    if not isinstance(info, Mapping):
        raise ConfigError(f"{source}: dbInfo for {name} must be an object.")
    try:
        return cls(dict(info))
    except ConfigError as exc:
        if str(exc).startswith(source):
            raise
        raise ConfigError(f"{source}: {exc}") from exc.__cause__
