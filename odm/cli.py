"""``odm`` command line: ``odm check CONFIG`` and ``odm sync CONFIG MODULE...``.

Exit codes: 0 success; 1 an odm error (bad config, server unreachable, refused
credentials, a sync that failed), reported as one line on stderr; 2 a usage
error (bad arguments, a module that cannot be found or holds no models).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from types import ModuleType

from .errors import ODMError
from .model import Model
from .registry import Registry

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """A command-line argument names something that is not there (exit code 2)."""


def _one_line(exc: BaseException) -> str:
    """A message on one line (driver reasons can span several)."""
    return " ".join(str(exc).split()) or type(exc).__name__


def _import(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (name == exc.name or name.startswith(exc.name + ".")):
            raise UsageError(f"no module named {name!r} (is it on PYTHONPATH?)") from None
        raise


def _models(modules: Sequence[str]) -> list[type[Model]]:
    found: list[type[Model]] = []
    for name in modules:
        module = _import(name)
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, Model) and value._spec is not None and value.__module__ == module.__name__:
                found.append(value)
    if not found:
        raise UsageError("no models found in " + ", ".join(modules))
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="odm", description="microkubes-odm tools",
                                     epilog="exit codes: 0 ok, 1 odm error (config, connection, sync), 2 usage")
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="load a config file and make one round trip to its server")
    check.add_argument("config")
    sync = sub.add_parser("sync", help="create missing tables, collections and indexes for the models in MODULEs")
    sync.add_argument("config")
    sync.add_argument("modules", nargs="+")
    args = parser.parse_args(argv)  # exits with 2 on a usage error
    try:
        models = _models(args.modules) if args.command == "sync" else []
        with Registry.from_file(args.config) as registry:
            if args.command == "check":
                registry.ping()
                print(f"{args.config}: OK, connected to {registry.backend!r}")
                return EXIT_OK
            registry.register(*models)
            actions = registry.sync()
            for action in actions:
                print(action)
            if not actions:
                print("Nothing to do: everything exists.")
            return EXIT_OK
    except UsageError as exc:
        print(f"odm: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ODMError as exc:
        print(f"odm: {_one_line(exc)}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    raise SystemExit(main())
