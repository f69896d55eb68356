"""The HTTP layer: FastAPI routes over the async odm API, and one mapping of odm errors to statuses.

Every odm error a route can raise has its status here (``ERROR_STATUS``), so none reaches the
client as a bare 500: 422 for invalid data, 409 for a taken email or a stale version, 404 for a
missing user, 400 for a bad page cursor, 503 when the database cannot be reached. A 5xx answers
a generic message and a request id; the detail (which names the database server) goes to the
log only. Changing or deleting a user takes that user's own token (docs/service.md, Security).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import secrets
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import marshmallow
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

import odm
from odm.redaction import SECRETS

from .models import Token, TokenRequest, User, hash_password, register_schema, token_id, update_schema, verify_password

HERE = Path(__file__).resolve().parent
#: The config read when neither ``--config`` nor USER_SERVICE_CONFIG names one: SQLite, no server.
DEFAULT_CONFIG = HERE / "config.json"
DEFAULT_TOKEN_TTL = 3600
MAX_PAGE = 100
#: A request body larger than this is refused (413) before it is read whole.
MAX_BODY = 64 * 1024
#: Longer than any id the service makes (a UUID is 36 characters): answered 404 without a lookup.
MAX_ID = 64

log = logging.getLogger("examples.user_service")
log.addFilter(SECRETS)  # masks a configured password that reaches a message anyway

# Most specific first: ConcurrentModification is a ConditionFailed.
ERROR_STATUS: list[tuple[type[odm.ODMError], int]] = [
    (odm.ValidationError, 422),
    (odm.DuplicateKey, 409),
    (odm.ConditionFailed, 409),
    (odm.NotFound, 404),
    (odm.QueryError, 400),
    (odm.BackendUnavailable, 503),
    (odm.ODMError, 500),
]


class Settings:
    """What the service reads from its config file: the odm ``database`` object and ``tokens``."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        try:
            cfg = json.loads(self.path.read_text())
        except OSError as exc:
            raise odm.ConfigError(f"{self.path}: cannot read the config ({exc.strerror}).") from None
        except ValueError as exc:
            raise odm.ConfigError(f"{self.path}: not valid JSON ({exc}).") from None
        if not isinstance(cfg, dict):
            raise odm.ConfigError(f"{self.path}: the config must be a JSON object with a 'database' key.")
        _relative_sqlite_path(cfg, self.path.parent)
        self.database = cfg
        tokens = cfg.get("tokens", {})
        ttl = tokens.get("ttl", DEFAULT_TOKEN_TTL) if isinstance(tokens, dict) else None
        if type(ttl) is not int or ttl < 1:
            raise odm.ConfigError(f"{self.path}: 'tokens' must be an object whose 'ttl' is a whole number of seconds >= 1, "
                                  'e.g. {"tokens": {"ttl": 3600}}.')
        self.token_ttl: int = ttl

    def registry(self) -> odm.Registry:
        """The registry of the ``database`` object (odm checks every key and the ODM_DB_* overrides)."""
        return odm.Registry.from_dict(self.database, source=str(self.path))


def _relative_sqlite_path(cfg: dict[str, Any], base: Path) -> None:
    """A relative SQLite path is read from the config's folder, not from wherever the service started."""
    db = cfg.get("database")
    info = db.get("dbInfo") if isinstance(db, dict) else None
    if isinstance(db, dict) and db.get("dbName") == "sqlite" and isinstance(info, dict):
        path = info.get("path")
        if isinstance(path, str) and path != ":memory:" and not path.startswith("file:") and not Path(path).is_absolute():
            info["path"] = str(base / path)


def error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


def public(user: User) -> dict[str, Any]:
    """A user as the API shows it: JSON values, without the password hash."""
    out = user.to_dict(json=True)
    out.pop("password_hash", None)
    return out


def with_etag(user: User, status: int = 200) -> JSONResponse:
    """The user, with its version as ETag: the value to send back in If-Match."""
    return JSONResponse(public(user), status_code=status, headers={"ETag": f'"{user.version}"'})


def validated(schema: marshmallow.Schema, body: Any, model: str) -> dict[str, Any]:
    """``schema.load(body)``, its errors raised as odm.ValidationError (marshmallow's field shape)."""
    if not isinstance(body, dict):
        raise odm.ValidationError({"_schema": ["The body must be a JSON object."]}, model)
    try:
        return dict(schema.load(body))
    except marshmallow.ValidationError as exc:
        messages = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
        raise odm.ValidationError(messages, model) from None


class TooLarge(Exception):
    """A request body over MAX_BODY: answered 413 before the rest is read."""


async def json_body(request: Request) -> Any:
    """The parsed JSON body: at most MAX_BODY bytes, and only text that can be stored (no lone surrogate)."""
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and len(declared) < 20 and int(declared) > MAX_BODY:
        raise TooLarge
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY:
            raise TooLarge
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):  # also a number of more than 4300 digits, or [[[[... nested too deep
        raise odm.ValidationError({"_schema": ["The body is not valid JSON."]}) from None
    if isinstance(body, dict):
        for key, value in body.items():
            if not _encodable(key) or not _encodable(value):
                raise odm.ValidationError({str(key).encode("utf-8", "replace").decode()[:40]: [
                    "Not valid Unicode text: it holds a lone surrogate escape such as \\ud800."]})
    elif not _encodable(body):
        raise odm.ValidationError({"_schema": ["Not valid Unicode text: it holds a lone surrogate escape such as \\ud800."]})
    return body


def _encodable(value: Any) -> bool:
    """False when a string anywhere in ``value`` cannot be UTF-8 encoded (hashing or storing it would fail)."""
    try:
        json.dumps(value, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        return False
    return True


def whole_number(text: str, digits: int) -> int | None:
    """``text`` as a whole number of at most ``digits`` ASCII digits, else None (``"²".isdigit()`` is True)."""
    return int(text) if re.fullmatch(f"[0-9]{{1,{digits}}}", text) else None


def expected_version(request: Request, body: dict[str, Any]) -> int | None:
    """The version the client read: ``If-Match: "3"`` (as the ETag gave it) or a body field ``version``."""
    raw: Any = request.headers.get("if-match", body.pop("version", None))
    if raw is None:
        return None
    version = None if isinstance(raw, bool) else whole_number(str(raw).strip().removeprefix("W/").strip('"'), 18)
    if version is None:
        raise odm.ValidationError({"version": [f"Must be the whole number from the user's ETag, e.g. If-Match: \"1\"; got {str(raw)[:40]!r}."]},
                                  "User")
    return version


def bearer(request: Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


async def authenticated(request: Request) -> User | None:
    """The active user of the request's unexpired bearer token, else None (answer 401)."""
    value = bearer(request)
    token = await Token.aget_or_none(token_id(value)) if value and len(value) <= 200 else None
    # odm already hides an expired token; the explicit check documents the rule.
    user = await User.aget_or_none(token.user_id) if token and token.expires_at and token.expires_at > odm.utcnow() else None
    return user if user is not None and user.active else None


def unauthorized() -> JSONResponse:
    return JSONResponse({"error": "Missing, unknown or expired token: send Authorization: Bearer <token> from POST /tokens."},
                        status_code=401, headers={"WWW-Authenticate": "Bearer"})


def forbidden(user_id: str) -> JSONResponse:
    return error(403, f"Your token is not for user {user_id[:MAX_ID]!r}: a user can change or delete only their own account.")


async def account_owner(request: Request, user_id: str) -> User | JSONResponse:
    """The signed-in user when ``user_id`` is their own account, else the 401 or 403 to answer."""
    me = await authenticated(request)
    if me is None:
        return unauthorized()
    return me if me.id == user_id else forbidden(user_id)


def profile(user: User) -> dict[str, Any]:
    """Another user as a signed-in client sees them: the id and name, no email, roles or version."""
    return {"id": user.id, "fullname": user.fullname}


def error_response(exc: odm.ODMError) -> JSONResponse:
    """The answer to an odm error: its status from ERROR_STATUS; a 5xx says nothing of the database."""
    status = next(code for cls, code in ERROR_STATUS if isinstance(exc, cls))
    if status >= 500:
        return server_error(status, exc)
    if isinstance(exc, odm.ValidationError):
        return error(status, str(exc), fields=exc.messages)
    return error(status, str(exc))


def server_error(status: int, exc: BaseException) -> JSONResponse:
    """Logs ``exc`` (it may name the database's host, port, user) under a request id; the client gets the id only."""
    request_id = uuid.uuid4().hex[:16]
    log.error("request %s: %s: %s", request_id, type(exc).__name__, exc)
    message = ("The database is unavailable; try again later." if status == 503
               else "Internal error: the service could not complete the request.")
    return error(status, f"{message} Request id {request_id} (in the service's log).", request_id=request_id)


def create_app(config: str | os.PathLike[str] | None = None) -> FastAPI:
    """The service for ``config`` (else USER_SERVICE_CONFIG, else the SQLite config beside this file).

    The config is read here, so a wrong one fails before the server starts; the schema is
    synced in the lifespan, once the event loop runs.
    """
    settings = Settings(config or os.environ.get("USER_SERVICE_CONFIG") or DEFAULT_CONFIG)
    registry = settings.registry()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            try:
                registry.register(User, Token, rebind=True)
                await registry.async_sync()  # creates the tables and indexes once; then nothing to do
            except odm.ODMError as exc:  # e.g. the server is unreachable: say so without the driver's stack
                raise type(exc)(f"{settings.path}: the user service cannot start: {exc}") from None
            yield
        finally:
            await registry.aclose()

    app = FastAPI(title="odm user service", lifespan=lifespan)

    @app.exception_handler(odm.ODMError)
    async def odm_error(request: Request, exc: odm.ODMError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(TooLarge)
    async def too_large(request: Request, exc: TooLarge) -> JSONResponse:
        return error(413, f"The body is larger than {MAX_BODY} bytes.")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:  # a bug: logged, never shown
        return server_error(500, exc)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/users", status_code=201)
    async def register(request: Request) -> Response:
        data = validated(register_schema, await json_body(request), "User")
        password = data.pop("password")
        if await User.query(User.email == data["email"]).aexists():  # answers before the costly hash
            raise odm.DuplicateKey(f"The email {data['email']!r} is already registered.")
        user = await User.acreate(**data, password_hash=await hash_password(password))  # a racing twin: DuplicateKey
        response = with_etag(user, 201)
        response.headers["Location"] = f"/users/{user.id}"
        return response

    @app.get("/users/{user_id}")
    async def fetch(user_id: str, request: Request) -> Response:
        me = await authenticated(request)
        if me is None:
            return unauthorized()
        if me.id == user_id:
            return with_etag(me)
        if len(user_id) > MAX_ID:
            raise odm.NotFound(f"No User has the key {user_id[:MAX_ID]!r}...")
        return JSONResponse(profile(await User.aget(user_id)))

    @app.get("/users")
    async def list_users(request: Request, limit: str = "20", cursor: str | None = None) -> Response:
        size = whole_number(limit, 3)
        if size is None or not 1 <= size <= MAX_PAGE:
            raise odm.ValidationError({"limit": [f"Must be a whole number from 1 to {MAX_PAGE}, got {limit[:20]!r}."]})
        if await authenticated(request) is None:
            return unauthorized()
        page = await User.query().apage(size=size, cursor=cursor or None)
        return JSONResponse({"items": [profile(u) for u in page.items], "next_cursor": page.next_cursor})

    @app.patch("/users/{user_id}")
    async def update(user_id: str, request: Request) -> Response:
        me = await account_owner(request, user_id)
        if isinstance(me, JSONResponse):
            return me
        body = await json_body(request)
        version = expected_version(request, body) if isinstance(body, dict) else None
        changes = validated(update_schema, body, "User")
        if version is None:
            return error(428, "Send the version you read, as If-Match: \"<version>\" (the ETag of GET /users/{id}) "
                              "or a body field \"version\", so a concurrent change is not overwritten.")
        current = changes.pop("current_password", None)
        if not changes:
            raise odm.ValidationError({"_schema": ["Nothing to change: send fullname, password (with current_password) or both."]}, "User")
        if "password" in changes:
            if not await verify_password(current or "", me.password_hash):
                return error(403, "current_password is not this user's password: a new password needs the current one.")
            changes["password_hash"] = await hash_password(changes.pop("password"))
        user = me  # read by authenticated() just now
        if user.version != version:
            return error(409, f"User {user_id} is at version {user.version}, not {version}: someone changed it since "
                              "you read it. GET it again and reapply your change.", current_version=user.version)
        await user.aupdate(**changes)  # checked on the server: of racing updates of one version, one wins
        return with_etag(user)

    @app.delete("/users/{user_id}", status_code=204)
    async def delete(user_id: str, request: Request) -> Response:
        user = await account_owner(request, user_id)
        if isinstance(user, JSONResponse):
            return user
        await user.adelete()
        await Token.query(Token.user_id == user_id).adelete()
        return Response(status_code=204)

    @app.post("/tokens", status_code=201)
    async def issue_token(request: Request) -> Response:
        data = validated(TokenRequest(), await json_body(request), "Token")
        user = await User.query(User.email == data["email"]).afirst()
        matches = await verify_password(data["password"], user.password_hash if user else None)  # hashes even for no user
        if user is None or not matches or not user.active:
            return error(401, "Wrong email or password.")
        ttl = min(data.get("ttl", settings.token_ttl), settings.token_ttl)
        value = secrets.token_urlsafe(32)
        token = await Token.acreate(id=token_id(value), user_id=user.id, expires_at=odm.utcnow() + dt.timedelta(seconds=ttl))
        return JSONResponse({"token": value, "token_type": "Bearer", "expires_at": token.to_dict(json=True)["expires_at"],
                             "user_id": user.id}, status_code=201)

    @app.get("/me")
    async def me(request: Request) -> Response:
        user = await authenticated(request)
        return unauthorized() if user is None else with_etag(user)

    return app
