"""insert_many never replaces an item, on any backend, even when writers race for the same keys.

Eight threads insert the same 200 keys at once. Every key must end with exactly one writer:
a thread that returns normally wrote all its items; one that gets ``odm.DuplicateKey`` wrote
nothing (atomic backends) or exactly the items the error does not list in ``failed``. An
item whose ``who`` is not the one writer that claims it was overwritten.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import odm
from odm import Model, fields

WRITERS = 8
KEYS = 200


class Claim(Model):
    k = fields.String(required=True)
    who = fields.Integer(required=True)

    class Meta:
        name = "integrity_claims"
        hash_key = "k"


def _race(writers: int, batch: Callable[[int], list[Claim]]) -> dict[int, BaseException | None]:
    """Run ``Claim.insert_many(batch(t))`` in ``writers`` threads released together."""
    barrier = threading.Barrier(writers)
    outcome: dict[int, BaseException | None] = {}

    def run(t: int) -> None:
        items = batch(t)
        barrier.wait()
        try:
            Claim.insert_many(items)
            outcome[t] = None
        except BaseException as exc:  # recorded and asserted on below
            outcome[t] = exc

    threads = [threading.Thread(target=run, args=(t,)) for t in range(writers)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return outcome


def test_racing_insert_many_never_overwrites(make_registry: Callable[..., odm.Registry]) -> None:
    reg = make_registry(Claim)
    keys = [f"key{i:03d}" for i in range(KEYS)]
    outcome = _race(WRITERS, lambda t: [Claim(k=k, who=t) for k in keys])

    claimed: dict[str, list[int]] = {k: [] for k in keys}
    for t, exc in outcome.items():
        if exc is None:
            mine = set(keys)
        else:
            assert isinstance(exc, odm.DuplicateKey), f"writer {t} raised {exc!r}"
            if reg.backend.features.atomic_insert_many:
                mine = set()
            else:
                failed: Any = getattr(exc, "failed", None)
                assert failed is not None, "a partial insert_many must say which keys it did not write"
                mine = set(keys) - {key[0] for key in failed}
        for k in mine:
            claimed[k].append(t)

    assert sum(exc is None for exc in outcome.values()) <= 1
    stored = {c.k: c.who for c in Claim.query()}
    assert len(stored) == KEYS and Claim.query().count() == KEYS
    # Exactly one writer per key, and the stored item is that writer's.
    assert {k: v for k, v in claimed.items() if len(v) != 1} == {}
    assert {k: w for k, w in stored.items() if claimed[k] != [w]} == {}
