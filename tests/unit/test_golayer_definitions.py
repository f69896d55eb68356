"""Go-layer definitions are checked when defined, not when the first save trips over them."""

from __future__ import annotations

from typing import Any

import pytest

import odm
from odm import Model, fields


@pytest.mark.parametrize("bad", [
    {"enableTtl": True, "ttlAttribute": "e", "ttl": "abc"},
    {"enableTtl": True, "ttlAttribute": "e", "ttl": float("nan")},
    {"enableTtl": True, "ttlAttribute": "e", "ttl": float("inf")},
    {"enableTtl": True, "ttlAttribute": "e", "ttl": 10**30},
    {"enableTtl": True, "ttlAttribute": "e", "ttl": -5},
    {"enableTtl": True, "ttlAttribute": "e", "ttl": True},
    {"ttl": -5},
    {"enableTtl": False, "ttlAttribute": "e", "ttl": "abc"},
    {"readCapacity": 2**41, "writeCapacity": 1},
    {"indexes": "email"},
    {"indexes": {"email": 1}},
    {"readCapacity": "5", "writeCapacity": 5},
    {"writeCapacity": 0, "readCapacity": 5},
    {"GSI": {"name": {"readCapacity": 1.5, "writeCapacity": 1}}},
], ids=repr)
def test_bad_definition_values_are_config_errors_naming_the_key(bad: dict[str, Any]) -> None:
    backend = odm.BackendSupport({"sqlite": {"path": ":memory:"}}).get_backend("sqlite")
    key = next(k for k in bad if k not in ("enableTtl", "ttlAttribute"))
    with pytest.raises(odm.ConfigError, match=key):
        backend.define_repository("t", {"name": "defs", **bad})
    with pytest.raises(odm.ConfigError, match="No repository named"):
        backend.get_repository("t")
    backend.shutdown()


def test_a_good_ttl_still_sets_the_expiry() -> None:
    backend = odm.BackendSupport({"sqlite": {"path": ":memory:"}}).get_backend("sqlite")
    repo = backend.define_repository("t", {"name": "defs", "enableTtl": True, "ttlAttribute": "e", "ttl": 60.5})
    saved = repo.save({"a": 1})
    assert saved["e"] > odm.utcnow()
    backend.shutdown()


@pytest.mark.parametrize("seconds", [float("nan"), float("inf"), 10**30, 0])
def test_model_ttl_seconds_are_bounded(seconds: float) -> None:
    with pytest.raises(odm.ConfigError, match="ttl"):
        class Token(Model):
            expires = fields.DateTime()

            class Meta:
                ttl = {"attribute": "expires", "seconds": seconds}
