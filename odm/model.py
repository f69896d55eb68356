"""Model, EmbeddedModel and the metaclass that prepares each model once.

At class creation the metaclass collects the fields, parses ``Meta`` (errors
name the model and key) and builds the :class:`~odm.schema.TableSpec`. When a
registry binds the model, the backend's codec compiles the model's encode and
decode functions once; per object, reads then only run those closures.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import datetime as _dt
import decimal
import difflib
import enum
import inspect
import os
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import marshmallow
from typing_extensions import dataclass_transform

from . import compiled, ops
from .backends.base import MISS as _MISS
from .backends.base import QuerySpec, Repository
from .errors import ConcurrentModification, ConditionFailed, ConfigError, NotFound, QueryError, ValidationError
from .expressions.nodes import And, Compare, Exists, Node, Not
from .fields import UUID, Boolean, Bytes, Date, DateTime, Decimal, Dict, Embedded, Enum, Field, FieldRef, Float, Integer, Invalid, List, Set, String
from .ops import Op
from .options import MODEL_METAS, ModelOptions
from .query import Query
from .schema import TableSpec
from .updates import Inc, UpdateAction, increment_guards, increments_of, parent_guards, split_update_args, stored_at, value_at

if TYPE_CHECKING:
    from .binding import Binding

M = TypeVar("M", bound="Model")
E = TypeVar("E", bound="BaseModel")
T = TypeVar("T")


#: How often an update refused only by its range guard (the value moved meanwhile) is tried.
_GUARD_ATTEMPTS = 3


def utcnow() -> _dt.datetime:
    """The current time as a timezone-aware UTC datetime (a handy field default)."""
    return _dt.datetime.now(_dt.timezone.utc)


def new_id() -> str:
    """A random (version 4) UUID as text: ``str(uuid.uuid4())`` without building a UUID object (2x faster)."""
    b = bytearray(os.urandom(16))
    b[6] = b[6] & 0x0F | 0x40  # version 4
    b[8] = b[8] & 0x3F | 0x80  # RFC 4122 variant
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _json_set(value: set[Any] | frozenset[Any]) -> list[Any]:
    """A set as a list in a stable order: its elements' own order, else their JSON text's."""
    try:
        items = sorted(value)
    except TypeError:  # mixed kinds (an untyped Dict): order by the converted form's text
        return sorted((json_value(v) for v in value), key=repr)
    return [json_value(v) for v in items]


#: ``to_dict(json=True)``: how each non-JSON type is written (checked in this order: bool before
#: int is not needed, bool and int are JSON already; datetime before date, it is a subclass).
_JSON_CONVERTERS: tuple[tuple[type | tuple[type, ...], Callable[[Any], Any]], ...] = (
    (_dt.datetime, lambda v: (v.astimezone(_dt.timezone.utc) if v.utcoffset() is not None else v).isoformat()),
    (_dt.date, lambda v: v.isoformat()),
    (decimal.Decimal, str),  # exact: a float would round; from_dict reads the string back
    (uuid.UUID, str),
    ((bytes, bytearray, memoryview), lambda v: base64.b64encode(bytes(v)).decode("ascii")),
    ((set, frozenset), _json_set),
    (enum.Enum, lambda v: json_value(v.value)),
)


def json_value(value: Any) -> Any:
    """``value`` (a field's plain form, nested any deep) as a value ``json.dumps`` accepts."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, Mapping):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_value(v) for v in value]
    if isinstance(value, BaseModel):
        return value.to_dict(json=True)
    for kind, convert in _JSON_CONVERTERS:
        if isinstance(value, kind):
            return convert(value)
    return str(value)  # nothing a field holds gets here; a str keeps json.dumps working


class HookCall:
    """A request a write operation yields to run one of its model's hooks (``pre_save``...).

    The operation decides which hook runs when; the model's runner carries it out: a pre hook
    at once (awaited in the async API when it is ``async def``), a post hook (``after``) once the
    operation has returned, i.e. after the backend committed the write.
    """

    __slots__ = ("obj", "name", "args", "after")

    def __init__(self, obj: Any, name: str, args: tuple[Any, ...] = (), after: bool = False) -> None:
        self.obj = obj
        self.name = name
        self.args = args
        self.after = after

    def __call__(self) -> Any:
        return getattr(self.obj, self.name)(*self.args)

    def __repr__(self) -> str:
        return f"HookCall({type(self.obj).__name__}.{self.name})"


#: The hook methods, by the operation kind that runs them.
HOOKS: dict[str, tuple[str, str]] = {"save": ("pre_save", "post_save"), "update": ("pre_update", "post_update"),
                                     "delete": ("pre_delete", "post_delete")}


def _start_hooks(op: Op[Any], answer: Callable[[HookCall], Any]) -> tuple[bool, Any]:
    """Run ``op``'s leading pre-hook calls (they come before any request): ``(False, its first
    request)``, or ``(True, its result)`` if it ended without one. A hook's exception goes into
    the operation, which lets it out: nothing has been sent."""
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            request = op.throw(error) if error is not None else op.send(value)
        except StopIteration as stop:
            return True, stop.value
        if not isinstance(request, HookCall) or request.after:
            return False, request
        try:
            value, error = answer(request), None
        except BaseException as exc:  # noqa: BLE001 - the operation decides (it re-raises)
            value, error = None, exc


def _resume_hooks(first: Any, op: Op[T], after: list[HookCall]) -> Op[T]:
    """The rest of ``op`` from its first request, for the backend's runner; the post-hook calls it
    yields are kept in ``after`` for the model's runner to make once the backend has committed."""

    def keep(call: HookCall) -> None:
        if not call.after:
            raise RuntimeError(f"{call!r}: a pre hook must come before the operation's first request.")
        after.append(call)

    return ops.intercept(op, HookCall, keep, first)


# Type checkers read a model like a dataclass (PEP 681): its annotated fields are the keyword
# arguments of its constructor (docs/models.md, "Typing"). No effect at run time.
@dataclass_transform(kw_only_default=True, field_specifiers=(
    Field, String, Integer, Float, Boolean, Decimal, DateTime, Date, UUID, Bytes, Enum, List, Set, Dict, Embedded))
class ModelMeta(type):
    """Collects fields and parses Meta once, when the class is defined."""

    def __new__(mcs, name: str, bases: tuple[type, ...], ns: dict[str, Any], **kw: Any) -> ModelMeta:
        meta = ns.pop("Meta", None)
        cls = super().__new__(mcs, name, bases, ns, **kw)
        inherited: dict[str, Field] = {}
        for base in reversed(cls.__mro__[1:]):
            inherited.update(getattr(base, "_fields", {}))
        own = {k: v for k, v in ns.items() if isinstance(v, Field)}
        # Inherited fields are copied and bound to this class, so errors, keys and queries name it.
        fields = {n: _rebound(f, cls, n) for n, f in inherited.items() if n not in own}
        fields = {n: own[n] if n in own else fields[n] for n in {**inherited, **own}}
        cls._fields = fields  # type: ignore[attr-defined]
        cls._schema_class = None  # type: ignore[attr-defined]
        cls._setup(meta, own)
        return cls

    def _setup(cls, meta: type | None, own: dict[str, Field]) -> None:
        if meta is not None:
            raise ConfigError(f"{cls.__name__} is an embedded model and takes no Meta.")
        for name, field in cls._fields.items():  # type: ignore[attr-defined]
            if isinstance(field, DateTime) and (field.auto_now or field.auto_now_add):
                raise ConfigError(f"{cls.__name__}.{name}: auto_now and auto_now_add stamp a stored model's own "
                                  f"fields on write; {cls.__name__} is an embedded model, so set its value yourself.")


def _rebound(field: Field, owner: type, name: str) -> Field:
    """A copy of an inherited field, bound to ``owner`` (the base keeps its own)."""
    new = _copied(field)
    new.bind(owner, name)
    setattr(owner, name, new)
    return new


def _copied(field: Field) -> Field:
    """A field and its element fields (a List's, a Set's, a Dict's values), at every depth, copied."""
    new = copy.copy(field)
    for attr in ("inner", "values"):
        inner = getattr(field, attr, None)
        if isinstance(inner, Field):
            setattr(new, attr, _copied(inner))
    return new


class BaseModel(metaclass=ModelMeta):
    """Shared behaviour of models and embedded models: validation and plain dicts."""

    _fields: ClassVar[dict[str, Field]] = {}
    _schema_class: ClassVar[type[marshmallow.Schema] | None]
    _input_names: ClassVar[frozenset[str]] = frozenset()

    if not TYPE_CHECKING:  # hidden from type checkers, which make each model's own from its fields (PEP 681)

        def __init__(self, **data: Any) -> None:
            self.__dict__ = self._validated(data)

    def __setattr__(self, name: str, value: Any) -> None:
        # A typo such as ``user.nmae = "x"`` would otherwise be silently dropped by save().
        if name in self._fields or name.startswith("_") or hasattr(getattr(type(self), name, None), "__set__"):
            object.__setattr__(self, name, value)
            return
        close = difflib.get_close_matches(name, self._fields, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise AttributeError(f"{type(self).__name__} has no field '{name}'.{hint} Its fields are: {', '.join(self._fields)}.")

    @classmethod
    def _load_plan(cls) -> tuple[frozenset[str], tuple[tuple[str, str | None, Any, Field], ...]]:
        """Per model, made once: the names input may use and, per field, its name, other data key and
        converter (None when ``Field.load`` must run: validators, or a load of its own)."""
        plan = cls.__dict__.get("_odm_load_plan")
        if plan is None:
            steps = tuple((name, f.data_key if f.data_key and f.data_key != name else None,
                           None if f.validators or type(f).load is not Field.load else f.convert, f)
                          for name, f in cls._fields.items())
            plan = (frozenset(cls._fields) | cls._input_names, steps)
            cls._odm_load_plan = plan  # type: ignore[attr-defined]
        return plan  # type: ignore[no-any-return]

    @classmethod
    def _validator(cls) -> Any:
        """The model's generated validator (odm.compiled), made once per model on first use."""
        fn = cls.__dict__.get("_odm_validator")
        if fn is None:
            fn = compiled.validator(cls)
            cls._odm_validator = fn  # type: ignore[attr-defined]
        return fn

    @classmethod
    def _validated(cls, data: Mapping[str, Any]) -> dict[str, Any]:
        """Validated attribute values of ``data``, or a ValidationError with every error.

        Runs the generated validator (same results as ``_validated_general``, faster).
        """
        return (cls.__dict__.get("_odm_validator") or cls._validator())(data)  # type: ignore[no-any-return]

    @classmethod
    def _validated_general(cls, data: Mapping[str, Any]) -> dict[str, Any]:
        """The general validation loop: the reference the generated validator follows, and its
        path for input that is not a plain dict."""
        names, steps = cls._load_plan()
        values: dict[str, Any] = {}
        errors: dict[str, Any] = {}
        if not names.issuperset(data):
            for key in data:
                if key not in names:
                    errors[key] = ["Unknown field."]
        for name, other_key, convert, field in steps:
            if name in data:
                raw = data[name]
            elif other_key is not None and other_key in data:
                raw = data[other_key]
            else:
                value = field.get_default()
                if value is None and field.required:
                    errors[name] = [field.default_error_messages["required"]]
                values[name] = value
                continue
            try:
                # Field.load without its frame when it would only convert (None goes through load's rules).
                values[name] = field.load(raw) if convert is None or raw is None else convert(raw)
            except Invalid as exc:
                errors[name] = exc.messages
        if errors:
            raise ValidationError(errors, cls.__name__)
        return values

    @classmethod
    def _load(cls: type[E], data: Mapping[str, Any]) -> E:
        obj = cls.__new__(cls)
        obj.__dict__ = cls._validated(data)
        return obj

    @classmethod
    def from_dict(cls: type[E], data: Mapping[str, Any]) -> E:
        """Validate ``data`` (attribute names or data keys) and build an instance."""
        if not isinstance(data, Mapping):
            raise ValidationError({"_schema": ["Invalid input type."]}, cls.__name__)
        return cls._load(data)

    def to_dict(self, json: bool = False) -> dict[str, Any]:
        """The instance's set attributes as plain Python values (embedded models as dicts).

        ``json=True``: values ``json.dumps`` accepts as they are, so a service can return them
        (ISO datetimes and dates, Decimal and UUID as strings, bytes as base64, sets as sorted
        lists, enum members as their values); ``from_dict`` reads that form back.
        """
        d = self.__dict__
        out = {n: f.dump(d[n]) for n, f in self._fields.items() if d.get(n) is not None}
        return {k: json_value(v) for k, v in out.items()} if json else out

    def validate(self) -> None:
        """Re-check the current attribute values (they may have been assigned directly)."""
        self.__dict__.update(self._validated({k: v for k, v in self.__dict__.items() if k in self._fields}))

    @classmethod
    def schema_class(cls) -> type[marshmallow.Schema]:
        if cls._schema_class is None:
            cls._schema_class = marshmallow.Schema.from_dict(
                {n: f.mm_field() for n, f in cls._fields.items()}, name=f"{cls.__name__}Schema")
        return cls._schema_class

    @classmethod
    def schema(cls, **kwargs: Any) -> marshmallow.Schema:
        """A marshmallow Schema *instance* (``kwargs`` go to its constructor, e.g. ``many=True``)
        equivalent to this model's fields, for HTTP payloads; ``schema_class()`` is its class."""
        return cls.schema_class()(**kwargs)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.__dict__ == self.__dict__

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self.__dict__.items() if v is not None and k != "_odm_only")
        return f"{type(self).__name__}({shown})"


def _partial(obj: Any, names: frozenset[str]) -> Any:
    """Mark a decoded instance partial: only ``names`` are held (reading another raises
    AttributeError naming only(); saving it raises QueryError)."""
    d = obj.__dict__
    for name in list(d):
        if name not in names:
            del d[name]
    d["_odm_only"] = names
    return obj


class EmbeddedModel(BaseModel):
    """A model stored inside another (``fields.Embedded(Address)``); it needs no binding."""


# Again: mypy does not see the transform through a derived metaclass (nor through a variable).
@dataclass_transform(kw_only_default=True, field_specifiers=(
    Field, String, Integer, Float, Boolean, Decimal, DateTime, Date, UUID, Bytes, Enum, List, Set, Dict, Embedded))
class _ModelMeta(ModelMeta):
    def _setup(cls, meta: type | None, own: dict[str, Field]) -> None:
        if cls.__module__ == __name__ and cls.__name__ == "Model":
            cls._spec = None
            cls._odm_binding = None
            return
        options = ModelOptions(cls, meta, own)  # type: ignore[arg-type]
        fields: dict[str, Field] = cls._fields  # type: ignore[has-type]
        member = options.family is not None and options.family.root is not cls  # its key is its base's
        if "id" not in fields and not options.abstract and not member and not options.hash_key:
            auto = String(default=new_id)
            auto.bind(cls, "id")
            setattr(cls, "id", auto)  # noqa: B010 -- not `cls.id =`, which checkers would read as every model's class attribute
            cls._fields = fields = {"id": auto, **fields}
        cls._input_names = frozenset(f.data_key for f in fields.values() if f.data_key)
        if meta is not None:
            MODEL_METAS.add(meta)
        cls.Meta = meta or type("Meta", (), {"__module__": cls.__module__, "__qualname__": f"{cls.__qualname__}.Meta"})
        MODEL_METAS.add(cls.Meta)
        cls._meta = options
        family = options.family
        if family is not None and family.root is not cls:
            if options.member_indexes:
                _add_member_indexes(cls, family.root, options.member_indexes)  # type: ignore[arg-type]
            cls._spec = family.root._spec
            cls._odm_binding = None
            _bind_member(cls, family.root)  # type: ignore[arg-type]
            return
        cls._spec = None if options.abstract else options.table_spec()
        cls._odm_binding = None


def _add_member_indexes(cls: type[Model], root: type[Model], indexes: tuple[Any, ...]) -> None:
    """A subclass's own indexes join its base's table: every class of the family shares the spec."""
    assert root._spec is not None and root._odm_binding is None  # ModelOptions refuses a registered base
    spec = dataclasses.replace(root._spec, indexes=root._spec.indexes + indexes)
    family = root._meta.family
    assert family is not None
    for member in {root, *family.by_value.values()}:
        member._spec = spec


def _bind_member(cls: type[Model], root: type[Model]) -> None:
    """A subclass defined after its polymorphic base was registered is bound with it at once."""
    binding = root._odm_binding
    if binding is not None and binding.closed_by is None:
        from .registry import bind_member

        bind_member(cls, binding)


class Model(BaseModel, metaclass=_ModelMeta):
    """A stored model. See docs/models.md for fields and Meta options."""

    _meta: ClassVar[ModelOptions]
    _spec: ClassVar[TableSpec | None]
    _odm_binding: ClassVar[Binding | None]

    if TYPE_CHECKING:
        # The automatic key, for type checkers (added by _ModelMeta at run time when Meta names no
        # hash_key): ``user.id`` is a str, ``User.id`` a FieldRef, ``User(id=...)`` optional.
        # A model's own ``id`` field overrides it (docs/models.md, "Typing").
        id: String[str] = String(default=new_id)

    # -- binding -------------------------------------------------------------------
    @classmethod
    def _bound(cls) -> Binding:
        binding = cls._odm_binding
        if binding is None:
            raise ConfigError(f"{cls.__name__} is not registered; call registry.register({cls.__name__}) first.")
        return binding

    @classmethod
    def _key(cls, hash_value: Any, range_value: Any = None) -> tuple[Any, ...]:
        return cls._bound().key(hash_value, range_value)

    def _key_label(self) -> str:
        return Repository.key_label(self._own_key())

    def _own_key(self) -> tuple[Any, ...]:
        spec = self._spec
        assert spec is not None
        d = self.__dict__
        hash_name = spec.hash_key.field.name
        if spec.range_key is None:
            return self._key(d.get(hash_name))
        return self._key(d.get(hash_name), d.get(spec.range_key.field.name))

    # -- lifecycle hooks (docs/models.md, "Hooks") ---------------------------------------------
    # Overridden in a subclass, each runs around its operation in both APIs; ``async def`` ones
    # are awaited by the async API (and refused by the sync one, before anything is written).
    def pre_save(self) -> Awaitable[None] | None:
        """Before ``create``/``save``/``insert_many`` validate and write this instance; it may
        change attributes (they are validated next). Raising writes nothing."""
        return None

    def post_save(self) -> Awaitable[None] | None:
        """After the write succeeded (committed); an exception propagates, the write stays."""
        return None

    def pre_update(self, changes: dict[str, Any]) -> Awaitable[None] | None:
        """Before ``update()``: ``changes`` is the update's own dict of keyword changes (values,
        ``odm.inc``...), which the hook may change in place. Raising writes nothing."""
        return None

    def post_update(self, changes: dict[str, Any]) -> Awaitable[None] | None:
        """After the update succeeded; the instance holds the stored values, ``changes`` what was
        applied (``auto_now`` stamps included)."""
        return None

    def pre_delete(self) -> Awaitable[None] | None:
        """Before ``delete()``; raising deletes nothing."""
        return None

    def post_delete(self) -> Awaitable[None] | None:
        """After the delete succeeded."""
        return None

    @classmethod
    def _hooks(cls) -> dict[str, bool]:
        """Per model, found once: the hooks it overrides, each with whether it is ``async def``."""
        hooks: dict[str, bool] | None = cls.__dict__.get("_odm_hooks")
        if hooks is None:
            hooks = {name: inspect.iscoroutinefunction(getattr(cls, name))
                     for pair in HOOKS.values() for name in pair if getattr(cls, name) is not getattr(Model, name)}
            cls._odm_hooks = hooks  # type: ignore[attr-defined]
        return hooks

    @classmethod
    def _auto_fields(cls) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
        """Per model, found once: its ``auto_now_add`` and its ``auto_now`` DateTime fields (None: neither)."""
        auto = cls.__dict__.get("_odm_auto", False)
        if auto is False:
            dated = [(n, f) for n, f in cls._fields.items() if isinstance(f, DateTime)]
            add = tuple(n for n, f in dated if f.auto_now_add)
            every = tuple(n for n, f in dated if f.auto_now)
            auto = (add, every) if add or every else None
            cls._odm_auto = auto  # type: ignore[attr-defined]
        return auto  # type: ignore[no-any-return]

    @classmethod
    def _auto_now_changes(cls, now: _dt.datetime | None = None) -> dict[str, _dt.datetime]:
        """The ``auto_now`` stamps an update of this model's items adds to its changes (attribute
        names); ``Model.update`` uses it, and so can any other partial update (``Query.update``)."""
        auto = cls._auto_fields()
        if auto is None or not auto[1]:
            return {}
        stamp = now or utcnow()
        return dict.fromkeys(auto[1], stamp)

    def _stamp(self, now: _dt.datetime) -> dict[str, Any]:
        """Set the ``auto_now_add`` fields left unset and every ``auto_now`` field to ``now``;
        returns the values they had, for a failed write to put back."""
        add, every = self._auto_fields() or ((), ())
        d = self.__dict__
        before: dict[str, Any] = {}
        for name in add:
            if d.get(name) is None:
                before[name] = None
                d[name] = now
        for name in every:
            before.setdefault(name, d.get(name))
            d[name] = now
        return before

    @classmethod
    def _write(cls, op: Op[T], kind: str) -> T:
        """Run a write operation with its hooks (sync): the pre hooks it yields, then the write,
        then, once the backend has committed, its post hooks."""
        hooks = cls._hooks()
        pre, post = HOOKS[kind]
        if pre not in hooks and post not in hooks:
            return cls._run(op)
        if hooks.get(pre) or hooks.get(post):
            op.close()
            raise ConfigError(f"{cls.__name__}.{pre if hooks.get(pre) else post} is an async def hook, which only "
                              f"the async API can await: call the a-prefixed method (acreate, asave, aupdate, "
                              f"adelete, ainsert_many), or define the hook with def; nothing was written.")
        done, first = _start_hooks(op, HookCall.__call__)
        if done:
            return first  # type: ignore[no-any-return]
        after: list[HookCall] = []
        result = cls._run(_resume_hooks(first, op, after))
        for call in after:
            call()
        return result

    @classmethod
    async def _awrite(cls, op: Op[T], kind: str) -> T:
        """``_write`` in the async API: an ``async def`` hook is awaited, a plain one called."""
        hooks = cls._hooks()
        pre, post = HOOKS[kind]
        if pre not in hooks and post not in hooks:
            return await cls._arun(op)
        value: Any = None
        error: BaseException | None = None
        while True:  # _start_hooks, awaiting
            try:
                request = op.throw(error) if error is not None else op.send(value)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            if not isinstance(request, HookCall) or request.after:
                break
            try:
                value, error = request(), None
                if inspect.isawaitable(value):
                    value = await value
            except BaseException as exc:  # noqa: BLE001 - thrown into the operation, which re-raises
                value, error = None, exc
        after: list[HookCall] = []
        result = await cls._arun(_resume_hooks(request, op, after))
        for call in after:
            done = call()
            if inspect.isawaitable(done):
                await done
        return result

    def _typed(self, condition: Node | None) -> Node | None:
        """``condition`` for a write of this instance; for a polymorphic model, also that the stored item
        is missing or of this instance's type, so a write never changes an item's type."""
        family = self._meta.family
        if family is None:
            return condition
        guard = family.guard(type(self))
        return guard if condition is None else And.of(guard, condition)

    # -- reads ----------------------------------------------------------------------
    # Each I/O method is one operation (odm.ops), run by the sync method and awaited by its
    # ``a``-prefixed twin: the logic (validation, versions, guards) is written once.
    @classmethod
    def _fast_plan(cls) -> Any:
        """The backend's fast plan of this model (None: none), made once per binding: the usual
        single-item calls without their operation (odm/backends/sql/fast.py); it answers MISS
        for a call that must run its operation."""
        binding = cls._odm_binding
        cached = cls.__dict__.get("_odm_fast")
        if cached is None or cached[0] is not binding:
            cached = (binding, None if binding is None else binding.backend.fast_plan(cls, binding))
            cls._odm_fast = cached  # type: ignore[attr-defined]
        return cached[1]

    @classmethod
    def _run(cls, op: Op[T]) -> T:
        return cls._bound().backend.run(op)

    @classmethod
    async def _arun(cls, op: Op[T]) -> T:
        return await cls._bound().backend.arun(op)

    @classmethod
    def get(cls: type[M], hash_value: Any, range_value: Any = None, *, only: Iterable[Any] | None = None) -> M:
        """The item with this key, or ``odm.NotFound``; ``only=[User.name, ...]`` reads just those
        fields (and the key), as ``Query.only`` does: a partial instance."""
        plan = cls._fast_plan()
        if plan is None or only is not None or (obj := plan.get(hash_value, range_value)) is _MISS:
            obj = cls._bound().backend.run(cls._get_or_none_op(hash_value, range_value, only))
        if obj is None:
            raise cls._not_found(hash_value, range_value)
        return obj  # type: ignore[no-any-return]

    @classmethod
    async def aget(cls: type[M], hash_value: Any, range_value: Any = None, *, only: Iterable[Any] | None = None) -> M:
        """``get`` awaited on the async driver."""
        obj = await cls._arun(cls._get_or_none_op(hash_value, range_value, only))
        if obj is None:
            raise cls._not_found(hash_value, range_value)
        return obj

    @classmethod
    def _not_found(cls, hash_value: Any, range_value: Any) -> NotFound:
        shown = repr(hash_value) if range_value is None else f"({hash_value!r}, {range_value!r})"
        return NotFound(f"No {cls.__name__} has the key {shown}.")

    @classmethod
    def get_or_none(cls: type[M], hash_value: Any, range_value: Any = None) -> M | None:
        plan = cls._fast_plan()
        if plan is not None and (obj := plan.get(hash_value, range_value)) is not _MISS:
            return obj  # type: ignore[no-any-return]
        return cls._run(cls._get_or_none_op(hash_value, range_value))

    @classmethod
    async def aget_or_none(cls: type[M], hash_value: Any, range_value: Any = None) -> M | None:
        return await cls._arun(cls._get_or_none_op(hash_value, range_value))

    @classmethod
    def _get_or_none_op(cls: type[M], hash_value: Any, range_value: Any, only: Iterable[Any] | None = None) -> Op[M | None]:
        binding = cls._bound()
        if only is None:
            doc = yield from binding.repo.get_op(binding.key(hash_value, range_value))
            return None if doc is None or not isinstance(obj := binding.decode(doc), cls) else obj  # another type: absent
        names, stored = cls._projection(only)
        doc = yield from binding.repo.get_op(binding.key(hash_value, range_value), stored)
        return None if doc is None or not isinstance(obj := _partial(binding.decode(doc), names), cls) else obj

    @classmethod
    def _projection(cls, only: Iterable[Any]) -> tuple[frozenset[str], tuple[str, ...]]:
        """``only()``'s fields: (attribute names the instance will hold, stored attributes to fetch).

        The key, the version field and the polymorphic type always come along: the instance can
        be updated, deleted and typed. An unknown name is a QueryError listing the fields.
        """
        binding = cls._bound()
        names: dict[str, None] = {}
        for item in only:
            if isinstance(item, FieldRef) and len(item.path.parts) == 1 and issubclass(cls, item.model):
                name = item.path.field.name  # type: ignore[union-attr]
            elif isinstance(item, str) and item in cls._fields:
                name = item
            else:
                known = ", ".join(cls._fields)
                raise QueryError(f"only() takes top-level fields of {cls.__name__} (or their names), not {item!r}; "
                                 f"fields are: {known}.")
            names[name] = None
        for path in binding.spec.key_paths:
            names[path.field.name] = None
        version = binding.spec.version_field
        if version:
            names[version] = None
        stored = [cls._fields[n].data_key or n for n in names]
        family = cls._meta.family
        if family:
            stored.append(family.attribute)
        return frozenset(names), tuple(dict.fromkeys(stored))

    @classmethod
    def batch_get(cls: type[M], keys: Iterable[Any]) -> list[M]:
        """The items that exist among ``keys`` (hash values or (hash, range) tuples), in that order."""
        return cls._run(cls._batch_get_op(keys))

    @classmethod
    async def abatch_get(cls: type[M], keys: Iterable[Any]) -> list[M]:
        return await cls._arun(cls._batch_get_op(keys))

    @classmethod
    def _batch_get_op(cls: type[M], keys: Iterable[Any]) -> Op[list[M]]:
        binding = cls._bound()
        wanted = [binding.key(*k) if isinstance(k, tuple) else binding.key(k) for k in keys]
        docs = yield from binding.repo.batch_get_op(list(dict.fromkeys(wanted)))
        # Key the results by their re-encoded key: a stored number may read back as another type.
        found = {obj._own_key(): obj for obj in map(binding.decode, docs) if isinstance(obj, cls)}
        return [found[k] for k in wanted if k in found]

    @classmethod
    def query(cls: type[M], *conditions: Node, **equals: Any) -> Query[M]:
        return Query(cls).filter(*conditions, **equals)

    # -- writes ---------------------------------------------------------------------
    def _prepare(self, binding: Binding, validated: bool = False) -> None:
        """Make the instance ready to write: validated (once: ``validated`` when it was just built
        from input) and its TTL set."""
        if not validated:
            self.validate()
        ttl = binding.ttl_name
        if ttl and binding.spec.ttl_seconds and self.__dict__.get(ttl) is None:
            self.__dict__[ttl] = utcnow() + _dt.timedelta(seconds=binding.spec.ttl_seconds)

    @classmethod
    def create(cls: type[M], **data: Any) -> M:
        """Insert a new item; an existing key raises ``odm.DuplicateKey``."""
        plan = cls._fast_plan()
        if plan is not None and (obj := plan.create(data)) is not _MISS:
            return obj  # type: ignore[no-any-return]
        return cls._write(cls._create_op(data), "save")

    @classmethod
    async def acreate(cls: type[M], **data: Any) -> M:
        return await cls._awrite(cls._create_op(data), "save")

    @classmethod
    def _create_op(cls: type[M], data: dict[str, Any]) -> Op[M]:
        binding = cls._bound()
        obj = cls(**data)
        hooks = cls._hooks()
        if "pre_save" in hooks:
            yield HookCall(obj, "pre_save")
        obj._prepare(binding, validated="pre_save" not in hooks)  # what the hook changed is validated
        if cls._auto_fields():
            obj._stamp(utcnow())
        version = binding.spec.version_field
        if version:
            obj.__dict__[version] = 1
        yield from binding.repo.insert_op(binding.encode(obj))
        if "post_save" in hooks:
            yield HookCall(obj, "post_save", after=True)
        return obj

    def save(self: M, condition: Node | None = None) -> M:
        """Insert or replace by key; with ``condition`` only if the stored item matches it."""
        return self._write(self._save_op(condition), "save")

    async def asave(self: M, condition: Node | None = None) -> M:
        return await self._awrite(self._save_op(condition), "save")

    def _refuse_partial(self, what: str) -> None:
        raise QueryError(f"Cannot {what} a partial {type(self).__name__} (read with only("
                         f"{', '.join(sorted(self.__dict__['_odm_only']))})): writing it whole would drop the fields "
                         "not fetched; use update(...) for the fields to change, or read the item whole.")

    def _save_op(self: M, condition: Node | None) -> Op[M]:
        if "_odm_only" in self.__dict__:  # before any request: nothing is written
            self._refuse_partial("save")
        binding = self._bound()
        hooks = self._hooks()
        if "pre_save" in hooks:
            yield HookCall(self, "pre_save")
        condition = self._typed(condition)  # polymorphic: only an item of its own type (or none)
        self._prepare(binding)
        stamped = self._stamp(utcnow()) if self._auto_fields() else None
        version = binding.spec.version_field
        old = self.__dict__.get(version) if version else None
        if version:
            condition = And.of(self._version_condition(binding, old), *([condition] if condition is not None else []))
            self.__dict__[version] = (old or 0) + 1
        try:
            yield from binding.repo.put_op(binding.encode(self), condition)
        except BaseException as exc:
            if version:
                self.__dict__[version] = old  # nothing was written: keep the version we had
            if stamped:
                self.__dict__.update(stamped)  # and the timestamps
            if isinstance(exc, ConditionFailed):
                raise (yield from self._condition_error_op(binding, old, exc)) from exc
            raise
        if "post_save" in hooks:
            yield HookCall(self, "post_save", after=True)
        return self

    def update(self: M, *actions: Any, condition: Node | None = None, **changes: Any) -> M:
        """One atomic partial update on the server, then refresh.

        Keyword values set top-level fields (a value, None, ``odm.inc``, ``odm.unset()``,
        ``odm.append``/``remove`` on lists, ``odm.add``/``discard`` on sets); positional actions
        come from field references and may reach into embedded models
        (``User.address.city.set("Paris")``). An expression given positionally is the condition.
        """
        plan = self._fast_plan()
        if plan is not None and not actions and condition is None and (done := plan.update(self, changes)) is not _MISS:
            return done  # type: ignore[no-any-return]
        return self._write(self._update_op(actions, condition, changes), "update")

    async def aupdate(self: M, *actions: Any, condition: Node | None = None, **changes: Any) -> M:
        return await self._awrite(self._update_op(actions, condition, changes), "update")

    def _update_op(self: M, given_actions: tuple[Any, ...], condition: Node | None, changes: dict[str, Any]) -> Op[M]:
        binding = self._bound()
        positional, condition = split_update_args(type(self), given_actions, condition)
        condition = self._typed(condition)  # polymorphic: only an item of its own type (or none)
        if not changes and not positional:
            raise QueryError(f"{type(self).__name__}.update() needs at least one field to change.")
        hooks = self._hooks()
        if "pre_update" in hooks:
            yield HookCall(self, "pre_update", (changes,))
            if not changes and not positional:
                raise QueryError(f"{type(self).__name__}.pre_update() left no field to change; nothing was written.")
        if self._auto_fields():
            changes.update(self._auto_now_changes())
        sets, incs, unsets, actions = binding.update_parts(changes, positional)
        version = binding.spec.version_field
        old = self.__dict__.get(version) if version else None
        if version and binding.version_key:
            condition = And.of(self._version_condition(binding, old), *([condition] if condition is not None else []))
            sets[binding.version_key] = (old or 0) + 1
        increments = increments_of(type(self), changes, positional)
        guards = increment_guards(increments) + parent_guards(positional)
        given = condition
        if guards:
            condition = And.of(*guards, *([given] if given is not None else []))
        key = self._own_key()
        for _ in range(_GUARD_ATTEMPTS):
            try:
                doc = yield from binding.repo.update_op(key, sets, incs, unsets, condition, actions=actions)
                break
            except ConditionFailed as exc:
                if not guards:
                    raise (yield from self._condition_error_op(binding, old, exc)) from exc
                # The range guard, the version or the caller's condition refused it: find out which.
                doc = yield from binding.repo.get_op(key)
                if doc is None:
                    break
                if given is not None and not (yield from self._holds_op(binding, given)):
                    raise (yield from self._condition_error_op(binding, old, exc)) from exc
                self._check_parents(binding, actions, doc)
                self._check_increments(binding, increments, doc)
                refused = exc  # the value moved back into range meanwhile: try again
        else:
            raise ConditionFailed(f"{type(self).__name__} {self._key_label()} kept changing while it was being "
                                  f"updated ({_GUARD_ATTEMPTS} attempts); nothing was written.") from refused
        if doc is None:
            raise NotFound(f"{type(self).__name__} {self._key_label()} no longer exists.")
        self.__dict__ = binding.decode(doc).__dict__
        if "post_update" in hooks:
            yield HookCall(self, "post_update", (changes,), after=True)
        return self

    def delete(self, condition: Node | None = None) -> None:
        """Delete this item (no error if it is already gone, unless a condition is given)."""
        self._write(self._delete_op(condition), "delete")

    async def adelete(self, condition: Node | None = None) -> None:
        await self._awrite(self._delete_op(condition), "delete")

    def _delete_op(self, condition: Node | None) -> Op[None]:
        binding = self._bound()
        hooks = self._hooks()
        if "pre_delete" in hooks:
            yield HookCall(self, "pre_delete")
        condition = self._typed(condition)  # polymorphic: only an item of its own type (or none)
        version = binding.spec.version_field
        old = self.__dict__.get(version) if version else None
        if version and old is not None:
            condition = And.of(self._version_condition(binding, old), *([condition] if condition is not None else []))
        try:
            yield from binding.repo.delete_op(self._own_key(), condition)
        except ConditionFailed as exc:
            raise (yield from self._condition_error_op(binding, old, exc)) from exc
        if "post_delete" in hooks:
            yield HookCall(self, "post_delete", after=True)

    def reload(self: M) -> M:
        """Replace the attributes with the stored item's; ``odm.NotFound`` if it is gone."""
        return self._run(self._reload_op())

    async def areload(self: M) -> M:
        return await self._arun(self._reload_op())

    def _reload_op(self: M) -> Op[M]:
        binding = self._bound()
        doc = yield from binding.repo.get_op(self._own_key())
        if doc is None or type(obj := binding.decode(doc)) is not type(self):  # polymorphic: now another type
            raise NotFound(f"{type(self).__name__} {self._key_label()} no longer exists.")
        self.__dict__ = obj.__dict__
        return self

    @classmethod
    def insert_many(cls: type[M], objs: Iterable[M | Mapping[str, Any]]) -> list[M]:
        """Validate every object first, then insert them all in server-side batches."""
        plan = cls._fast_plan()
        if plan is not None:
            objs = objs if type(objs) is list else list(objs)
            if (done := plan.insert_many(objs)) is not _MISS:
                return done  # type: ignore[no-any-return]
        return cls._write(cls._insert_many_op(objs), "save")

    @classmethod
    async def ainsert_many(cls: type[M], objs: Iterable[M | Mapping[str, Any]]) -> list[M]:
        return await cls._awrite(cls._insert_many_op(objs), "save")

    @classmethod
    def _insert_many_op(cls: type[M], objs: Iterable[M | Mapping[str, Any]]) -> Op[list[M]]:
        binding = cls._bound()
        # Dicts are validated as they are read, given instances in _prepare (they may have been changed).
        from_dict = cls.from_dict
        # A plain dict skips from_dict's type check, unless the model overrides from_dict.
        load = cls._load if from_dict.__func__ is BaseModel.from_dict.__func__ else from_dict  # type: ignore[attr-defined]
        given = [(o, False) if isinstance(o, cls) else (load(o) if type(o) is dict else from_dict(o), True)  # type: ignore[arg-type]
                 for o in objs]
        for obj, _ in given:
            if "_odm_only" in obj.__dict__:
                obj._refuse_partial("insert")
        hooks = cls._hooks()
        if "pre_save" in hooks:  # every item's, before any is validated again or written
            for obj, _ in given:
                yield HookCall(obj, "pre_save")
            given = [(obj, False) for obj, _ in given]
        version = binding.spec.version_field
        now = utcnow() if cls._auto_fields() else None
        for obj, validated in given:
            obj._prepare(binding, validated)
            if now is not None:
                obj._stamp(now)
            if version:
                obj.__dict__[version] = 1
        items = [obj for obj, _ in given]
        encode = binding.encode
        yield from binding.repo.insert_many_op([encode(o) for o in items])
        if "post_save" in hooks:
            for obj in items:
                yield HookCall(obj, "post_save", after=True)
        return items

    @classmethod
    def delete_many(cls, query: Query[Any] | Node | None = None) -> int:
        """Delete every item matching ``query`` (an expression or a Query); returns how many."""
        return cls._as_query(query).delete()

    @classmethod
    async def adelete_many(cls, query: Query[Any] | Node | None = None) -> int:
        return await cls._as_query(query).adelete()

    @classmethod
    def _as_query(cls, query: Query[Any] | Node | None) -> Query[Any]:
        from .query import Query

        return query if isinstance(query, Query) else Query(cls).filter(*([query] if query is not None else []))

    # -- versions ---------------------------------------------------------------------
    def _version_condition(self, binding: Binding, old: Any) -> Node:
        spec = binding.spec
        if old is None:
            return Not(Exists(spec.hash_key))
        ref = getattr(type(self), spec.version_field or "")
        assert isinstance(ref, FieldRef)
        return Compare("eq", ref.path, old)

    def _holds_op(self, binding: Binding, condition: Node) -> Op[bool]:
        """Does the stored item match ``condition``? Judged by the server, as the write judges it."""
        spec = binding.spec
        on_key = [getattr(type(self), p.field.name) == self.__dict__.get(p.field.name) for p in spec.key_paths]
        return (yield from binding.repo.count_op(QuerySpec(where=And.of(*on_key, condition), limit=1))) > 0

    def _check_increments(self, binding: Binding, increments: list[Inc], doc: dict[str, Any]) -> None:
        """After a refused update: a ValidationError when an increment would leave its field's range."""
        errors = {}
        for step in increments:
            current = value_at(binding.decode(doc), step.names) or 0
            if not step.low <= current + step.amount <= step.high:
                errors[".".join(step.names)] = [
                    f"Number out of range: adding {step.amount!r} to the stored {current!r} would leave "
                    f"[{step.low!r}, {step.high!r}]; nothing was written."]
        if errors:
            raise ValidationError(errors, type(self).__name__)

    def _check_parents(self, binding: Binding, actions: list[UpdateAction], doc: dict[str, Any]) -> None:
        """After a refused update: a ConditionFailed naming a nested action whose embedded model is missing."""
        for action in actions:
            if len(action.path) > 1 and stored_at(doc, action.path[:-1]) is None:
                where = ".".join(action.path[:-1])
                raise ConditionFailed(
                    f"{type(self).__name__} {self._key_label()} has no '{where}', so '{action.dotted}' cannot be "
                    f"changed inside it; set '{where}' as a whole first. Nothing was written.")

    def _condition_error_op(self, binding: Binding, old: Any, exc: ConditionFailed) -> Op[ConditionFailed]:
        version = binding.spec.version_field
        if not version:
            return exc
        doc = yield from binding.repo.get_op(self._own_key())
        stored = None if doc is None else binding.decode(doc).__dict__.get(version)
        if stored == old and doc is not None:
            return exc
        name = type(self).__name__
        if old is None:
            return ConcurrentModification(f"{name} {self._key_label()} already exists; load it before saving over it.")
        return ConcurrentModification(
            f"{name} {self._key_label()} was modified concurrently: version {old} was expected, "
            f"the stored version is {stored}; reload and retry.")

