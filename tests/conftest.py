"""Session fixtures: one real server per backend, started only when its tests run."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

import odm

from . import servers

#: The backend suite runs once per entry (pytest -k sqlite, -k mongodb, ...).
#: A backend is listed here once its suite passes; CI then requires its server.
BACKENDS = ["sqlite", "sqlite-memory", "postgres", "mongodb", "dynamodb"]

#: Modules of the backend suite that run twice, in the sync style and in the async style (every
#: operation the test makes then runs on the backend's async driver: see ``style``). Not the
#: schema tests: a server keeps the indexes one run built, so a second run starts elsewhere.
BOTH_STYLES = frozenset({"test_crud", "test_queries", "test_cursors", "test_golayer", "test_golayer_hostile",
                         "test_canonical_numbers", "test_empty_collections", "test_null_elements",
                         "test_equality_semantics", "test_version_race",
                         "test_insert_many_contract"})
T = TypeVar("T")


class Loop:
    """One event loop on its own thread, for the async style: a sync test awaits through it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="odm-test-loop", daemon=True)
        self.thread.start()

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def iterate(self, agen: AsyncIterator[T]) -> Iterator[T]:
        try:
            while True:
                try:
                    item = self.call(agen.__anext__())  # type: ignore[arg-type]
                except StopAsyncIteration:
                    return
                yield item
        finally:
            self.call(agen.aclose())  # type: ignore[attr-defined]

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "target" in metafunc.fixturenames and metafunc.module.__name__.rsplit(".", 1)[-1] in BOTH_STYLES:
        # First, so its teardown (closing the async connections) runs after the other fixtures'
        # (make_registry's cleanup still runs in the async style).
        metafunc.fixturenames.insert(0, "style")
        metafunc.parametrize("style", ["sync", "async"], indirect=True)


@pytest.fixture(scope="session")
def event_loop_thread() -> Iterator[Loop]:
    loop = Loop()
    yield loop
    loop.stop()


def _backend_classes() -> list[type[odm.backends.base.Backend]]:
    out, todo = [], [odm.backends.base.Backend]
    while todo:
        cls = todo.pop()
        out.append(cls)
        todo.extend(cls.__subclasses__())
    return out


@pytest.fixture
def style(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """``async``: every ``backend.run``/``iterate`` of the test is awaited on the async driver instead.

    The tests stay as written (one scenario, two styles); the async connections a test opened
    are closed on the loop that opened them when it ends.
    """
    if getattr(request, "param", "sync") != "async":
        yield "sync"
        return
    loop: Loop = request.getfixturevalue("event_loop_thread")
    used: list[Any] = []

    def run(self: Any, op: Any) -> Any:
        if self not in used:
            used.append(self)
        return loop.call(self.arun(op))

    def iterate(self: Any, op: Any) -> Iterator[Any]:
        if self not in used:
            used.append(self)
        return loop.iterate(self.aiterate(op))

    # Model calls that would skip run/iterate (a backend's fast plans) run their operation instead.
    monkeypatch.setattr(odm.backends.base.Backend, "fast_paths", False)
    for cls in _backend_classes():
        if "run" in cls.__dict__ or cls is odm.backends.base.Backend:
            monkeypatch.setattr(cls, "run", run)
        if "iterate" in cls.__dict__ or cls is odm.backends.base.Backend:
            monkeypatch.setattr(cls, "iterate", iterate)
    yield "async"
    for backend in used:
        loop.call(backend.aclose())


@pytest.fixture(scope="session")
def server_stack() -> Iterator[list[servers.Process]]:
    stack: list[servers.Process] = []
    yield stack
    for proc in reversed(stack):
        proc.stop()
    servers.stop_private_postgres()  # after _targets dropped its database (it depends on this fixture)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say which server each backend's tests ran on (the machine's, one started here, a DSN...)."""
    if servers.USED:
        terminalreporter.write_sep("-", "test servers")
        for backend, where in sorted(servers.USED.items()):
            terminalreporter.write_line(f"{backend}: {where}")


class Target:
    """How to build registries on one backend for the tests."""

    def __init__(self, name: str, factory: Callable[[str], odm.Registry], keeps_tables: bool = False) -> None:
        self.name = name
        self.factory = factory
        self.scope = uuid.uuid4().hex
        #: A server's database outlives each test (SQLite targets get a new one per test, and a
        #: shared-cache memory database goes with its last connection: those always sync).
        self.keeps_tables = keeps_tables
        #: Models ``registries`` synced on this server, with the table definition synced: a
        #: later test skips their sync (odm never drops a table or an index, so nothing it made
        #: has gone). A test that drops one by hand syncs again itself (or calls ``forget``).
        self.synced: dict[type[odm.Model], Any] = {}

    def new_scope(self) -> None:
        """Start a new test: SQLite targets move to a new database, servers keep theirs."""
        self.scope = uuid.uuid4().hex

    def sync(self, reg: odm.Registry) -> None:
        """``reg.sync()``, less the models already synced on this server with the same definition."""
        if not self.keeps_tables:
            reg.sync()
            return
        for model in reg.models:
            if self.synced.get(model) is not model._spec:  # the same class, as defined then
                self.synced.pop(model, None)
                model._bound().repo.sync()
                self.synced[model] = model._spec

    def forget(self, *names: str) -> None:
        """The tables named were dropped or changed outside odm: the next test using them syncs again."""
        for model in [m for m, spec in self.synced.items() if spec is None or spec.name in names]:
            del self.synced[model]

    def registry(self) -> odm.Registry:
        """A registry on this test's database (the same one for every call within a test)."""
        return self.factory(self.scope)

    def __repr__(self) -> str:
        return self.name


@pytest.fixture(scope="session")
def _targets(server_stack: list[servers.Process], tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Callable[[], Target]]]:
    cleanups: list[Callable[[], None]] = []
    built: dict[str, Target] = {}

    def sqlite() -> Target:
        root: Path = tmp_path_factory.mktemp("sqlite")
        return Target("sqlite", lambda scope: odm.Registry("sqlite", path=str(root / f"{scope}.db")))

    def sqlite_memory() -> Target:
        # A named shared-cache memory database, so two registries in one test see the same data.
        return Target("sqlite-memory", lambda scope: odm.Registry("sqlite", path=f"file:{scope}?mode=memory&cache=shared"))

    def postgres() -> Target:
        db = servers.PostgresDatabase()
        cleanups.append(db.drop)
        return Target("postgres", lambda scope: odm.Registry("postgres", dsn=db.dsn), keeps_tables=True)

    def mongodb() -> Target:
        uri = servers.mongodb_uri(server_stack)
        database = f"odm_test_{uuid.uuid4().hex[:8]}"
        return Target("mongodb", lambda scope: odm.Registry("mongodb", uri=uri, database=database), keeps_tables=True)

    def dynamodb() -> Target:
        endpoint = servers.dynamodb_endpoint(server_stack)
        cleanups.append(servers.guard_ttl_tables(endpoint))  # a 7th TTL table fails at once, not in 300 s
        prefix = uuid.uuid4().hex[:6]
        return Target("dynamodb", lambda scope: odm.Registry("dynamodb", endpoint=endpoint, awsRegion="us-east-1",
                                                           awsSecretKeyId="test", awsSecretAccessKey="test",
                                                           tablePrefix=f"t{prefix}_"), keeps_tables=True)

    makers = {"sqlite": sqlite, "sqlite-memory": sqlite_memory, "postgres": postgres, "mongodb": mongodb, "dynamodb": dynamodb}

    def get(name: str) -> Target:
        if name not in built:
            built[name] = makers[name]()
        return built[name]

    yield get  # type: ignore[misc]
    for cleanup in reversed(cleanups):
        cleanup()


@pytest.fixture(params=BACKENDS)
def target(request: pytest.FixtureRequest, _targets: Callable[[str], Target]) -> Target:
    """The backend under test; its server is started on first use."""
    chosen = _targets(request.param)
    chosen.new_scope()
    return chosen


def registries(target: Target) -> Iterator[Callable[..., odm.Registry]]:
    """A factory of registries on ``target``; their items are removed and they are closed afterwards."""
    made: list[odm.Registry] = []

    def make(*models: type[odm.Model], sync: bool = True, rebind: bool = False) -> odm.Registry:
        reg = target.registry()
        made.append(reg)
        if models:
            reg.register(*models, rebind=rebind)
            if sync:
                target.sync(reg)
        return reg

    yield make
    for reg in made:
        for model in reg.models:
            if model._odm_binding is not None:
                try:
                    model.query().delete()
                except odm.ODMError:
                    pass
        reg.close()


@pytest.fixture
def make_registry(target: Target) -> Iterator[Callable[..., odm.Registry]]:
    """Build fresh registries on the backend under test (closed after the test)."""
    yield from registries(target)
