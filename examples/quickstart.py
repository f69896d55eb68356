"""Quickstart: models, sync, create, query, update and paginate on the embedded SQLite default.

Run with `make demo` (no server needed). Point it at another backend by setting
ODM_DB_NAME / ODM_DB_INFO, e.g. ODM_DB_NAME=mongodb ODM_DB_INFO='{"uri": "mongodb://localhost"}'.
"""

from __future__ import annotations

import os
import tempfile

import odm
from odm import EmbeddedModel, Index, Model, fields


class Address(EmbeddedModel):
    street = fields.String()
    city = fields.String(required=True)


class User(Model):
    email = fields.String(required=True)
    name = fields.String()
    age = fields.Integer()
    score = fields.Float()
    active = fields.Boolean(default=True)
    tags = fields.List(fields.String())
    address = fields.Embedded(Address)
    created_at = fields.DateTime(default=odm.utcnow)
    version = fields.Integer()

    class Meta:
        name = "users"
        hash_key = "email"
        indexes = ["name", Index("age", "name")]
        version_field = "version"


def main() -> None:
    # A fresh database each run, removed at the end (with its -wal/-shm files): nothing is left behind.
    with tempfile.TemporaryDirectory(prefix="odm-demo-") as folder:
        demo(os.path.join(folder, "quickstart.db"))


def demo(path: str) -> None:
    cfg = {"database": {"dbName": "sqlite", "dbInfo": {"path": path}}}
    with odm.Registry.from_dict(cfg) as registry:
        registry.register(User)
        print("sync:", [str(a) for a in registry.sync()])
        print("sync again (idempotent):", registry.sync())

        people = [
            ("ann@example.com", "Ann", 31, 9.8, ["admin", "dev"], "Paris"),
            ("bob@example.com", "Bob", 17, 5.0, ["dev"], "Berlin"),
            ("cy@example.com", "Cy", 45, 7.5, [], "Paris"),
            ("dee@example.com", "Dee", 28, None, ["ops"], "Lisbon"),
        ]
        for email, name, age, score, tags, city in people:
            User.create(email=email, name=name, age=age, score=score, tags=tags, address={"city": city})
        User.insert_many([User(email=f"user{i}@example.com", name=f"User {i}", age=20 + i) for i in range(10)])
        print("created:", User.query().count(), "users")

        adults = User.query(User.age >= 18, User.name.startswith("A") | User.tags.contains("ops"))
        print("adults named A* or in ops:", [u.name for u in adults.order_by(User.name)])
        print("in Paris:", [u.email for u in User.query(User.address.city == "Paris").order_by(-User.age)])
        print("score > 7 or admin:", sorted(u.name for u in User.query((User.score > 7) | User.tags.contains("admin"))))
        print("not 17:", User.query(User.age != 17).count(), "| no score:", User.query(User.score == None).count())  # noqa: E711
        print("the SQL:", User.query(User.age.between(18, 30)).explain()["sql"])

        ann = User.get("ann@example.com")
        ann.update(age=odm.inc(1), name="Annie")
        print("after update:", ann.name, ann.age, "version", ann.version)

        stale = User.get("bob@example.com")
        fresh = User.get("bob@example.com")
        fresh.score = 6.0
        fresh.save()
        try:
            stale.score = 1.0
            stale.save()
        except odm.ConcurrentModification as exc:
            print("stale save refused:", exc)

        try:
            User.create(email="ann@example.com")
        except odm.DuplicateKey as exc:
            print("duplicate refused:", exc)
        try:
            User(email="x@example.com", age="old").save()
        except odm.ValidationError as exc:
            print("invalid data refused:", exc.messages)

        cursor = None
        page_no = 0
        query = User.query(User.age >= 18).order_by(User.age)
        while True:
            page = query.page(size=4, cursor=cursor)
            page_no += 1
            print(f"page {page_no}:", [(u.name, u.age) for u in page.items])
            cursor = page.next_cursor
            if cursor is None:
                break

        removed = User.query(User.email.startswith("user")).delete()
        print("deleted", removed, "generated users;", User.query().count(), "left")


if __name__ == "__main__":
    main()
