"""Per-model fast plans for the SQL backends: the usual single-item calls without the operation machinery.

Why (issue 11): a ``Model.get`` on SQLite ran about 60 Python calls around one ``cursor.execute``:
the operation generators (``Model._get_or_none_op``, ``SQLRepository.get_op``), their runner
(``ops.run``), a session object and request objects. A :class:`FastPlan` is made once per model
binding (``Model._fast_plan``) and goes from the arguments to one statement and back to an
instance: the same statement the operation sends (``SQLRepository.insert_statement``,
``get_statement``, ``update_statement``), run by ``SQLBackend.execute_one`` (what a session does
with a statement outside a transaction), with the same validation, encoding and decoding code.

When the plan is used: decided once, when it is made (what the model is), and per call by cheap
tests (what the call is). Made only for a model that is not polymorphic and has no TTL; a call
runs its operation instead (the plan answers :data:`MISS`) when a transaction is open in this
context, the registry is closed, the backend's ``fast_paths`` is off, or the call needs more than
one plain statement:

- ``create``: not when the model has ``pre_save``/``post_save`` hooks;
- ``update``: only keyword values (no positional actions, no condition), no ``odm.inc`` or element
  actions, no version field, no ``pre_update``/``post_update`` hooks;
- ``get``: whole items (no ``only``);
- ``insert_many``: a list of plain dicts (instances are validated again by the operation), no
  ``pre_save``/``post_save`` hooks. Only the per-item Python is the plan's: the write itself is
  the repository's ``insert_many_op`` (its transaction and its report of clashing keys).

Queries take ``SQLRepository.find``'s shortcut (its compiled statement cached per shape).
``tests/backends/test_fast_paths.py`` runs every call both ways and compares results and errors.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...compiled import _plain_load, _plain_setattr
from ...errors import NotFound
from ...fields import INT64_MAX, INT64_MIN, Integer, String
from ...model import BaseModel, utcnow
from ...transaction import _open
from ..base import MISS
from ..codec import Codec

if TYPE_CHECKING:
    from ...binding import Binding
    from ...model import Model
    from .backend import SQLBackend
    from .repository import SQLRepository


#: The code of the codec's string check: a key encoded by it is the string itself when it is ASCII without NUL.
_STR_CHECK = Codec().enc_str(None, False).__code__  # type: ignore[union-attr]


def _plain_str_key(binding: Binding) -> bool:
    """Is the model's key one String field whose validated and stored form is the string itself?

    Then an ASCII ``str`` without NUL is its own key parameter (any other value is validated and
    encoded by ``Binding.key``, which raises the usual errors).
    """
    spec = binding.spec
    if spec.range_key is not None:
        return False
    field = spec.hash_key.field
    encoders = binding._key_encoders  # noqa: SLF001 - read once: how the key is encoded
    enc = encoders[0][1] if encoders else None
    return (field is not None and field.kind == "str" and type(field).convert is String.convert and _plain_load(field)
            and (enc is None or getattr(enc, "__code__", None) is _STR_CHECK)
            and binding.key("k") == ("k",) and binding.repo.dialect.column_param("k") == "k")  # type: ignore[attr-defined]


def _plain_sets(model: type[Model], binding: Binding) -> dict[str, tuple[str, bool]]:
    """Per attribute name that a plain value may set directly: (stored name, whether a String).

    A String or Integer field (not a key) that only converts (no validators) and whose stored form
    is the value itself: an ASCII str without NUL (the codec's string check) or any int.
    """
    keys = {p.field.name for p in binding.spec.key_paths if p.field is not None}
    codec = binding._codec  # noqa: SLF001 - read once: how values are stored
    out = {}
    for name, field in model._fields.items():
        if name in keys or not _plain_load(field):
            continue
        enc = codec.field_encoder(field, False)
        if field.kind == "str" and type(field).convert is String.convert and getattr(enc, "__code__", None) is _STR_CHECK:
            out[name] = (field.data_key or name, True)
        elif field.kind == "int" and type(field).convert is Integer.convert and enc is None:
            out[name] = (field.data_key or name, False)
    return out


class FastPlan:
    """One model's single-item calls on one SQL backend (see the module's docstring)."""

    __slots__ = ("binding", "backend", "repo", "model", "decode", "encode", "create_ok", "update_ok", "str_key",
                 "auto", "version", "hash_name", "range_name", "plain_sets", "plain_new")

    def __init__(self, model: type[Model], binding: Binding) -> None:
        repo: SQLRepository = binding.repo  # type: ignore[assignment]
        self.binding = binding
        self.repo = repo
        self.backend: SQLBackend = repo.backend
        self.model = model
        self.decode = binding.decode
        self.encode = binding.encode
        hooks = model._hooks()
        self.create_ok = "pre_save" not in hooks and "post_save" not in hooks
        self.version = binding.spec.version_field
        self.update_ok = "pre_update" not in hooks and "post_update" not in hooks and not self.version
        self.str_key = _plain_str_key(binding)
        self.auto = model._auto_fields()
        spec = binding.spec
        self.hash_name = spec.hash_key.field.name  # type: ignore[union-attr]
        self.range_name = spec.range_key.field.name if spec.range_key is not None else None  # type: ignore[union-attr]
        self.plain_sets = _plain_sets(model, binding)
        #: Is ``Model.from_dict(d)`` object.__new__ plus ``__dict__ = _validated(d)`` (no __new__ or __setattr__ of its own)?
        base_load = model._load.__func__ is BaseModel._load.__func__  # type: ignore[attr-defined]
        base_from_dict = model.from_dict.__func__ is BaseModel.from_dict.__func__  # type: ignore[attr-defined]
        self.plain_new = model.__new__ is object.__new__ and _plain_setattr(model) and base_load and base_from_dict

    @classmethod
    def build(cls, model: type[Model], binding: Binding) -> FastPlan | None:
        """The plan, or None where every call runs its operation (a polymorphic or TTL model)."""
        if model._meta.family is not None or binding.spec.ttl_attribute or binding.closed_by is not None:
            return None
        return cls(model, binding)

    def _off(self) -> bool:
        """Per call: must this call run its operation (a transaction open here, a closed registry, paths off)?"""
        return bool(_open.get()) or self.binding.closed_by is not None or not self.backend.fast_paths

    def _key_params(self, hash_value: Any, range_value: Any) -> list[Any]:
        if self.str_key and range_value is None and type(hash_value) is str and hash_value.isascii() \
                and "\x00" not in hash_value:
            return [hash_value]
        return self.repo._key_params(self.binding.key(hash_value, range_value))

    def _plain_update(self, changes: dict[str, Any]) -> dict[str, Any] | None:
        """The stored sets of an update whose every value is a plain str or in-range int of a plain
        field (what ``Binding.update_parts`` would give, without its general checks); None otherwise."""
        plain = self.plain_sets
        sets = {}
        for name, value in changes.items():
            step = plain.get(name)
            if step is None:
                return None
            stored, is_str = step
            if is_str:
                if type(value) is not str or not value.isascii() or "\x00" in value:
                    return None
            elif type(value) is not int or not INT64_MIN <= value <= INT64_MAX:
                return None
            sets[stored] = value
        return sets

    # -- the calls ------------------------------------------------------------------------------
    def get(self, hash_value: Any, range_value: Any = None) -> Any:
        """``Model.get_or_none``: the instance, None, or MISS."""
        if _open.get() or self.binding.closed_by is not None or not self.backend.fast_paths:  # _off, inlined
            return MISS
        if self.str_key and range_value is None and type(hash_value) is str and hash_value.isascii() \
                and "\x00" not in hash_value:
            params = [hash_value]  # _key_params, inlined
        else:
            params = self.repo._key_params(self.binding.key(hash_value, range_value))
        repo = self.repo
        row = self.backend.execute_one(repo.get_statement(params))
        return None if row is None else self.decode(repo.loads(row[0]))

    def create(self, data: dict[str, Any]) -> Any:
        """``Model.create``: the new instance (validated before the INSERT), or MISS."""
        if not self.create_ok or self._off():
            return MISS
        obj = self.model(**data)
        if self.auto is not None:
            obj._stamp(utcnow())
        if self.version:
            obj.__dict__[self.version] = 1
        doc = self.encode(obj)
        repo = self.repo
        try:
            self.backend.execute_one(repo.insert_statement(doc))
        except self.backend.integrity_errors as exc:
            raise repo._duplicate(exc, repo.spec.key_of(doc)) from exc
        return obj

    def update(self, obj: Any, changes: dict[str, Any]) -> Any:
        """``obj.update(**changes)`` of plain values: the refreshed instance, or MISS."""
        if not self.update_ok or not changes or self._off():
            return MISS
        model = type(obj)
        if self.auto is not None:
            changes.update(model._auto_now_changes())
        sets = self._plain_update(changes)
        if sets is not None:
            incs: dict[str, Any] = {}
            unsets: list[str] = []
        else:
            sets, incs, unsets, actions = self.binding.update_parts(changes)
            if incs or actions:
                return MISS  # a guarded or element update: the operation (it validates again)
        d = obj.__dict__
        key_params = self._key_params(d.get(self.hash_name), d.get(self.range_name) if self.range_name else None)
        repo = self.repo
        try:
            row = self.backend.execute_one(repo.update_statement(key_params, sets, incs, unsets))
        except self.backend.integrity_errors as exc:
            raise repo._duplicate(exc, obj._own_key()) from exc
        if row is None:
            raise NotFound(f"{model.__name__} {obj._key_label()} no longer exists.")
        obj.__dict__ = self.decode(repo.loads(row[0])).__dict__
        return obj

    def insert_many(self, objs: list[Any]) -> Any:
        """``Model.insert_many`` of plain dicts: the new instances, or MISS."""
        if not self.create_ok or not self.plain_new or self._off():
            return MISS
        for item in objs:
            if type(item) is not dict:
                return MISS
        model = self.model
        validated = model._validated  # looked up per call: it is what from_dict runs
        new, setattr_ = object.__new__, object.__setattr__
        items = []
        for item in objs:  # every item validated before anything is written, in order
            obj = new(model)
            setattr_(obj, "__dict__", validated(item))
            items.append(obj)
        if self.auto is not None:
            now = utcnow()
            for obj in items:
                obj._stamp(now)
        if self.version:
            for obj in items:
                obj.__dict__[self.version] = 1
        encode = self.encode
        self.backend.run_sync(self.repo.insert_many_op([encode(obj) for obj in items]))
        return items
