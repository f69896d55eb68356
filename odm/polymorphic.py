"""Polymorphic models: a base and its subclasses stored in one table, told apart by a discriminator.

The discriminator is a hidden stored attribute (``_type`` unless the base's
``Meta.discriminator_attribute`` names another), never a field: input
(``create``, ``from_dict``, ``update``) cannot set it, so data cannot forge an
item's type. Each class writes its own value (``Meta.discriminator``, default
the class name); reads dispatch on it, and a subclass's queries are limited to
its own values (see docs/models.md, "Inheritance").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from .attributes import name_problem, text_problem
from .errors import ConfigError
from .expressions.nodes import Exists, Node, Not
from .fields import Field, FieldRef, String

if TYPE_CHECKING:
    from .backends.codec import Codec
    from .model import Model
    from .schema import TableSpec

#: The stored attribute that holds each item's type unless ``Meta.discriminator_attribute`` says otherwise.
DEFAULT_ATTRIBUTE = "_type"


class Family:
    """A polymorphic base (the root, which owns the table) and every subclass defined so far."""

    def __init__(self, root: type[Model], attribute: str) -> None:
        problem = name_problem(attribute)
        if problem:
            raise ConfigError(f"{root.__name__}.Meta.discriminator_attribute cannot be used: {problem}")
        self.root = root
        self.attribute = attribute
        #: The discriminator as a field of the root, so queries encode its values like any string.
        self.field = String()
        self.field.bind(root, attribute)
        #: Discriminator value -> class.
        self.by_value: dict[str, type[Model]] = {}
        #: Stored name -> (field, class declaring it), across the family: one type per attribute.
        self.stored: dict[str, tuple[Field, type]] = {}

    def add(self, model: type[Model], value: Any, own: Mapping[str, Field]) -> None:
        """Record a member: its discriminator value and the stored names of the fields it declares."""
        name = model.__name__
        if not isinstance(value, str) or not value or text_problem(value):
            raise ConfigError(f"{name}.Meta.discriminator must be a non-empty string of valid text, not {value!r}.")
        other = self.by_value.get(value)
        if other is not None and (other.__module__, other.__qualname__) != (model.__module__, model.__qualname__):
            raise ConfigError(
                f"{name} ({model.__module__}) and {other.__name__} ({other.__module__}) both store their items in "
                f"'{self.root.__name__}' with the discriminator {value!r}; give one of them another "
                f"Meta.discriminator.")
        for field_name, field in own.items():
            self._check_stored(model, field_name, field)
        # A class defined again under the same module and name (a reloaded module) replaces the old one.
        self.by_value[value] = model

    def _check_stored(self, model: type[Model], name: str, field: Field) -> None:
        key = field.data_key or name
        if key == self.attribute:
            raise ConfigError(f"{model.__name__}.{name} is stored as '{key}', which {self.root.__name__} uses for "
                              "each item's type (Meta.discriminator_attribute); rename it or give it another data_key.")
        seen = self.stored.get(key)
        if seen is not None and seen[1] is not model and type(seen[0]) is not type(field):
            raise ConfigError(
                f"{model.__name__}.{name} is a {type(field).__name__} stored as '{key}', but {seen[1].__name__} "
                f"stores a {type(seen[0]).__name__} there, and both live in '{self.root.__name__}''s table; a stored "
                "attribute keeps one type across the family: rename the field or give it another data_key.")
        if seen is None or seen[1] is model:
            self.stored[key] = (field, model)

    def values_of(self, model: type) -> tuple[str, ...]:
        """The discriminator values of ``model`` and its subclasses."""
        return tuple(v for v, c in self.by_value.items() if issubclass(c, model))

    def type_filter(self, model: type) -> Node | None:
        """The condition limiting a query to ``model``'s items (None for the root: the whole table)."""
        if model is self.root:
            return None
        ref = FieldRef(self.root, (self.field,))
        values = self.values_of(model)
        return ref == values[0] if len(values) == 1 else ref.in_(list(values))

    def guard(self, model: type[Model]) -> Node:
        """The condition a write of a ``model`` instance carries: no stored item, or one of exactly its type
        (for the base, also one stored without a type)."""
        ref = FieldRef(self.root, (self.field,))
        own = ref == model._meta.discriminator
        if model is self.root:
            own = own | Not(Exists(ref.path))
        spec = self.root._spec
        assert spec is not None
        return Not(Exists(spec.hash_key)) | own

    def plan(self, codec: Codec, spec: TableSpec, model: type) -> tuple[Callable[[Any], dict[str, Any]],
                                                                          Callable[[Mapping[str, Any]], Any]]:
        """Encode and decode for a member's binding: both dispatch on the actual class or stored type.

        Every class's own plan is compiled once, when first needed (a subclass may be defined after
        the base was registered).
        """
        plans: dict[type, tuple[Callable[[Any], dict[str, Any]], Callable[[Mapping[str, Any]], Any]]] = {}
        attribute = self.attribute
        by_value = self.by_value
        root = self.root
        label = spec.name

        def plan_of(cls: type) -> tuple[Callable[[Any], dict[str, Any]], Callable[[Mapping[str, Any]], Any]]:
            found = plans.get(cls)
            if found is None:
                found = plans[cls] = codec.model_plan(cls, spec)
            return found

        def encode(obj: Any) -> dict[str, Any]:
            cls = type(obj)
            out = plan_of(cls)[0](obj)
            out[attribute] = cls._meta.discriminator
            return out

        def decode(doc: Mapping[str, Any]) -> Any:
            value = doc.get(attribute)
            cls = root if value is None else by_value.get(value)  # no type: written before the base was polymorphic
            if cls is None:
                raise ConfigError(f"'{label}' holds an item of type {value!r} (key {spec.key_of(dict(doc))!r}), which no "
                                  f"subclass of {root.__name__} declares (Meta.discriminator); define or import that "
                                  "subclass before reading it.")
            return plan_of(cls)[1](doc)

        del model  # every member's binding uses the same dispatch
        return encode, decode


__all__ = ["DEFAULT_ATTRIBUTE", "Family"]
