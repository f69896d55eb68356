"""The seed's JSON config (``{"database": {"dbName": ..., "dbInfo": {...}}}``) and env overrides.

Every key is checked: a key the chosen backend does not read, or a value of
the wrong type, is a ConfigError naming the key, where it came from (the file,
``<dict>``, ``<arguments>`` or the environment variable) and the closest known
key; a typo never silently falls back to a default (``"Path"`` would otherwise
open ``:memory:`` and lose every write). Secrets are never shown.
"""

from __future__ import annotations

import difflib
import importlib
import json
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ConfigError
from .redaction import redact_url

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
SECRET_KEYS = {"pass", "password", "passwd", "awssecretaccesskey", "awssessiontoken", "awssecretkeyid", "secret", "token",
               "cursorsecret", "cursor_secret"}
#: Keys of the ``database`` object (the cursor secret sits beside dbName, not in dbInfo).
DATABASE_KEYS = ("dbName", "dbInfo", "cursorSecret", "cursor_secret")
ENV_NAME, ENV_INFO, ENV_SECRET = "ODM_DB_NAME", "ODM_DB_INFO", "ODM_CURSOR_SECRET"
#: Shortest cursor secret accepted (a short one can be guessed from a cursor offline).
MIN_SECRET_LENGTH = 16


def _positive_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _port(value: Any) -> bool:
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < 65536


#: Kinds of dbInfo values, named by each backend's ``info_keys``: a check, and what the value "must be".
KINDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "text": (lambda value: isinstance(value, str), "a string"),
    "seconds": (_positive_number, "a positive number of seconds"),
    "count": (_positive_int, "a positive integer"),
    "port": (_port, "a port number from 1 to 65535"),
}


def canonical_name(name: Any, source: str) -> str:
    if not isinstance(name, str):
        raise ConfigError(f"{source}: database.dbName must be a string naming the backend, not {name!r}.")
    key = ALIASES.get(name.lower(), name.lower())
    if key not in BACKENDS:
        known = ", ".join([*BACKENDS, *ALIASES])
        raise ConfigError(f"{source}: database.dbName {name!r} is not a known backend; use one of: {known}.")
    return key


def _folded(text: str) -> str:
    return re.sub(r"[_\-\s]", "", text).lower()


def close_match(key: str, known: list[str]) -> str | None:
    """The known key ``key`` was most likely meant to be: same letters ignoring case and ``_``/``-``, else difflib's."""
    by_fold: dict[str, str] = {}
    for candidate in known:  # the first spelling wins (camelCase, the seed's, is listed first)
        by_fold.setdefault(_folded(candidate), candidate)
    if _folded(key) in by_fold:
        return by_fold[_folded(key)]
    matches = difflib.get_close_matches(_folded(key), list(by_fold), n=1, cutoff=0.6)
    return by_fold[matches[0]] if matches else None


def _unknown(source: str, where: str, key: str, known: list[str], owner: str) -> ConfigError:
    if where == "dbInfo" and _folded(key) == "cursorsecret":
        return ConfigError(f"{source}: {key!r} is not a dbInfo key: the cursor secret goes in the 'database' object "
                           "beside dbName (\"cursorSecret\"), or Registry(..., cursor_secret=...).")
    match = close_match(key, known)
    hint = f" (did you mean {match!r}?)" if match else ""
    return ConfigError(f"{source}: unknown {where} key {key!r}{hint}; {owner} accepts: {', '.join(known)}.")


def _check_value(source: str, backend: str, key: str, kind: str, value: Any) -> None:
    check, words = KINDS[kind]
    if value is not None and not check(value):  # None (JSON null) means "not set"
        raise ConfigError(f"{source}: dbInfo key {key!r} of the {backend} backend must be {words}, "
                          f"not {type(value).__name__}.")


def check_info(cls: type[Backend], info: Mapping[Any, Any], source: str,
               foreign: type[Backend] | None = None) -> dict[str, Any]:
    """``info`` with every key and value checked against what ``cls`` reads.

    Keys of the seed's shared dbInfo (``shared_info_keys``) are accepted. Keys that
    only ``foreign`` reads (the file's own backend, when ODM_DB_NAME switched to
    another one) are checked against it and left out.
    """
    out: dict[str, Any] = {}
    for key, value in info.items():
        if not isinstance(key, str):
            raise ConfigError(f"{source}: dbInfo keys must be strings, not {type(key).__name__}.")
        kind = cls.info_keys.get(key) or ("text" if key in cls.shared_info_keys else None)
        if kind is not None:
            _check_value(source, cls.name, key, kind, value)
            out[key] = value
            continue
        other = foreign.info_keys.get(key) if foreign is not None else None
        if foreign is not None and other is not None:
            _check_value(source, foreign.name, key, other, value)
            continue
        raise _unknown(source, "dbInfo", key, list(cls.info_keys), f"the {cls.name} backend")
    return out


def secret_bytes(value: Any, source: str, key: str) -> bytes | None:
    """A cursor secret as bytes (None when unset); the value itself never appears in an error."""
    if value is None:
        return None
    if isinstance(value, str):
        data = value.encode("utf-8", "surrogatepass")
    elif isinstance(value, (bytes, bytearray)):
        data = bytes(value)
    else:
        raise ConfigError(f"{source}: {key} must be a string, not {type(value).__name__}.")
    if len(data) < MIN_SECRET_LENGTH:
        raise ConfigError(f"{source}: {key} must be at least {MIN_SECRET_LENGTH} characters long; use a random "
                          "value, e.g. the output of: python -c 'import secrets; print(secrets.token_urlsafe(32))'.")
    return data


def cursor_secret(argument: Any, source: str = "<arguments>") -> bytes | None:
    """The cursor secret to sign with: the argument, else ODM_CURSOR_SECRET, else None (a random key)."""
    if argument is not None:
        return secret_bytes(argument, source, "cursor_secret")
    env = os.environ.get(ENV_SECRET)
    return secret_bytes(env, f"The environment variable {ENV_SECRET}", "its value") if env else None


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


@dataclass(frozen=True)
class Settings:
    """A checked config: the backend, the dbInfo it reads, and the cursor secret (never shown)."""

    name: str
    info: dict[str, Any]
    source: str
    cursor_secret: bytes | None = None
    #: dbInfo as written plus ODM_DB_INFO, before keys for another backend were left out.
    merged: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"Settings(name={self.name!r}, source={self.source!r}, info={redact(self.info)!r})"


def read(cfg: Any, source: str) -> Settings:
    """Check a parsed config, with ODM_DB_NAME, ODM_DB_INFO and ODM_CURSOR_SECRET applied."""
    if not isinstance(cfg, Mapping):
        raise ConfigError(f"{source}: the config must be a JSON object with a 'database' key.")
    database = cfg.get("database")
    env_name = os.environ.get(ENV_NAME)
    env_info = os.environ.get(ENV_INFO)
    if database is None and env_name is None:
        raise ConfigError(f"{source}: the key 'database' is missing (expected {{\"database\": {{\"dbName\": ..., \"dbInfo\": {{...}}}}}}).")
    if database is not None and not isinstance(database, Mapping):
        raise ConfigError(f"{source}: the key 'database' must be an object.")
    database = database or {}
    for key in database:
        if key not in DATABASE_KEYS:
            raise _unknown(source, "'database'", str(key), list(DATABASE_KEYS), "the 'database' object")
    file_name = database.get("dbName")
    if env_name is None and file_name is None:
        raise ConfigError(f"{source}: the key 'database.dbName' is missing.")
    name = canonical_name(env_name, f"The environment variable {ENV_NAME}") if env_name is not None \
        else canonical_name(file_name, source)
    info = database.get("dbInfo", {})
    if not isinstance(info, Mapping):
        raise ConfigError(f"{source}: the key 'database.dbInfo' must be an object.")
    cls = backend_class(name, source)
    foreign = None
    if env_name is not None and isinstance(file_name, str) and ALIASES.get(file_name.lower(), file_name.lower()) in BACKENDS:
        file_key = canonical_name(file_name, source)
        if file_key != name:
            try:
                foreign = backend_class(file_key, source)
            except ConfigError:  # its driver is not installed: its keys cannot be told from typos
                foreign = None
    checked = check_info(cls, info, source, foreign)
    merged = dict(info)
    if env_info is not None:
        try:
            override = json.loads(env_info)
        except ValueError as exc:
            raise ConfigError(f"The environment variable {ENV_INFO} is not valid JSON ({exc}).") from None
        if not isinstance(override, dict):
            raise ConfigError(f"The environment variable {ENV_INFO} must hold a JSON object.")
        checked.update(check_info(cls, override, f"The environment variable {ENV_INFO}"))
        merged.update(override)
    if "cursorSecret" in database and "cursor_secret" in database:
        raise ConfigError(f"{source}: give the cursor secret once, as 'cursorSecret' or 'cursor_secret', not both.")
    key = "cursorSecret" if "cursorSecret" in database else "cursor_secret"
    from_file = secret_bytes(database.get(key), source, f"database.{key}")
    secret = cursor_secret(None) or from_file
    return Settings(name, checked, source, secret, merged)


def parse(cfg: Any, source: str) -> tuple[str, dict[str, Any]]:
    """``(dbName, dbInfo)`` from a parsed config, checked, with ODM_DB_NAME / ODM_DB_INFO applied."""
    settings = read(cfg, source)
    return settings.name, settings.merged


def read_file(path: str | os.PathLike[str]) -> Settings:
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
    return read(cfg, source)


def load_file(path: str | os.PathLike[str]) -> tuple[str, dict[str, Any]]:
    settings = read_file(path)
    return settings.name, settings.merged


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


def build_backend(name: str, info: Mapping[str, Any], source: str = "<arguments>", *, inspecting: bool = False) -> Backend:
    """The backend ``name`` on ``info`` (checked); ``inspecting``: opened to read only (Backend.inspecting)."""
    cls = backend_class(name, source)
    if not isinstance(info, Mapping):
        raise ConfigError(f"{source}: dbInfo for {name} must be an object.")
    checked = check_info(cls, info, source)
    try:
        return cls.inspecting(checked) if inspecting else cls(checked)
    except ConfigError as exc:
        if str(exc).startswith(source):
            raise
        raise ConfigError(f"{source}: {exc}") from exc.__cause__


def backend_infos(infos: Any) -> dict[str, dict[str, Any]]:
    """BackendSupport's argument, checked: backend names mapped to dbInfo dicts (keys are checked when built)."""
    if not isinstance(infos, Mapping):
        raise ConfigError(f"BackendSupport takes a dict of backend name -> dbInfo dict, not {type(infos).__name__}.")
    out: dict[str, dict[str, Any]] = {}
    for name, info in infos.items():
        if not isinstance(name, str):
            raise ConfigError(f"BackendSupport: backend names must be strings, not {type(name).__name__}.")
        if not isinstance(info, Mapping):
            raise ConfigError(f"BackendSupport: the dbInfo of '{name}' must be a dict, not {type(info).__name__}.")
        out[name] = dict(info)
    return out


def backend_name(name: Any, call: str) -> str:
    """``name`` when it is a string (a backend name), else a ConfigError naming the call."""
    if not isinstance(name, str):
        raise ConfigError(f"{call} takes a backend name (a string), not {type(name).__name__}.")
    return name
