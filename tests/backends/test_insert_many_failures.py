"""A failed insert_many is reported through its exception only: nothing on stdout or stderr (every backend)."""

from __future__ import annotations

import logging

import pytest

import odm

from .models import User

SIZE = 1000  # psycopg printed its pipeline teardown error when the clash came early in a long batch


def test_failed_insert_many_prints_nothing_and_names_the_clash(reg: odm.Registry, capfd: pytest.CaptureFixture[str],
                                                               caplog: pytest.LogCaptureFixture) -> None:
    User.create(email="u1@x.io")
    capfd.readouterr()
    caplog.clear()
    with pytest.raises(odm.DuplicateKey, match="u1@x.io"):
        User.insert_many([User(email=f"u{i}@x.io") for i in range(SIZE)])
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")
    # Under pytest a driver's warning goes to the log capture instead of stderr: nothing there either.
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    expected = 1 if reg.backend.features.atomic_insert_many else SIZE
    assert User.query().count() == expected
    # The connection that saw the failure is healthy: the next call works and prints nothing.
    User.insert_many([User(email=f"v{i}@x.io") for i in range(SIZE)])
    assert User.query().count() == expected + SIZE
    assert capfd.readouterr() == ("", "")
