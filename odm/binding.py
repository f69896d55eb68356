"""A model bound to a backend repository: its compiled encode/decode closures."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from .errors import ConfigError, QueryError, ValidationError
from .fields import Field, Invalid
from .updates import (
    ELEMENT_KINDS,
    NUMERIC_KINDS,
    Elements,
    FieldAction,
    Increment,
    Unset,
    UpdateAction,
    check_overlaps,
    element_values,
    kind_problem,
)

if TYPE_CHECKING:
    from .backends.base import Repository
    from .model import Model


class Binding:
    """Everything a model needs to talk to its repository, prepared once at ``register``."""

    __slots__ = ("model", "_repo", "closed_by", "spec", "encode", "decode", "_key_encoders", "_codec", "ttl_name",
                 "version_key")

    def __init__(self, model: type[Model], repo: Repository) -> None:
        assert model._spec is not None
        self.model = model
        self._repo = repo
        #: The closed registry's description once it is closed (the binding stays, to say so).
        self.closed_by: str | None = None
        self.spec = repo.spec
        self._codec = repo.codec
        self.encode: Callable[[Model], dict[str, Any]]
        self.decode: Callable[[dict[str, Any]], Any]
        family = model._meta.family  # polymorphic: encode and decode dispatch on the class / stored type
        self.encode, self.decode = family.plan(self._codec, repo.spec, model) if family else self._codec.model_plan(model, repo.spec)
        by_stored = {f.data_key or n: n for n, f in model._fields.items()}
        #: Attribute name of the TTL field (the spec holds stored names).
        self.ttl_name = by_stored.get(repo.spec.ttl_attribute or "")
        version = repo.spec.version_field
        #: Stored name of the version field (the spec holds its attribute name).
        self.version_key = (model._fields[version].data_key or version) if version else None
        self._key_encoders = [(p.field, self._codec.field_encoder(p.field, p.parts[0] == repo.spec.ttl_attribute))
                              for p in repo.spec.key_paths]

    @property
    def repo(self) -> Repository:
        """The repository; a ConfigError saying so once the registry it came from is closed."""
        if self.closed_by is not None:
            name = self.model.__name__
            raise ConfigError(f"{name} is bound to a registry that has been closed ({self.closed_by}); "
                              f"register {name} on an open registry.")
        return self._repo

    @property
    def backend(self) -> Any:
        """The backend this binding was made on (even after its registry closed)."""
        return self._repo.backend

    def close(self, registry: str) -> None:
        self.closed_by = registry

    def key(self, hash_value: Any, range_value: Any = None) -> tuple[Any, ...]:
        """Validate and encode a key given as Python values."""
        if len(self._key_encoders) == 1:
            if range_value is not None:
                raise QueryError(f"{self.model.__name__} has only a hash key ('{self.spec.hash_key.field.name}'), "
                                 f"so a second key value ({range_value!r}) means nothing; pass the hash key alone.")
            values: tuple[Any, ...] = (hash_value,)
        else:
            values = (hash_value, range_value)
        if len(self._key_encoders) == 2 and range_value is None:
            raise ValidationError({self.spec.range_key.field.name: ["A range key value is required."]},  # type: ignore[union-attr]
                                  self.model.__name__)
        out = []
        for (field, enc), value in zip(self._key_encoders, values, strict=True):
            try:
                value = field.load(value)
            except Invalid as exc:
                raise ValidationError({field.name: exc.messages}, self.model.__name__) from None
            if value is None:
                raise ValidationError({field.name: ["A key value is required."]}, self.model.__name__)
            out.append(enc(value) if enc else value)
        return tuple(out)

    def update_parts(self, changes: dict[str, Any], positional: Sequence[FieldAction] = ()
                     ) -> tuple[dict[str, Any], dict[str, Any], list[str], list[UpdateAction]]:
        """Split an update into stored sets, increments, removals and other actions, validating each.

        Keyword values name top-level fields (a value, None, ``odm.inc``, ``odm.unset()`` or an
        element action such as ``odm.append``); positional actions come from field references and
        may reach into embedded models. Everything is checked before any request: a bad value, a
        wrong field kind or two actions on overlapping paths write nothing.
        """
        changes = dict(changes)
        nested: list[FieldAction] = []
        for action in positional:
            if not isinstance(action, FieldAction):
                raise QueryError(f"{self.model.__name__}.update() takes actions such as "
                                 f"{self.model.__name__}.tags.append('x') positionally, not {action!r}.")
            if action.ref.model is not self.model and not issubclass(self.model, action.ref.model):
                raise QueryError(f"{action!r} is an action on {action.ref.model.__name__}, not on {self.model.__name__}.")
            if len(action.ref.fields) == 1:
                name = action.ref.field.name
                if name in changes:
                    raise QueryError(f"One update cannot change {action.ref.label} twice ({action!r} and "
                                     f"{name}={changes[name]!r}); combine them into one action.")
                changes[name] = action.keyword()
            else:
                nested.append(action)
        fields = self.model._fields
        sets: dict[str, Any] = {}
        incs: dict[str, Any] = {}
        unsets: list[str] = []
        actions: list[UpdateAction] = []
        errors: dict[str, Any] = {}
        keys = {p.field.name for p in self.spec.key_paths}
        paths: list[tuple[tuple[str, ...], str]] = []
        for name, value in changes.items():
            field: Field | None = fields.get(name)
            if field is None:
                errors[name] = ["Unknown field."]
                continue
            if name in keys:
                errors[name] = ["A key field cannot be updated; delete and create the item instead."]
                continue
            stored = field.data_key or name
            paths.append(((stored,), f"{self.model.__name__}.{name}"))
            if isinstance(value, Increment):
                if field.kind not in NUMERIC_KINDS:
                    errors[name] = ["odm.inc() needs an Integer, Float or Decimal field."]
                    continue
                try:
                    amount = field.convert(value.amount)
                except Invalid as exc:
                    errors[name] = exc.messages
                    continue
                enc = self._codec.field_encoder(field, False)
                incs[stored] = enc(amount) if enc else amount
                continue
            if isinstance(value, Elements):
                problem = kind_problem(field, value.op, f"{self.model.__name__}.{name}", "odm.")
                if problem:
                    errors[name] = [problem]
                    continue
                try:
                    encoded = element_values(field, value.values, self._codec.field_encoder(field, False))
                except Invalid as exc:
                    errors[name] = exc.messages
                    continue
                actions.append(UpdateAction(value.op, (stored,), field, encoded))
                continue
            if isinstance(value, Unset):
                value = None
            try:
                loaded = field.load(value)
            except Invalid as exc:
                errors[name] = exc.messages
                continue
            if loaded is None:
                if field.required:
                    errors[name] = [field.default_error_messages["required"]]
                else:
                    unsets.append(stored)
                continue
            enc = self._codec.field_encoder(field, stored == self.spec.ttl_attribute)
            sets[stored] = enc(loaded) if enc else loaded
        for action in nested:
            label = action.ref.label
            field = action.ref.field
            path = action.ref.path.parts
            paths.append((path, label))
            where = ".".join(f.name for f in action.ref.fields)
            if action.ref.fields[0].name in keys:
                errors[where] = ["A key field cannot be updated; delete and create the item instead."]
                continue
            try:
                actions.append(self._nested_action(action, field, path))
            except Invalid as exc:
                errors[where] = exc.messages
        if errors:
            raise ValidationError(errors, self.model.__name__)
        check_overlaps(paths)
        return sets, incs, unsets, actions

    def _nested_action(self, action: FieldAction, field: Field, path: tuple[str, ...]) -> UpdateAction:
        """A positional action on a path inside an embedded model, in stored form; raises Invalid."""
        op = action.op
        if op in ELEMENT_KINDS:
            return UpdateAction(op, path, field, element_values(field, action.arg, self._codec.field_encoder(field, False)))
        if op == "inc":
            amount = field.convert(Increment(action.arg).amount)
            enc = self._codec.field_encoder(field, False)
            return UpdateAction("inc", path, field, enc(amount) if enc else amount)
        loaded = field.load(action.arg) if op == "set" else None
        if loaded is None:
            if field.required:
                raise Invalid([field.default_error_messages["required"]])
            return UpdateAction("unset", path, field)
        enc = self._codec.field_encoder(field, False)
        return UpdateAction("set", path, field, enc(loaded) if enc else loaded)
