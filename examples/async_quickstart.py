"""Async quickstart: the same model, awaited, as an asyncio service (FastAPI, Starlette...) would.

Run with `.venv/bin/python examples/async_quickstart.py` after `make demo` (embedded SQLite, no
server needed). Point it at another backend with ODM_DB_NAME / ODM_DB_INFO, e.g.
ODM_DB_NAME=postgres ODM_DB_INFO='{"dsn": "postgresql://postgres@127.0.0.1:5432/postgres"}'.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile

import odm
from odm import Model, fields


class Account(Model):
    email = fields.String(required=True)
    name = fields.String()
    credits = fields.Integer(default=0)
    version = fields.Integer()

    class Meta:
        name = "async_accounts"
        hash_key = "email"
        indexes = ["name"]
        version_field = "version"


def config(workdir: str) -> dict[str, object]:
    name = os.environ.get("ODM_DB_NAME", "sqlite")
    info = json.loads(os.environ["ODM_DB_INFO"]) if "ODM_DB_INFO" in os.environ else {
        "path": os.path.join(workdir, "async_quickstart.db")}
    return {"database": {"dbName": name, "dbInfo": info}}


async def handler(email: str) -> dict[str, object]:
    """What a FastAPI route would do: one awaited read, NotFound for a 404."""
    try:
        account = await Account.aget(email)
    except odm.NotFound:
        return {"status": 404}
    return {"status": 200, "body": account.to_dict()}


async def main() -> None:
    with tempfile.TemporaryDirectory(prefix="odm-async-demo-") as workdir:
        async with odm.Registry.from_dict(config(workdir)) as registry:
            registry.register(Account)
            print("sync:", [str(a) for a in await registry.async_sync()])
            await Account.query().adelete()  # a rerun starts from nothing

            # 100 concurrent creates, then 100 concurrent reads, through one registry.
            await asyncio.gather(*(Account.acreate(email=f"user{i}@example.com", name=f"User {i % 10}")
                                   for i in range(100)))
            print("created:", await Account.query().acount())
            found = await asyncio.gather(*(Account.aget(f"user{i}@example.com") for i in range(100)))
            print("read back:", len(found), "accounts")

            print("GET user7:", (await handler("user7@example.com"))["status"],
                  "| GET nobody:", (await handler("nobody@example.com"))["status"])

            ann = await Account.aget("user1@example.com")
            await ann.aupdate(credits=odm.inc(5))
            stale = await Account.aget("user2@example.com")
            fresh = await Account.aget("user2@example.com")
            await fresh.aupdate(credits=odm.inc(1))
            try:
                stale.credits = 100
                await stale.asave()
            except odm.ConcurrentModification as exc:
                print("stale save refused:", exc)

            names = [a.email async for a in Account.query(Account.name == "User 1")]
            print("named 'User 1':", sorted(names))
            page = await Account.query().order_by(Account.email).apage(size=3)
            print("first page:", [a.email for a in page.items], "more:", page.next_cursor is not None)
            print("deleted:", await Account.query().adelete())


if __name__ == "__main__":
    asyncio.run(main())
