"""The backend a benchmark runs on: a synced registry and what the raw driver needs to reach the
same server, started as the test suite starts it (tests/servers.py) and cleaned up after.

One place for what bench_e2e, bench_large and bench_bulk each wrote out per backend.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import odm
from tests import servers


@dataclass
class Target:
    """A registry on one backend and the raw driver's way to the same data."""

    name: str
    registry: odm.Registry
    path: str = ""  # SQLite: the database file
    dsn: str = ""  # PostgreSQL
    uri: str = ""  # MongoDB, with ``database``
    database: str = ""
    endpoint: str = ""  # DynamoDB

    def table(self, model: type[odm.Model]) -> str:
        """The stored name of ``model``'s table: quoted SQL, the prefixed DynamoDB table, the collection."""
        repo: Any = model._bound().repo
        return repo.spec.name if self.name == "mongodb" else repo.table  # type: ignore[no-any-return]

    def boto3_client(self, **config: Any) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client("dynamodb", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id="bench", aws_secret_access_key="bench",
                            **({"config": Config(**config)} if config else {}))


@contextmanager
def target(name: str, label: str, *models: type[odm.Model]) -> Iterator[Target]:
    """``models`` registered and synced on backend ``name`` (a fresh SQLite file, a throwaway
    PostgreSQL database, a MongoDB database and DynamoDB table prefix of their own, named from
    ``label``); the servers this started are stopped, the database and file removed."""
    stack: list[servers.Process] = []
    pg: servers.PostgresDatabase | None = None
    tmp = Path(".pytest_cache") / f"bench-{label}"
    tmp.mkdir(parents=True, exist_ok=True)
    path = str(tmp / f"{uuid.uuid4().hex}.db")
    tag = uuid.uuid4().hex[:6]
    try:
        if name == "sqlite":
            made = Target(name, odm.Registry("sqlite", path=path), path=path)
        elif name == "postgres":
            pg = servers.PostgresDatabase()
            made = Target(name, odm.Registry("postgres", dsn=pg.dsn), dsn=pg.dsn)
        elif name == "mongodb":
            uri, database = servers.mongodb_uri(stack), f"bench_{label}_{tag}"
            made = Target(name, odm.Registry("mongodb", uri=uri, database=database), uri=uri, database=database)
        else:
            endpoint = servers.dynamodb_endpoint(stack)
            made = Target(name, odm.Registry("dynamodb", endpoint=endpoint, awsRegion="us-east-1",
                                             awsSecretKeyId="bench", awsSecretAccessKey="bench",
                                             tablePrefix=f"{label[:1]}{tag}_"), endpoint=endpoint)
        with made.registry as reg:
            reg.register(*models)
            reg.sync()
            yield made
            if name == "mongodb":  # a server of our own stops anyway; one given by ODM_TEST_MONGODB_URI does not
                import pymongo

                with pymongo.MongoClient(made.uri) as client:
                    client.drop_database(made.database)
    finally:
        if pg is not None:
            pg.drop()
        for suffix in ("", "-wal", "-shm"):
            Path(path + suffix).unlink(missing_ok=True)
        for proc in reversed(stack):
            proc.stop()
