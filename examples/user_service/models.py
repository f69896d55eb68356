"""The service's two models and its password hashing.

The request schemas are built from the models' own marshmallow schemas, so a field's rules
(required, email format, lengths) are written once, on the model.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets

import marshmallow
from marshmallow import validate

from odm import Index, Model, fields


class User(Model):
    """A registered user; the key is an automatic UUID, the email is unique on every backend."""

    email = fields.String(required=True, validate=[validate.Length(max=254), validate.Email()])  # 254: RFC 5321
    fullname = fields.String(validate=validate.Length(max=200))
    roles = fields.List(fields.String(validate=validate.Length(min=1, max=50)), default=list)
    active = fields.Boolean(default=True)
    password_hash = fields.String(required=True)  # never returned: see public()
    version = fields.Integer()  # optimistic locking: bumped by every write
    created_at = fields.DateTime(auto_now_add=True)
    updated_at = fields.DateTime(auto_now=True)

    class Meta:
        name = "users"
        indexes = [Index("email", unique=True)]
        version_field = "version"


class Token(Model):
    """An access token, stored under the SHA-256 of its value: a leaked table holds no usable token.

    ``expires_at`` is the TTL attribute: odm treats an expired token as absent on every backend,
    even before the server deletes it, and the service checks the instant itself as well.
    """

    id = fields.String(required=True)
    user_id = fields.String(required=True)
    expires_at = fields.DateTime()

    class Meta:
        name = "tokens"
        hash_key = "id"
        indexes = ["user_id"]
        ttl = {"attribute": "expires_at", "seconds": 3600}


#: What a client may never send; the server sets them. ``roles`` and ``active`` are the server's
#: too: a client choosing them at registration or in its own PATCH would grant itself rights.
SERVER_FIELDS = ("id", "password_hash", "version", "created_at", "updated_at", "roles", "active")


class UserInput(User.schema_class()):  # type: ignore[misc]
    """The model's schema plus the plain password a client sends (never stored or returned)."""

    password = marshmallow.fields.String(required=True, load_only=True, validate=validate.Length(min=8, max=128))


#: POST /users: every required field. Unknown fields (``id``, ``version``, ``roles``, a typo) are refused.
register_schema = UserInput(exclude=SERVER_FIELDS)
class UpdateInput(UserInput):
    """A new password must come with the current one: a stolen token alone cannot lock the owner out."""

    current_password = marshmallow.fields.String(load_only=True, validate=validate.Length(max=128))

    @marshmallow.validates_schema
    def _current_password(self, data: dict[str, object], **_: object) -> None:
        if "password" in data and "current_password" not in data:
            raise marshmallow.ValidationError("Send the current password with a new one.", "current_password")


#: PATCH /users/{id}: fullname and password; the email is the unique login name and does not change.
update_schema = UpdateInput(exclude=(*SERVER_FIELDS, "email"), partial=True)


class TokenRequest(marshmallow.Schema):
    """POST /tokens: the credentials, and optionally a shorter lifetime than the configured one."""

    email = marshmallow.fields.String(required=True, validate=validate.Length(max=254))
    password = marshmallow.fields.String(required=True, load_only=True, validate=validate.Length(max=128))
    ttl = marshmallow.fields.Integer(strict=True, validate=validate.Range(min=1))


# scrypt's cost: 16 MiB and some tens of milliseconds per hash, run off the event loop.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=64 * 1024 * 1024, dklen=32)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


async def hash_password(password: str) -> str:
    """``scrypt$n$r$p$salt$hash``: the parameters travel with the hash, so they can be raised later."""
    salt = secrets.token_bytes(16)
    digest = await asyncio.to_thread(_scrypt, password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


#: Checked against when the email is unknown, so a wrong email costs as long as a wrong password.
_DUMMY_HASH = f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(b'0' * 16)}${_b64(b'0' * 32)}"


async def verify_password(password: str, stored: str | None) -> bool:
    """Constant-time comparison with a stored ``hash_password`` value (None: an unknown user)."""
    _, n, r, p, salt, digest = (stored or _DUMMY_HASH).split("$")
    got = await asyncio.to_thread(_scrypt, password, base64.b64decode(salt), int(n), int(r), int(p))
    return stored is not None and hmac.compare_digest(got, base64.b64decode(digest))


def token_id(token: str) -> str:
    """The stored key of a token: its SHA-256, hex."""
    return hashlib.sha256(token.encode()).hexdigest()
