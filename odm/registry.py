"""Registry: a configured backend and the models bound to it."""

from __future__ import annotations

import os
from typing import Any, TypeVar

from . import config
from .backends.base import Action, Backend
from .binding import Binding
from .errors import ConfigError
from .model import Model

M = TypeVar("M", bound=type[Model])


class Registry:
    """``odm.Registry("sqlite", path="app.db")``, ``from_file`` or ``from_dict``; binds models."""

    def __init__(self, backend: str | Backend, *, source: str = "<arguments>", **info: Any) -> None:
        if isinstance(backend, Backend):
            self.backend = backend
        else:
            self.backend = config.build_backend(backend, info, source)
        self.models: list[type[Model]] = []

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Registry:
        name, info = config.load_file(path)
        return cls(name, source=str(path), **info)

    @classmethod
    def from_dict(cls, cfg: dict[str, Any], source: str = "<dict>") -> Registry:
        name, info = config.parse(cfg, source)
        return cls(name, source=source, **info)

    def register(self, *models: M) -> M:
        """Bind models to this registry's backend (usable as a class decorator)."""
        if not models:
            raise ConfigError("register() needs at least one Model class.")
        for model in models:
            if not isinstance(model, type) or not issubclass(model, Model):
                raise ConfigError(f"register() takes Model classes, not {model!r}.")
            if model._spec is None:
                raise ConfigError(f"{model.__name__} is abstract (Meta.abstract = True) and cannot be registered.")
            repo = self.backend.repository(model._spec)
            if _has_decimal(model):
                repo.use_exact_decimals()
            model._odm_binding = Binding(model, repo)
            if model not in self.models:
                self.models.append(model)
        return models[0]

    def sync(self) -> list[Action]:
        """Create missing tables, collections and indexes; returns what was done (empty if nothing)."""
        actions: list[Action] = []
        for model in self.models:
            actions.extend(model._bound().repo.sync())
        return actions

    def close(self) -> None:
        for model in self.models:
            if model._odm_binding is not None and model._odm_binding.repo.backend is self.backend:
                model._odm_binding = None
        self.backend.close()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Registry {self.backend!r} models={[m.__name__ for m in self.models]}>"


def _has_decimal(model: Any, seen: set[Any] | None = None) -> bool:
    seen = seen if seen is not None else set()
    if model in seen:
        return False
    seen.add(model)
    for field in model._fields.values():
        while field.kind in ("list", "set"):
            field = field.inner
        if field.kind == "decimal":
            return True
        if field.kind == "dict" and field.values is not None and field.values.kind == "decimal":
            return True
        if field.kind == "embedded" and _has_decimal(field.embedded, seen):
            return True
    return False
