"""``odm`` command line: ``odm check CONFIG`` and ``odm sync CONFIG MODULE...``."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from .errors import ODMError
from .model import Model
from .registry import Registry


def _models(modules: Sequence[str]) -> list[type[Model]]:
    found: list[type[Model]] = []
    for name in modules:
        module = importlib.import_module(name)
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, Model) and value._spec is not None and value.__module__ == module.__name__:
                found.append(value)
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="odm", description="microkubes-odm tools")
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="load a config file and connect to its backend")
    check.add_argument("config")
    sync = sub.add_parser("sync", help="create missing tables, collections and indexes for the models in MODULEs")
    sync.add_argument("config")
    sync.add_argument("modules", nargs="+")
    args = parser.parse_args(argv)
    try:
        with Registry.from_file(args.config) as registry:
            if args.command == "check":
                print(f"{args.config}: OK ({registry.backend!r})")
                return 0
            models = _models(args.modules)
            if not models:
                print("No models found in " + ", ".join(args.modules), file=sys.stderr)
                return 1
            registry.register(*models)
            actions = registry.sync()
            for action in actions:
                print(action)
            if not actions:
                print("Nothing to do: everything exists.")
            return 0
    except ODMError as exc:
        print(f"odm: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
