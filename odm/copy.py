"""``odm copy``: stream every item of some models from one backend to another, resumably.

Items are read page by page with the cursor API (``Repository.page``) and written in batches
with ``insert_many``, each item decoded with the source's codec and encoded with the target's,
so versions, polymorphic types, TTL instants, Decimals and datetimes arrive as they were (no
hook runs, no version or timestamp is set again).

After each batch the checkpoint file records, per model, the cursor after that batch and how
many items are done. A run that stops (Ctrl-C, a crash, a server lost) is resumed by running the
same command: it starts at the checkpoint's cursor. The batch that was in flight may be partly
written; its items are sent again, and an item whose key the target already holds is taken as
done **when the stored item is identical** (compared as model instances); a different one is a
``CopyConflict`` and is never overwritten. The copy ends with a count check per model.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .backends.base import Action, QuerySpec, Repository
from .binding import Binding
from .errors import DuplicateKey, ODMError, ValidationError
from .model import Model
from .pagination import Cursors
from .progress import Progress
from .registry import Registry

DEFAULT_BATCH = 500
FORMAT = 1


class CopyConflict(ODMError):
    """The target holds an item with the same key as a source item, but a different one."""


class CheckpointError(ODMError):
    """The checkpoint file is unreadable or belongs to another copy."""


@dataclass
class Counted:
    """One model's count check: source items against target items."""

    model: str
    source: int
    target: int

    @property
    def ok(self) -> bool:
        return self.source == self.target


class Checkpoint:
    """Per model: the page cursor after the last batch written, how many items are done, and whether
    the model is complete. Saved atomically (a temporary file renamed over the old one)."""

    def __init__(self, path: Path, source: str, target: str) -> None:
        self.path = path
        self.identity = {"from": source, "to": target}
        self.data: dict[str, Any] = {"format": FORMAT, **self.identity, "cursor_key": secrets.token_hex(32), "models": {}}
        if path.exists():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise CheckpointError(f"The checkpoint {path} cannot be read ({type(exc).__name__}); delete it to "
                                      "start the copy over.") from None
            if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("models"), dict):
                raise CheckpointError(f"The checkpoint {path} is not an odm copy checkpoint; delete it or pass "
                                      "another --checkpoint.")
            if {k: data.get(k) for k in self.identity} != self.identity:
                raise CheckpointError(f"The checkpoint {path} belongs to a copy from {data.get('from')} to "
                                      f"{data.get('to')}, not this one; delete it or pass another --checkpoint.")
            self.data = data
        self.resumed = path.exists()

    def kept(self) -> str:
        """What an interrupted or failed copy tells the user about resuming (the file may not exist yet)."""
        if self.path.exists():
            return f"the checkpoint {self.path} keeps what was copied: run the same command again to resume"
        return ("no batch was checkpointed yet: run the same command again to start over "
                "(items already in the target count as done)")

    def model(self, name: str) -> dict[str, Any]:
        return self.data["models"].setdefault(name, {"cursor": None, "copied": 0, "done": False})  # type: ignore[no-any-return]

    @property
    def cursors(self) -> Cursors:
        """Signs the page cursors kept here, so another process (the resumed run) accepts them."""
        return Cursors(bytes.fromhex(self.data["cursor_key"]))

    def save(self) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            tmp.write_text(json.dumps(self.data, indent=1), encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError as exc:
            raise CheckpointError(f"The checkpoint {self.path} cannot be written ({exc.strerror}); pass a writable "
                                  "--checkpoint PATH.") from None

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def default_checkpoint(target_config: str) -> Path:
    """Next to the target config: ``B.json`` -> ``B.json.odm-copy.json``."""
    path = Path(target_config)
    return path.with_name(path.name + ".odm-copy.json")


def roots(models: Sequence[type[Model]]) -> list[type[Model]]:
    """Each model once, a polymorphic family by its base (one table holds the whole family)."""
    out: list[type[Model]] = []
    for model in models:
        family = model._meta.family
        root = family.root if family is not None else model
        if root not in out:
            out.append(root)
    return out


def write_batch(binding: Binding, docs: list[dict[str, Any]], items: list[Any]) -> None:
    """``insert_many``; keys already stored (a resumed batch) are done when the stored item is identical."""
    repo = binding.repo
    spec = repo.spec
    while docs:
        try:
            repo.insert_many(docs)
            return
        except DuplicateKey as exc:
            written = set(getattr(exc, "written", []) or [])
            failed = set(getattr(exc, "failed", []) or [])
            if not failed:
                raise
        by_key = {spec.key_of(doc): item for doc, item in zip(docs, items, strict=True)}
        for key in failed:
            stored = repo.get(key)
            if stored is None:  # the key is free: another item holds one of its unique values
                raise CopyConflict(f"The item {repo.key_label(key)} of '{spec.name}' cannot be written to the target: "
                                   "another item there holds one of its unique values; odm copy never overwrites. "
                                   "Remove that item from the target and run the command again.")
            if binding.decode(stored) != by_key[key]:
                raise CopyConflict(f"The target's '{spec.name}' already holds a different item with key "
                                   f"{repo.key_label(key)}; odm copy never overwrites. Remove it from the target "
                                   "(or copy into an empty table) and run the command again.")
        rest = [(d, i) for d, i in zip(docs, items, strict=True) if spec.key_of(d) not in written | failed]
        docs, items = [d for d, _ in rest], [i for _, i in rest]


def _encoded(writer: Binding, item: Any, source: Repository, doc: dict[str, Any]) -> dict[str, Any]:
    """The target's stored form of ``item``; a value the target cannot store (a number beyond its
    range, say) is refused naming the item's key, so the row can be found in a large table."""
    try:
        return writer.encode(item)  # type: ignore[no-any-return]
    except ValidationError as exc:
        label = source.key_label(source.spec.key_of(doc))
        raise ValidationError(exc.messages, f"{exc.model or type(item).__name__} {label}") from None


def copy_models(source: Registry, target: Registry, models: Sequence[type[Model]], checkpoint: Checkpoint,
                progress: Progress, batch_size: int = DEFAULT_BATCH,
                synced: Callable[[list[Action]], None] | None = None) -> list[Counted]:
    """Sync the target's schema, copy every item of ``models``, and count them on both sides.

    ``synced(actions)`` is told what the target's sync created (before any item is copied).
    """
    families = roots(models)
    source.register(*families)
    readers = {m: m._bound() for m in families}
    target.register(*families, rebind=True)  # the class now writes to the target; the source bindings stay usable
    writers = {m: m._bound() for m in families}
    actions = target.sync()
    if synced is not None:
        synced(actions)
    source.backend.cursors = checkpoint.cursors
    everything = QuerySpec()
    for model in families:
        name = model.__name__
        state = checkpoint.model(name)
        reader, writer = readers[model], writers[model]
        if state["done"]:
            continue
        if state["copied"] and (have := writer.repo.count(everything)) < state["copied"]:
            # The target lost items the checkpoint counts as written (a server restored or restarted
            # without them): start this model over; the items still there count as done.
            progress.note(f"{name}: the target holds {have} items but the checkpoint counts {state['copied']} "
                          "written; copying it again from the start")
            state.update(cursor=None, copied=0)
        progress.start(name, reader.repo.count(everything), state["copied"])
        while True:
            docs, cursor = reader.repo.page(everything, batch_size, state["cursor"])
            items = [reader.decode(doc) for doc in docs]
            if items:
                write_batch(writer, [_encoded(writer, item, reader.repo, doc) for doc, item in zip(docs, items, strict=True)], items)
            state["cursor"], state["copied"] = cursor, state["copied"] + len(items)
            state["done"] = cursor is None
            checkpoint.save()
            progress.advance(len(items))
            if cursor is None:
                break
        progress.finish()
    return [Counted(m.__name__, readers[m].repo.count(everything), writers[m].repo.count(everything)) for m in families]
