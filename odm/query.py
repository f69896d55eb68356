"""``Query``: an immutable, chainable description of a read, run by the bound repository."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from .backends.base import Page, QuerySpec, sorted_values
from .errors import QueryError
from .expressions.nodes import And, Node
from .fields import FieldRef, SortKey
from .ops import Op
from .updates import FieldAction, increment_guards, increments_of, parent_guards, split_update_args

if TYPE_CHECKING:
    from .model import Model

M = TypeVar("M", bound="Model")
_UNORDERABLE = frozenset({"list", "set", "dict", "embedded"})
#: Largest limit, offset or page size: every backend takes a signed 64-bit window.
MAX_WINDOW = 2**63 - 1
#: The spec of a whole table (no filter, order or window), shared by every ``Query`` that starts
#: there: specs are immutable (``QuerySpec.but`` copies), so one instance serves them all.
_WHOLE = QuerySpec()


class Query(Generic[M]):
    """``User.query(User.age >= 18).order_by(-User.age).limit(10)``; nothing runs until read."""

    __slots__ = ("model", "spec")

    def __init__(self, model: type[M], spec: QuerySpec | None = None) -> None:
        self.model = model
        if spec is None:
            # A subclass of a polymorphic model reads only its own items (and its subclasses').
            family = model._meta.family
            spec = _WHOLE if family is None else QuerySpec(where=family.type_filter(model))
        self.spec = spec

    def _with(self, **changes: Any) -> Query[M]:
        return Query(self.model, self.spec.but(**changes))

    # -- building ---------------------------------------------------------------------
    def filter(self, *conditions: Node, **equals: Any) -> Query[M]:
        """AND more conditions (expressions, or keyword equalities) onto the query."""
        nodes = list(conditions)
        for node in nodes:
            if not isinstance(node, Node):
                raise QueryError(f"{self.model.__name__}.query() takes expressions such as "
                                 f"{self.model.__name__}.age > 3, not {node!r}.")
        if equals:
            refs = self.model.__dict__.get("_odm_query_refs")  # this model's own, not a base's
            for name, value in equals.items():
                ref = None if refs is None else refs.get(name)
                nodes.append((self._ref(name) if ref is None else ref) == value)
        if not nodes:
            return self
        where = self.spec.where
        if where is None and len(nodes) == 1:
            where = And.of(nodes[0]) if isinstance(nodes[0], And) else nodes[0]  # And.of's answer, without its call
        else:
            where = And.of(*([where] if where is not None else []), *nodes)
        return Query(self.model, self.spec.but(where=where))

    def _ref(self, name: str) -> FieldRef:
        """The field a keyword or string names (``age``, ``address__city``, ``address.city``).

        Resolved once per model and name (a model's fields are fixed when its class is made):
        ``Model.query(field1=v)`` is built per call, its name looked up in a dict.
        """
        refs = self.model.__dict__.get("_odm_query_refs")
        ref = None if refs is None else refs.get(name)
        if ref is None:
            ref = self._resolve(name)
            if type(ref) is FieldRef:  # what an odd name resolves to (an attribute of FieldRef) is not kept
                if refs is None:
                    refs = self.model._odm_query_refs = {}  # type: ignore[attr-defined]
                refs[name] = ref
        return ref

    def _resolve(self, name: str) -> FieldRef:
        first, *rest = name.split("__" if "__" in name else ".")
        if first not in self.model._fields:
            known = ", ".join(self.model._fields)
            raise QueryError(f"{self.model.__name__} has no field '{first}'; fields are: {known}.")
        ref: FieldRef = getattr(self.model, first)
        for part in rest:
            if part.startswith("_"):
                raise QueryError(f"{ref.label} has no field '{part}'.")
            ref = getattr(ref, part)
        return ref

    def order_by(self, *keys: SortKey | FieldRef | str) -> Query[M]:
        """Sort by fields: ``-User.age``, ``User.name``, or ``"-age"``; replaces earlier order."""
        out = []
        for key in keys:
            if isinstance(key, str):
                desc = key.startswith("-")
                ref = self._ref(key.lstrip("+-"))
                key = SortKey(ref.path, desc)
            elif isinstance(key, FieldRef):
                key = key.asc()
            if not isinstance(key, SortKey):
                raise QueryError(f"order_by() takes fields or '-field' strings, not {key!r}.")
            kind = getattr(key.path.field, "kind", None)
            if kind in _UNORDERABLE:
                raise QueryError(f"Cannot order by '{key.path.dotted}', a {kind} field: its values have no order shared by "
                                 "every backend; order by a scalar field (or a scalar sub-field of an embedded model).")
            out.append(key)
        return self._with(order=tuple(out))

    def limit(self, n: int | None) -> Query[M]:
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= MAX_WINDOW):
            raise QueryError(f"limit() takes a non-negative 64-bit integer, not {n!r}.")
        return self._with(limit=n or None)

    def offset(self, n: int) -> Query[M]:
        if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= MAX_WINDOW:
            raise QueryError(f"offset() takes a non-negative 64-bit integer, not {n!r}.")
        return self._with(offset=n)

    def only(self, *fields: FieldRef | str) -> Query[M]:
        """Fetch just these top-level fields (and the key, the version field and the polymorphic
        type): partial instances, which cannot be saved and raise AttributeError on other fields."""
        if not fields:
            raise QueryError(f"only() needs at least one field of {self.model.__name__}.")
        names, stored = self.model._projection(fields)
        return self._with(only=stored, only_fields=names)

    def _decoder(self, binding: Any) -> Any:
        """The binding's decode, marking instances partial under ``only()``."""
        names = self.spec.only_fields
        if names is None:
            return binding.decode
        from .model import _partial  # model imports query

        decode = binding.decode
        return lambda doc: _partial(decode(doc), names)

    def use_index(self, name: str) -> Query[M]:
        """Force a named index (DynamoDB GSI/LSI); other backends treat it as a hint."""
        return self._with(index=name)

    # -- running ------------------------------------------------------------------------
    def __iter__(self) -> Iterator[M]:
        binding = self.model._bound()
        decode = self._decoder(binding)
        for doc in binding.repo.find(self.spec):
            yield decode(doc)

    async def __aiter__(self) -> AsyncIterator[M]:
        """``async for obj in query``: batches fetched on the async driver as they are consumed.

        Leaving the loop early (``break``, an exception, a cancellation) closes the server cursor
        and returns the connection when the iterator is closed (at once with ``aclosing``).
        """
        binding = self.model._bound()
        decode = self._decoder(binding)
        docs = binding.repo.afind(self.spec)
        try:
            async for doc in docs:
                yield decode(doc)
        finally:
            await docs.aclose()  # type: ignore[attr-defined]

    def all(self) -> list[M]:
        return list(self)

    async def aall(self) -> list[M]:
        return [obj async for obj in self]

    def first(self) -> M | None:
        for obj in self.limit(1):
            return obj
        return None

    async def afirst(self) -> M | None:
        objs = await self.limit(1).aall()
        return objs[0] if objs else None

    def count(self) -> int:
        return self.model._bound().repo.count(self.spec)

    async def acount(self) -> int:
        return await self.model._bound().repo.acount(self.spec)

    def distinct(self, field: FieldRef | str) -> list[Any]:
        """The distinct values of a scalar field among the matches, as Python values, ascending.

        Items missing the field (or holding None) add nothing; ``count_by`` counts them.
        List, set, dict and embedded fields are refused (QueryError): their values have no
        order or equality shared by every backend; name a scalar sub-field instead.
        """
        binding = self.model._bound()
        return binding.backend.run(binding.repo.distinct_op(self.spec, self._group_path(field)))  # type: ignore[no-any-return]

    async def adistinct(self, field: FieldRef | str) -> list[Any]:
        binding = self.model._bound()
        return await binding.backend.arun(binding.repo.distinct_op(self.spec, self._group_path(field)))  # type: ignore[no-any-return]

    def count_by(self, field: FieldRef | str) -> dict[Any, int]:
        """``{value: number of matches holding it}`` for a scalar field; missing/None under None.

        Keys are the field's Python values, in ``distinct``'s order with None (if any) last.
        """
        binding = self.model._bound()
        counts = binding.backend.run(binding.repo.count_by_op(self.spec, self._group_path(field)))
        return _in_order(counts)

    async def acount_by(self, field: FieldRef | str) -> dict[Any, int]:
        binding = self.model._bound()
        counts = await binding.backend.arun(binding.repo.count_by_op(self.spec, self._group_path(field)))
        return _in_order(counts)

    def _group_path(self, field: FieldRef | str) -> Any:
        """The stored path of ``distinct``/``count_by``'s field, refusing non-scalar fields."""
        if isinstance(field, str):
            ref = self._ref(field)
        elif isinstance(field, FieldRef) and issubclass(self.model, field.model):  # a base's field too
            ref = field
        else:
            known = ", ".join(self.model._fields)
            raise QueryError(f"distinct()/count_by() take a field of {self.model.__name__} (or its name), not "
                             f"{field!r}; fields are: {known}.")
        kind = getattr(ref.field, "kind", None)
        if kind in _UNORDERABLE:
            raise QueryError(f"Cannot take distinct values of '{ref.path.dotted}', a {kind} field: its values have "
                             "no equality and order shared by every backend; use a scalar field (or a scalar "
                             "sub-field of an embedded model).")
        return ref.path

    def exists(self) -> bool:
        return self.first() is not None

    async def aexists(self) -> bool:
        return (await self.afirst()) is not None

    def delete(self) -> int:
        """Delete every matching item on the server; returns how many."""
        return self.model._bound().repo.delete_where(self.spec)

    async def adelete(self) -> int:
        return await self.model._bound().repo.adelete_where(self.spec)

    def update(self, *actions: FieldAction, **changes: Any) -> int:
        """Update every matching item (as ``Model.update`` does one); returns how many were updated.

        Server-side where the backend can (one ``update_many``, one ``UPDATE ... WHERE``),
        otherwise each item is updated on its own, on condition that it still matches. A version
        field goes up by one per item; an item an increment would take out of its field's range
        is left alone (and not counted).
        """
        return self.model._bound().backend.run(self._update_op(actions, changes))

    async def aupdate(self, *actions: FieldAction, **changes: Any) -> int:
        return await self.model._bound().backend.arun(self._update_op(actions, changes))

    def _update_op(self, given: tuple[Any, ...], changes: dict[str, Any]) -> Op[int]:
        binding = self.model._bound()
        positional, condition = split_update_args(self.model, given, None)
        if condition is not None:
            raise QueryError(f"{self.model.__name__}.query(...).update() takes actions and field values; put "
                             "conditions in the query itself.")
        if not changes and not positional:
            raise QueryError(f"{self.model.__name__}.query(...).update() needs at least one field to change.")
        changes = {**changes, **self.model._auto_now_changes()}  # DateTime(auto_now=True), as Model.update
        sets, incs, unsets, bound = binding.update_parts(changes, positional)
        if binding.version_key:
            incs[binding.version_key] = 1  # every updated item gets its own next version
        guards = increment_guards(increments_of(self.model, changes, positional)) + parent_guards(positional)
        spec = self.spec
        if guards:
            spec = spec.but(where=And.of(*([spec.where] if spec.where is not None else []), *guards))
        return (yield from binding.repo.update_where_op(spec, sets, incs, unsets, bound))

    def page(self, size: int, cursor: str | None = None) -> Page:
        """One page of ``size`` items and the cursor of the next (None after the last)."""
        binding = self._page_binding(size)
        docs, next_cursor = binding.repo.page(self.spec, size, cursor)
        decode = self._decoder(binding)
        return Page([decode(d) for d in docs], next_cursor)

    async def apage(self, size: int, cursor: str | None = None) -> Page:
        binding = self._page_binding(size)
        docs, next_cursor = await binding.repo.apage(self.spec, size, cursor)
        decode = self._decoder(binding)
        return Page([decode(d) for d in docs], next_cursor)

    def _page_binding(self, size: int) -> Any:
        if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_WINDOW:
            raise QueryError(f"page(size=...) takes a positive 64-bit integer, not {size!r}.")
        return self.model._bound()

    def explain(self) -> dict[str, Any]:
        """The backend-native query this would run, as data."""
        return self.model._bound().repo.explain(self.spec)

    def __repr__(self) -> str:
        return f"<Query {self.model.__name__} {self.spec.where!r} order={self.spec.order}>"


def _in_order(counts: dict[Any, int]) -> dict[Any, int]:
    """``count_by``'s dict with its keys in ``distinct``'s order and the None group last."""
    out = {value: counts[value] for value in sorted_values(counts)}
    if None in counts:
        out[None] = counts[None]
    return out
