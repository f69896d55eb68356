"""Registry hygiene on every backend: table names a backend cannot hold, rebinding, closed registries."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import odm
from odm import Model, fields

from .models import Event

#: Names some backend cannot hold (NUL, '$', reserved prefixes, lengths, characters) beside ordinary ones.
NAMES = [
    "t$x", "t\x00x", "system.things", "a..b", ".lead", "trail.", "ab", "with space", "ünïcode_tbl", "dash-name",
    "dot.name", "UPPER_case", "sqlite_things", "_odm_schema", "x" * 64, "y" * 300, 'quote"d', "semi;colon",
    "back\\slash",
]


def named_model(name: str) -> type[Model]:
    meta = type("Meta", (), {"name": name, "hash_key": "k"})
    return type("Named", (Model,), {"k": fields.String(), "v": fields.Integer(), "Meta": meta})


@pytest.mark.parametrize("name", NAMES, ids=[repr(n)[:24] for n in NAMES])
def test_table_name_is_refused_at_register_or_works_fully(make_registry: Callable[..., odm.Registry], target: Any,
                                                          name: str) -> None:
    model = named_model(name)
    reg = make_registry()
    try:
        reg.register(model)
    except odm.ConfigError as exc:
        assert repr(name)[:40] in str(exc) and reg.backend.name in str(exc)
        assert model._odm_binding is None and reg.models == []  # nothing was bound
        with pytest.raises(odm.ConfigError, match="cannot be used"):  # the Go layer meets the same rule
            odm.Backend(target.name, reg.backend).define_repository("named", {"name": name, "hashKey": "k"})
        return
    reg.sync()
    model.create(k="a", v=1)
    assert model.get("a").v == 1 and model.query().count() == 1  # type: ignore[attr-defined]
    model.get("a").delete()
    assert model.query().count() == 0


def test_nul_in_a_table_name_is_refused_everywhere(make_registry: Callable[..., odm.Registry], target: Any) -> None:
    reg = make_registry()
    with pytest.raises(odm.ConfigError, match=r"'t\\x00x' cannot be used .*NUL"):
        reg.register(named_model("t\x00x"))
    go = odm.Backend(target.name, reg.backend)
    with pytest.raises(odm.ConfigError, match="NUL"):
        go.define_repository("t", {"name": "t\x00x", "hashKey": "k"})
    with pytest.raises(odm.ConfigError, match="must be a string, not int"):
        go.define_repository("t", {"name": 5, "hashKey": "k"})


def test_a_model_bound_to_an_open_registry_is_not_silently_rebound(make_registry: Callable[..., odm.Registry]) -> None:
    first = make_registry(Event)
    second = make_registry()
    with pytest.raises(odm.ConfigError, match="another open registry.*rebind=True"):
        second.register(Event)
    assert Event._bound().repo.backend is first.backend and second.models == []
    first.register(Event)  # the same registry again is fine
    second.register(Event, rebind=True)
    assert Event._bound().repo.backend is second.backend


def test_after_close_a_model_says_its_registry_is_closed(make_registry: Callable[..., odm.Registry]) -> None:
    first = make_registry(Event)
    second = make_registry()
    Event.create(stream="s", seq=1)
    first.close()
    calls: list[Callable[[], Any]] = [
        lambda: Event.get("s", 1), lambda: Event.create(stream="s", seq=2), lambda: list(Event.query()),
        lambda: Event.query().page(size=1), lambda: Event.query().count(), lambda: first.sync(),
        lambda: first.register(Event), lambda: first.ping(),
    ]
    for call in calls:
        with pytest.raises(odm.ConfigError, match="closed"):
            call()
    second.register(Event)  # a closed registry holds nothing: no rebind needed
    assert Event.get("s", 1).seq == 1
