"""Racing fresh versioned saves: one winner, every loser gets ConcurrentModification (every backend)."""

from __future__ import annotations

import threading
from collections.abc import Callable

import odm
from odm import Model, fields

THREADS = 7
ROUNDS = 5


class Racer(Model):
    key = fields.String(required=True)
    who = fields.Integer()
    version = fields.Integer()

    class Meta:
        name = "suite_version_race"
        hash_key = "key"
        version_field = "version"


def race(key: str) -> list[BaseException | None]:
    """``THREADS`` fresh instances of one key saved at once; each thread's outcome (None: it won)."""
    outcomes: list[BaseException | None] = [None] * THREADS
    start = threading.Barrier(THREADS)

    def run(i: int) -> None:
        obj = Racer(key=key, who=i)
        start.wait()
        try:
            obj.save()
        except BaseException as exc:  # noqa: BLE001 - recorded and asserted on below
            outcomes[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes


def test_racing_fresh_versioned_saves_have_one_winner(make_registry: Callable[..., odm.Registry]) -> None:
    make_registry(Racer)
    for round_ in range(ROUNDS):
        outcomes = race(f"k{round_}")
        winners = [i for i, exc in enumerate(outcomes) if exc is None]
        losers = [exc for exc in outcomes if exc is not None]
        assert len(winners) == 1, outcomes
        assert all(type(exc) is odm.ConcurrentModification for exc in losers), [repr(e) for e in losers]
        stored = Racer.get(f"k{round_}")
        assert (stored.who, stored.version) == (winners[0], 1)
    assert Racer.query().count() == ROUNDS
