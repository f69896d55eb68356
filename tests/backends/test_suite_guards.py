"""The test suite's own guards against server hazards (docs/testing.md)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from odm import Model, fields

from .. import servers
from ..conftest import registries


def test_a_ttl_table_past_the_shared_dynamodb_limit_fails_at_once(_targets: Callable[[str], Any],
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The next TTL table would be one too many (the limit lowered to what the server holds now):
    sync fails at once naming docs/testing.md, before TTL is enabled, instead of a later GSI hanging."""
    table_name = f"guard_ttl_{uuid.uuid4().hex[:8]}"  # a table of its own, never TTL-enabled

    class Expiring(Model):
        k = fields.String(required=True)
        until = fields.DateTime()

        class Meta:
            name = table_name
            hash_key = "k"
            ttl = {"attribute": "until"}
    for make in registries(_targets("dynamodb")):
        reg = make()
        client: Any = reg.backend.client  # type: ignore[attr-defined]
        monkeypatch.setattr(servers, "DYNAMODB_TTL_TABLE_LIMIT", len(servers.ttl_tables(client)))
        start = time.monotonic()
        with pytest.raises(pytest.fail.Exception, match=r"docs/testing\.md.*DynamoDB Local hazard"):
            make(Expiring)
        assert time.monotonic() - start < 30
        assert reg.backend.prefix + table_name not in servers.ttl_tables(client)  # type: ignore[attr-defined]
