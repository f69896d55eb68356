"""MongoDB on pymongo: one compiler, one repository, schema sync (see docs/backends/mongodb.md)."""
