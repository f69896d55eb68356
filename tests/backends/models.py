"""Models shared by the backend suite (each with its own table name)."""

from __future__ import annotations

import enum

import odm
from odm import EmbeddedModel, Index, Model, fields


class Address(EmbeddedModel):
    street = fields.String()
    city = fields.String(required=True)


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class User(Model):
    email = fields.String(required=True)
    name = fields.String()
    age = fields.Integer()
    score = fields.Float()
    active = fields.Boolean(default=True)
    tags = fields.List(fields.String())
    address = fields.Embedded(Address)
    balance = fields.Decimal()
    created_at = fields.DateTime(default=odm.utcnow)
    color = fields.Enum(Color)

    class Meta:
        name = "suite_users"
        hash_key = "email"
        indexes = ["name", Index("age", "name")]
        gsi = {"by_name": {"hash_key": "name", "range_key": "age"}}


class Note(Model):
    """Auto id key, unique index, every storable type."""

    title = fields.String(required=True)
    slug = fields.String()
    body = fields.String(data_key="text")
    when = fields.Date()
    ref = fields.UUID()
    blob = fields.Bytes()
    labels = fields.Set(fields.String())
    extra = fields.Dict()
    count = fields.Integer(default=0)

    class Meta:
        name = "suite_notes"
        indexes = [Index("slug", unique=True)]


class Event(Model):
    """Hash + range key."""

    stream = fields.String(required=True)
    seq = fields.Integer(required=True)
    kind = fields.String()
    at = fields.DateTime()

    class Meta:
        name = "suite_events"
        hash_key = "stream"
        range_key = "seq"
        lsi = {"by_kind": {"range_key": "kind"}}


class Account(Model):
    owner = fields.String(required=True)
    balance = fields.Integer(default=0)
    version = fields.Integer()

    class Meta:
        name = "suite_accounts"
        hash_key = "owner"
        version_field = "version"


class Session(Model):
    token = fields.String(required=True)
    user = fields.String()
    expires_at = fields.DateTime()

    class Meta:
        name = "suite_sessions"
        hash_key = "token"
        ttl = {"attribute": "expires_at", "seconds": 3600}


ALL = [User, Note, Event, Account, Session]
