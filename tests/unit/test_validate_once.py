"""A write validates each object once (issue 11): counted, so a second validation cannot come back silently."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import odm
from odm import Model, fields


class Note(Model):
    title = fields.String(required=True)
    stars = fields.Integer()

    class Meta:
        name = "validate_once_note"


@pytest.fixture
def validations(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    seen: list[Any] = []
    original = Note._validated.__func__  # type: ignore[attr-defined]

    def counted(cls: type[Note], data: Any) -> Any:
        seen.append(dict(data))
        return original(cls, data)

    with odm.Registry("sqlite", path=":memory:") as reg:
        reg.register(Note)
        reg.sync()
        monkeypatch.setattr(Note, "_validated", classmethod(counted))
        yield seen


def test_create_validates_once(validations: list[Any]) -> None:
    Note.create(title="a", stars=1)
    assert len(validations) == 1


def test_insert_many_validates_each_dict_once(validations: list[Any]) -> None:
    Note.insert_many([{"title": "a"}, {"title": "b"}, {"title": "c"}])
    assert len(validations) == 3


def test_insert_many_and_save_revalidate_given_instances(validations: list[Any]) -> None:
    # An instance may have been changed since it was built: writing it checks it again.
    note = Note(title="a")
    note.stars = "x"  # type: ignore[assignment]
    with pytest.raises(odm.ValidationError):
        Note.insert_many([note])
    assert len(validations) == 2
    note.stars = 2
    Note.insert_many([note])
    note.save()
    assert len(validations) == 4
