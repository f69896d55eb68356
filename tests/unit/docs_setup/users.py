# Set-up run in front of the docs' <!-- run: after users --> fragments (tests/unit/test_docs_examples.py):
# the User model of the README, on the backend of ./config.json, with a few users.
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

    class Meta:
        name = "users"
        hash_key = "email"
        indexes = ["name", Index("age", "name")]


registry = odm.Registry.from_file("config.json")
registry.register(User)
registry.sync()
User.query().delete()
User.insert_many([
    User(email="ann@x.io", name="Ann", age=31, score=9.8, tags=["admin"], address={"city": "Paris"}),
    User(email="bob@x.io", name="Bob", age=17, score=5.0, address={"city": "Berlin"}),
    User(email="cy@x.io", name="Cy", age=45, tags=["ops"]),
])
user = User.get("ann@x.io")
