"""Registry: a configured backend and the models bound to it."""

from __future__ import annotations

import logging
import os
from typing import Any, TypeVar

from . import config
from .backends.base import Action, Backend, SyncPlan
from .binding import Binding
from .errors import ConfigError
from .model import Model
from .pagination import Cursors
from .transaction import Transaction

M = TypeVar("M", bound=type[Model])

#: Each change ``sync`` makes (a table, index, GSI, TTL created) is logged here at INFO.
sync_log = logging.getLogger("odm.sync")


class Registry:
    """``odm.Registry("sqlite", path="app.db")``, ``from_file`` or ``from_dict``; binds models.

    ``cursor_secret`` signs page cursors (else ``ODM_CURSOR_SECRET``, else a random
    key of this registry's own). A model is bound to one open registry at a time:
    ``register`` refuses a model bound to another open registry unless
    ``rebind=True`` asks to move it.
    """

    def __init__(self, backend: str | Backend, *, source: str = "<arguments>", cursor_secret: str | bytes | None = None,
                 **info: Any) -> None:
        secret = config.cursor_secret(cursor_secret, source)  # checked before any connection is opened
        if isinstance(backend, Backend):
            if info:
                raise ConfigError(f"{source}: Registry(backend_instance) takes no dbInfo keys (got "
                                  f"{', '.join(sorted(info))}); they were given when the backend was built.")
            self.backend = backend
        else:
            self.backend = config.build_backend(backend, info, source)
        if secret is not None:  # else the backend's own random key: cursors good for this registry only
            self.backend.cursors = Cursors(secret)
        self.models: list[type[Model]] = []
        self.closed = False

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Registry:
        return cls._from_settings(config.read_file(path))

    @classmethod
    def from_dict(cls, cfg: dict[str, Any], source: str = "<dict>") -> Registry:
        return cls._from_settings(config.read(cfg, source))

    @classmethod
    def _from_settings(cls, settings: config.Settings) -> Registry:
        return cls(settings.name, source=settings.source, cursor_secret=settings.cursor_secret, **settings.info)

    def _open(self, action: str) -> None:
        if self.closed:
            raise ConfigError(f"Cannot {action}: this registry ({self.backend!r}) has been closed; build a new one.")

    def ping(self) -> None:
        """One real round trip to the server (what ``odm check`` does): BackendUnavailable or ConfigError on failure."""
        self._open("ping")
        self.backend.ping()

    def register(self, *models: M, rebind: bool = False) -> M:
        """Bind models to this registry's backend (usable as a class decorator).

        A model already bound to another open registry is refused (ConfigError) unless
        ``rebind=True``: silently moving it would send the other registry's users to
        this backend. A model whose registry was closed may be registered again.
        """
        self._open("register models")
        if not models:
            raise ConfigError("register() needs at least one Model class.")
        repos = []
        given = models
        models = tuple(_root(m) for m in models)  # a polymorphic family is bound through its base
        for model in models:  # every check first: a refused call binds nothing
            if model._spec is None:
                raise ConfigError(f"{model.__name__} is abstract (Meta.abstract = True) and cannot be registered.")
            current = model._odm_binding
            if (current is not None and current.closed_by is None and current.backend is not self.backend
                    and not rebind):
                raise ConfigError(f"{model.__name__} is already registered on another open registry "
                                  f"({current.backend!r}); close that registry first, or call "
                                  f"register({model.__name__}, rebind=True) to move it here.")
            repos.append(self.backend.repository(model._spec))
        for model, repo in zip(models, repos, strict=True):
            if _needs_exact_numbers(model):
                repo.use_exact_decimals()
            model._odm_binding = binding = Binding(model, repo)
            family = model._meta.family
            for member in family.by_value.values() if family is not None else ():
                if member is not model:
                    bind_member(member, binding)
            if model not in self.models:
                self.models.append(model)
        return given[0]

    def sync(self) -> list[Action]:
        """Create missing tables, collections and indexes; returns what was done (empty if nothing).

        Each action is logged at INFO on the ``odm.sync`` logger as it is done.
        """
        self._open("sync")
        actions: list[Action] = []
        for model in self.models:
            done = model._bound().repo.sync()
            _log(self, done)
            actions.extend(done)
        return actions

    def plan(self) -> list[SyncPlan]:
        """What ``sync`` would do, per registered model, without changing anything (``odm sync --dry-run``).

        Each plan's ``todo`` lists the actions a sync would take and ``exists`` what is already in
        place. A definition that cannot be reconciled raises SchemaMismatch, as ``sync`` would.
        """
        self._open("plan a sync")
        plans = []
        for model in self.models:
            repo = model._bound().repo
            plan = SyncPlan(dry_run=True, table=repo.spec.name)
            plan.todo = repo.sync(plan)
            plans.append(plan)
        return plans

    async def async_sync(self) -> list[Action]:
        """``sync`` awaited on the async driver (``asyncio`` start-up hooks).

        Named so because the Django-style ``a`` prefix would make ``async``, a keyword.
        """
        self._open("sync")
        actions: list[Action] = []
        for model in self.models:
            done = await model._bound().repo.async_sync()
            _log(self, done)
            actions.extend(done)
        return actions

    def transaction(self, *, snapshot: bool = False) -> Transaction:
        """``with registry.transaction() as tx:``: the writes of the block all happen or none do.

        The model calls made inside the block (by this thread) join it; ``tx.create(User, ...)``,
        ``tx.save(obj)``, ``tx.update(obj, ...)``, ``tx.delete(obj)`` say so explicitly. An exception
        leaving the block rolls it back. ``snapshot=True``: every read of the block sees one snapshot
        (features.snapshot_transactions; PostgreSQL's REPEATABLE READ, where a concurrent change of
        the same rows is ConcurrentModification). What each backend does: docs/transactions.md.
        """
        self._open("start a transaction")
        return Transaction(self, is_async=False, snapshot=snapshot)

    def atransaction(self, *, snapshot: bool = False) -> Transaction:
        """``async with registry.atransaction() as tx:``: :meth:`transaction` for the awaitable API."""
        self._open("start a transaction")
        return Transaction(self, is_async=True, snapshot=snapshot)

    def _unbind(self) -> bool:
        if self.closed:
            return False
        self.closed = True
        label = repr(self.backend)
        for model in self.models:
            family = model._meta.family
            for member in family.by_value.values() if family is not None else (model,):
                binding = member._odm_binding
                if binding is not None and binding.backend is self.backend:
                    binding.close(label)
        return True

    def close(self) -> None:
        """Release connections; models bound here then say the registry is closed. Safe to call twice.

        A registry that was used with ``await`` needs ``aclose()`` (or ``async with``) instead, so
        its async connections are closed on their own event loop.
        """
        if self._unbind():
            self.backend.close()

    async def aclose(self) -> None:
        """Release the async and the sync connections. Safe to call twice."""
        if self._unbind():
            await self.backend.aclose()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Registry:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        state = " closed" if self.closed else ""
        return f"<Registry {self.backend!r}{state} models={[m.__name__ for m in self.models]}>"


def _log(registry: Registry, actions: list[Action]) -> None:
    for action in actions:
        sync_log.info("sync on %r: %s", registry.backend, action)


def _root(model: Any) -> Any:
    """What ``register(model)`` binds: the model, or for any class of a polymorphic family, its base.

    Registering the base binds every subclass (also those defined later, see ``bind_member``), so
    no subclass can be left unbound; registering a subclass is the same as registering its base.
    """
    if not isinstance(model, type) or not issubclass(model, Model):
        raise ConfigError(f"register() takes Model classes, not {model!r}.")
    family = getattr(model, "_meta", None) and model._meta.family
    return family.root if family is not None else model


def bind_member(member: type[Model], root: Binding) -> None:
    """Bind a subclass of a polymorphic model to its base's repository (the same table)."""
    repo = root.repo
    if _needs_exact_numbers(member):
        repo.use_exact_decimals()
    member._odm_binding = Binding(member, repo)


def _needs_exact_numbers(model: Any, seen: set[Any] | None = None) -> bool:
    seen = seen if seen is not None else set()
    if model in seen:
        return False
    seen.add(model)
    for field in model._fields.values():
        while field.kind in ("list", "set"):
            field = field.inner
        if field.kind == "decimal":
            return True
        if field.kind == "dict" and (field.values is None or field.values.kind == "decimal"):
            return True  # an untyped Dict: its numbers read back as int or exact Decimal (plain_number)
        if field.kind == "embedded" and _needs_exact_numbers(field.embedded, seen):
            return True
    return False
