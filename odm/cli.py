"""The ``odm`` command: ``check``, ``sync`` and ``copy`` (docs/cli.md).

    odm check CONFIG                         one real round trip to the configured server
    odm sync CONFIG MODULE... [--dry-run]    show the schema plan, then create what is missing
    odm copy --from A.json --to B.json MODULE [MODEL...]
                                             stream items between backends, resumably
    odm --version

MODULE is a module name, found from the current directory as well as sys.path, or a path to
a ``.py`` file. Exit codes: 0 success; 1 an odm error (bad config, server unreachable, refused
credentials, a sync refused, a copy whose counts differ), reported as one line on stderr
(``odm: ...``) without a traceback; 2 a usage error (bad arguments, a module that cannot be
found or holds no models); 130 (143 for SIGTERM) an interrupted copy, resumable by running the
same command again. Secrets from the configs (passwords, DSN credentials, AWS keys) are masked
in everything the command prints.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import importlib.util
import logging
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType, ModuleType
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

from . import config
from .backends.base import Action
from .errors import ODMError
from .model import Model
from .redaction import mask_secrets, redact_aws
from .registry import Registry

if TYPE_CHECKING:
    from .copy import Checkpoint
    from .progress import Progress

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2
#: dbInfo keys whose values are never shown (besides the credentials inside a DSN or URI).
SECRET_HINTS = ("pass", "secret", "token", "key", "dsn", "uri", "url")


class UsageError(Exception):
    """A command-line argument names something that is not there (exit code 2)."""


class Interrupted(BaseException):
    """SIGTERM (or SIGINT) stopped a copy; its checkpoint is saved (exit 128 + the signal number)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one ``odm: ...`` line on stderr and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"odm: {message} (see '{self.prog} --help')\n")


class Secrets:
    """The secret values of the configs in use: masked in every line the command writes."""

    def __init__(self) -> None:
        self.values: set[str] = set()

    def add_config(self, path: str) -> None:
        try:
            settings = config.read_file(path)
        except ODMError:
            return  # reported when the registry is built
        for key, value in settings.merged.items():
            if isinstance(value, str) and any(h in key.lower() for h in SECRET_HINTS):
                if key.lower() in ("dsn", "uri", "url") or "://" in value:
                    continue  # only its password is secret: masked by redact_url
                self.values.add(value)

    def clean(self, text: str) -> str:
        return mask_secrets(redact_aws(text), self.values)


def _one_line(exc: BaseException) -> str:
    """A message on one line (driver reasons can span several)."""
    return " ".join(str(exc).split()) or type(exc).__name__


class Out:
    """stdout and stderr, cleaned of secrets."""

    def __init__(self, secrets: Secrets) -> None:
        self.secrets = secrets

    def print(self, text: str = "", stream: TextIO | None = None) -> None:
        print(self.secrets.clean(text), file=stream or sys.stdout, flush=True)

    def error(self, text: str) -> None:
        self.print(f"odm: {' '.join(text.split())}", sys.stderr)


class CleanStream:
    """A text stream writing through ``Secrets.clean`` (the progress bar's)."""

    def __init__(self, stream: TextIO, secrets: Secrets) -> None:
        self.stream = stream
        self.secrets = secrets

    def write(self, text: str) -> int:
        return self.stream.write(self.secrets.clean(text))

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return self.stream.isatty()


# -- finding the models --------------------------------------------------------------------------
def _import(name: str) -> ModuleType:
    """A module by name (the current directory searched first, as ``python -m`` does) or by file path."""
    if name.endswith(".py") or os.sep in name or (os.altsep and os.altsep in name):
        return _import_file(Path(name))
    here = os.getcwd()
    if here not in sys.path and "" not in sys.path:
        sys.path.insert(0, here)
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (name == exc.name or name.startswith(exc.name + ".")):
            raise UsageError(f"no module named {name!r} in {here} or on PYTHONPATH "
                             "(give a module name, or the path of a .py file)") from None
        raise


def _import_file(path: Path) -> ModuleType:
    if not path.is_file():
        raise UsageError(f"no such module file: {path}")
    path = path.resolve()
    name = path.stem
    loaded = sys.modules.get(name)
    if loaded is not None and getattr(loaded, "__file__", None) and Path(loaded.__file__).resolve() == path:  # type: ignore[arg-type]
        return loaded
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)  # its own imports of sibling modules work as when run from there
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise UsageError(f"{path} cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def _models(modules: Sequence[str]) -> list[type[Model]]:
    found: list[type[Model]] = []
    for name in modules:
        module = _import(name)
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, Model) and value._spec is not None and \
                    value.__module__ == module.__name__ and value not in found:
                found.append(value)
    if not found:
        raise UsageError("no models found in " + ", ".join(modules))
    return found


# -- the commands --------------------------------------------------------------------------------
def _registry(path: str, *, read_only: bool = False) -> Registry:
    """The config's registry; ``read_only`` for ``check`` and ``sync --dry-run``, which change nothing
    (the backend opened by ``Backend.inspecting``: SQLite neither creates its file nor sets WAL)."""
    settings = config.read_file(path)
    backend = config.build_backend(settings.name, settings.info, settings.source, inspecting=read_only)
    return Registry(backend, source=settings.source, cursor_secret=settings.cursor_secret)


def cmd_check(args: argparse.Namespace, out: Out) -> int:
    with _registry(args.config, read_only=True) as registry:
        missing = registry.backend.missing_database
        if missing is not None:
            raise ODMError(f"{args.config}: the SQLite database file {missing!r} does not exist (check the path; "
                           "'odm sync' creates it with the tables)")
        registry.ping()
        out.print(f"{args.config}: OK, connected to {registry.backend!r}")
    return EXIT_OK


_FUTURE = {"created": "create", "enabled": "enable", "built": "build"}


def _future(action: Action) -> str:
    first, _, rest = str(action).partition(" ")
    return f"{_FUTURE.get(first, first)} {rest}"


def cmd_sync(args: argparse.Namespace, out: Out) -> int:
    models = _models(args.modules)
    with _registry(args.config, read_only=args.dry_run) as registry:
        registry.register(*models)
        plans = registry.plan()
        todo = sum(len(p.todo) for p in plans)
        out.print(f"Plan for {registry.backend!r}:")
        missing = registry.backend.missing_database
        if missing is not None:  # only in a dry run: a real sync creates the file when it opens it
            todo += 1
            out.print(f"  + create database file {missing}")
        for plan in plans:
            out.print(f"  {plan.table}:")
            for action in plan.todo:
                out.print(f"    + {_future(action)}")
            for action in plan.exists:
                out.print(f"    = {action}")
        if not todo:
            out.print("Nothing to do: everything exists.")
            return EXIT_OK
        if args.dry_run:
            out.print(f"Dry run: {todo} change(s) planned, nothing was changed.")
            return EXIT_OK
        done = registry.sync()
        for action in done:
            out.print(f"done: {action}")
        out.print(f"Applied {len(done)} change(s).")
    return EXIT_OK


@contextmanager
def _stop_on_sigterm() -> Iterator[None]:
    """SIGTERM stops a copy the way Ctrl-C does: between two requests, checkpoint kept."""
    def handler(signum: int, frame: FrameType | None) -> None:
        raise Interrupted(signum)

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def cmd_copy(args: argparse.Namespace, out: Out) -> int:
    from .copy import Checkpoint, default_checkpoint
    from .progress import Progress

    if args.batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1, not {args.batch_size}")
    if args.models:  # by name: also models the module imports from elsewhere
        module = _import(args.module)
        named: list[Any] = [getattr(module, n, None) for n in args.models]
        unknown = [n for n, m in zip(args.models, named, strict=True)
                   if not (isinstance(m, type) and issubclass(m, Model) and m._spec is not None)]
        if unknown:
            have = sorted(n for n, v in vars(module).items()
                          if isinstance(v, type) and issubclass(v, Model) and v._spec is not None)
            raise UsageError(f"no model named {', '.join(unknown)} in {args.module} (it has {', '.join(have) or 'none'})")
        models: list[type[Model]] = named
    else:
        models = _models([args.module])
    source_path, target_path = os.path.abspath(args.source), os.path.abspath(args.target)
    if source_path == target_path:
        raise UsageError("--from and --to name the same config; copy between two different ones")
    path = Path(args.checkpoint) if args.checkpoint else default_checkpoint(args.target)
    checkpoint = Checkpoint(path, source_path, target_path)
    progress = Progress(CleanStream(sys.stderr, out.secrets), interval=args.progress_interval)  # type: ignore[arg-type]
    # The handler covers the whole command (opening and closing the registries, the final counts):
    # a signal anywhere in it is the one line and exit 130/143, never a traceback.
    with _stop_on_sigterm():
        try:
            return _copy(args, out, models, checkpoint, progress)
        except (KeyboardInterrupt, Interrupted) as exc:
            signum = exc.signum if isinstance(exc, Interrupted) else signal.SIGINT
            if progress.tty:
                out.print("", sys.stderr)  # end the bar's line
            out.error(f"interrupted ({signal.Signals(signum).name}); {checkpoint.kept()}")
            return 128 + signum


def _copy(args: argparse.Namespace, out: Out, models: list[type[Model]], checkpoint: Checkpoint,
          progress: Progress) -> int:
    """``odm copy`` once its arguments are checked: the copy, then the count check per model."""
    from .copy import copy_models

    path = checkpoint.path
    with Registry.from_file(args.source) as source, Registry.from_file(args.target) as target:
        out.print(f"Copying from {source.backend!r} to {target.backend!r}"
                  + (f", resuming from {path}" if checkpoint.resumed else f", checkpoint {path}"))
        try:
            counts = copy_models(source, target, models, checkpoint, progress, args.batch_size,
                                 synced=lambda actions: out.print("\n".join(f"target schema: {a}" for a in actions))
                                 if actions else None)
        except ODMError as exc:
            if progress.tty:
                out.print("", sys.stderr)
            out.error(f"{_one_line(exc)} ({checkpoint.kept()})")
            return EXIT_ERROR
        ok = True
        for count in counts:
            verdict = "OK" if count.ok else "MISMATCH"
            out.print(f"{count.model}: {count.source} in source, {count.target} in target: {verdict}")
            ok &= count.ok
        if not ok:
            bad = "; ".join(f"{c.model} {c.source} in source vs {c.target} in target" for c in counts if not c.ok)
            checkpoint.remove()  # a rerun then copies everything again: the items already there count as done
            out.error(f"count check failed: {bad} (the target held other items, lost some, or the source changed "
                      "during the copy; running the same command again copies every item again, and those already "
                      "in the target count as done)")
            return EXIT_ERROR
        checkpoint.remove()
    return EXIT_OK


def version() -> str:
    try:
        return importlib.metadata.version("microkubes-odm")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed)"


def parser() -> Parser:
    top = Parser(prog="odm", description="microkubes-odm tools: check a config, sync a schema, copy data between backends.",
                 epilog="exit codes: 0 ok, 1 odm error (config, connection, sync, copy), 2 usage, 130/143 copy "
                        "interrupted (resumable). Docs: docs/cli.md")
    top.add_argument("--version", action="version", version=f"odm (microkubes-odm) {version()}")
    top.add_argument("-v", "--verbose", action="count", default=0,
                     help="log to stderr: -v the sync actions and retries (INFO), -vv every request (DEBUG)")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)
    check = sub.add_parser("check", help="load a config file and make one round trip to its server",
                           description="Load CONFIG and make one real round trip to its server: exit 0 and OK, or "
                                       "exit 1 with one line naming the problem (unreachable, refused credentials, "
                                       "bad config).")
    check.add_argument("config", metavar="CONFIG", help="a JSON config ({\"database\": {\"dbName\": ..., \"dbInfo\": ...}})")
    check.set_defaults(run=cmd_check)
    sync = sub.add_parser("sync", help="show the schema plan for the models in MODULEs, then create what is missing",
                          description="Print the plan (per table/collection: what will be created, what exists), then "
                                      "create the missing tables, collections, indexes, GSIs and TTL. Never drops "
                                      "or changes what exists; a conflicting definition is refused before any change.")
    sync.add_argument("config", metavar="CONFIG")
    sync.add_argument("modules", nargs="+", metavar="MODULE",
                      help="a module name (found from the current directory) or a path to a .py file")
    sync.add_argument("--dry-run", action="store_true", help="print the plan and change nothing")
    sync.set_defaults(run=cmd_sync)
    copy = sub.add_parser("copy", help="copy every item of some models from one backend to another, resumably",
                          description="Stream every item of the MODELs (default: every model in MODULE) from the "
                                      "--from backend to the --to backend in batches, after syncing the target "
                                      "schema; resumable from a checkpoint; ends with a count check per model.")
    copy.add_argument("--from", dest="source", required=True, metavar="A.json", help="config of the source")
    copy.add_argument("--to", dest="target", required=True, metavar="B.json", help="config of the target")
    copy.add_argument("module", metavar="MODULE", help="a module name or a path to a .py file")
    copy.add_argument("models", nargs="*", metavar="MODEL", help="model class names (default: all in MODULE)")
    copy.add_argument("--batch-size", type=int, default=500, metavar="N", help="items per read and write (default 500)")
    copy.add_argument("--checkpoint", metavar="PATH",
                      help="checkpoint file (default: next to the target config, B.json.odm-copy.json)")
    copy.add_argument("--progress-interval", type=float, default=5.0, metavar="SECONDS",
                      help="when not on a terminal: a progress line every SECONDS (0: every batch; default 5)")
    copy.set_defaults(run=cmd_copy)
    return top


@contextmanager
def _logging(verbosity: int, secrets: Secrets) -> Iterator[None]:
    """``-v``/``-vv``: the ``odm`` loggers to stderr (cleaned of secrets) for this command only."""
    if not verbosity:
        yield
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    class Clean(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            record.msg, record.args = secrets.clean(record.getMessage()), None
            return True

    handler.addFilter(Clean())
    logger = logging.getLogger("odm")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO if verbosity == 1 else logging.DEBUG)
    try:
        yield
    finally:  # main() may be called again in the same process (tests, a wrapper script)
        logger.removeHandler(handler)
        logger.setLevel(level)


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)  # exits with 2 on a usage error, 0 after --help and --version
    secrets = Secrets()
    for path in (getattr(args, "config", None), getattr(args, "source", None), getattr(args, "target", None)):
        if path:
            secrets.add_config(path)
    out = Out(secrets)
    try:
        with _logging(args.verbose, secrets):
            return int(args.run(args, out))
    except UsageError as exc:
        out.error(str(exc))
        return EXIT_USAGE
    except ODMError as exc:
        out.error(_one_line(exc))
        return EXIT_ERROR
    except KeyboardInterrupt:
        out.error("interrupted")
        return 128 + signal.SIGINT
    except Interrupted as exc:  # a second signal while the first was being reported
        out.error(f"interrupted ({signal.Signals(exc.signum).name})")
        return 128 + exc.signum


if __name__ == "__main__":
    raise SystemExit(main())
